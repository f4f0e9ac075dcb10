package db

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Conditions of driver errors that stores act on. translate attaches them to a driver error; stores
// test them with errors.Is and return their own package's sentinel (tenant.ErrAPIKeyNameTaken, …).
//
// "No row" needs no sentinel of its own: Bun's Scan returns sql.ErrNoRows, which stores test with
// errors.Is, and updates and deletes check the number of affected rows.
var (
	// errUniqueViolation means an INSERT or UPDATE broke a UNIQUE or PRIMARY KEY constraint.
	errUniqueViolation = errors.New("unique constraint violated")
	// errForeignKeyViolation means a row refers to a row that does not exist.
	errForeignKeyViolation = errors.New("foreign key constraint violated")
)

// PostgreSQL SQLSTATE codes (https://www.postgresql.org/docs/current/errcodes-appendix.html).
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

// translate returns err wrapped with errUniqueViolation or errForeignKeyViolation when the driver
// reported that condition, and err unchanged otherwise (nil stays nil). It decides by the
// PostgreSQL SQLSTATE or the SQLite extended result code, never by the text of a message.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	var pgErr *pgconn.PgError
	var sqliteErr *sqlite.Error
	switch {
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case pgUniqueViolation:
			sentinel = errUniqueViolation
		case pgForeignKeyViolation:
			sentinel = errForeignKeyViolation
		}
	case errors.As(err, &sqliteErr):
		// The driver enables extended result codes on every connection.
		switch sqliteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			sentinel = errUniqueViolation
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			sentinel = errForeignKeyViolation
		}
	}
	if sentinel == nil {
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}
