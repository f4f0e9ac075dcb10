// Package dbtest gives tests a migrated, empty database: a fresh PostgreSQL database on the test
// server, or a SQLite file in the test's temporary directory. It also tells where the test Redis is,
// and makes a tenant and records events for tests of the domain services.
//
// Tests that need PostgreSQL fail, never skip, when it does not answer: run scripts/test.sh (or
// scripts/services.sh), which starts it.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/passkey-server/passkey-server/db"
)

// DefaultPostgresURL is the test server used when PASSKEY_TEST_POSTGRES_URL is not set: the one
// scripts/services.sh starts.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// DefaultRedisURL is the test Redis used when PASSKEY_TEST_REDIS_URL is not set: the one
// scripts/services.sh starts.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// Environment variables naming the test servers. The database in the PostgreSQL URL is only used to
// create and drop the per-test databases.
const (
	PostgresURLEnv = "PASSKEY_TEST_POSTGRES_URL"
	RedisURLEnv    = "PASSKEY_TEST_REDIS_URL"
)

// setupTimeout bounds creating, migrating and dropping a test database.
const setupTimeout = time.Minute

// RedisURL returns the URL of the test Redis: PASSKEY_TEST_REDIS_URL, or DefaultRedisURL.
func RedisURL() string {
	if u := os.Getenv(RedisURLEnv); u != "" {
		return u
	}
	return DefaultRedisURL
}

// postgresServerURL returns the URL of the PostgreSQL test server.
func postgresServerURL() string {
	if u := os.Getenv(PostgresURLEnv); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// PostgresURL creates an empty database with a random name on the PostgreSQL test server and returns
// its URL, for tests that open the database themselves (a server under test migrates it at start).
// The database is dropped, with any connection still open to it, when the test ends. The test fails
// when the server does not answer.
func PostgresURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	serverURL := postgresServerURL()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatalf("dbtest: %s is not a URL: %v", PostgresURLEnv, err)
	}
	admin, err := openAdmin(ctx, serverURL)
	if err != nil {
		t.Fatalf("dbtest: PostgreSQL at %s does not answer: %v\n"+
			"Run scripts/test.sh (or scripts/services.sh) to start it, or set %s.", u.Redacted(), err, PostgresURLEnv)
	}
	defer admin.Close()

	name := "passkey_test_" + randomHex(8)
	// The name is made here of [a-z0-9_] only, so quoting it is enough.
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		t.Fatalf("dbtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(t, serverURL, name) })

	u.Path = "/" + name
	return u.String()
}

// Postgres creates a database with a random name on the PostgreSQL test server, migrates it and
// returns it open. The database is closed and dropped when the test ends. The test fails when the
// server does not answer.
func Postgres(t testing.TB) *db.DB {
	t.Helper()
	dbURL := PostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	d, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("dbtest: open test database: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.MigrateUp(ctx); err != nil {
		t.Fatalf("dbtest: migrate test database: %v", err)
	}
	return d
}

// SQLite opens a new SQLite database file in the test's temporary directory, migrates it and returns
// it open. It is closed when the test ends.
func SQLite(t testing.TB) *db.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	path := filepath.Join(t.TempDir(), "passkey.db")
	d, err := db.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatalf("dbtest: open sqlite database: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.MigrateUp(ctx); err != nil {
		t.Fatalf("dbtest: migrate sqlite database: %v", err)
	}
	return d
}

// Each runs fn as two subtests, "postgres" and "sqlite", each with a fresh migrated database.
func Each(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	t.Run(db.DialectPostgres, func(t *testing.T) { fn(t, Postgres(t)) })
	t.Run(db.DialectSQLite, func(t *testing.T) { fn(t, SQLite(t)) })
}

// openAdmin connects to the server's maintenance database, where test databases are created.
func openAdmin(ctx context.Context, serverURL string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		return nil, err
	}
	admin := stdlib.OpenDB(*cfg)
	admin.SetMaxOpenConns(1)
	if err := admin.PingContext(ctx); err != nil {
		_ = admin.Close()
		return nil, err
	}
	return admin, nil
}

// dropDatabase drops a test database, disconnecting whatever still uses it.
func dropDatabase(t testing.TB, serverURL, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	admin, err := openAdmin(ctx, serverURL)
	if err != nil {
		t.Errorf("dbtest: drop database %s: %v", name, err)
		return
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
		t.Errorf("dbtest: drop database %s: %v", name, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("dbtest: read random bytes: %v", err))
	}
	return hex.EncodeToString(b)
}
