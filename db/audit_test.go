package db_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
)

// The audit store conformance suite: every test runs against PostgreSQL and SQLite (dbtest.Each).

// auditEvent returns an event of tenantID (nil: deployment-wide) with every field set, created at.
func auditEvent(tenantID *uuid.UUID, typ, actor, ip string, at time.Time) audit.Event {
	return audit.Event{
		ID:            uuid.New(),
		TenantID:      tenantID,
		Type:          typ,
		Ceremony:      "login",
		Error:         "assertion_failed: the signature is not valid",
		RequestID:     "req-" + uuid.NewString()[:8],
		SourceIP:      ip,
		UserAgent:     "Mozilla/5.0 (test)",
		ActorUserID:   actor,
		TransactionID: "tx-1",
		Details:       map[string]any{"key": "value"},
		CreatedAt:     at,
	}
}

// auditInsert stores events and fails the test on an error.
func auditInsert(t *testing.T, s *db.AuditStore, events ...audit.Event) {
	t.Helper()
	if err := s.Insert(context.Background(), events); err != nil {
		t.Fatalf("Insert: %v", err)
	}
}

// auditList lists with f and fails the test on an error.
func auditList(t *testing.T, s *db.AuditStore, f audit.Filter) ([]audit.Event, int) {
	t.Helper()
	list, total, err := s.List(context.Background(), f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	if list == nil {
		t.Fatalf("List(%+v) returned nil, want a non-nil list", f)
	}
	return list, total
}

// auditIDs returns the ids of list, in order.
func auditIDs(list []audit.Event) []uuid.UUID {
	ids := make([]uuid.UUID, 0, len(list))
	for _, e := range list {
		ids = append(ids, e.ID)
	}
	return ids
}

func TestAuditStoreInsertAndList(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := db.NewAuditStore(d)
		tenantID := credTenant(t, d, "A")

		full := auditEvent(&tenantID, "webauthn_authentication_final_failed", "alice", "192.0.2.1", t0)
		bare := audit.Event{ID: uuid.New(), TenantID: &tenantID, Type: "webauthn_credential_deleted", CreatedAt: t0.Add(time.Second)}
		global := auditEvent(nil, "tenant_deleted", "", "192.0.2.9", t0)
		global.Details = map[string]any{"tenant_id": tenantID.String()}
		// One batch, one statement.
		auditInsert(t, s, full, bare, global)

		list, total := auditList(t, s, audit.Filter{TenantID: &tenantID})
		if total != 2 {
			t.Fatalf("total = %d, want 2", total)
		}
		mustEqual(t, "newest first", auditIDs(list), []uuid.UUID{bare.ID, full.ID})
		mustEqual(t, "event with every field", list[1], full)
		mustEqual(t, "event with no optional field", list[0], bare)

		list, total = auditList(t, s, audit.Filter{})
		if total != 1 {
			t.Fatalf("deployment-wide total = %d, want 1", total)
		}
		mustEqual(t, "deployment-wide event", list[0], global)

		// An empty batch is no statement and no error.
		auditInsert(t, s)
	})
}

func TestAuditStoreInsertDefaults(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := db.NewAuditStore(d)
		tenantID := credTenant(t, d, "A")
		before := time.Now().Add(-time.Second)
		auditInsert(t, s, audit.Event{TenantID: &tenantID, Type: "webauthn_credential_updated"})
		list, _ := auditList(t, s, audit.Filter{TenantID: &tenantID})
		if len(list) != 1 || list[0].ID == uuid.Nil || list[0].CreatedAt.Before(before) {
			t.Fatalf("event stored without id or time: %+v", list)
		}
	})
}

// TestAuditStoreInsertAgain: a batch written again (its first commit's reply was lost) stores each
// event once and is no error, also with events that are new.
func TestAuditStoreInsertAgain(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := db.NewAuditStore(d)
		tenantID := credTenant(t, d, "A")
		first := auditEvent(&tenantID, "webauthn_credential_updated", "alice", "192.0.2.1", t0)
		second := auditEvent(&tenantID, "webauthn_credential_deleted", "alice", "192.0.2.1", t0.Add(time.Second))
		auditInsert(t, s, first)
		auditInsert(t, s, first, second)
		list, total := auditList(t, s, audit.Filter{TenantID: &tenantID})
		if total != 2 {
			t.Fatalf("%d events after writing one again, want 2: %+v", total, list)
		}
	})
}

// TestAuditStoreInsertDeletedTenant checks that a batch with events of a tenant deleted meanwhile
// stores the other events.
func TestAuditStoreInsertDeletedTenant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := db.NewAuditStore(d)
		a := credTenant(t, d, "A")
		gone := uuid.New()
		kept := auditEvent(&a, "webauthn_credential_updated", "alice", "192.0.2.1", t0)
		global := auditEvent(nil, "tenant_deleted", "", "192.0.2.1", t0)
		auditInsert(t, s, kept, auditEvent(&gone, "webauthn_credential_updated", "bob", "192.0.2.2", t0), global)

		list, _ := auditList(t, s, audit.Filter{TenantID: &a})
		mustEqual(t, "events of the existing tenant", auditIDs(list), []uuid.UUID{kept.ID})
		list, _ = auditList(t, s, audit.Filter{})
		mustEqual(t, "deployment-wide events", auditIDs(list), []uuid.UUID{global.ID})
		list, _ = auditList(t, s, audit.Filter{TenantID: &gone})
		if len(list) != 0 {
			t.Errorf("events of a missing tenant were stored: %+v", list)
		}
	})
}

func TestAuditStoreFilters(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := db.NewAuditStore(d)
		tenantID := credTenant(t, d, "A")
		at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
		e0 := auditEvent(&tenantID, "webauthn_registration_init_succeeded", "alice", "192.0.2.1", at(0))
		e1 := auditEvent(&tenantID, "webauthn_registration_init_failed", "bob", "192.0.2.2", at(1))
		e2 := auditEvent(&tenantID, "webauthn_authentication_final_succeeded", "alice-2", "198.51.100.7", at(2))
		e3 := auditEvent(&tenantID, "webauthn_credential_deleted", "", "2001:db8::1", at(3))
		e4 := auditEvent(&tenantID, "webauthn_registration_init_succeeded", "carol", "192.0.2.10", at(4))
		auditInsert(t, s, e0, e1, e2, e3, e4)

		ids := func(es ...audit.Event) []uuid.UUID {
			out := []uuid.UUID{}
			for _, e := range es {
				out = append(out, e.ID)
			}
			return out
		}
		tests := []struct {
			name string
			f    audit.Filter
			want []uuid.UUID
		}{
			{"none", audit.Filter{}, ids(e4, e3, e2, e1, e0)},
			{"one type", audit.Filter{Types: []string{"webauthn_registration_init_succeeded"}}, ids(e4, e0)},
			{"two types", audit.Filter{Types: []string{"webauthn_registration_init_failed", "webauthn_credential_deleted"}}, ids(e3, e1)},
			{"unknown type", audit.Filter{Types: []string{"nothing"}}, ids()},
			{"start is exclusive", audit.Filter{Start: at(2)}, ids(e4, e3)},
			{"end is exclusive", audit.Filter{End: at(2)}, ids(e1, e0)},
			{"start and end", audit.Filter{Start: at(0), End: at(4)}, ids(e3, e2, e1)},
			{"start in another zone", audit.Filter{Start: at(2).In(time.FixedZone("X", 3600))}, ids(e4, e3)},
			{"start between microseconds", audit.Filter{Start: at(3).Add(-time.Microsecond)}, ids(e4, e3)},
			{"actor exact", audit.Filter{ActorUserID: "bob"}, ids(e1)},
			{"actor substring", audit.Filter{ActorUserID: "lic"}, ids(e2, e0)},
			{"actor matches no empty actor", audit.Filter{ActorUserID: "a"}, ids(e4, e2, e0)},
			{"source ip substring", audit.Filter{SourceIP: "192.0.2.1"}, ids(e4, e0)},
			{"source ip v6", audit.Filter{SourceIP: "db8::"}, ids(e3)},
			{"q matches actor", audit.Filter{Q: "carol"}, ids(e4)},
			{"q matches ip", audit.Filter{Q: "198.51"}, ids(e2)},
			{"q matches either", audit.Filter{Q: "2"}, ids(e4, e3, e2, e1, e0)},
			{"type and actor", audit.Filter{Types: []string{"webauthn_registration_init_succeeded"}, ActorUserID: "alice"}, ids(e0)},
			{"type, time and ip", audit.Filter{Types: []string{"webauthn_registration_init_succeeded"}, Start: at(1), SourceIP: "192.0.2"}, ids(e4)},
			{"q and actor", audit.Filter{Q: "192.0.2", ActorUserID: "o"}, ids(e4, e1)},
			{"everything", audit.Filter{
				Types: []string{"webauthn_authentication_final_succeeded", "webauthn_registration_init_failed"},
				Start: at(0), End: at(3), ActorUserID: "alice", SourceIP: "198", Q: "alice-2",
			}, ids(e2)},
			{"everything, nothing matches", audit.Filter{
				Types: []string{"webauthn_authentication_final_succeeded"}, Start: at(2), ActorUserID: "alice",
			}, ids()},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tc.f.TenantID = &tenantID
				list, total := auditList(t, s, tc.f)
				mustEqual(t, "events", auditIDs(list), tc.want)
				if total != len(tc.want) {
					t.Errorf("total = %d, want %d", total, len(tc.want))
				}
			})
		}
	})
}

// TestAuditStoreHostileFilters puts SQL and LIKE metacharacters in every filter value: the query
// neither fails nor matches more than the literal text
// (docs/hanko-compatibility.md#audit-type-filter-injection: Hanko concatenates the type filter into its
// SQL).
func TestAuditStoreHostileFilters(t *testing.T) {
	hostile := []string{
		`' OR 1=1 --`, `%`, `_`, `\`, `"; DROP TABLE audit_logs; --`, `'; DELETE FROM audit_logs; --`,
		`%'`, `\%`, `\_`, `a%b`, `?`, `$1`, `) OR (1=1`,
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := db.NewAuditStore(d)
		tenantID := credTenant(t, d, "A")
		plain := auditEvent(&tenantID, "webauthn_registration_init_succeeded", "alice", "192.0.2.1", t0)
		auditInsert(t, s, plain)
		// One event whose actor, address and type are each hostile value, literally.
		byValue := map[string]audit.Event{}
		for i, v := range hostile {
			e := auditEvent(&tenantID, v, "user "+v, "ip "+v, t0.Add(time.Duration(i+1)*time.Second))
			auditInsert(t, s, e)
			byValue[v] = e
		}
		// containing returns the hostile events whose value (actor, address) contains sub.
		containing := func(sub string) map[uuid.UUID]bool {
			want := map[uuid.UUID]bool{}
			for v, e := range byValue {
				if strings.Contains(v, sub) {
					want[e.ID] = true
				}
			}
			return want
		}
		for _, v := range hostile {
			for _, tc := range []struct {
				name string
				f    audit.Filter
				want map[uuid.UUID]bool
			}{
				{"type", audit.Filter{Types: []string{v}}, map[uuid.UUID]bool{byValue[v].ID: true}},
				{"type among others", audit.Filter{Types: []string{"x", v, "y'"}}, map[uuid.UUID]bool{byValue[v].ID: true}},
				{"actor", audit.Filter{ActorUserID: v}, containing(v)},
				{"source ip", audit.Filter{SourceIP: v}, containing(v)},
				{"q", audit.Filter{Q: v}, containing(v)},
				{"all", audit.Filter{Types: []string{v}, ActorUserID: v, SourceIP: v, Q: v}, map[uuid.UUID]bool{byValue[v].ID: true}},
			} {
				t.Run(fmt.Sprintf("%s %q", tc.name, v), func(t *testing.T) {
					tc.f.TenantID = &tenantID
					list, total := auditList(t, s, tc.f)
					got := map[uuid.UUID]bool{}
					for _, e := range list {
						got[e.ID] = true
					}
					mustEqual(t, "matches", got, tc.want)
					if total != len(tc.want) {
						t.Errorf("total = %d, want %d", total, len(tc.want))
					}
				})
			}
		}
		// Nothing was dropped or deleted.
		if _, total := auditList(t, s, audit.Filter{TenantID: &tenantID}); total != len(hostile)+1 {
			t.Errorf("events after the hostile queries = %d, want %d", total, len(hostile)+1)
		}
	})
}

// TestAuditStoreCrossTenant checks that a query for one tenant never returns another tenant's (or a
// deployment-wide) event, whatever the other filters, and that DeleteBefore spans all tenants.
func TestAuditStoreCrossTenant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := db.NewAuditStore(d)
		a, b := credTenant(t, d, "A"), credTenant(t, d, "B")
		ea := auditEvent(&a, "webauthn_registration_init_succeeded", "alice", "192.0.2.1", t0)
		eb := auditEvent(&b, "webauthn_registration_init_succeeded", "bob", "192.0.2.2", t0)
		eg := auditEvent(nil, "tenant_created", "bob", "192.0.2.2", t0)
		auditInsert(t, s, ea, eb, eg)

		for _, f := range []audit.Filter{
			{},
			{Types: []string{eb.Type}},
			{ActorUserID: "bob"},
			{SourceIP: "192.0.2.2"},
			{Q: "bob"},
			{Q: `' OR tenant_id IS NOT NULL OR '' = '`},
			{Start: t0.Add(-time.Hour), End: t0.Add(time.Hour)},
			{Page: passkey.Page{Number: 1, Size: 1000}},
		} {
			f.TenantID = &a
			list, _ := auditList(t, s, f)
			for _, e := range list {
				if e.TenantID == nil || *e.TenantID != a {
					t.Errorf("List for tenant A with %+v returned %+v", f, e)
				}
			}
		}
		list, _ := auditList(t, s, audit.Filter{TenantID: &b, ActorUserID: "alice"})
		if len(list) != 0 {
			t.Errorf("List for tenant B returned A's events: %+v", list)
		}
		list, _ = auditList(t, s, audit.Filter{ActorUserID: "alice"})
		if len(list) != 0 {
			t.Errorf("deployment-wide List returned a tenant's events: %+v", list)
		}
	})
}

func TestAuditStorePagination(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := db.NewAuditStore(d)
		tenantID := credTenant(t, d, "A")
		var events []audit.Event
		for i := range 25 {
			// Pairs share a time, so the order between them is by id.
			events = append(events, auditEvent(&tenantID, "webauthn_credential_updated", "u", "192.0.2.1", t0.Add(time.Duration(i/2)*time.Second)))
		}
		auditInsert(t, s, events...)

		all, total := auditList(t, s, audit.Filter{TenantID: &tenantID, Page: passkey.Page{Size: 100}})
		if total != 25 || len(all) != 25 {
			t.Fatalf("all: %d events, total %d; want 25", len(all), total)
		}
		for i := 1; i < len(all); i++ {
			p, c := all[i-1], all[i]
			if c.CreatedAt.After(p.CreatedAt) || (c.CreatedAt.Equal(p.CreatedAt) && c.ID.String() > p.ID.String()) {
				t.Fatalf("not newest first, then id descending: %v %s before %v %s", p.CreatedAt, p.ID, c.CreatedAt, c.ID)
			}
		}
		for page, want := range map[int]int{1: 10, 2: 10, 3: 5, 4: 0} {
			list, total := auditList(t, s, audit.Filter{TenantID: &tenantID, Page: passkey.Page{Number: page, Size: 10}})
			if len(list) != want || total != 25 {
				t.Errorf("page %d: %d events, total %d; want %d, 25", page, len(list), total, want)
			}
		}
		var paged []uuid.UUID
		for page := 1; page <= 3; page++ {
			list, _ := auditList(t, s, audit.Filter{TenantID: &tenantID, Page: passkey.Page{Number: page, Size: 10}})
			paged = append(paged, auditIDs(list)...)
		}
		mustEqual(t, "pages in sequence", paged, auditIDs(all))

		// Defaults: page 1, 20 per page. A huge page is empty, not an error.
		list, _ := auditList(t, s, audit.Filter{TenantID: &tenantID, Page: passkey.Page{Number: -3, Size: 0}})
		mustEqual(t, "default page", auditIDs(list), auditIDs(all[:20]))
		list, total = auditList(t, s, audit.Filter{TenantID: &tenantID, Page: passkey.Page{Number: 1 << 62, Size: 1000}})
		if len(list) != 0 || total != 25 {
			t.Errorf("page far beyond the end: %d events, total %d", len(list), total)
		}
	})
}

func TestAuditStoreDeleteBefore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewAuditStore(d)
		a, b := credTenant(t, d, "A"), credTenant(t, d, "B")
		old := []audit.Event{
			auditEvent(&a, "webauthn_credential_updated", "", "", t0.Add(-2*time.Hour)),
			auditEvent(&b, "webauthn_credential_updated", "", "", t0.Add(-time.Hour)),
			auditEvent(nil, "tenant_created", "", "", t0.Add(-time.Microsecond)),
		}
		keep := []audit.Event{
			auditEvent(&a, "webauthn_credential_updated", "", "", t0), // at the cutoff: kept
			auditEvent(&b, "webauthn_credential_updated", "", "", t0.Add(time.Hour)),
			auditEvent(nil, "tenant_created", "", "", t0.Add(time.Hour)),
		}
		auditInsert(t, s, append(old, keep...)...)

		n, err := s.DeleteBefore(ctx, t0)
		if err != nil || n != len(old) {
			t.Fatalf("DeleteBefore = %d, %v; want %d", n, err, len(old))
		}
		var left []uuid.UUID
		for _, id := range []*uuid.UUID{&a, &b, nil} {
			list, _ := auditList(t, s, audit.Filter{TenantID: id})
			left = append(left, auditIDs(list)...)
		}
		mustEqual(t, "events left", left, auditIDs(keep))
		if n, err := s.DeleteBefore(ctx, t0); err != nil || n != 0 {
			t.Errorf("second DeleteBefore = %d, %v; want 0", n, err)
		}
	})
}

// TestAuditStoreDeleteBeforeChunks deletes more events than one DELETE statement removes.
func TestAuditStoreDeleteBeforeChunks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := db.NewAuditStore(d)
		tenantID := credTenant(t, d, "A")
		const n = 5100
		events := make([]audit.Event, n)
		for i := range events {
			events[i] = audit.Event{ID: uuid.New(), TenantID: &tenantID, Type: "webauthn_credential_updated", CreatedAt: t0.Add(-time.Duration(i+1) * time.Millisecond)}
		}
		auditInsert(t, s, events...)
		auditInsert(t, s, audit.Event{ID: uuid.New(), TenantID: &tenantID, Type: "webauthn_credential_updated", CreatedAt: t0})
		got, err := s.DeleteBefore(context.Background(), t0)
		if err != nil || got != n {
			t.Fatalf("DeleteBefore = %d, %v; want %d", got, err, n)
		}
		if _, total := auditList(t, s, audit.Filter{TenantID: &tenantID}); total != 1 {
			t.Errorf("events left = %d, want 1", total)
		}
	})
}
