// Package db is everything that talks to PostgreSQL, SQLite and Redis: the Bun models, the embedded
// migrations, the stores that implement the small interfaces the feature packages declare, and the
// ceremony session stores.
//
// One schema, written once per dialect, serves both databases; the conformance suite in this
// directory runs every store method against PostgreSQL and SQLite alike.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver: static builds need no cgo
)

// The dialects Open accepts, as reported by DB.Dialect.
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

// Connection pool settings for PostgreSQL. Requests hold a connection only for single short queries,
// so a modest pool serves many concurrent requests; recycling connections lets a failover or a
// PgBouncer restart heal without restarting the service.
const (
	postgresMaxOpenConns    = 25
	postgresMaxIdleConns    = postgresMaxOpenConns // idle = open: no connection churn under bursts
	postgresConnMaxLifetime = 30 * time.Minute
	postgresConnMaxIdleTime = 5 * time.Minute
)

// sqlitePragmas are applied to every SQLite connection. Foreign keys are off by default in SQLite,
// and the schema relies on them for ON DELETE CASCADE. WAL lets readers proceed during a write, and
// busy_timeout makes a second process wait for a lock instead of failing at once. _txlock=immediate
// takes the write lock when a transaction begins, so two writers never deadlock on a lock upgrade.
const sqlitePragmas = "_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate"

// DB is an open PostgreSQL or SQLite database. It is safe for concurrent use.
type DB struct {
	bun     *bun.DB
	dialect string
}

// Open connects to the database at url and checks that it answers. It does not migrate; call
// MigrateUp.
//
// url is one of:
//   - postgres://user:password@host:5432/name?sslmode=... (or postgresql://), any URL pgx accepts;
//   - sqlite://path/to/file.db (relative), sqlite:///abs/path/file.db (absolute), or sqlite://:memory:
//     (also sqlite::memory:) for a private in-memory database.
//
// Errors never contain the URL, which may hold a password.
func Open(ctx context.Context, url string) (*DB, error) {
	var (
		d   *DB
		err error
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		d, err = openPostgres(url)
	case strings.HasPrefix(url, "sqlite:"):
		d, err = openSQLite(url)
	default:
		return nil, errors.New("open database: the URL must start with postgres://, postgresql:// or sqlite://")
	}
	if err != nil {
		return nil, err
	}
	if err := d.Ping(ctx); err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	return d, nil
}

func openPostgres(url string) (*DB, error) {
	// pgx redacts the password from its parse errors.
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres database: %w", err)
	}
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(postgresMaxOpenConns)
	sqldb.SetMaxIdleConns(postgresMaxIdleConns)
	sqldb.SetConnMaxLifetime(postgresConnMaxLifetime)
	sqldb.SetConnMaxIdleTime(postgresConnMaxIdleTime)
	return &DB{bun: bun.NewDB(sqldb, pgdialect.New()), dialect: DialectPostgres}, nil
}

func openSQLite(url string) (*DB, error) {
	path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//")
	switch {
	case path == "":
		return nil, errors.New("open sqlite database: the URL has no file path (sqlite://path/to/file.db)")
	case strings.ContainsAny(path, "?#"):
		// The driver reads everything after '?' as its own parameters.
		return nil, errors.New("open sqlite database: the file path must not contain '?' or '#'")
	}
	sqldb, err := sql.Open("sqlite", path+"?"+sqlitePragmas)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database: %w", err)
	}
	// One connection: SQLite allows one writer at a time anyway, and a single connection rules out
	// SQLITE_BUSY between connections of this process. It also keeps a :memory: database alive, as
	// each connection to :memory: is a database of its own.
	sqldb.SetMaxOpenConns(1)
	sqldb.SetMaxIdleConns(1)
	sqldb.SetConnMaxLifetime(0)
	sqldb.SetConnMaxIdleTime(0)
	return &DB{bun: bun.NewDB(sqldb, sqlitedialect.New()), dialect: DialectSQLite}, nil
}

// Close closes the database's connections.
func (d *DB) Close() error {
	if err := d.bun.Close(); err != nil {
		return fmt.Errorf("close %s database: %w", d.dialect, err)
	}
	return nil
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.bun.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s database: %w", d.dialect, err)
	}
	return nil
}

// Dialect returns DialectPostgres or DialectSQLite.
func (d *DB) Dialect() string { return d.dialect }

// dbTime returns t as stored: in UTC, at the microsecond precision both PostgreSQL and the SQLite
// text encoding keep. Truncating before writing makes both dialects return identical values.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// dbTimePtr is dbTime for optional times.
func dbTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := dbTime(*t)
	return &v
}

// SQL returns the connection pool, for pool statistics (metrics).
func (d *DB) SQL() *sql.DB { return d.bun.DB }

// pageWindow turns a 1-based page and a page size (both at least 1) into LIMIT and OFFSET. ok is false
// when there is nothing to read: no rows at all, or a page whose offset does not even fit an int64.
func pageWindow(page, perPage, total int) (limit, offset int64, ok bool) {
	limit = int64(perPage)
	if total == 0 || int64(page-1) > (math.MaxInt64-limit)/limit {
		return 0, 0, false
	}
	return limit, int64(page-1) * limit, true
}
