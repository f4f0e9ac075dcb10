package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

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
		ep := webhooks.Endpoint{ID: uuid.New(), TenantID: a.ID, URL: "https://example.com/hook", Events: []string{webhooks.LoginFailed},
			Description: "d", Enabled: true, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateEndpoint(ctx, ep, webhooks.Secrets{Current: []byte("sealed")}); err != nil {
			t.Fatal(err)
		}
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
		if list, err := s.ListDeliveries(ctx, a.ID, ep.ID, 10); err != nil || len(list) != 1 {
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
		ep := webhooks.Endpoint{ID: uuid.New(), TenantID: a.ID, URL: "https://example.com/hook", Events: []string{webhooks.LoginFailed},
			Enabled: true, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateEndpoint(ctx, ep, webhooks.Secrets{Current: []byte("sealed")}); err != nil {
			t.Fatal(err)
		}
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
