package tenant

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"

	"github.com/passkey-server/passkey-server/signing"
)

// Snapshot is an immutable view of one tenant at one revision, with everything derived from it that a
// request needs: the decrypted signer, the serialized JWKS, the API keys by hash, the CORS policy, and
// whatever other packages derive from it (see Derived). Snapshots are built once per revision and
// shared by all requests; a change makes a new one.
//
// A Directory may hold many thousands of snapshots, so a snapshot keeps only what requests read (about
// 2 KiB for a tenant with one API key: README "Many tenants"), and values that only some tenants'
// requests need are derived on first use.
type Snapshot struct {
	Tenant
	// Issuer is the "iss" of the tenant's tokens.
	Issuer string
	Signer *signing.Signer
	// CORS is the tenant's compiled CORS policy.
	CORS CORSPolicy
	// keys are the tenant's API keys sorted by hash: a tenant has a few, and a sorted slice costs a
	// fraction of a map of them.
	keys    []APIKey
	derived atomic.Pointer[[]derivedValue]
}

// derivedValue is one value built by Derived.
type derivedValue struct{ key, value any }

// key returns the tenant's API key with this hash.
func (s *Snapshot) key(hash [32]byte) (APIKey, bool) {
	i, ok := slices.BinarySearchFunc(s.keys, hash, func(k APIKey, h [32]byte) int { return bytes.Compare(k.Hash, h[:]) })
	if !ok {
		return APIKey{}, false
	}
	return s.keys[i], true
}

// Derived returns the value build derives from the snapshot (a relying party, a CORS handler), built
// on first use and kept with the snapshot, so that it is rebuilt exactly when the tenant changes: the
// Directory is the one cache of everything derived per tenant revision. key identifies the value
// (use an unexported comparable type of the calling package). An error is returned and not kept.
//
// A snapshot holds a few such values, so they are a small list replaced as a whole when one is
// added: a read is a few comparisons and allocates nothing.
func Derived[T any](s *Snapshot, key any, build func(*Snapshot) (T, error)) (T, error) {
	if v, ok := s.lookupDerived(key); ok {
		return v.(T), nil
	}
	v, err := build(s)
	if err != nil {
		var zero T
		return zero, err
	}
	for {
		old := s.derived.Load()
		var list []derivedValue
		if old != nil {
			for _, d := range *old {
				if d.key == key { // another request built it meanwhile: everyone uses the first
					return d.value.(T), nil
				}
			}
			list = make([]derivedValue, len(*old), len(*old)+1)
			copy(list, *old)
		}
		list = append(list, derivedValue{key, v})
		if s.derived.CompareAndSwap(old, &list) {
			return v, nil
		}
	}
}

func (s *Snapshot) lookupDerived(key any) (any, bool) {
	if list := s.derived.Load(); list != nil {
		for _, d := range *list {
			if d.key == key {
				return d.value, true
			}
		}
	}
	return nil, false
}

// DefaultCacheSize is how many tenants a Directory keeps by default. At about 2.5 KiB of heap each
// (4 KiB once a ceremony has built their relying party and CORS handler) 10,000 tenants take some
// 40 MiB, a bound that suits one instance of a small machine; a
// tenant beyond that costs one load from the store (three short queries and a key decryption, about
// a millisecond) when it comes back after it was evicted.
const DefaultCacheSize = 10_000

// DirectoryOptions configure a Directory.
type DirectoryOptions struct {
	Store  Store
	Sealer *signing.Sealer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// RefreshInterval is how often the directory reads the store's change feed, so a change made on
	// another instance is seen within this time. Default 2 seconds.
	RefreshInterval time.Duration
	// CacheSize is the most tenants kept in memory (DefaultCacheSize when not positive); the least
	// useful are evicted first.
	CacheSize int
	// PublicURL is the public base URL of the service; a tenant's token issuer is PublicURL/{tenant_id}.
	PublicURL string
	Logger    *slog.Logger
}

// Directory serves resolved tenants from memory: the hot path never reloads a tenant from the
// database and never decrypts a key. A snapshot is loaded on first use and dropped when the tenant's
// revision changes (Evict on this instance, Refresh for changes made by other instances); it is
// rebuilt when its signing keys change with time alone (a rotated-in key takes over, a key leaves
// the JWKS: see signing.Signer.ChangesAt).
//
// The cache is bounded (DirectoryOptions.CacheSize). It is otter's W-TinyLFU cache: reads take no
// lock and allocate nothing, and it keeps the tenants that are used often over those that were used
// once, so a scan across many tenants does not push out the busy ones.
type Directory struct {
	store     Store
	sealer    *signing.Sealer
	now       func() time.Time
	refresh   time.Duration
	publicURL string
	log       *slog.Logger

	snapshots *otter.Cache[uuid.UUID, *Snapshot]
	// keyTenants maps an API key's hash to its tenant, for the key-scoped routes, which name no
	// tenant. An entry is a hint, never trusted: the key is checked in the tenant's snapshot, and a
	// key never moves to another tenant, so an entry left over from a deleted key or tenant only
	// leads to a refusal. It is bounded like the snapshots, with room for a few keys per tenant.
	keyTenants *otter.Cache[[32]byte, uuid.UUID]

	// loads makes concurrent requests for a tenant that is not cached (or whose keys' schedule moved
	// on) share one load from the store, so a burst, or the moment a rotated key takes over, costs one
	// read per instance, not one per request.
	loads singleflight.Group
	// evictions counts Evict calls: a load that began before an Evict read the tenant before the
	// change committed, so it answers its own requests but does not stay in the cache.
	evictions atomic.Uint64

	// poll serializes reads of the change feed; cursor is where the last one ended, and polled says
	// whether there was one.
	poll   sync.Mutex
	cursor ChangeCursor
	polled bool
}

// keysPerTenant is how many API keys per cached tenant keyTenants has room for.
const keysPerTenant = 4

// loadTimeout bounds a shared load: it runs for every request waiting on it, so no single request's
// context (a client that went away) may cancel it. It must stay well below ChangeReplay (see Refresh).
const loadTimeout = 5 * time.Second

// NewDirectory returns a Directory. Call Run to keep it fresh.
func NewDirectory(o DirectoryOptions) *Directory {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = 2 * time.Second
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Directory{
		store:      o.Store,
		sealer:     o.Sealer,
		now:        o.Now,
		refresh:    o.RefreshInterval,
		publicURL:  strings.TrimRight(o.PublicURL, "/"),
		log:        o.Logger,
		snapshots:  otter.Must(&otter.Options[uuid.UUID, *Snapshot]{MaximumSize: o.CacheSize}),
		keyTenants: otter.Must(&otter.Options[[32]byte, uuid.UUID]{MaximumSize: keysPerTenant * o.CacheSize}),
	}
}

// Resolve returns the tenant's current snapshot, loading and caching it on first use.
func (d *Directory) Resolve(ctx context.Context, id uuid.UUID) (*Snapshot, error) {
	snap, ok := d.snapshots.GetIfPresent(id)
	if !ok {
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
	evictions := d.evictions.Load()
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
	for i := range keys {
		// Only what a request reads: the last use is the store's (Keys.Flush writes it).
		keys[i].LastUsedAt = nil
	}
	slices.SortFunc(keys, func(a, b APIKey) int { return bytes.Compare(a.Hash, b.Hash) })
	snap := &Snapshot{
		Tenant: t,
		Issuer: d.publicURL + "/" + id.String(),
		Signer: signer,
		CORS:   NewCORSPolicy(t.Config.CORS),
		keys:   slices.Clip(keys),
	}

	now := d.now()
	actual, _ := d.snapshots.Compute(id, func(cur *Snapshot, found bool) (*Snapshot, otter.ComputeOp) {
		if found && cur.Revision >= snap.Revision && !cur.stale(now) {
			return cur, otter.CancelOp // another request loaded it meanwhile
		}
		if d.evictions.Load() != evictions {
			return cur, otter.CancelOp // an Evict since the read: snap may predate the change
		}
		return snap, otter.WriteOp
	})
	if actual != snap && (actual == nil || actual.Revision < snap.Revision) {
		actual = snap // not cached, but the freshest this request has
	}
	if actual == snap {
		for _, k := range snap.keys {
			d.keyTenants.Set([32]byte(k.Hash), id)
		}
	}
	return actual, nil
}

// tenantOfKey returns the tenant that, as far as this instance knows, has an API key with this hash.
func (d *Directory) tenantOfKey(hash [32]byte) (uuid.UUID, bool) {
	return d.keyTenants.GetIfPresent(hash)
}

// rememberKey notes the tenant of an API key found in the store.
func (d *Directory) rememberKey(hash [32]byte, id uuid.UUID) {
	d.keyTenants.Set(hash, id)
}

// Evict drops the tenant's snapshot; the next request loads the new revision. A load under way
// keeps answering the requests waiting on it but is not cached, and later requests do not join it.
func (d *Directory) Evict(id uuid.UUID) {
	d.evictions.Add(1)
	d.loads.Forget(id.String())
	d.snapshots.Invalidate(id)
}

// Refresh reads the changes made to tenants since the previous Refresh, on any instance, from the
// store's change feed, and drops every cached snapshot that a change made out of date: one of an
// older revision, or of a deleted tenant. Its cost grows with the number of changes, not of tenants.
// (A snapshot whose signing keys changed with time alone is rebuilt by Resolve.)
//
// The feed returns changes again for ChangeReplay after they were read, and applying one twice
// changes nothing: that also catches a load that read a tenant just before a change committed and
// cached it just after the Refresh that applied the change (a load takes at most loadTimeout).
func (d *Directory) Refresh(ctx context.Context) error {
	d.poll.Lock()
	defer d.poll.Unlock()
	changes, next, err := d.store.TenantChanges(ctx, d.cursor)
	if err != nil {
		return err
	}
	if !d.polled || next.At.Sub(d.cursor.At) >= ChangeRetention {
		// The first read: snapshots loaded before it may predate changes it does not return. Or so
		// long since the last read that the store may have dropped changes not read yet.
		d.snapshots.InvalidateAll()
	}
	for _, c := range changes {
		d.snapshots.ComputeIfPresent(c.TenantID, func(cur *Snapshot) (*Snapshot, otter.ComputeOp) {
			if c.Revision == 0 || cur.Revision < c.Revision {
				return nil, otter.InvalidateOp
			}
			return cur, otter.CancelOp
		})
	}
	d.cursor, d.polled = next, true
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
