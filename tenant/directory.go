package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/passkey-server/passkey-server/signing"
)

// Snapshot is an immutable view of one tenant at one revision, with everything derived from it that a
// request needs: the decrypted signer, the serialized JWKS, the API keys by hash, the CORS policy, and
// whatever other packages derive from it (see Derived). Snapshots are built once per revision and
// shared by all requests; a change makes a new one.
type Snapshot struct {
	Tenant
	// Issuer is the "iss" of the tenant's tokens.
	Issuer string
	Signer *signing.Signer
	// CORS is the tenant's compiled CORS policy.
	CORS    CORSPolicy
	keys    map[[32]byte]APIKey
	derived sync.Map // key → value built by Derived
}

// Derived returns the value build derives from the snapshot (a relying party, a CORS handler), built
// on first use and kept with the snapshot, so that it is rebuilt exactly when the tenant changes: the
// Directory is the one cache of everything derived per tenant revision. key identifies the value
// (use an unexported type of the calling package). An error is returned and not kept.
func Derived[T any](s *Snapshot, key any, build func(*Snapshot) (T, error)) (T, error) {
	if v, ok := s.derived.Load(key); ok {
		return v.(T), nil
	}
	v, err := build(s)
	if err != nil {
		var zero T
		return zero, err
	}
	actual, _ := s.derived.LoadOrStore(key, v)
	return actual.(T), nil
}

// DirectoryOptions configure a Directory.
type DirectoryOptions struct {
	Store  Store
	Sealer *signing.Sealer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// RefreshInterval is how often the directory asks the store for changed tenants, so a change made
	// on another instance is seen within this time. Default 2 seconds.
	RefreshInterval time.Duration
	// PublicURL is the public base URL of the service; a tenant's token issuer is PublicURL/{tenant_id}.
	PublicURL string
	Logger    *slog.Logger
}

// Directory serves resolved tenants from memory: the hot path never reloads a tenant from the
// database and never decrypts a key. A snapshot is loaded on first use and dropped when the tenant's
// revision changes (Evict on this instance, Refresh for changes made by other instances); it is
// rebuilt when its signing keys change with time alone (a rotated-in key takes over, a key leaves
// the JWKS: see signing.Signer.ChangesAt).
type Directory struct {
	store     Store
	sealer    *signing.Sealer
	now       func() time.Time
	refresh   time.Duration
	publicURL string
	log       *slog.Logger

	mu        sync.RWMutex
	snapshots map[uuid.UUID]*Snapshot
	keyIndex  map[[32]byte]uuid.UUID // API key hash → tenant id, for every cached tenant

	// loads makes concurrent requests for a tenant that is not cached (or whose keys' schedule moved
	// on) share one load from the store, so a burst, or the moment a rotated key takes over, costs one
	// read per instance, not one per request.
	loads singleflight.Group
}

// loadTimeout bounds a shared load: it runs for every request waiting on it, so no single request's
// context (a client that went away) may cancel it.
const loadTimeout = 5 * time.Second

// NewDirectory returns a Directory. Call Run to keep it fresh.
func NewDirectory(o DirectoryOptions) *Directory {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Directory{
		store:     o.Store,
		sealer:    o.Sealer,
		now:       o.Now,
		refresh:   o.RefreshInterval,
		publicURL: strings.TrimRight(o.PublicURL, "/"),
		log:       o.Logger,
		snapshots: map[uuid.UUID]*Snapshot{},
		keyIndex:  map[[32]byte]uuid.UUID{},
	}
}

// Resolve returns the tenant's current snapshot, loading and caching it on first use.
func (d *Directory) Resolve(ctx context.Context, id uuid.UUID) (*Snapshot, error) {
	d.mu.RLock()
	snap := d.snapshots[id]
	d.mu.RUnlock()
	if snap == nil {
		return d.sharedLoad(ctx, id)
	}
	if !snap.stale(d.now()) {
		return snap, nil
	}
	fresh, err := d.sharedLoad(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		// The stale snapshot is still a valid revision of the tenant: serve it rather than fail
		// while the store cannot answer, and try again on the next request.
		d.log.WarnContext(ctx, "rebuilding a tenant for its signing key schedule failed", "tenant", id, "error", err)
		return snap, nil
	}
	return fresh, err
}

// stale reports whether the snapshot's signing keys changed with time alone by now: a rotated-in key
// took over, or a key left the JWKS (an expired or revoked key must not stay published until the
// tenant's next change).
func (s *Snapshot) stale(now time.Time) bool {
	at := s.Signer.ChangesAt()
	return !at.IsZero() && !now.Before(at)
}

// sharedLoad loads the tenant once for every request that asks at the same time. (Do, not DoChan: a
// panic reaches the callers, whose recover answers 500, instead of ending the process.)
func (d *Directory) sharedLoad(ctx context.Context, id uuid.UUID) (*Snapshot, error) {
	v, err, _ := d.loads.Do(id.String(), func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		return d.load(lctx, id)
	})
	if err != nil {
		return nil, err
	}
	return v.(*Snapshot), nil
}

func (d *Directory) load(ctx context.Context, id uuid.UUID) (*Snapshot, error) {
	t, err := d.store.GetTenant(ctx, id)
	if err != nil {
		return nil, err
	}
	keys, err := d.store.ListAPIKeys(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load api keys: %w", err)
	}
	signingKeys, err := d.store.ListSigningKeys(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	signer, err := signing.NewSigner(signingKeys, d.sealer, d.now())
	if err != nil {
		return nil, fmt.Errorf("tenant %s signer: %w", id, err)
	}
	snap := &Snapshot{
		Tenant: t,
		Issuer: d.publicURL + "/" + id.String(),
		Signer: signer,
		CORS:   NewCORSPolicy(t.Config.CORS),
		keys:   make(map[[32]byte]APIKey, len(keys)),
	}
	for _, k := range keys {
		snap.keys[[32]byte(k.Hash)] = k
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if cur := d.snapshots[id]; cur != nil && cur.Revision >= snap.Revision && !cur.stale(d.now()) {
		return cur, nil // another request loaded it meanwhile
	}
	d.dropLocked(id)
	d.snapshots[id] = snap
	for h := range snap.keys {
		d.keyIndex[h] = id
	}
	return snap, nil
}

// tenantOfKey returns the cached tenant that has an API key with this hash.
func (d *Directory) tenantOfKey(hash [32]byte) (uuid.UUID, bool) {
	d.mu.RLock()
	id, ok := d.keyIndex[hash]
	d.mu.RUnlock()
	return id, ok
}

// Evict drops the tenant's snapshot; the next request loads the new revision.
func (d *Directory) Evict(id uuid.UUID) {
	d.mu.Lock()
	d.dropLocked(id)
	d.mu.Unlock()
}

func (d *Directory) dropLocked(id uuid.UUID) {
	if old := d.snapshots[id]; old != nil {
		for h := range old.keys {
			delete(d.keyIndex, h)
		}
		delete(d.snapshots, id)
	}
}

// Refresh drops every cached snapshot whose tenant has a newer revision or no longer exists. (A
// snapshot whose signing keys changed with time alone is rebuilt by Resolve.)
func (d *Directory) Refresh(ctx context.Context) error {
	revs, err := d.store.TenantRevisions(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, snap := range d.snapshots {
		if rev, ok := revs[id]; !ok || rev != snap.Revision {
			d.dropLocked(id)
		}
	}
	return nil
}

// Run calls Refresh every RefreshInterval until ctx ends.
func (d *Directory) Run(ctx context.Context) {
	tick := time.NewTicker(d.refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := d.Refresh(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("tenant cache refresh failed", "error", err)
		}
	}
}
