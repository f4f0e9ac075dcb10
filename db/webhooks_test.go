package db_test

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/webhooks"
)

func newWebhookStore(t *testing.T, d *db.DB) *db.WebhookStore {
	t.Helper()
	s, err := db.NewWebhookStore(d, db.WebhookOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// createEndpoint stores an enabled endpoint of the tenant, made at now, subscribed to event.
func createEndpoint(t *testing.T, s *db.WebhookStore, tenantID uuid.UUID, event string, now time.Time) webhooks.Endpoint {
	t.Helper()
	ep := webhooks.Endpoint{ID: uuid.New(), TenantID: tenantID, URL: "https://example.com/hook", Events: []string{event},
		Description: "d", Enabled: true, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateEndpoint(context.Background(), ep, webhooks.Secrets{Current: []byte("sealed")}); err != nil {
		t.Fatal(err)
	}
	return ep
}

func riverJobs(t *testing.T, d *db.DB) int64 {
	t.Helper()
	n, err := d.Bun().NewSelect().TableExpr("river_job").Where("kind = 'webhook_delivery'").Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWebhookStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := newWebhookStore(t, d)
		a, b := dbtest.Tenant(t, d, nil), dbtest.Tenant(t, d, nil)
		now := time.Now().UTC().Truncate(time.Millisecond)
		ep := createEndpoint(t, s, a.ID, webhooks.LoginFailed, now)
		got, err := s.GetEndpoint(ctx, a.ID, ep.ID)
		if err != nil || got.URL != ep.URL || len(got.Events) != 1 || !got.Enabled || !got.CreatedAt.Equal(now) {
			t.Fatalf("GetEndpoint = %+v, %v", got, err)
		}
		// Cross-tenant: B sees nothing of A's.
		if _, err := s.GetEndpoint(ctx, b.ID, ep.ID); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("GetEndpoint of another tenant: %v", err)
		}
		if err := s.DeleteEndpoint(ctx, b.ID, ep.ID); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("DeleteEndpoint of another tenant: %v", err)
		}
		if list, err := s.ListEndpoints(ctx, b.ID); err != nil || len(list) != 0 {
			t.Errorf("ListEndpoints(B) = %v, %v", list, err)
		}
		if ds, err := s.Enqueue(ctx, b.ID, []uuid.UUID{ep.ID}, webhooks.LoginFailed, []byte(`{}`)); err != nil || len(ds) != 0 {
			t.Errorf("Enqueue to another tenant's endpoint = %v, %v", ds, err)
		}
		subs, err := s.Subscriptions(ctx)
		if err != nil || len(subs) != 1 || subs[0].EndpointID != ep.ID {
			t.Fatalf("Subscriptions = %v, %v", subs, err)
		}

		// Enqueue: a delivery and its job.
		ds, err := s.Enqueue(ctx, a.ID, []uuid.UUID{ep.ID, uuid.New()}, webhooks.LoginFailed, []byte(`{"type":"login.failed"}`))
		if err != nil || len(ds) != 1 {
			t.Fatalf("Enqueue = %v, %v", ds, err)
		}
		if n := riverJobs(t, d); n != 1 {
			t.Errorf("%d jobs, want 1", n)
		}
		// In a transaction that rolls back: neither delivery nor job.
		errRollback := errors.New("rollback")
		err = d.Atomically(ctx, func(ctx context.Context) error {
			if _, err := s.Enqueue(ctx, a.ID, []uuid.UUID{ep.ID}, webhooks.LoginFailed, []byte(`{}`)); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		if n := riverJobs(t, d); n != 1 {
			t.Errorf("after a rollback: %d jobs, want 1", n)
		}
		if list, err := s.ListDeliveries(ctx, a.ID, ep.ID, webhooks.DeliveryFilter{Limit: 10}); err != nil || len(list) != 1 {
			t.Errorf("after a rollback: deliveries %v, %v", list, err)
		}
		st, err := s.QueueStats(ctx)
		if err != nil || st.Pending != 1 || st.OldestPending.IsZero() {
			t.Errorf("QueueStats = %+v, %v", st, err)
		}

		// Attempts, redelivery.
		if err := s.RecordAttempt(ctx, a.ID, ds[0].ID, webhooks.Attempt{Status: webhooks.StatusFailed, Attempts: 3, StatusCode: 500, Error: "HTTP 500", At: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Redeliver(ctx, b.ID, ds[0].ID); !errors.Is(err, webhooks.ErrDeliveryNotFound) {
			t.Errorf("Redeliver of another tenant: %v", err)
		}
		re, err := s.Redeliver(ctx, a.ID, ds[0].ID)
		if err != nil || re.Status != webhooks.StatusPending || re.Attempts != 0 || re.LastStatusCode != 500 {
			t.Fatalf("Redeliver = %+v, %v", re, err)
		}
		if n := riverJobs(t, d); n != 2 {
			t.Errorf("after a redelivery: %d jobs, want 2", n)
		}
		if ok, err := s.SucceededSince(ctx, a.ID, ep.ID, now.Add(-time.Hour)); err != nil || ok {
			t.Errorf("SucceededSince = %v, %v", ok, err)
		}

		// Secrets and disabling.
		until := now.Add(time.Hour)
		if err := s.RotateSecret(ctx, b.ID, ep.ID, []byte("other"), until); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("RotateSecret of another tenant's endpoint = %v, want ErrNotFound", err)
		}
		if err := s.RotateSecret(ctx, a.ID, ep.ID, []byte("new"), until); err != nil {
			t.Fatal(err)
		}
		sec, err := s.EndpointSecrets(ctx, a.ID, ep.ID)
		if err != nil || string(sec.Current) != "new" || string(sec.Previous) != "sealed" || !sec.PreviousUntil.Equal(until) {
			t.Errorf("EndpointSecrets = %+v, %v", sec, err)
		}
		if changed, err := s.DisableEndpoint(ctx, b.ID, ep.ID, webhooks.DisabledGone); err != nil || changed {
			t.Errorf("DisableEndpoint of another tenant = %v, %v", changed, err)
		}
		if changed, err := s.DisableEndpoint(ctx, a.ID, ep.ID, webhooks.DisabledGone); err != nil || !changed {
			t.Errorf("DisableEndpoint = %v, %v", changed, err)
		}
		if subs, _ := s.Subscriptions(ctx); len(subs) != 0 {
			t.Errorf("a disabled endpoint still subscribes: %v", subs)
		}
		// Deleting the endpoint deletes its deliveries.
		if err := s.DeleteEndpoint(ctx, a.ID, ep.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetDelivery(ctx, a.ID, ds[0].ID); !errors.Is(err, webhooks.ErrDeliveryNotFound) {
			t.Errorf("a deleted endpoint's delivery: %v", err)
		}
	})
}

// TestWebhookStoreDeleteFinishedBefore: the retention deletes finished deliveries whose last attempt
// is older than the cutoff, of every tenant, and never a pending one.
func TestWebhookStoreDeleteFinishedBefore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := newWebhookStore(t, d)
		a := dbtest.Tenant(t, d, nil)
		now := time.Now().UTC().Truncate(time.Millisecond)
		ep := createEndpoint(t, s, a.ID, webhooks.LoginFailed, now)
		var ids []uuid.UUID
		for range 4 {
			ds, err := s.Enqueue(ctx, a.ID, []uuid.UUID{ep.ID}, webhooks.LoginFailed, []byte(`{}`))
			if err != nil || len(ds) != 1 {
				t.Fatalf("Enqueue = %v, %v", ds, err)
			}
			ids = append(ids, ds[0].ID)
		}
		old, recent := now.Add(-48*time.Hour), now.Add(-time.Hour)
		for i, a2 := range []webhooks.Attempt{
			{Status: webhooks.StatusSucceeded, Attempts: 1, StatusCode: 200, At: old},
			{Status: webhooks.StatusFailed, Attempts: 10, StatusCode: 500, At: old},
			{Status: webhooks.StatusSucceeded, Attempts: 1, StatusCode: 200, At: recent},
		} {
			if err := s.RecordAttempt(ctx, a.ID, ids[i], a2); err != nil {
				t.Fatal(err)
			}
		}
		// ids[3] stays pending, whatever its age.
		n, err := s.DeleteFinishedBefore(ctx, now.Add(-24*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("DeleteFinishedBefore = %d, %v; want the 2 old finished deliveries", n, err)
		}
		for i, want := range []bool{false, false, true, true} {
			_, err := s.GetDelivery(ctx, a.ID, ids[i])
			if got := err == nil; got != want {
				t.Errorf("delivery %d kept = %v (%v), want %v", i, got, err, want)
			}
		}
	})
}

// insertDelivery stores a delivery of the endpoint with the given status and creation time, without
// a queue job (nothing sends it).
func insertDelivery(t *testing.T, d *db.DB, ep webhooks.Endpoint, status webhooks.Status, at time.Time) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := d.Bun().ExecContext(context.Background(), `INSERT INTO webhook_deliveries
		(tenant_id, id, endpoint_id, event_type, payload, status, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ep.TenantID, id, ep.ID, webhooks.LoginFailed, `{}`, string(status), 1, at, at)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestWebhookStoreListDeliveries: pages of an endpoint's deliveries, newest first, ties in creation
// time broken by id, continued from a cursor without repeats or gaps, for every status and for some;
// other endpoints and other tenants never appear.
func TestWebhookStoreListDeliveries(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := newWebhookStore(t, d)
		a, b := dbtest.Tenant(t, d, nil), dbtest.Tenant(t, d, nil)
		now := time.Now().UTC().Truncate(time.Microsecond)
		ep, other := createEndpoint(t, s, a.ID, webhooks.LoginFailed, now), createEndpoint(t, s, a.ID, webhooks.LoginFailed, now)
		ofB := createEndpoint(t, s, b.ID, webhooks.LoginFailed, now)
		statuses := []webhooks.Status{webhooks.StatusSucceeded, webhooks.StatusFailed, webhooks.StatusSucceeded, webhooks.StatusPending}
		type row struct {
			id     uuid.UUID
			status webhooks.Status
			at     time.Time
		}
		var rows []row
		for i := range 23 {
			// Groups of three share a creation time (down to the microsecond): the id orders them.
			at := now.Add(-time.Duration(i/3) * time.Second)
			st := statuses[i%len(statuses)]
			rows = append(rows, row{insertDelivery(t, d, ep, st, at), st, at})
			insertDelivery(t, d, other, st, at)
			insertDelivery(t, d, ofB, st, at)
		}
		slices.SortFunc(rows, func(x, y row) int { // newest first, then the greater id
			if c := y.at.Compare(x.at); c != 0 {
				return c
			}
			return bytes.Compare(y.id[:], x.id[:])
		})
		walk := func(f webhooks.DeliveryFilter) []uuid.UUID {
			t.Helper()
			var got []uuid.UUID
			for range 100 {
				page, err := s.ListDeliveries(ctx, a.ID, ep.ID, f)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > f.Limit {
					t.Fatalf("a page of %d, limit %d", len(page), f.Limit)
				}
				for _, dl := range page {
					if dl.EndpointID != ep.ID || dl.TenantID != a.ID || len(f.Statuses) > 0 && !slices.Contains(f.Statuses, dl.Status) {
						t.Fatalf("listed %+v", dl)
					}
					got = append(got, dl.ID)
				}
				if len(page) < f.Limit {
					return got
				}
				last := page[len(page)-1]
				f.After = &webhooks.DeliveryCursor{CreatedAt: last.CreatedAt, ID: last.ID}
			}
			t.Fatal("no end")
			return nil
		}
		want := func(keep ...webhooks.Status) []uuid.UUID {
			var ids []uuid.UUID
			for _, r := range rows {
				if len(keep) == 0 || slices.Contains(keep, r.status) {
					ids = append(ids, r.id)
				}
			}
			return ids
		}
		for _, tc := range []struct {
			name     string
			statuses []webhooks.Status
		}{
			{"every status", nil},
			{"every status named", webhooks.Statuses},
			{"failed", []webhooks.Status{webhooks.StatusFailed}},
			{"pending and failed", []webhooks.Status{webhooks.StatusPending, webhooks.StatusFailed}},
		} {
			for _, limit := range []int{1, 4, 5, 100} {
				got := walk(webhooks.DeliveryFilter{Statuses: tc.statuses, Limit: limit})
				if w := want(tc.statuses...); !slices.Equal(got, w) {
					t.Errorf("%s, pages of %d: got %v, want %v", tc.name, limit, got, w)
				}
			}
		}
		// A cursor in the middle of a group of equal times continues inside the group.
		mid := rows[4] // the second of the second group
		if rows[3].at != mid.at || rows[5].at != mid.at {
			t.Fatal("test setup: rows 3 to 5 should share a time")
		}
		page, err := s.ListDeliveries(ctx, a.ID, ep.ID, webhooks.DeliveryFilter{Limit: 2, After: &webhooks.DeliveryCursor{CreatedAt: mid.at, ID: mid.id}})
		if err != nil || len(page) != 2 || page[0].ID != rows[5].id || page[1].ID != rows[6].id {
			t.Errorf("after the middle of a group: %v, %v", page, err)
		}
		// Another tenant lists nothing of the endpoint, whatever the filter.
		if page, err := s.ListDeliveries(ctx, b.ID, ep.ID, webhooks.DeliveryFilter{Limit: 100}); err != nil || len(page) != 0 {
			t.Errorf("ListDeliveries of another tenant = %v, %v", page, err)
		}
		if page, err := s.ListDeliveries(ctx, b.ID, ep.ID, webhooks.DeliveryFilter{Limit: 100, Statuses: []webhooks.Status{webhooks.StatusFailed}}); err != nil || len(page) != 0 {
			t.Errorf("ListDeliveries of another tenant, failed = %v, %v", page, err)
		}
	})
}

// queries records the text of every statement a DB runs (a bun.QueryHook).
type queries struct {
	mu   sync.Mutex
	text []string
}

func (q *queries) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.text = append(q.text, e.Query)
	return ctx
}

func (q *queries) AfterQuery(context.Context, *bun.QueryEvent) {}

// sortNode matches a Sort node of a PostgreSQL plan (not Merge Append's "Sort Key") and its estimated
// rows.
var sortNode = regexp.MustCompile(`(?m)^\s*(?:->\s+)?Sort\s+\(cost=\S+ rows=(\d+)`)

// TestWebhookDeliveryIndexesPostgres: on a busy endpoint's history (20,000 deliveries over 60 days,
// one in 500 failed) PostgreSQL answers every listing from webhook_deliveries_list_idx, one range per
// status merged in order (a status with a few dozen rows may be sorted, never the history), and the
// retention job's hourly deletion from webhook_deliveries_finished_idx rather than a scan of the
// table (migration 000011).
func TestWebhookDeliveryIndexesPostgres(t *testing.T) {
	d := dbtest.Postgres(t)
	ctx := context.Background()
	s := newWebhookStore(t, d)
	now := time.Now().UTC().Truncate(time.Microsecond)
	var eps []webhooks.Endpoint
	for range 2 {
		tn := dbtest.Tenant(t, d, nil)
		for range 2 {
			ep := createEndpoint(t, s, tn.ID, webhooks.LoginFailed, now)
			eps = append(eps, ep)
		}
	}
	for i, ep := range eps {
		n := 2000
		if i == 0 {
			n = 20000
		}
		// Spread over 60 days, the last 10 pending, every 500th failed.
		if _, err := d.Bun().ExecContext(ctx, `INSERT INTO webhook_deliveries
			(tenant_id, id, endpoint_id, event_type, payload, status, attempts, created_at, updated_at)
			SELECT ?, gen_random_uuid(), ?, 'login.failed', '{}',
				CASE WHEN g > ? - 10 THEN 'pending' WHEN g % 500 = 0 THEN 'failed' ELSE 'succeeded' END, 1,
				?::timestamptz - interval '60 days' + g * (interval '60 days' / ?),
				?::timestamptz - interval '60 days' + g * (interval '60 days' / ?) + interval '1 second'
			FROM generate_series(1, ?) AS g`, ep.TenantID, ep.ID, n, now, n, now, n, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Bun().ExecContext(ctx, "ANALYZE webhook_deliveries"); err != nil {
		t.Fatal(err)
	}

	q := &queries{}
	d.Bun().AddQueryHook(q)
	ep := eps[0]
	first, err := s.ListDeliveries(ctx, ep.TenantID, ep.ID, webhooks.DeliveryFilter{Limit: 101})
	if err != nil || len(first) != 101 {
		t.Fatalf("first page: %d, %v", len(first), err)
	}
	after := &webhooks.DeliveryCursor{CreatedAt: first[100].CreatedAt, ID: first[100].ID}
	for _, f := range []webhooks.DeliveryFilter{
		{Limit: 101, After: after},
		{Limit: 101, After: after, Statuses: []webhooks.Status{webhooks.StatusFailed}},
		{Limit: 101, Statuses: []webhooks.Status{webhooks.StatusFailed, webhooks.StatusPending}},
	} {
		if _, err := s.ListDeliveries(ctx, ep.TenantID, ep.ID, f); err != nil {
			t.Fatal(err)
		}
	}
	// The hourly run: what finished in the hour that just passed the retention (here 59 days).
	if _, err := s.DeleteFinishedBefore(ctx, now.Add(-59*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	text := slices.Clone(q.text)
	q.mu.Unlock()
	if len(text) != 5 {
		t.Fatalf("%d statements, want 5: %v", len(text), text)
	}
	for i, stmt := range text {
		var lines []string
		if err := d.Bun().NewRaw("EXPLAIN "+stmt).Scan(ctx, &lines); err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		index := "webhook_deliveries_list_idx"
		if i == len(text)-1 {
			index = "webhook_deliveries_finished_idx"
		}
		bigSort := false
		for _, m := range sortNode.FindAllStringSubmatch(plan, -1) {
			if n, _ := strconv.Atoi(m[1]); n > 1000 {
				bigSort = true
			}
		}
		if !strings.Contains(plan, index) || strings.Contains(plan, "Seq Scan") || bigSort {
			t.Errorf("%s\nplan:\n%s\nwant %s, no sequential scan, no sort of more than 1,000 rows", stmt, plan, index)
		}
	}
}

// TestWebhookIndexColdInTransaction: on SQLite (one connection) a change that records its event with a
// cold webhook index, while a load of the index through the pool waits for the connection the
// change's transaction holds, reads the subscriptions in its own transaction and commits; the load
// then gets the connection. Had the record waited for that load (the index's load lock), neither
// would move until the load's context ended, and the load would fail.
func TestWebhookIndexColdInTransaction(t *testing.T) {
	d := dbtest.SQLite(t)
	ctx := context.Background()
	s := newWebhookStore(t, d)
	a := dbtest.Tenant(t, d, nil)
	now := time.Now().UTC()
	ep := createEndpoint(t, s, a.ID, webhooks.UserDeleted, now)
	x := webhooks.NewIndex(s, time.Hour, nil) // never loaded
	e := passkey.Event{Type: passkey.UserDeleted, TenantID: a.ID, AppUserID: "alice", At: now}
	if !x.Wants(e) {
		t.Fatal("a cold index must want every event a webhook reports")
	}
	loaded := make(chan error, 1)
	err := d.Atomically(ctx, func(ctx context.Context) error {
		loadCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		go func() { defer cancel(); loaded <- x.Load(loadCtx) }()
		time.Sleep(100 * time.Millisecond) // the load holds its lock and waits for the connection
		return x.Record(ctx, e)
	})
	if err != nil {
		t.Fatalf("the change: %v", err)
	}
	if err := <-loaded; err != nil {
		t.Errorf("the load that waited for the change's connection: %v", err)
	}
	if got, err := s.ListDeliveries(ctx, a.ID, ep.ID, webhooks.DeliveryFilter{Limit: 10}); err != nil || len(got) != 1 {
		t.Errorf("deliveries = %+v, %v; want the one the change recorded", got, err)
	}
}

// TestWebhookSubscriptionsRevision: the revision moves with every change of the subscriptions (an
// endpoint created, changed, disabled, deleted; a tenant deleted with its endpoints) and with nothing
// else, and an index reads the endpoints again only when it moved.
func TestWebhookSubscriptionsRevision(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := newWebhookStore(t, d)
		tenants := db.NewTenantStore(d)
		a, b := dbtest.Tenant(t, d, nil), dbtest.Tenant(t, d, nil)
		x := webhooks.NewIndex(s, time.Hour, nil)
		rev := func() int64 {
			t.Helper()
			n, err := s.SubscriptionsRevision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		// step runs a change, checks whether the revision moved, and loads the index: it reads the
		// endpoints again exactly when the revision moved.
		step := func(what string, moves bool, change func() error) {
			t.Helper()
			before, reads := rev(), x.Reads()
			if err := change(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if moved := rev() != before; moved != moves {
				t.Errorf("%s: revision moved = %v, want %v", what, moved, moves)
			}
			if err := x.Load(ctx); err != nil {
				t.Fatal(err)
			}
			if read := x.Reads() != reads; read != moves {
				t.Errorf("%s: the index read the endpoints = %v, want %v", what, read, moves)
			}
		}
		now := time.Now().UTC()
		ep := webhooks.Endpoint{ID: uuid.New(), TenantID: a.ID, URL: "https://example.com/hook", Events: []string{webhooks.UserDeleted},
			Enabled: true, CreatedAt: now, UpdatedAt: now}
		other := ep
		other.ID, other.TenantID = uuid.New(), b.ID
		if err := x.Load(ctx); err != nil { // the first load always reads
			t.Fatal(err)
		}
		step("nothing", false, func() error { return nil })
		step("create", true, func() error { return s.CreateEndpoint(ctx, ep, webhooks.Secrets{Current: []byte("sealed")}) })
		step("create another tenant's", true, func() error {
			return s.CreateEndpoint(ctx, other, webhooks.Secrets{Current: []byte("sealed")})
		})
		if got := x.Endpoints(a.ID, webhooks.UserDeleted); !slices.Equal(got, []uuid.UUID{ep.ID}) {
			t.Errorf("Endpoints = %v, want %v", got, ep.ID)
		}
		step("rotate the secret", false, func() error { return s.RotateSecret(ctx, a.ID, ep.ID, []byte("new"), now.Add(time.Hour)) })
		step("enqueue", false, func() error {
			_, err := s.Enqueue(ctx, a.ID, []uuid.UUID{ep.ID}, webhooks.UserDeleted, []byte(`{}`))
			return err
		})
		ep.Events = []string{webhooks.UserDeleted, webhooks.PasskeyDeleted}
		step("update", true, func() error { return s.UpdateEndpoint(ctx, ep) })
		if got := x.Endpoints(a.ID, webhooks.PasskeyDeleted); !slices.Equal(got, []uuid.UUID{ep.ID}) {
			t.Errorf("Endpoints after the update = %v", got)
		}
		step("disable", true, func() error { _, err := s.DisableEndpoint(ctx, a.ID, ep.ID, webhooks.DisabledGone); return err })
		step("disable again", false, func() error { _, err := s.DisableEndpoint(ctx, a.ID, ep.ID, webhooks.DisabledGone); return err })
		if got := x.Endpoints(a.ID, webhooks.UserDeleted); len(got) != 0 {
			t.Errorf("Endpoints of a disabled endpoint = %v", got)
		}
		step("delete", true, func() error { return s.DeleteEndpoint(ctx, a.ID, ep.ID) })
		step("delete the other tenant", true, func() error { return tenants.DeleteTenant(ctx, b.ID) })
		if got := x.Endpoints(b.ID, webhooks.UserDeleted); len(got) != 0 {
			t.Errorf("Endpoints of a deleted tenant = %v", got)
		}
	})
}
