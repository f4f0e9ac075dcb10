package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	passkey "github.com/passkey-server/passkey-server"
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

// The kinds of dependency an unavailableError names, in the details a client sees.
const (
	kindDatabase = "database"
	kindSessions = "session store"
)

// unavailableError is a failure of a dependency that cannot answer now. errors.Is matches both
// passkey.ErrUnavailable and the cause; its details name only the kind of dependency, never an address,
// while Error (for logs) is the cause's message.
type unavailableError struct {
	kind  string
	cause error
}

func (e *unavailableError) Error() string   { return e.cause.Error() }
func (e *unavailableError) Unwrap() []error { return []error{passkey.ErrUnavailable, e.cause} }
func (e *unavailableError) Details() string { return "the " + e.kind + " is unavailable" }

// unavailable returns err marked as passkey.ErrUnavailable when it means that the dependency of the
// given kind cannot answer now (see isUnavailable), and err unchanged otherwise (nil stays nil).
func unavailable(kind string, err error) error {
	if err == nil || errors.Is(err, passkey.ErrUnavailable) || !isUnavailable(err) {
		return err
	}
	return &unavailableError{kind: kind, cause: err}
}

// PostgreSQL SQLSTATE codes and classes that mean the server cannot serve the statement now.
const (
	pgClassConnection      = "08"    // connection exception
	pgQueryCanceled        = "57014" // statement_timeout, or a cancel request
	pgAdminShutdown        = "57P01"
	pgCrashShutdown        = "57P02"
	pgCannotConnectNow     = "57P03" // starting up, or in recovery
	pgTooManyConnections   = "53300"
	pgDatabaseDropped      = "57P04"
	pgIdleSessionTimeout   = "57P05"
	pgInsufficientResource = "53000"
)

// isUnavailable reports whether err means that a database or Redis did not answer: a refused, reset or
// closed connection, a dial or read timeout, the caller's deadline (a store call bounded by its own
// timeout or by the request's), a PostgreSQL error of the connection class or one saying the server
// shuts down, starts, cancelled the statement (statement_timeout) or has no connection left, a pool
// that gave no connection in time, a closed Redis client. It decides by error values and types (and
// SQLSTATE codes), never by the text of a message, except for Redis's own error prefixes, which are its
// protocol's error kinds.
func isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgQueryCanceled, pgAdminShutdown, pgCrashShutdown, pgCannotConnectNow, pgTooManyConnections,
			pgDatabaseDropped, pgIdleSessionTimeout, pgInsufficientResource:
			return true
		}
		return strings.HasPrefix(pgErr.Code, pgClassConnection)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	var redisErr redis.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &connectErr), pgconn.Timeout(err),
		errors.As(err, &netErr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted):
		return true
	case isClosedPool(err):
		return true
	case errors.As(err, new(*errMaybeRan)):
		return true
	case errors.As(err, &redisErr) && !errors.Is(err, redis.Nil):
		// Redis is loading its data set, has lost its master, or is a replica that cannot write.
		msg := redisErr.Error()
		for _, prefix := range []string{"LOADING ", "MASTERDOWN ", "READONLY ", "TRYAGAIN ", "CLUSTERDOWN "} {
			if strings.HasPrefix(msg, prefix) {
				return true
			}
		}
	}
	return false
}

// isClosedPool reports database/sql's error for a pool that was closed (shutdown, or a test that
// closes it to stop the database): it has no exported value, so only its text names it.
func isClosedPool(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err.Error() == "sql: database is closed" {
			return true
		}
	}
	return false
}
