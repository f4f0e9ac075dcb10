package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
)

// Tests of the schema of the tables no store in this package fills yet (users, credentials,
// transactions, audit_logs), and of the mapping of driver errors. Rows are written with plain SQL.

func insertUser(ctx context.Context, d *db.DB, tenantID uuid.UUID, appUserID string) (uuid.UUID, error) {
	id := uuid.New()
	_, err := d.Bun().ExecContext(ctx,
		"INSERT INTO users (id, tenant_id, user_id, name, display_name, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		id, tenantID, appUserID, appUserID, appUserID, t0, t0)
	return id, err
}

func insertCredential(ctx context.Context, d *db.DB, tenantID, userID uuid.UUID, credentialID string) error {
	_, err := d.Bun().ExecContext(ctx,
		"INSERT INTO credentials (tenant_id, id, user_id, public_key, transports, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		tenantID, credentialID, userID, []byte{1, 2, 3}, `["usb","internal"]`, t0, t0)
	return err
}

func insertTransaction(ctx context.Context, d *db.DB, tenantID, userID uuid.UUID, identifier, status string) error {
	_, err := d.Bun().ExecContext(ctx,
		"INSERT INTO transactions (id, tenant_id, user_id, identifier, data, data_hash, challenge, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		uuid.New(), tenantID, userID, identifier, `{"amount":"10.00"}`, []byte{9}, "challenge", status, t0, t0)
	return err
}

// insertAuditLog inserts an event of tenantID, or a deployment-wide one (nil), whose tenant_id is
// the nil UUID.
func insertAuditLog(ctx context.Context, d *db.DB, tenantID *uuid.UUID, userAgent string) error {
	if tenantID == nil {
		tenantID = &uuid.Nil
	}
	_, err := d.Bun().ExecContext(ctx,
		"INSERT INTO audit_logs (id, tenant_id, type, request_id, source_ip, user_agent, details, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		uuid.New(), tenantID, "login_succeeded", "req-1", "203.0.113.7", userAgent, `{"k":"v"}`, t0, t0)
	return err
}

func count(t *testing.T, d *db.DB, table string, tenantID uuid.UUID) int64 {
	t.Helper()
	n, err := d.Bun().NewSelect().TableExpr(table).Where("tenant_id = ?", tenantID).Count(context.Background())
	if err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func TestSchemaUsersCredentialsTransactionsAuditLogs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		a := createTenant(t, s, "A", t0)
		b := createTenant(t, s, "B", t0)

		// Long values fit: a 64-byte user handle, a 1,023-byte credential id, a long user agent.
		appUserID := strings.Repeat("u", 64)
		userA, err := insertUser(ctx, d, a.tenant.ID, appUserID)
		if err != nil {
			t.Fatalf("insert user: %v", err)
		}
		userB, err := insertUser(ctx, d, b.tenant.ID, appUserID) // the same app user id in another tenant
		if err != nil {
			t.Fatalf("insert user of another tenant with the same user_id: %v", err)
		}
		_, err = insertUser(ctx, d, a.tenant.ID, appUserID)
		if !errors.Is(db.Translate(err), db.ErrUniqueViolation) {
			t.Errorf("duplicate user_id: got %v, want a unique violation", err)
		}

		credentialID := strings.Repeat("c", 1023)
		if err := insertCredential(ctx, d, a.tenant.ID, userA, credentialID); err != nil {
			t.Fatalf("insert credential: %v", err)
		}
		// The same credential id in another tenant is another credential.
		if err := insertCredential(ctx, d, b.tenant.ID, userB, credentialID); err != nil {
			t.Fatalf("insert credential of another tenant with the same id: %v", err)
		}
		err = insertCredential(ctx, d, a.tenant.ID, userA, credentialID)
		if !errors.Is(db.Translate(err), db.ErrUniqueViolation) {
			t.Errorf("duplicate credential: got %v, want a unique violation", err)
		}
		// Cross-tenant: a credential of A cannot belong to a user of B.
		err = insertCredential(ctx, d, a.tenant.ID, userB, "other")
		if !errors.Is(db.Translate(err), db.ErrForeignKeyViolation) {
			t.Errorf("credential of A for B's user: got %v, want a foreign key violation", err)
		}
		var transports string
		err = d.Bun().NewSelect().TableExpr("credentials").Column("transports").
			Where("tenant_id = ? AND id = ?", a.tenant.ID, credentialID).Scan(ctx, &transports)
		if err != nil || transports != `["usb","internal"]` {
			t.Errorf("transports = %q, %v", transports, err)
		}

		if err := insertTransaction(ctx, d, a.tenant.ID, userA, "tx-1", "pending"); err != nil {
			t.Fatalf("insert transaction: %v", err)
		}
		if !errors.Is(db.Translate(insertTransaction(ctx, d, a.tenant.ID, userA, "tx-1", "pending")), db.ErrUniqueViolation) {
			t.Error("duplicate transaction identifier: want a unique violation")
		}
		if err := insertTransaction(ctx, d, a.tenant.ID, userA, "tx-2", "bogus"); err == nil {
			t.Error("transaction with an unknown status was stored")
		}
		if !errors.Is(db.Translate(insertTransaction(ctx, d, a.tenant.ID, userB, "tx-3", "pending")), db.ErrForeignKeyViolation) {
			t.Error("transaction of A for B's user: want a foreign key violation")
		}

		if err := insertAuditLog(ctx, d, &a.tenant.ID, strings.Repeat("Mozilla/5.0 ", 400)); err != nil {
			t.Fatalf("insert audit log: %v", err)
		}
		if err := insertAuditLog(ctx, d, &b.tenant.ID, "curl"); err != nil {
			t.Fatal(err)
		}
		if err := insertAuditLog(ctx, d, nil, "admin"); err != nil {
			t.Fatalf("insert deployment-wide audit log: %v", err)
		}
		// No foreign key refuses an event of a missing tenant (AuditStore.Insert leaves such events
		// out, with one lookup per batch instead of one per row).
		missing := uuid.New()
		if err := insertAuditLog(ctx, d, &missing, "x"); err != nil {
			t.Errorf("audit log of a missing tenant: %v", err)
		}

		// Deleting A removes everything of A (audit logs by TenantStore.DeleteTenant, the rest by
		// cascade) and nothing of B; deployment-wide events stay.
		if err := s.DeleteTenant(ctx, a.tenant.ID); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"users", "credentials", "transactions", "audit_logs"} {
			if n := count(t, d, table, a.tenant.ID); n != 0 {
				t.Errorf("%s of the deleted tenant: %d rows, want 0", table, n)
			}
		}
		for table, want := range map[string]int64{"users": 1, "credentials": 1, "transactions": 0, "audit_logs": 1} {
			if n := count(t, d, table, b.tenant.ID); n != want {
				t.Errorf("%s of the other tenant: %d rows, want %d", table, n, want)
			}
		}
		n, err := d.Bun().NewSelect().TableExpr("audit_logs").Where("tenant_id = ?", uuid.Nil).Count(ctx)
		if err != nil || n != 1 {
			t.Errorf("deployment-wide audit logs = %d, %v; want 1", n, err)
		}

		// Deleting a user cascades to its credentials.
		if _, err := d.Bun().ExecContext(ctx, "DELETE FROM users WHERE id = ?", userB); err != nil {
			t.Fatal(err)
		}
		if n := count(t, d, "credentials", b.tenant.ID); n != 0 {
			t.Errorf("credentials of a deleted user: %d rows, want 0", n)
		}
	})
}

// TestTimesAreUTC checks that times come back in UTC whatever zone they were written in.
func TestTimesAreUTC(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		zone := time.FixedZone("UTC+5:30", 5*3600+1800)
		f := createTenant(t, s, "Zoned", t0.In(zone))
		got, err := s.GetTenant(ctx, f.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.CreatedAt.Location() != time.UTC || !got.CreatedAt.Equal(t0) {
			t.Errorf("CreatedAt = %v, want %v in UTC", got.CreatedAt, t0)
		}
	})
}

func TestTranslate(t *testing.T) {
	if db.Translate(nil) != nil {
		t.Error("Translate(nil) != nil")
	}
	plain := errors.New("plain")
	if got := db.Translate(plain); got != plain {
		t.Errorf("Translate(plain) = %v, want it unchanged", got)
	}
}

// keyExceptions are the primary keys and unique indexes that may not lead with tenant_id, by table
// and columns, each with its reason (migrations/postgres/20260101000006_tenant_first_keys.tx.up.sql).
var keyExceptions = map[string]string{
	// The tenant's own row: its id is the tenant id.
	"tenants(id)": "the tenant id itself",
	// A key on a route without a tenant finds its tenant by hash alone: one hash, one tenant.
	"api_keys(hash)": "the API key lookup by hash",
	// Every instance reads every tenant's changes in the order they were written, by id
	// (migrations/postgres/20260101000007_tenant_changes.tx.up.sql): deployment-wide, like tenants.
	"tenant_changes(id)": "the deployment-wide change feed, read by cursor",
	// One row: the revision of every tenant's webhook subscriptions, which each instance's index
	// holds for all tenants (migrations/postgres/20260101000012_webhook_subscriptions_revision.tx.up.sql).
	"webhook_subscriptions_revision(id)": "the deployment-wide revision of the webhook subscriptions",
}

// uniqueKeys returns every primary key and unique index of the schema as "table(col, ...)", the
// migrator's own tables and River's (the webhook queue: migrations River owns) left out.
func uniqueKeys(t *testing.T, d *db.DB) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	if d.Dialect() == db.DialectPostgres {
		var rows []struct {
			Table   string `bun:"tbl"`
			Columns string `bun:"cols"`
		}
		err := d.Bun().NewRaw(`
			SELECT c.relname AS tbl,
			       (SELECT string_agg(a.attname, ', ' ORDER BY k.n)
			        FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
			        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum) AS cols
			FROM pg_index x
			JOIN pg_class c ON c.oid = x.indrelid
			JOIN pg_namespace ns ON ns.oid = c.relnamespace
			WHERE ns.nspname = current_schema() AND x.indisunique AND c.relname NOT LIKE 'bun\_%'
			AND c.relname NOT LIKE 'river\_%'`).Scan(ctx, &rows)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			keys = append(keys, r.Table+"("+r.Columns+")")
		}
		return keys
	}
	var tables []string
	err := d.Bun().NewRaw(`SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE 'bun\_%' ESCAPE '\' AND name NOT LIKE 'river\_%' ESCAPE '\'`).Scan(ctx, &tables)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		// An INTEGER PRIMARY KEY is the rowid itself, with no index of its own.
		var rowid []string
		if err := d.Bun().NewRaw("SELECT name FROM pragma_table_info(?) WHERE pk = 1 AND upper(type) = 'INTEGER' "+
			"AND NOT EXISTS (SELECT 1 FROM pragma_table_info(?) WHERE pk > 1)", table, table).Scan(ctx, &rowid); err != nil {
			t.Fatal(err)
		}
		if len(rowid) == 1 {
			keys = append(keys, table+"("+rowid[0]+")")
		}
		var indexes []struct {
			Name   string `bun:"name"`
			Unique bool   `bun:"unique"`
		}
		if err := d.Bun().NewRaw("SELECT name, \"unique\" FROM pragma_index_list(?)", table).Scan(ctx, &indexes); err != nil {
			t.Fatal(err)
		}
		for _, ix := range indexes {
			if !ix.Unique {
				continue
			}
			var cols []string
			if err := d.Bun().NewRaw("SELECT name FROM pragma_index_info(?) ORDER BY seqno", ix.Name).Scan(ctx, &cols); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, table+"("+strings.Join(cols, ", ")+")")
		}
	}
	return keys
}

// TestSchemaKeysLeadWithTenant checks that every primary key and unique index leads with tenant_id,
// but for the documented exceptions, so that the tables can be partitioned or distributed by tenant.
// A table added later fails here until its keys lead with tenant_id or it is listed in
// keyExceptions with its reason.
func TestSchemaKeysLeadWithTenant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		keys := uniqueKeys(t, d)
		seen := map[string]bool{}
		for _, k := range keys {
			seen[k] = true
			if _, ok := keyExceptions[k]; ok {
				continue
			}
			if !strings.Contains(k, "(tenant_id, ") {
				t.Errorf("%s does not lead with tenant_id", k)
			}
		}
		for k := range keyExceptions {
			if !seen[k] {
				t.Errorf("the exception %s is no key of the schema any more: remove it", k)
			}
		}
		// Every table of the schema has a key of its tenant, among them these.
		for _, k := range []string{"users(tenant_id, id)", "users(tenant_id, user_id)", "credentials(tenant_id, id)",
			"transactions(tenant_id, id)", "transactions(tenant_id, identifier)", "api_keys(tenant_id, id)",
			"api_keys(tenant_id, name)", "signing_keys(tenant_id, id)", "audit_logs(tenant_id, id)",
			"webhook_endpoints(tenant_id, id)", "webhook_deliveries(tenant_id, id)"} {
			if !seen[k] {
				t.Errorf("no primary key or unique index %s; have %v", k, keys)
			}
		}
	})
}
