package credentials_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/tenant"
)

// sweepStore is a session store whose DeleteTenant reports each call on calls and, when block is set,
// waits for its context to end.
type sweepStore struct {
	credentials.SessionStore
	block bool
	calls chan sweepCall
}

type sweepCall struct {
	tenantID uuid.UUID
	deadline time.Time
}

func (s *sweepStore) DeleteTenant(ctx context.Context, tenantID uuid.UUID) error {
	deadline, _ := ctx.Deadline()
	s.calls <- sweepCall{tenantID: tenantID, deadline: deadline}
	if s.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.SessionStore.DeleteTenant(ctx, tenantID)
}

// runSweeper runs w until the test ends and waits for Run to return then.
func runSweeper(t *testing.T, w *credentials.SessionSweeper) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestSessionSweeper checks that a deleted tenant's sessions are deleted after DeleteTenant has
// returned, other tenants' stay, and each sweep is bounded by the longest session lifetime.
func TestSessionSweeper(t *testing.T) {
	sessions := db.NewMemorySessions(nil)
	store := &sweepStore{SessionStore: sessions, calls: make(chan sweepCall, 10)}
	w := credentials.NewSessionSweeper(store, nil, nil)
	gone, stays := uuid.New(), uuid.New()
	put := func(tenantID uuid.UUID) credentials.Session {
		s := credentials.Session{TenantID: tenantID, Ceremony: "login", Challenge: uuid.NewString(), ExpiresAt: time.Now().Add(time.Minute)}
		if err := sessions.Put(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	goneSession, staysSession := put(gone), put(stays)

	// Queued before Run: swept once it runs.
	if err := w.DeleteTenant(t.Context(), gone); err != nil {
		t.Fatal(err)
	}
	runSweeper(t, w)
	call := <-store.calls
	if call.tenantID != gone {
		t.Fatalf("swept %s, want %s", call.tenantID, gone)
	}
	if lifetime := tenant.MaxTimeout * time.Millisecond; call.deadline.IsZero() || time.Until(call.deadline) > lifetime {
		t.Errorf("sweep deadline %v, want at most the longest session lifetime (%v) away", call.deadline, lifetime)
	}
	// The first sweep is over once the next one has started.
	if err := w.DeleteTenant(t.Context(), uuid.New()); err != nil {
		t.Fatal(err)
	}
	<-store.calls
	if _, err := sessions.Consume(t.Context(), gone, goneSession.Ceremony, goneSession.Challenge); !errors.Is(err, credentials.ErrSessionNotFound) {
		t.Errorf("session of the deleted tenant: %v, want ErrSessionNotFound", err)
	}
	if _, err := sessions.Consume(t.Context(), stays, staysSession.Ceremony, staysSession.Challenge); err != nil {
		t.Errorf("session of another tenant: %v", err)
	}

}

// TestSessionSweeperSkipsExpired checks that a tenant deleted longer ago than the longest session
// lifetime is not swept: its sessions have expired by themselves.
func TestSessionSweeperSkipsExpired(t *testing.T) {
	var (
		mu  sync.Mutex
		now = time.Now()
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	store := &sweepStore{SessionStore: db.NewMemorySessions(nil), calls: make(chan sweepCall, 10)}
	w := credentials.NewSessionSweeper(store, nil, clock)
	old, fresh := uuid.New(), uuid.New()
	if err := w.DeleteTenant(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(tenant.MaxTimeout * time.Millisecond)
	mu.Unlock()
	if err := w.DeleteTenant(t.Context(), fresh); err != nil {
		t.Fatal(err)
	}
	runSweeper(t, w)
	if call := <-store.calls; call.tenantID != fresh {
		t.Errorf("swept %s first, want %s: the tenant deleted a session lifetime ago needs no sweep", call.tenantID, fresh)
	}
}

// TestSessionSweeperStops checks that DeleteTenant does not wait for a slow store, and that Run returns
// when its context ends, cutting the sweep in progress short and dropping the queue.
func TestSessionSweeperStops(t *testing.T) {
	store := &sweepStore{SessionStore: db.NewMemorySessions(nil), block: true, calls: make(chan sweepCall, 10)}
	w := credentials.NewSessionSweeper(store, nil, nil)
	stop := runSweeper(t, w)
	for range 3 {
		if err := w.DeleteTenant(t.Context(), uuid.New()); err != nil {
			t.Fatal(err)
		}
	}
	<-store.calls // the first sweep has started and blocks
	stop()
	if len(store.calls) != 0 {
		t.Errorf("%d more sweeps started after Run was stopped", len(store.calls))
	}
}
