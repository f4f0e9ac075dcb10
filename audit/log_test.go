package audit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/tenant"
)

// base is the time of the first event of TestLogList; event i happens i seconds later.
var base = time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)

// emitted is one event TestLogList emits, in the request it happens in.
type emitted struct {
	request passkey.Request
	event   passkey.Event
}

// logFixture is a database with two tenants and events emitted through a Bus to a Recorder.
type logFixture struct {
	log    *audit.Log
	store  *db.AuditStore
	a, b   uuid.UUID
	gone   uuid.UUID // a deleted tenant, whose deletion is the one deployment-wide event
	events []emitted // tenant A's, oldest first, including those the log drops
}

// newLogFixture emits, through a Bus whose subscriber is the Recorder, tenant A's events (a login,
// a failed login, a transaction, credential changes whose actors hold LIKE's metacharacters, and
// events the log drops), one of tenant B and one deployment-wide, and waits until they are stored.
func newLogFixture(t *testing.T, d *db.DB) logFixture {
	t.Helper()
	svc, a, b := tenants(t, d)
	store := db.NewAuditStore(d)
	rec := audit.NewRecorder(store, discardLog())
	start(t, rec)
	bus := passkey.NewBus(rec)
	f := logFixture{log: audit.NewLog(store, svc), store: store, a: a, b: b, gone: uuid.New()}

	change := func(typ passkey.EventType, actor string) passkey.Event {
		return passkey.Event{Type: typ, TenantID: a, AppUserID: actor, CredentialID: "Y3JlZA",
			Details: map[string]string{"credential_id": "Y3JlZA"}}
	}
	login := ceremonyEvent(a, "login", passkey.StepFinalize, nil)
	login.AppUserID = "alice"
	failed := ceremonyEvent(a, "login", passkey.StepFinalize,
		passkey.WithDetails(credentials.ErrAssertionFailed, "Error validating challenge"))
	failed.AppUserID = "bob"
	tx := ceremonyEvent(a, "transaction", passkey.StepFinalize, nil)
	tx.AppUserID, tx.TransactionID = "carol", "tx-1"
	init := ceremonyEvent(a, "login", passkey.StepInitialize, nil)
	init.AppUserID = "axb"
	f.events = []emitted{
		{passkey.Request{ID: "req-0", SourceIP: "203.0.113.7", UserAgent: "agent/1"}, login},
		{passkey.Request{ID: "req-1", SourceIP: "198.51.100.20", UserAgent: "agent/2"}, failed},
		{passkey.Request{ID: "req-2", SourceIP: "203.0.113.8", UserAgent: "agent/3"}, tx},
		{passkey.Request{ID: "req-3", SourceIP: "192.0.2.10"}, change(passkey.CredentialRenamed, "a%b")},
		{passkey.Request{ID: "req-4", SourceIP: "192.0.2.10"}, change(passkey.CredentialDeleted, "a_b")},
		{passkey.Request{ID: "req-5", SourceIP: "192.0.2.10"}, change(passkey.CredentialRenamed, `a\b`)},
		{passkey.Request{ID: "req-6", SourceIP: "192.0.2.11"}, init},
		// Dropped: a clone flag (the login's entry shows it) and a request of no known tenant.
		{passkey.Request{ID: "req-7"}, passkey.Event{Type: passkey.CredentialCloneFlagged, TenantID: a, AppUserID: "alice"}},
		{passkey.Request{ID: "req-8"}, ceremonyEvent(uuid.Nil, "login", passkey.StepFinalize, credentials.ErrAssertionFailed)},
	}
	for i, e := range f.events {
		e.event.At = base.Add(time.Duration(i) * time.Second)
		bus.Emit(passkey.WithRequest(context.Background(), e.request), e.event)
	}
	other := ceremonyEvent(b, "login", passkey.StepFinalize, nil)
	other.AppUserID, other.At = "bob-b", base
	bus.Emit(passkey.WithRequest(context.Background(), passkey.Request{ID: "req-b", SourceIP: "10.1.1.1"}), other)
	bus.Emit(passkey.WithRequest(context.Background(), passkey.Request{ID: "req-admin", SourceIP: "10.9.9.9"}),
		passkey.Event{Type: passkey.TenantDeleted, TenantID: f.gone, At: base})
	flush(t, rec)
	return f
}

// list calls Log.List and fails the test on an error.
func (f logFixture) list(t *testing.T, filter audit.Filter) ([]audit.Event, int) {
	t.Helper()
	events, total, err := f.log.List(context.Background(), filter)
	if err != nil {
		t.Fatalf("List(%+v): %v", filter, err)
	}
	return events, total
}

// requestIDs returns the request ids of events, which name the events of the fixture.
func requestIDs(events []audit.Event) []string {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.RequestID
	}
	return ids
}

// TestLogList lists events recorded through the Recorder's Emit, on PostgreSQL and SQLite.
func TestLogList(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newLogFixture(t, d)
		a, b := f.a, f.b
		all := []string{"req-6", "req-5", "req-4", "req-3", "req-2", "req-1", "req-0"} // newest first

		t.Run("entries", func(t *testing.T) {
			events, total := f.list(t, audit.Filter{TenantID: &a})
			if got := requestIDs(events); total != 7 || !slices.Equal(got, all) {
				t.Fatalf("tenant A: %v (total %d), want %v", got, total, all)
			}
			for i, e := range events {
				if e.ID == uuid.Nil || e.TenantID == nil || *e.TenantID != a {
					t.Errorf("event %d: id %s, tenant %v", i, e.ID, e.TenantID)
				}
				if want := base.Add(time.Duration(6-i) * time.Second); !e.CreatedAt.Equal(want) {
					t.Errorf("event %d: CreatedAt %v, want %v", i, e.CreatedAt, want)
				}
			}
			failed := events[5]
			want := audit.Event{ID: failed.ID, TenantID: &a, Type: "webauthn_authentication_final_failed",
				Ceremony: "login", Error: "assertion_failed: Error validating challenge", RequestID: "req-1",
				SourceIP: "198.51.100.20", UserAgent: "agent/2", ActorUserID: "bob", CreatedAt: base.Add(time.Second)}
			if fmt.Sprintf("%+v", failed) != fmt.Sprintf("%+v", want) {
				t.Errorf("failed login =\n %+v\nwant\n %+v", failed, want)
			}
			if tx := events[4]; tx.Type != "webauthn_transaction_final_succeeded" || tx.TransactionID != "tx-1" ||
				tx.ActorUserID != "carol" || tx.Ceremony != "transaction" || tx.Error != "" {
				t.Errorf("transaction = %+v", tx)
			}
			if c := events[2]; c.Type != "webauthn_credential_deleted" || c.ActorUserID != "a_b" ||
				c.Details["credential_id"] != "Y3JlZA" || c.Ceremony != "" {
				t.Errorf("credential deletion = %+v", c)
			}
		})

		t.Run("tenant isolation", func(t *testing.T) {
			events, total := f.list(t, audit.Filter{TenantID: &b})
			if total != 1 || len(events) != 1 || events[0].RequestID != "req-b" || *events[0].TenantID != b {
				t.Fatalf("tenant B: %+v (total %d), want its one login", events, total)
			}
			for _, filter := range []audit.Filter{
				{TenantID: &a, Q: "bob-b"}, {TenantID: &a, SourceIP: "10.1.1.1"}, {TenantID: &b, Q: "carol"},
				{TenantID: &b, Types: []string{"webauthn_transaction_final_succeeded"}},
			} {
				if events, total := f.list(t, filter); total != 0 || len(events) != 0 {
					t.Errorf("%+v found another tenant's events: %v", filter, requestIDs(events))
				}
			}
		})

		t.Run("deployment-wide", func(t *testing.T) {
			events, total := f.list(t, audit.Filter{})
			if total != 1 || len(events) != 1 {
				t.Fatalf("deployment-wide: %v (total %d), want the tenant deletion only", requestIDs(events), total)
			}
			e := events[0]
			if e.Type != "tenant_deleted" || e.TenantID != nil || e.Details["tenant_id"] != f.gone.String() || e.RequestID != "req-admin" {
				t.Errorf("deployment-wide event = %+v", e)
			}
			if events, _ := f.list(t, audit.Filter{Q: "alice"}); len(events) != 0 {
				t.Errorf("deployment-wide list shows tenant events: %v", requestIDs(events))
			}
		})

		t.Run("filters", func(t *testing.T) {
			succ, fail := "webauthn_authentication_final_succeeded", "webauthn_authentication_final_failed"
			tests := []struct {
				name   string
				filter audit.Filter
				want   []string
			}{
				{"one type", audit.Filter{Types: []string{succ}}, []string{"req-0"}},
				{"two types", audit.Filter{Types: []string{fail, succ}}, []string{"req-1", "req-0"}},
				{"duplicate types", audit.Filter{Types: []string{succ, succ, "", succ}}, []string{"req-0"}},
				{"empty type ignored", audit.Filter{Types: []string{""}}, all},
				{"credential types", audit.Filter{Types: []string{"webauthn_credential_updated"}}, []string{"req-5", "req-3"}},
				{"known type never recorded", audit.Filter{Types: []string{"mfa_authentication_init_succeeded"}}, nil},
				{"admin type", audit.Filter{Types: []string{"tenant_created"}}, nil},
				{"start exclusive", audit.Filter{Start: base.Add(2 * time.Second)}, all[:4]},
				{"end exclusive", audit.Filter{End: base.Add(2 * time.Second)}, []string{"req-1", "req-0"}},
				{"start and end", audit.Filter{Start: base.Add(time.Second), End: base.Add(3 * time.Second)}, []string{"req-2"}},
				{"start in another zone", audit.Filter{Start: base.Add(5 * time.Second).In(time.FixedZone("", 2*3600))}, []string{"req-6"}},
				{"actor substring", audit.Filter{ActorUserID: "li"}, []string{"req-0"}},
				{"actor in several", audit.Filter{ActorUserID: "b"}, []string{"req-6", "req-5", "req-4", "req-3", "req-1"}},
				{"source ip prefix", audit.Filter{SourceIP: "203.0.113."}, []string{"req-2", "req-0"}},
				{"source ip", audit.Filter{SourceIP: "198.51.100.20"}, []string{"req-1"}},
				{"q actor", audit.Filter{Q: "carol"}, []string{"req-2"}},
				{"q source ip", audit.Filter{Q: "192.0.2.1"}, []string{"req-6", "req-5", "req-4", "req-3"}},
				{"q and type", audit.Filter{Q: "203.0.113", Types: []string{succ}}, []string{"req-0"}},
				{"everything", audit.Filter{Types: []string{fail}, ActorUserID: "bo", SourceIP: "198.", Q: "bob",
					Start: base, End: base.Add(time.Hour)}, []string{"req-1"}},
				// LIKE's metacharacters match themselves only.
				{"percent", audit.Filter{ActorUserID: "%"}, []string{"req-3"}},
				{"underscore", audit.Filter{ActorUserID: "_"}, []string{"req-4"}},
				{"backslash", audit.Filter{ActorUserID: `\`}, []string{"req-5"}},
				{"a%b", audit.Filter{ActorUserID: "a%b"}, []string{"req-3"}},
				{"a_b", audit.Filter{ActorUserID: "a_b"}, []string{"req-4"}},
				{`a\b`, audit.Filter{ActorUserID: `a\b`}, []string{"req-5"}},
				{"q percent", audit.Filter{Q: "%"}, []string{"req-3"}},
				{"q underscore", audit.Filter{Q: "_"}, []string{"req-4"}},
				{"source ip percent", audit.Filter{SourceIP: "%"}, nil},
				{"injection in q", audit.Filter{Q: "' OR 1=1 --"}, nil},
				{"injection in actor", audit.Filter{ActorUserID: `' OR '1'='1`}, nil},
				{"injection in source ip", audit.Filter{SourceIP: `"; DROP TABLE audit_logs; --`}, nil},
				{"longest q", audit.Filter{Q: strings.Repeat("x", 256)}, nil},
				{"longest q in characters", audit.Filter{Q: strings.Repeat("é", 128)}, nil},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.filter.TenantID = &a
					tc.filter.Page = passkey.Page{Size: 100}
					events, total := f.list(t, tc.filter)
					if got := requestIDs(events); total != len(tc.want) || !slices.Equal(got, tc.want) {
						t.Errorf("%v (total %d), want %v", got, total, tc.want)
					}
				})
			}
			// The table survived the hostile values.
			if _, total := f.list(t, audit.Filter{TenantID: &a}); total != 7 {
				t.Errorf("tenant A has %d events after the filters, want 7", total)
			}
		})

		t.Run("pagination", func(t *testing.T) {
			var got []string
			for n := 1; n <= 3; n++ {
				events, total := f.list(t, audit.Filter{TenantID: &a, Page: passkey.Page{Number: n, Size: 3}})
				if want := min(3, 7-3*(n-1)); len(events) != want || total != 7 {
					t.Errorf("page %d: %d events (total %d), want %d (total 7)", n, len(events), total, want)
				}
				got = append(got, requestIDs(events)...)
			}
			if !slices.Equal(got, all) {
				t.Errorf("pages = %v, want %v", got, all)
			}
			for _, p := range []passkey.Page{{Number: 4, Size: 3}, {Number: 2}, {Number: 1 << 40, Size: 1000}} {
				if events, total := f.list(t, audit.Filter{TenantID: &a, Page: p}); len(events) != 0 || total != 7 {
					t.Errorf("page %+v: %d events (total %d), want none (total 7)", p, len(events), total)
				}
			}
			// A filtered list counts the matches only.
			events, total := f.list(t, audit.Filter{TenantID: &a, Q: "192.0.2.", Page: passkey.Page{Number: 2, Size: 3}})
			if total != 4 || !slices.Equal(requestIDs(events), []string{"req-3"}) {
				t.Errorf("filtered page 2: %v (total %d), want [req-3] (total 4)", requestIDs(events), total)
			}
		})
	})
}

// TestLogDefaultPage checks that a list without a page returns the default page size, with the total.
func TestLogDefaultPage(t *testing.T) {
	d := dbtest.SQLite(t)
	svc, a, _ := tenants(t, d)
	store := db.NewAuditStore(d)
	rec := audit.NewRecorder(store, discardLog())
	start(t, rec)
	for i := range passkey.DefaultPerPage + 5 {
		e := ceremonyEvent(a, "registration", passkey.StepInitialize, nil)
		e.At = base.Add(time.Duration(i) * time.Second)
		rec.Emit(context.Background(), e)
	}
	flush(t, rec)
	log := audit.NewLog(store, svc)
	events, total, err := log.List(context.Background(), audit.Filter{TenantID: &a})
	if err != nil || len(events) != passkey.DefaultPerPage || total != passkey.DefaultPerPage+5 {
		t.Fatalf("List = %d events (total %d), %v; want %d of %d", len(events), total, err, passkey.DefaultPerPage, passkey.DefaultPerPage+5)
	}
	if !events[0].CreatedAt.Equal(base.Add(time.Duration(passkey.DefaultPerPage+4) * time.Second)) {
		t.Errorf("first event at %v, want the newest", events[0].CreatedAt)
	}
	events, _, err = log.List(context.Background(), audit.Filter{TenantID: &a, Page: passkey.Page{Number: 2}})
	if err != nil || len(events) != 5 || !events[4].CreatedAt.Equal(base) {
		t.Errorf("page 2 = %d events, %v; want the 5 oldest", len(events), err)
	}
}

// TestLogInvalidFilter checks that List refuses filters that break its rules, reporting every
// problem at once, before asking the store.
func TestLogInvalidFilter(t *testing.T) {
	d := dbtest.SQLite(t)
	svc, a, _ := tenants(t, d)
	log := audit.NewLog(db.NewAuditStore(d), svc)
	long := strings.Repeat("x", 257)
	tests := []struct {
		name     string
		filter   audit.Filter
		problems []string // each problem, in order
	}{
		{"unknown type", audit.Filter{Types: []string{"nope"}}, []string{`type "nope" is not a known audit log type`}},
		{"unknown among known", audit.Filter{Types: []string{"webauthn_authentication_final_succeeded", "nope"}},
			[]string{`type "nope" is not a known audit log type`}},
		{"injection as type", audit.Filter{Types: []string{"' OR 1=1 --"}}, []string{`type "' OR 1=1 --" is not a known audit log type`}},
		{"event type instead of audit type", audit.Filter{Types: []string{string(passkey.CeremonyFailed)}},
			[]string{`type "ceremony.failed" is not a known audit log type`}},
		{"hanko type without suffix", audit.Filter{Types: []string{"webauthn_authentication_init"}},
			[]string{`type "webauthn_authentication_init" is not a known audit log type`}},
		{"long type shortened", audit.Filter{Types: []string{strings.Repeat("t", 100)}},
			[]string{`type "` + strings.Repeat("t", 64) + `…" is not a known audit log type`}},
		{"nul in q", audit.Filter{Q: "a\x00b"}, []string{"q must be valid UTF-8 without NUL characters"}},
		{"invalid utf-8 actor", audit.Filter{ActorUserID: "\xff"}, []string{"actor_user_id must be valid UTF-8 without NUL characters"}},
		{"nul source ip", audit.Filter{SourceIP: "\x00"}, []string{"meta_source_ip must be valid UTF-8 without NUL characters"}},
		{"long q", audit.Filter{Q: long}, []string{"q cannot be longer than 256 bytes"}},
		{"long q in characters", audit.Filter{Q: strings.Repeat("é", 128) + "x"}, []string{"q cannot be longer than 256 bytes"}},
		{"long actor", audit.Filter{ActorUserID: long}, []string{"actor_user_id cannot be longer than 256 bytes"}},
		{"long source ip", audit.Filter{SourceIP: long}, []string{"meta_source_ip cannot be longer than 256 bytes"}},
		{"year 0", audit.Filter{Start: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"start_time must be between the years 0001 and 9999 (UTC)"}},
		{"year 1 in UTC is year 0", audit.Filter{End: time.Date(1, 1, 1, 0, 30, 0, 0, time.FixedZone("", 3600))},
			[]string{"end_time must be between the years 0001 and 9999 (UTC)"}},
		{"year 10000 in UTC", audit.Filter{Start: time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -3600)), End: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
			[]string{"start_time must be between the years 0001 and 9999 (UTC)", "end_time must be between the years 0001 and 9999 (UTC)"}},
		{"every problem at once", audit.Filter{
			Types:       []string{"nope", "webauthn_credential_updated", "nope", "z", "z"},
			ActorUserID: "\x00", SourceIP: long, Q: "\xfe",
		}, []string{
			`type "nope" is not a known audit log type`, `type "z" is not a known audit log type`,
			"actor_user_id must be valid UTF-8 without NUL characters", "meta_source_ip cannot be longer than 256 bytes",
			"q must be valid UTF-8 without NUL characters",
		}},
	}
	for _, tc := range tests {
		for _, scope := range []struct {
			name   string
			tenant *uuid.UUID
		}{{"tenant", &a}, {"deployment-wide", nil}} {
			t.Run(tc.name+"/"+scope.name, func(t *testing.T) {
				tc.filter.TenantID = scope.tenant
				events, total, err := log.List(context.Background(), tc.filter)
				if !errors.Is(err, audit.ErrInvalidFilter) {
					t.Fatalf("List = %v, want ErrInvalidFilter", err)
				}
				var v *passkey.ValidationError
				if !errors.As(err, &v) {
					t.Fatalf("List = %T %v, want a *passkey.ValidationError", err, err)
				}
				if !slices.Equal(v.Problems, tc.problems) {
					t.Fatalf("problems = %q, want %q", v.Problems, tc.problems)
				}
				if passkey.ErrorCode(err) != "invalid_filter" || passkey.Details(err) != strings.Join(tc.problems, " and ") {
					t.Errorf("code %q, details %q", passkey.ErrorCode(err), passkey.Details(err))
				}
				if events != nil || total != 0 {
					t.Errorf("List returned %d events (total %d) with an error", len(events), total)
				}
			})
		}
	}
}

// TestLogUnknownTenant checks that a query of a tenant that does not exist is tenant.ErrNotFound, not
// an empty list, and that a Log without tenants answers from the store alone.
func TestLogUnknownTenant(t *testing.T) {
	d := dbtest.SQLite(t)
	svc, _, _ := tenants(t, d)
	store := db.NewAuditStore(d)
	missing := uuid.New()
	if _, _, err := audit.NewLog(store, svc).List(context.Background(), audit.Filter{TenantID: &missing}); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("unknown tenant: %v, want tenant.ErrNotFound", err)
	}
	events, total, err := audit.NewLog(store, nil).List(context.Background(), audit.Filter{TenantID: &missing})
	if err != nil || len(events) != 0 || total != 0 {
		t.Errorf("without tenants: %d events (total %d), %v; want none", len(events), total, err)
	}
}

// TestLogTenantEvents wires the tenant service's events to the Recorder, as main does, and checks
// that its changes are in the log: a tenant's own in its list, its deletion deployment-wide (the
// deleted tenant's events go with it), and never an API key's secret.
func TestLogTenantEvents(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		store := db.NewAuditStore(d)
		rec := audit.NewRecorder(store, discardLog())
		start(t, rec)
		svc := tenantService(t, d, passkey.NewBus(rec))
		log := audit.NewLog(store, svc)

		a := createTenant(t, svc, "a.example.com")
		if err := svc.Rename(ctx, a, "A"); err != nil {
			t.Fatal(err)
		}
		if err := svc.SetConfig(ctx, a, tenantConfig("a.example.com")); err != nil {
			t.Fatal(err)
		}
		secret, key, err := svc.CreateAPIKey(ctx, a, "ci", tenant.KindSecret, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.DeleteAPIKey(ctx, a, key.ID); err != nil {
			t.Fatal(err)
		}
		signingKey, err := svc.RotateSigningKey(ctx, a, tenant.Rotation{})
		if err != nil {
			t.Fatal(err)
		}
		b := createTenant(t, svc, "b.example.com")
		flush(t, rec) // B's creation is stored before B is deleted
		if err := svc.Delete(ctx, b); err != nil {
			t.Fatal(err)
		}
		flush(t, rec)

		events, total, err := log.List(ctx, audit.Filter{TenantID: &a})
		if err != nil {
			t.Fatal(err)
		}
		byType := map[string]audit.Event{}
		for _, e := range events {
			byType[e.Type] = e
			if e.TenantID == nil || *e.TenantID != a {
				t.Errorf("%s has tenant %v, want %s", e.Type, e.TenantID, a)
			}
			for k, v := range e.Details {
				if s, _ := v.(string); strings.Contains(s, secret) || strings.Contains(k, secret) {
					t.Errorf("%s stores the API key's secret in %s", e.Type, k)
				}
			}
		}
		want := []string{"api_key_created", "api_key_deleted", "signing_key_rotated", "tenant_config_updated", "tenant_created", "tenant_updated"}
		got := make([]string, 0, len(byType))
		for typ := range byType {
			got = append(got, typ)
		}
		slices.Sort(got)
		if total != len(want) || !slices.Equal(got, want) {
			t.Fatalf("tenant A's types = %v (total %d), want %v", got, total, want)
		}
		if e := byType["api_key_created"]; e.Details["api_key_id"] != key.ID.String() || e.Details["name"] != "ci" || e.Details["kind"] != "secret" {
			t.Errorf("api_key_created details = %v", e.Details)
		}
		if e := byType["api_key_deleted"]; e.Details["secret_id"] != key.ID.String() {
			t.Errorf("api_key_deleted details = %v", e.Details)
		}
		if e := byType["signing_key_rotated"]; e.Details["kid"] != signingKey.ID || e.Details["algorithm"] != string(signingKey.Algorithm) {
			t.Errorf("signing_key_rotated details = %v, want kid %s", e.Details, signingKey.ID)
		}

		events, _, err = log.List(ctx, audit.Filter{})
		if err != nil || len(events) != 1 || events[0].Type != "tenant_deleted" || events[0].Details["tenant_id"] != b.String() {
			t.Errorf("deployment-wide = %+v, %v; want B's deletion", events, err)
		}
		if _, _, err := log.List(ctx, audit.Filter{TenantID: &b}); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("deleted tenant's log: %v, want tenant.ErrNotFound", err)
		}
		if events, total, err := store.List(ctx, audit.Filter{TenantID: &b}); err != nil || total != 0 {
			t.Errorf("deleted tenant's events still stored: %d (%v)", len(events), err)
		}
	})
}
