package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/db"
)

func TestOpenSQLiteMemory(t *testing.T) {
	for _, url := range []string{"sqlite://:memory:", "sqlite::memory:"} {
		t.Run(url, func(t *testing.T) {
			ctx := context.Background()
			d, err := db.Open(ctx, url)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer d.Close()
			if d.Dialect() != db.DialectSQLite {
				t.Errorf("Dialect = %q, want %q", d.Dialect(), db.DialectSQLite)
			}
			if err := d.MigrateUp(ctx); err != nil {
				t.Fatalf("MigrateUp: %v", err)
			}
			// The schema is still there: the one connection keeps the in-memory database alive.
			createTenant(t, db.NewTenantStore(d), "Memory", t0)
			if err := d.Ping(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	for _, url := range []string{
		"",
		"mysql://root@localhost/db",
		"sqlite://",
		"sqlite:",
		"sqlite://file.db?mode=ro",
	} {
		if d, err := db.Open(context.Background(), url); err == nil {
			d.Close()
			t.Errorf("Open(%q) succeeded", url)
		}
	}
}

// TestOpenPostgresErrorHidesPassword checks that a failed connection does not put the password of
// the URL into the error, which ends up in logs.
func TestOpenPostgresErrorHidesPassword(t *testing.T) {
	const password = "s3cret-pa55word"
	for _, url := range []string{
		"postgres://user:" + password + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
		"postgres://user:" + password + "@127.0.0.1:1/db?sslmode=bogus",
	} {
		_, err := db.Open(context.Background(), url)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", url)
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("error contains the password: %v", err)
		}
	}
}

// TestOpenUnreachableIsUnavailable checks that a database that does not answer is
// passkey.ErrUnavailable (so that startup retries it and requests answer 503), with details that name
// the kind of dependency and no address, and that a URL the server can never use is not.
func TestOpenUnreachableIsUnavailable(t *testing.T) {
	ctx := context.Background()
	_, err := db.OpenWith(ctx, "postgres://user@127.0.0.1:1/db?sslmode=disable", db.Options{ConnectTimeout: time.Second})
	if !errors.Is(err, passkey.ErrUnavailable) {
		t.Fatalf("Open of a closed port: %v, want passkey.ErrUnavailable", err)
	}
	if d := passkey.Details(err); d != "the database is unavailable" {
		t.Errorf("details %q, want %q", d, "the database is unavailable")
	}
	if _, err := db.Open(ctx, "postgres://user@127.0.0.1:1/db?sslmode=bogus"); errors.Is(err, passkey.ErrUnavailable) {
		t.Errorf("an invalid URL is passkey.ErrUnavailable: %v", err)
	}
}
