package db_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
)

// allMigrations is more than the number of migrations there will ever be.
const allMigrations = 1000

func checkStatus(t *testing.T, d *db.DB, applied bool) {
	t.Helper()
	states, err := d.MigrationStatus(context.Background())
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	if len(states) == 0 {
		t.Fatal("MigrationStatus returned no migrations")
	}
	for _, s := range states {
		if s.Applied != applied || s.AppliedAt.IsZero() == applied {
			t.Errorf("migration %s: applied %v at %v, want applied %v", s.Name, s.Applied, s.AppliedAt, applied)
		}
	}
}

// TestMigrationsUpDownUp migrates a database up, all the way down and up again.
func TestMigrationsUpDownUp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		checkStatus(t, d, true)
		if err := d.MigrateUp(ctx); err != nil {
			t.Fatalf("MigrateUp of a current schema: %v", err)
		}
		checkStatus(t, d, true)

		if err := d.MigrateDown(ctx, 0); err == nil {
			t.Error("MigrateDown(0) succeeded")
		}
		if err := d.MigrateDown(ctx, allMigrations); err != nil {
			t.Fatalf("MigrateDown(all): %v", err)
		}
		checkStatus(t, d, false)
		for _, table := range []string{"tenants", "api_keys", "signing_keys", "users", "credentials", "transactions", "audit_logs"} {
			if _, err := d.Bun().NewSelect().TableExpr(table).Count(ctx); err == nil {
				t.Errorf("table %s still exists after MigrateDown(all)", table)
			}
		}
		if err := d.MigrateDown(ctx, 1); err != nil {
			t.Fatalf("MigrateDown with nothing applied: %v", err)
		}

		if err := d.MigrateUp(ctx); err != nil {
			t.Fatalf("MigrateUp after MigrateDown(all): %v", err)
		}
		checkStatus(t, d, true)
		createTenant(t, db.NewTenantStore(d), "A", t0)
	})
}

// TestMigrateUpConcurrent starts several migrations of one empty database at once, as instances
// starting together do. All succeed, and the schema is migrated once.
func TestMigrateUpConcurrent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		if err := d.MigrateDown(context.Background(), allMigrations); err != nil {
			t.Fatal(err)
		}
		migrateConcurrently(t, d, d, d, d)
		checkStatus(t, d, true)
	})
}

// TestMigrateUpConcurrentSQLiteFiles is TestMigrateUpConcurrent with separate handles on one SQLite
// file, as separate processes have. A few rounds, as a race may not show on the first.
func TestMigrateUpConcurrentSQLiteFiles(t *testing.T) {
	dir := t.TempDir()
	for round := range 5 {
		url := "sqlite://" + filepath.Join(dir, fmt.Sprintf("shared%d.db", round))
		var handles []*db.DB
		for range 4 {
			d, err := db.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close() })
			handles = append(handles, d)
		}
		migrateConcurrently(t, handles...)
		for _, d := range handles {
			checkStatus(t, d, true)
		}
	}
}

func migrateConcurrently(t *testing.T, handles ...*db.DB) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, len(handles))
	for i, d := range handles {
		wg.Go(func() {
			<-start
			errs[i] = d.MigrateUp(context.Background())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("MigrateUp #%d: %v", i, err)
		}
	}
}
