package webhooks

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
)

// DefaultRefresh is how often an Index reloads the subscriptions, to see endpoint changes made on
// other instances.
const DefaultRefresh = 5 * time.Second

// enqueueTimeout bounds the insert of an event's deliveries.
const enqueueTimeout = 5 * time.Second

// Index knows, in memory, which enabled endpoints of which tenant subscribe to which event type, so
// that an event of a tenant without a subscribed endpoint costs no query. It is also the event bus's
// webhook subscriber (Emit). It reloads every refresh interval, and at once after a change made
// through this instance's Service.
type Index struct {
	store   Store
	log     *slog.Logger
	refresh time.Duration

	mu       sync.RWMutex
	byTenant map[uuid.UUID]map[string][]uuid.UUID
	loaded   atomic.Bool
	loadMu   sync.Mutex
	// revision is the store's SubscriptionsRevision that byTenant was read at (under loadMu).
	revision int64
	// reads counts the loads that read the subscriptions (tests).
	reads atomic.Uint64

	enqueued atomic.Uint64
	failed   atomic.Uint64
}

// NewIndex returns an Index over store; refresh 0 means DefaultRefresh.
func NewIndex(store Store, refresh time.Duration, log *slog.Logger) *Index {
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	if log == nil {
		log = slog.Default()
	}
	return &Index{store: store, log: log, refresh: refresh}
}

// Load reads every enabled endpoint's subscriptions, when they changed since the last load: a load
// whose store's SubscriptionsRevision has not moved costs one one-row read. The revision is read
// first, so that a change made between the two reads is read again at the next load, never missed.
func (x *Index) Load(ctx context.Context) error {
	x.loadMu.Lock()
	defer x.loadMu.Unlock()
	rev, err := x.store.SubscriptionsRevision(ctx)
	if err != nil {
		return err
	}
	if x.loaded.Load() && rev == x.revision {
		return nil
	}
	subs, err := x.store.Subscriptions(ctx)
	if err != nil {
		return err
	}
	x.reads.Add(1)
	m := byTenant(subs)
	x.mu.Lock()
	x.byTenant = m
	x.mu.Unlock()
	x.revision = rev
	x.loaded.Store(true)
	return nil
}

// byTenant indexes subscriptions by tenant and event type.
func byTenant(subs []Subscription) map[uuid.UUID]map[string][]uuid.UUID {
	m := make(map[uuid.UUID]map[string][]uuid.UUID)
	for _, s := range subs {
		byType := m[s.TenantID]
		if byType == nil {
			byType = map[string][]uuid.UUID{}
			m[s.TenantID] = byType
		}
		for _, t := range s.Events {
			byType[t] = append(byType[t], s.EndpointID)
		}
	}
	return m
}

// Reads returns how many loads read the subscriptions (the others found them unchanged).
func (x *Index) Reads() uint64 { return x.reads.Load() }

// Run reloads the index every refresh interval until ctx ends.
func (x *Index) Run(ctx context.Context) {
	t := time.NewTicker(x.refresh)
	defer t.Stop()
	for {
		if err := x.Load(ctx); err != nil && ctx.Err() == nil {
			x.log.Warn("webhooks: reload subscriptions", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Endpoints returns the enabled endpoints of a tenant subscribed to an event type.
func (x *Index) Endpoints(tenantID uuid.UUID, typ string) []uuid.UUID {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.byTenant[tenantID][typ]
}

// Enqueued returns how many deliveries events made; EnqueueFailed how many events' deliveries could
// not be stored (they are lost: logged and counted).
func (x *Index) Enqueued() uint64      { return x.enqueued.Load() }
func (x *Index) EnqueueFailed() uint64 { return x.failed.Load() }

// Wants implements passkey.Outbox: whether an enabled endpoint of e's tenant subscribes to e's type.
// Before the first load it answers true, so that an event is never lost to a cold index (Record
// reads the subscriptions itself).
func (x *Index) Wants(e passkey.Event) bool {
	typ := TypeOf(e)
	if typ == "" || e.TenantID == uuid.Nil {
		return false
	}
	return !x.loaded.Load() || len(x.Endpoints(e.TenantID, typ)) > 0
}

// Record implements passkey.Outbox: it stores the deliveries of a domain event for the tenant's
// subscribed endpoints, with their queue jobs, in the transaction of ctx (passkey.Bus.Commit): they
// exist exactly when the change that caused the event committed.
func (x *Index) Record(ctx context.Context, e passkey.Event) error {
	typ := TypeOf(e)
	if typ == "" || e.TenantID == uuid.Nil {
		return nil
	}
	ids, err := x.endpointsOf(ctx, e.TenantID, typ)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	msg, err := NewMessage(typ, e)
	if err != nil {
		return fmt.Errorf("build webhook message: %w", err)
	}
	ds, err := x.store.Enqueue(ctx, e.TenantID, ids, msg.Type, msg.Payload)
	if err != nil {
		return fmt.Errorf("enqueue webhook deliveries: %w", err)
	}
	x.enqueued.Add(uint64(len(ds)))
	return nil
}

// endpointsOf is Endpoints, or, before the index's first load, the subscriptions read with ctx, in
// the transaction of the change that asks. It does not load the index: a load waits for loadMu, which
// a load through the pool may hold while it waits for the database connection that this transaction
// holds (SQLite's pool is one connection), and neither would move until the load timed out.
func (x *Index) endpointsOf(ctx context.Context, tenantID uuid.UUID, typ string) ([]uuid.UUID, error) {
	if x.loaded.Load() {
		return x.Endpoints(tenantID, typ), nil
	}
	subs, err := x.store.Subscriptions(ctx)
	if err != nil {
		return nil, fmt.Errorf("read webhook subscriptions: %w", err)
	}
	return byTenant(subs)[tenantID][typ], nil
}

// Emit implements passkey.Sink for the events that are no change (a refused login, a failed
// transaction signature): it records them in a transaction of their own before the request that
// caused them answers. A failure to store is logged and counted, never the request's failure.
func (x *Index) Emit(ctx context.Context, e passkey.Event) {
	if !x.Wants(e) {
		return
	}
	// The request may end (a client gone) while the insert runs; the event happened all the same.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer cancel()
	if err := x.Record(ctx, e); err != nil {
		x.failed.Add(1)
		x.log.Error("webhooks: event not sent", "error", err, "type", TypeOf(e), "tenant", e.TenantID)
	}
}
