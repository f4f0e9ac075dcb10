package db_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/audit"
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

// rollBackTo migrates d down until the newest applied migration is the one named last (later
// migrations may exist: it counts them rather than assuming how many there are).
func rollBackTo(t *testing.T, d *db.DB, last string) {
	t.Helper()
	states, err := d.MigrationStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for _, s := range states {
		if s.Applied && s.Name > last {
			steps++
		}
	}
	if steps == 0 {
		t.Fatalf("no migration after %s is applied", last)
	}
	if err := d.MigrateDown(context.Background(), steps); err != nil {
		t.Fatalf("MigrateDown(%d) to %s: %v", steps, last, err)
	}
}

// dumpTables returns every row of the tables whose keys 20260101000006 changed (audit_logs apart:
// its deployment-wide rows change their tenant_id), in a fixed order.
func dumpTables(t *testing.T, d *db.DB) map[string][]map[string]any {
	t.Helper()
	dump := map[string][]map[string]any{}
	for _, table := range []string{"tenants", "api_keys", "signing_keys", "users", "credentials", "transactions"} {
		var rows []map[string]any
		if err := d.Bun().NewSelect().TableExpr(table).OrderExpr("id").Scan(context.Background(), &rows); err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		for _, row := range rows {
			for _, column := range laterColumns[table] {
				delete(row, column) // present only once the migrations after 000006 ran
			}
		}
		dump[table] = rows
	}
	return dump
}

// laterColumns are the columns that migrations after 20260101000006 add, which dumpTables leaves out
// so that its dumps compare across those migrations.
var laterColumns = map[string][]string{
	"credentials": {"attestation_verdict", "attestation_root", "mds_status", "certification_level", "attestation_violations"},
}

// TestMigrateTenantFirstKeys migrates a database with data in it from 20260101000005 up through
// 20260101000006 (keys that lead with tenant_id) and down again: every row is kept both ways,
// deployment-wide audit events move between tenant_id NULL and the nil UUID, and the foreign keys
// still cascade afterwards.
func TestMigrateTenantFirstKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		// The tenants first: today's store also writes the change feed of a later migration, and
		// their rows are the same in both schemas.
		ts := db.NewTenantStore(d)
		a := createTenant(t, ts, "A", t0)
		b := createTenant(t, ts, "B", t0)
		rollBackTo(t, d, "20260101000005_user_order_index")
		if keys := uniqueKeys(t, d); !slices.Contains(keys, "users(id)") || !slices.Contains(keys, "audit_logs(id)") {
			t.Fatalf("keys before the migration = %v, want users(id) and audit_logs(id) among them", keys)
		}

		// Data in the old schema, written as the stores of that release wrote it.
		userA, err := insertUser(ctx, d, a.tenant.ID, "alice")
		if err != nil {
			t.Fatal(err)
		}
		userB, err := insertUser(ctx, d, b.tenant.ID, "bob")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			tenant, user uuid.UUID
			id           string
		}{{a.tenant.ID, userA, "cred-a1"}, {a.tenant.ID, userA, "cred-a2"}, {b.tenant.ID, userB, "cred-b"}} {
			if err := insertCredential(ctx, d, c.tenant, c.user, c.id); err != nil {
				t.Fatal(err)
			}
		}
		if err := insertTransaction(ctx, d, a.tenant.ID, userA, "tx-a", "pending"); err != nil {
			t.Fatal(err)
		}
		eventA, global := uuid.New(), uuid.New()
		for _, e := range []struct {
			id     uuid.UUID
			tenant *uuid.UUID
		}{{eventA, &a.tenant.ID}, {global, nil}} {
			_, err := d.Bun().ExecContext(ctx,
				"INSERT INTO audit_logs (id, tenant_id, type, request_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
				e.id, e.tenant, "tenant_updated", "req", t0, t0)
			if err != nil {
				t.Fatal(err)
			}
		}
		before := dumpTables(t, d)
		if len(before["credentials"]) != 3 || len(before["api_keys"]) != 4 {
			t.Fatalf("dump of the data before the migration: %v", before)
		}

		if err := d.MigrateUp(ctx); err != nil {
			t.Fatalf("MigrateUp over data: %v", err)
		}
		if after := dumpTables(t, d); !reflect.DeepEqual(after, before) {
			t.Errorf("rows changed by the migration up:\nbefore %v\nafter  %v", before, after)
		}
		if keys := uniqueKeys(t, d); slices.Contains(keys, "users(id)") || slices.Contains(keys, "audit_logs(id)") {
			t.Errorf("keys after the migration = %v", keys)
		}
		if d.Dialect() == db.DialectSQLite {
			// The tables made again point at each other as before: no row breaks a foreign key.
			var broken []map[string]any
			if err := d.Bun().NewRaw("PRAGMA foreign_key_check").Scan(ctx, &broken); err != nil || len(broken) != 0 {
				t.Errorf("foreign_key_check after the migration = %v, %v", broken, err)
			}
			var sql string
			if err := d.Bun().NewRaw("SELECT sql FROM sqlite_master WHERE name = 'credentials'").Scan(ctx, &sql); err != nil ||
				!strings.Contains(sql, "REFERENCES \"users\"") && !strings.Contains(sql, "REFERENCES users ") {
				t.Errorf("credentials after the migration: %q, %v; want its foreign key to name users", sql, err)
			}
		}
		as := db.NewAuditStore(d)
		for _, c := range []struct {
			tenant *uuid.UUID
			want   uuid.UUID
		}{{&a.tenant.ID, eventA}, {nil, global}} {
			list, _, err := as.List(ctx, audit.Filter{TenantID: c.tenant})
			if err != nil || len(list) != 1 || list[0].ID != c.want || !reflect.DeepEqual(list[0].TenantID, c.tenant) {
				t.Errorf("audit events of %v after the migration = %+v, %v; want %s", c.tenant, list, err, c.want)
			}
		}

		// Down with the data: the same rows, deployment-wide events NULL again.
		rollBackTo(t, d, "20260101000005_user_order_index")
		if after := dumpTables(t, d); !reflect.DeepEqual(after, before) {
			t.Errorf("rows changed by the migration down:\nbefore %v\nafter  %v", before, after)
		}
		n, err := d.Bun().NewSelect().TableExpr("audit_logs").Where("tenant_id IS NULL AND id = ?", global).Count(ctx)
		if err != nil || n != 1 {
			t.Errorf("deployment-wide events with tenant_id NULL after the migration down: %d, %v; want 1", n, err)
		}
		if n, err := d.Bun().NewSelect().TableExpr("audit_logs").Count(ctx); err != nil || n != 2 {
			t.Errorf("audit events after the migration down: %d, %v; want 2", n, err)
		}

		// And up again: the foreign keys made again still cascade.
		if err := d.MigrateUp(ctx); err != nil {
			t.Fatalf("MigrateUp again: %v", err)
		}
		if after := dumpTables(t, d); !reflect.DeepEqual(after, before) {
			t.Errorf("rows changed by the second migration up:\nbefore %v\nafter  %v", before, after)
		}
		if _, err := d.Bun().ExecContext(ctx, "DELETE FROM users WHERE tenant_id = ? AND id = ?", a.tenant.ID, userA); err != nil {
			t.Fatal(err)
		}
		if n := count(t, d, "credentials", a.tenant.ID) + count(t, d, "transactions", a.tenant.ID); n != 0 {
			t.Errorf("credentials and transactions of a deleted user: %d, want 0", n)
		}
		if err := ts.DeleteTenant(ctx, b.tenant.ID); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"api_keys", "signing_keys", "users", "credentials"} {
			if n := count(t, d, table, b.tenant.ID); n != 0 {
				t.Errorf("%s of the deleted tenant B: %d rows, want 0", table, n)
			}
		}
		if n := count(t, d, "credentials", a.tenant.ID) + count(t, d, "api_keys", a.tenant.ID); n != 2 {
			t.Errorf("A's credentials and API keys after B's deletion: %d, want 2", n)
		}
	})
}
