package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/api"
	"github.com/passkey-server/passkey-server/signing"
)

// Options configure a Service.
type Options struct {
	Store  Store
	Sealer *signing.Sealer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// RotationOverlap is how long a rotated-out signing key stays in the JWKS, so tokens it signed
	// can still be verified. Default 24 hours.
	RotationOverlap time.Duration
	// RefreshInterval is how often the cache asks the store for changed tenants, so a change made on
	// another instance is seen within this time. Default 2 seconds.
	RefreshInterval time.Duration
	// PublicURL is the public base URL of the service; a tenant's token issuer is PublicURL/{tenant_id}.
	PublicURL string
	Logger    *slog.Logger
}

// Service manages tenants and serves everything a request needs about its tenant from memory.
type Service struct {
	store     Store
	sealer    *signing.Sealer
	now       func() time.Time
	overlap   time.Duration
	refresh   time.Duration
	publicURL string
	log       *slog.Logger

	mu        sync.RWMutex
	snapshots map[uuid.UUID]*Snapshot
	keyIndex  map[[32]byte]uuid.UUID // API key hash → tenant id, for every cached tenant

	usedMu sync.Mutex
	used   map[uuid.UUID]time.Time // API key id → last use not yet written

	onDelete func(ctx context.Context, id uuid.UUID) error // see OnDelete
}

// NewService returns a Service. Call Run to keep its cache fresh.
func NewService(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RotationOverlap <= 0 {
		o.RotationOverlap = 24 * time.Hour
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{
		store:     o.Store,
		sealer:    o.Sealer,
		now:       o.Now,
		overlap:   o.RotationOverlap,
		refresh:   o.RefreshInterval,
		publicURL: strings.TrimRight(o.PublicURL, "/"),
		log:       o.Logger,
		snapshots: map[uuid.UUID]*Snapshot{},
		keyIndex:  map[[32]byte]uuid.UUID{},
		used:      map[uuid.UUID]time.Time{},
	}
}

// Snapshot is an immutable view of one tenant at one revision, with everything derived from it that a
// request needs: the decrypted signer, the serialized JWKS, the API keys by hash and the CORS
// middleware. Snapshots are built once per revision and shared by all requests.
type Snapshot struct {
	Tenant
	// Issuer is the "iss" of the tenant's tokens.
	Issuer string
	Signer *signing.Signer
	keys   map[[32]byte]APIKey
	cors   fiber.Handler
}

// CreateInput is what a new tenant is made from.
type CreateInput struct {
	DisplayName string
	Config      Config
	// CreateAPIKey also makes a secret API key named "Initial API Key" and returns its secret.
	CreateAPIKey bool
}

// CreatedKey is a freshly made API key with its secret, which is never retrievable again.
type CreatedKey struct {
	Secret string
	Key    APIKey
}

// Create validates and stores a new tenant with its first signing key and, when asked, a secret API
// key, which it returns (nil when none was made).
func (s *Service) Create(ctx context.Context, in CreateInput) (Tenant, *CreatedKey, error) {
	var p api.Problems
	in.DisplayName = strings.TrimSpace(in.DisplayName)
	if in.DisplayName == "" {
		p.Add("display_name is a required field")
	}
	p.Text("display_name", in.DisplayName)
	if err := p.Err(api.ErrInvalidRequest); err != nil {
		return Tenant{}, nil, err
	}
	in.Config.Normalize()
	if err := in.Config.Validate(); err != nil {
		return Tenant{}, nil, err
	}
	now := s.now().UTC()
	t := Tenant{ID: uuid.New(), DisplayName: in.DisplayName, Config: in.Config, Revision: 1, CreatedAt: now, UpdatedAt: now}
	signingKey, err := signing.GenerateKey(t.ID, in.Config.SigningAlgorithm, s.sealer, now)
	if err != nil {
		return Tenant{}, nil, err
	}
	var keys []APIKey
	var created *CreatedKey
	if in.CreateAPIKey {
		secret, k, err := NewAPIKey(t.ID, "Initial API Key", KindSecret, now, nil)
		if err != nil {
			return Tenant{}, nil, err
		}
		keys = append(keys, k)
		created = &CreatedKey{Secret: secret, Key: k}
	}
	if err := s.store.CreateTenant(ctx, t, keys, signingKey); err != nil {
		return Tenant{}, nil, fmt.Errorf("create tenant: %w", err)
	}
	return t, created, nil
}

// Get returns a tenant (from the cache when it is there).
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Tenant, error) {
	snap, err := s.Resolve(ctx, id)
	if err != nil {
		return Tenant{}, err
	}
	return snap.Tenant, nil
}

// List returns every tenant.
func (s *Service) List(ctx context.Context) ([]Tenant, error) {
	return s.store.ListTenants(ctx)
}

// Rename changes a tenant's display name.
func (s *Service) Rename(ctx context.Context, id uuid.UUID, displayName string) error {
	displayName = strings.TrimSpace(displayName)
	if displayName == "" {
		return api.Problems{"display_name is a required field"}.Err(api.ErrInvalidRequest)
	}
	if !api.StorableText(displayName) {
		return api.Problems{"display_name must be valid UTF-8 without NUL characters"}.Err(api.ErrInvalidRequest)
	}
	t, err := s.store.GetTenant(ctx, id)
	if err != nil {
		return err
	}
	t.DisplayName = displayName
	t.UpdatedAt = s.now().UTC()
	return s.save(ctx, t)
}

// SetConfig validates and replaces a tenant's whole config (omitted optional parts get their defaults,
// as in Hanko).
func (s *Service) SetConfig(ctx context.Context, id uuid.UUID, c Config) error {
	c.Normalize()
	if err := c.Validate(); err != nil {
		return err
	}
	t, err := s.store.GetTenant(ctx, id)
	if err != nil {
		return err
	}
	t.Config = c
	t.UpdatedAt = s.now().UTC()
	return s.save(ctx, t)
}

func (s *Service) save(ctx context.Context, t Tenant) error {
	if err := s.store.UpdateTenant(ctx, t); err != nil {
		return fmt.Errorf("update tenant: %w", err)
	}
	s.evict(t.ID)
	return nil
}

// Delete removes a tenant and everything it owns: its database rows, then what OnDelete's function
// removes elsewhere (the ceremony sessions). The database delete decides the outcome: should the
// function fail, the failure is logged and the delete still succeeds (what it leaves behind belongs to
// a tenant that no request can reach any more, and expires).
func (s *Service) Delete(ctx context.Context, id uuid.UUID) error {
	if err := s.store.DeleteTenant(ctx, id); err != nil {
		return err
	}
	s.evict(id)
	if s.onDelete != nil {
		if err := s.onDelete(ctx, id); err != nil {
			s.log.WarnContext(ctx, "deleted tenant's data outside the database left to expire", "tenant", id, "err", err)
		}
	}
	return nil
}

// OnDelete sets the function Delete calls after a tenant's rows are gone, for what the tenant owns
// outside the database. Call it while wiring the service, before serving.
func (s *Service) OnDelete(fn func(ctx context.Context, id uuid.UUID) error) { s.onDelete = fn }

// CreateAPIKey makes a new API key for the tenant and returns its secret, shown once, and its record.
func (s *Service) CreateAPIKey(ctx context.Context, tenantID uuid.UUID, name string, kind KeyKind, expiresAt *time.Time) (string, APIKey, error) {
	var p api.Problems
	name = strings.TrimSpace(name)
	if name == "" {
		p.Add("name is a required field")
	} else if len(name) > 128 {
		p.Add("name cannot have more than 128 characters")
	}
	p.Text("name", name)
	if kind == "" {
		kind = KindSecret
	}
	if !kind.Valid() {
		p.Add("kind must be one of 'secret publishable'")
	}
	now := s.now().UTC()
	if expiresAt != nil && !expiresAt.After(now) {
		p.Add("expires_at must be in the future")
	}
	if err := p.Err(api.ErrInvalidRequest); err != nil {
		return "", APIKey{}, err
	}
	secret, k, err := NewAPIKey(tenantID, name, kind, now, expiresAt)
	if err != nil {
		return "", APIKey{}, err
	}
	if err := s.store.CreateAPIKey(ctx, k); err != nil {
		return "", APIKey{}, err
	}
	s.evict(tenantID)
	return secret, k, nil
}

// ListAPIKeys returns the tenant's API keys (hashes and hints only).
func (s *Service) ListAPIKeys(ctx context.Context, tenantID uuid.UUID) ([]APIKey, error) {
	if _, err := s.store.GetTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	return s.store.ListAPIKeys(ctx, tenantID)
}

// DeleteAPIKey revokes an API key. Every instance stops accepting it within RefreshInterval.
func (s *Service) DeleteAPIKey(ctx context.Context, tenantID, keyID uuid.UUID) error {
	if err := s.store.DeleteAPIKey(ctx, tenantID, keyID); err != nil {
		return err
	}
	s.evict(tenantID)
	return nil
}

// SigningKeys returns the tenant's signing keys, newest first.
func (s *Service) SigningKeys(ctx context.Context, tenantID uuid.UUID) ([]signing.Key, error) {
	if _, err := s.store.GetTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	return s.store.ListSigningKeys(ctx, tenantID)
}

// RotateSigningKey makes a new active signing key with the tenant's configured algorithm. The previous
// key stops signing at once and stays in the JWKS for overlap (the service default when zero).
func (s *Service) RotateSigningKey(ctx context.Context, tenantID uuid.UUID, overlap time.Duration) (signing.Key, error) {
	if overlap <= 0 {
		overlap = s.overlap
	}
	t, err := s.store.GetTenant(ctx, tenantID)
	if err != nil {
		return signing.Key{}, err
	}
	now := s.now().UTC()
	next, err := signing.GenerateKey(tenantID, t.Config.SigningAlgorithm, s.sealer, now)
	if err != nil {
		return signing.Key{}, err
	}
	if err := s.store.RotateSigningKey(ctx, next, now.Add(overlap)); err != nil {
		return signing.Key{}, err
	}
	s.evict(tenantID)
	return next, nil
}

// Resolve returns the tenant's current snapshot, loading and caching it on first use.
func (s *Service) Resolve(ctx context.Context, id uuid.UUID) (*Snapshot, error) {
	s.mu.RLock()
	snap := s.snapshots[id]
	s.mu.RUnlock()
	if snap != nil {
		return snap, nil
	}
	return s.load(ctx, id)
}

func (s *Service) load(ctx context.Context, id uuid.UUID) (*Snapshot, error) {
	t, err := s.store.GetTenant(ctx, id)
	if err != nil {
		return nil, err
	}
	keys, err := s.store.ListAPIKeys(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load api keys: %w", err)
	}
	signingKeys, err := s.store.ListSigningKeys(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	signer, err := signing.NewSigner(signingKeys, s.sealer, s.now())
	if err != nil {
		return nil, fmt.Errorf("tenant %s signer: %w", id, err)
	}
	snap := &Snapshot{
		Tenant: t,
		Issuer: s.publicURL + "/" + id.String(),
		Signer: signer,
		keys:   make(map[[32]byte]APIKey, len(keys)),
		cors:   newCORS(t.Config.CORS),
	}
	for _, k := range keys {
		snap.keys[[32]byte(k.Hash)] = k
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.snapshots[id]; cur != nil && cur.Revision >= snap.Revision {
		return cur, nil // another request loaded it meanwhile
	}
	s.dropLocked(id)
	s.snapshots[id] = snap
	for h := range snap.keys {
		s.keyIndex[h] = id
	}
	return snap, nil
}

func (s *Service) evict(id uuid.UUID) {
	s.mu.Lock()
	s.dropLocked(id)
	s.mu.Unlock()
}

func (s *Service) dropLocked(id uuid.UUID) {
	if old := s.snapshots[id]; old != nil {
		for h := range old.keys {
			delete(s.keyIndex, h)
		}
		delete(s.snapshots, id)
	}
}

// Authenticate finds the tenant and API key of a secret. Unknown, deleted and expired keys are
// ErrInvalidAPIKey.
func (s *Service) Authenticate(ctx context.Context, secret string) (*Snapshot, APIKey, error) {
	if strings.TrimSpace(secret) == "" {
		return nil, APIKey{}, ErrInvalidAPIKey
	}
	hash := [32]byte(HashAPIKey(secret))
	s.mu.RLock()
	id, ok := s.keyIndex[hash]
	s.mu.RUnlock()
	if !ok {
		k, err := s.store.APIKeyByHash(ctx, hash[:])
		if errors.Is(err, ErrAPIKeyNotFound) {
			return nil, APIKey{}, ErrInvalidAPIKey
		}
		if err != nil {
			return nil, APIKey{}, fmt.Errorf("look up api key: %w", err)
		}
		id = k.TenantID
	}
	snap, err := s.Resolve(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, APIKey{}, ErrInvalidAPIKey
	}
	if err != nil {
		return nil, APIKey{}, err
	}
	k, err := s.checkKey(snap, hash)
	return snap, k, err
}

// CheckAPIKey checks that secret is a valid API key of the snapshot's tenant.
func (s *Service) CheckAPIKey(snap *Snapshot, secret string) (APIKey, error) {
	if strings.TrimSpace(secret) == "" {
		return APIKey{}, ErrInvalidAPIKey
	}
	return s.checkKey(snap, [32]byte(HashAPIKey(secret)))
}

func (s *Service) checkKey(snap *Snapshot, hash [32]byte) (APIKey, error) {
	k, ok := snap.keys[hash]
	now := s.now()
	if !ok || k.Expired(now) {
		return APIKey{}, ErrInvalidAPIKey
	}
	s.usedMu.Lock()
	s.used[k.ID] = now.UTC()
	s.usedMu.Unlock()
	return k, nil
}

// Run keeps the cache fresh until ctx ends: every RefreshInterval it drops snapshots whose tenant
// changed or disappeared (they are reloaded on next use), and about every minute it writes the API keys'
// last-use times in one batch (never on the request path).
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(s.refresh)
	defer tick.Stop()
	lastFlush := s.now()
	for {
		select {
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.FlushKeyUse(flushCtx)
			cancel()
			return
		case <-tick.C:
		}
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("tenant cache refresh failed", "error", err)
		}
		if s.now().Sub(lastFlush) >= time.Minute {
			s.FlushKeyUse(ctx)
			lastFlush = s.now()
		}
	}
}

// Refresh drops every cached snapshot whose tenant has a newer revision or no longer exists.
func (s *Service) Refresh(ctx context.Context) error {
	revs, err := s.store.TenantRevisions(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, snap := range s.snapshots {
		if rev, ok := revs[id]; !ok || rev != snap.Revision {
			s.dropLocked(id)
		}
	}
	return nil
}

// FlushKeyUse writes the pending last-used times of API keys.
func (s *Service) FlushKeyUse(ctx context.Context) {
	s.usedMu.Lock()
	used := s.used
	s.used = map[uuid.UUID]time.Time{}
	s.usedMu.Unlock()
	if len(used) == 0 {
		return
	}
	if err := s.store.TouchAPIKeys(ctx, used); err != nil {
		s.log.Warn("recording api key use failed", "error", err, "keys", len(used))
	}
}
