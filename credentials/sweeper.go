package credentials

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/tenant"
)

// sessionLifetime is the longest a session lives: the longest ceremony timeout a tenant config may
// set. A tenant's sessions that a sweep has not deleted this long after the tenant was deleted have
// expired by themselves, so a sweep never needs to run longer, nor start later.
const sessionLifetime = tenant.MaxTimeout * time.Millisecond

// maxPendingSweeps bounds the tenants queued for a sweep. Past it, a deleted tenant's sessions are
// left to expire: they are unusable anyway, since the tenant no longer resolves.
const maxPendingSweeps = 10_000

// SessionSweeper deletes the ceremony sessions of deleted tenants in the background, so that the admin
// request deleting a tenant does not wait for the session store: RedisSessions.DeleteTenant walks the
// whole Redis keyspace (SCAN), about a second with a million keys (BenchmarkAdminTenantDelete in
// cmd/passkey-server; the admin request took 1.4-1.8 s when it waited). A deleted tenant's sessions
// cannot be used meanwhile, because the tenant no longer resolves; the sweep only frees their memory
// before their ceremony timeout would.
//
// Tenants are swept one at a time, in the order they were deleted, each for at most sessionLifetime.
// Whatever a sweep misses (it was cut short, failed, or the instance stopped first) expires with its
// ceremony timeout.
type SessionSweeper struct {
	store SessionStore
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	pending []pendingSweep
	// wake has room for one signal: DeleteTenant never blocks, and a Run that is busy sees the new
	// entries when it next looks at pending.
	wake chan struct{}
}

// pendingSweep is a deleted tenant whose sessions are still to be deleted.
type pendingSweep struct {
	tenantID  uuid.UUID
	deletedAt time.Time
}

// NewSessionSweeper returns a sweeper of store's sessions that logs to log (slog.Default when nil) and
// uses now as its clock (time.Now when nil). Nothing is swept until Run runs.
func NewSessionSweeper(store SessionStore, log *slog.Logger, now func() time.Time) *SessionSweeper {
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &SessionSweeper{store: store, log: log, now: now, wake: make(chan struct{}, 1)}
}

// DeleteTenant queues the deletion of the tenant's sessions and returns at once, with a nil error: it
// is tenant.Options.OnDelete, called by the request that deleted the tenant.
func (w *SessionSweeper) DeleteTenant(_ context.Context, tenantID uuid.UUID) error {
	w.mu.Lock()
	if len(w.pending) < maxPendingSweeps {
		w.pending = append(w.pending, pendingSweep{tenantID: tenantID, deletedAt: w.now()})
	} else {
		w.log.Warn("too many deleted tenants queued for a session sweep: this one's sessions are left to expire",
			"tenant", tenantID, "queued", len(w.pending))
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run sweeps the queued tenants until ctx ends. Then it cancels the sweep in progress and drops the
// queue (those sessions expire), and returns: shutdown does not wait for a walk over the keyspace.
func (w *SessionSweeper) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			w.mu.Lock()
			left := len(w.pending)
			w.pending = nil
			w.mu.Unlock()
			if left > 0 {
				w.log.Info("stopping: sessions of deleted tenants left to expire", "tenants", left)
			}
			return
		case <-w.wake:
			for w.sweepOne(ctx) {
			}
		}
	}
}

// sweepOne deletes the sessions of the first queued tenant and reports whether there was one.
func (w *SessionSweeper) sweepOne(ctx context.Context) bool {
	w.mu.Lock()
	if len(w.pending) == 0 || ctx.Err() != nil {
		w.mu.Unlock()
		return false
	}
	next := w.pending[0]
	w.pending = w.pending[1:]
	if len(w.pending) == 0 {
		w.pending = nil // let the backing array of a long queue go
	}
	w.mu.Unlock()

	left := sessionLifetime - w.now().Sub(next.deletedAt)
	if left <= 0 {
		return true // every session it had has expired
	}
	sweepCtx, cancel := context.WithTimeout(ctx, left)
	defer cancel()
	start := w.now()
	if err := w.store.DeleteTenant(sweepCtx, next.tenantID); err != nil {
		if ctx.Err() == nil {
			w.log.Warn("deleted tenant's sessions left to expire", "tenant", next.tenantID, "err", err)
		}
		return true
	}
	w.log.Debug("deleted tenant's sessions swept", "tenant", next.tenantID, "took", w.now().Sub(start).String())
	return true
}
