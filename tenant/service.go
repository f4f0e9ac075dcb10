package tenant

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/signing"
)

// Options configure a Service.
type Options struct {
	Store     Store
	Sealer    *signing.Sealer
	Directory *Directory
	// Events receives what the service changes, each change with its events (passkey.Bus.Commit);
	// nil drops them.
	Events *passkey.Bus
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// RotationOverlap is how long a rotated-out signing key stays in the JWKS after it stops signing,
	// so tokens it signed can still be verified. Default 24 hours.
	RotationOverlap time.Duration
	// KeyActivation is how long a rotated-in signing key is published in the JWKS before it signs;
	// the previous key signs until then. It must exceed the Directory's refresh interval plus the
	// JWKS cache age, so that every instance and every cached JWKS knows the key before a token
	// carries it. Zero signs with the new key at once, which is safe only for one instance whose
	// verifiers do not cache the JWKS; serve sets PASSKEY_SIGNING_KEY_ACTIVATION.
	KeyActivation time.Duration
	// OnDelete is called after a tenant's rows are gone, for what the tenant owns outside the database
	// (its pending ceremony sessions). The admin request waits for it, so it should only queue the work
	// (serve passes credentials.SessionSweeper's DeleteTenant).
	OnDelete func(ctx context.Context, id uuid.UUID) error
	Logger   *slog.Logger
}

// Service manages tenants: their lifecycle and config, API keys and signing keys. Every change evicts
// the tenant from the Directory and emits an event.
type Service struct {
	store    Store
	sealer   *signing.Sealer
	dir      *Directory
	events   *passkey.Bus
	now      func() time.Time
	overlap  time.Duration
	activate time.Duration
	onDelete func(ctx context.Context, id uuid.UUID) error
	log      *slog.Logger
}

// NewService returns a Service.
func NewService(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RotationOverlap <= 0 {
		o.RotationOverlap = 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{store: o.Store, sealer: o.Sealer, dir: o.Directory, events: o.Events, now: o.Now,
		overlap: o.RotationOverlap, activate: max(o.KeyActivation, 0), onDelete: o.OnDelete, log: o.Logger}
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// CreateInput is what a new tenant is made from.
type CreateInput struct {
	// ID is the new tenant's id; uuid.Nil makes a random one. An import gives the archive's, so that
	// the tenant keeps its public URLs (/{tenant_id}/...) and tokens' iss.
	ID          uuid.UUID
	DisplayName string
	Config      Config
	// CreateAPIKey also makes a secret API key named "Initial API Key" and returns its secret.
	CreateAPIKey bool
	// APIKeys are stored as given (hash, kind, name): keys an import carries from another server, whose
	// secrets the applications already hold.
	APIKeys []APIKey
}

// CreatedKey is a freshly made API key with its secret, which is never retrievable again.
type CreatedKey struct {
	Secret string
	Key    APIKey
}

// checkDisplayName trims a tenant's display name and checks it.
func checkDisplayName(name string) (string, error) {
	name = strings.TrimSpace(name)
	var p passkey.Problems
	if name == "" {
		p.Add("display_name is a required field")
	}
	p.Text("display_name", name)
	return name, p.Err(passkey.ErrInvalidRequest)
}

// Create validates and stores a new tenant with its first signing key and, when asked, a secret API
// key, which it returns (nil when none was made).
func (s *Service) Create(ctx context.Context, in CreateInput) (Tenant, *CreatedKey, error) {
	name, err := checkDisplayName(in.DisplayName)
	if err != nil {
		return Tenant{}, nil, err
	}
	in.Config.Normalize()
	if err := in.Config.Validate(); err != nil {
		return Tenant{}, nil, err
	}
	now := s.now().UTC()
	id := in.ID
	if id == uuid.Nil {
		id = uuid.New()
	}
	t := Tenant{ID: id, DisplayName: name, Config: in.Config, Revision: 1, CreatedAt: now, UpdatedAt: now}
	signingKey, err := signing.GenerateKey(t.ID, in.Config.SigningAlgorithm, s.sealer, now)
	if err != nil {
		return Tenant{}, nil, err
	}
	keys := make([]APIKey, 0, len(in.APIKeys)+1)
	for _, k := range in.APIKeys {
		k.TenantID = t.ID
		keys = append(keys, k)
	}
	var created *CreatedKey
	if in.CreateAPIKey {
		secret, k, err := NewAPIKey(t.ID, "Initial API Key", KindSecret, now, nil)
		if err != nil {
			return Tenant{}, nil, err
		}
		keys = append(keys, k)
		created = &CreatedKey{Secret: secret, Key: k}
	}
	err = s.events.Commit(ctx, func(ctx context.Context) error {
		return s.store.CreateTenant(ctx, t, keys, signingKey)
	}, passkey.Event{Type: passkey.TenantCreated, TenantID: t.ID})
	if err != nil {
		return Tenant{}, nil, fmt.Errorf("create tenant: %w", err)
	}
	return t, created, nil
}

// Get returns a tenant (from the Directory when it is there).
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Tenant, error) {
	snap, err := s.dir.Resolve(ctx, id)
	if err != nil {
		return Tenant{}, err
	}
	return snap.Tenant, nil
}

// Load returns a tenant as stored now, bypassing the Directory (for the admin API, which must show
// a change made on another instance at once).
func (s *Service) Load(ctx context.Context, id uuid.UUID) (Tenant, error) {
	return s.store.GetTenant(ctx, id)
}

// List returns every tenant.
func (s *Service) List(ctx context.Context) ([]Tenant, error) {
	return s.store.ListTenants(ctx)
}

// Rename changes a tenant's display name.
func (s *Service) Rename(ctx context.Context, id uuid.UUID, displayName string) error {
	name, err := checkDisplayName(displayName)
	if err != nil {
		return err
	}
	t, err := s.store.GetTenant(ctx, id)
	if err != nil {
		return err
	}
	t.DisplayName = name
	t.UpdatedAt = s.now().UTC()
	return s.save(ctx, t, passkey.Event{Type: passkey.TenantRenamed, TenantID: id})
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
	return s.save(ctx, t, passkey.Event{Type: passkey.TenantConfigChanged, TenantID: id})
}

// save stores t, the change that e reports.
func (s *Service) save(ctx context.Context, t Tenant, e passkey.Event) error {
	if err := s.events.Commit(ctx, func(ctx context.Context) error { return s.store.UpdateTenant(ctx, t) }, e); err != nil {
		return fmt.Errorf("update tenant: %w", err)
	}
	s.dir.Evict(t.ID)
	return nil
}

// Delete removes a tenant and everything it owns: its database rows, then what Options.OnDelete
// removes elsewhere (the ceremony sessions). The database delete decides the outcome: should OnDelete
// fail, the failure is logged and the delete still succeeds (what it leaves behind belongs to a tenant
// that no request can reach any more, and expires).
func (s *Service) Delete(ctx context.Context, id uuid.UUID) error {
	err := s.events.Commit(ctx, func(ctx context.Context) error { return s.store.DeleteTenant(ctx, id) },
		passkey.Event{Type: passkey.TenantDeleted, TenantID: id})
	if err != nil {
		return err
	}
	s.dir.Evict(id)
	if s.onDelete != nil {
		if err := s.onDelete(ctx, id); err != nil {
			s.log.WarnContext(ctx, "deleted tenant's data outside the database left to expire", "tenant", id, "err", err)
		}
	}
	return nil
}

// maxAPIKeyName bounds API key names.
const maxAPIKeyName = 128

// CreateAPIKey makes a new API key for the tenant and returns its secret, shown once, and its record.
func (s *Service) CreateAPIKey(ctx context.Context, tenantID uuid.UUID, name string, kind KeyKind, expiresAt *time.Time) (string, APIKey, error) {
	var p passkey.Problems
	name = strings.TrimSpace(name)
	if name == "" {
		p.Add("name is a required field")
	} else if len(name) > maxAPIKeyName {
		p.Add("name cannot have more than %d characters", maxAPIKeyName)
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
	if err := p.Err(passkey.ErrInvalidRequest); err != nil {
		return "", APIKey{}, err
	}
	secret, k, err := NewAPIKey(tenantID, name, kind, now, expiresAt)
	if err != nil {
		return "", APIKey{}, err
	}
	err = s.events.Commit(ctx, func(ctx context.Context) error { return s.store.CreateAPIKey(ctx, k) },
		passkey.Event{Type: passkey.APIKeyCreated, TenantID: tenantID,
			Details: map[string]string{"api_key_id": k.ID.String(), "name": k.Name, "kind": string(k.Kind)}})
	if err != nil {
		return "", APIKey{}, err
	}
	s.dir.Evict(tenantID)
	return secret, k, nil
}

// ListAPIKeys returns the tenant's API keys (hashes and hints only).
func (s *Service) ListAPIKeys(ctx context.Context, tenantID uuid.UUID) ([]APIKey, error) {
	if _, err := s.store.GetTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	return s.store.ListAPIKeys(ctx, tenantID)
}

// DeleteAPIKey revokes an API key. Every instance stops accepting it within the Directory's refresh
// interval.
func (s *Service) DeleteAPIKey(ctx context.Context, tenantID, keyID uuid.UUID) error {
	err := s.events.Commit(ctx, func(ctx context.Context) error { return s.store.DeleteAPIKey(ctx, tenantID, keyID) },
		passkey.Event{Type: passkey.APIKeyRevoked, TenantID: tenantID, Details: map[string]string{"secret_id": keyID.String()}})
	if err != nil {
		return err
	}
	s.dir.Evict(tenantID)
	return nil
}

// SigningKeys returns the tenant's signing keys, newest first.
func (s *Service) SigningKeys(ctx context.Context, tenantID uuid.UUID) ([]signing.Key, error) {
	if _, err := s.store.GetTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	return s.store.ListSigningKeys(ctx, tenantID)
}

// MaxRotationOverlap bounds how long a rotated-out signing key may stay in the JWKS.
const MaxRotationOverlap = 90 * 24 * time.Hour

// Rotation says how RotateSigningKey replaces a tenant's signing key.
type Rotation struct {
	// Overlap is how long the previous key stays in the JWKS after it stops signing: the service
	// default when zero, at most MaxRotationOverlap.
	Overlap time.Duration
	// RevokePrevious is the emergency rotation: the new key signs at once and every previous key
	// leaves the JWKS at once (Overlap must be zero), so tokens they signed no longer verify.
	RevokePrevious bool
}

// RotateSigningKey makes a new signing key with the tenant's configured algorithm and publishes it in
// the JWKS at once. The previous key keeps signing for the service's KeyActivation and then stays in
// the JWKS for the overlap; with RevokePrevious the new key signs at once and no previous key stays.
func (s *Service) RotateSigningKey(ctx context.Context, tenantID uuid.UUID, r Rotation) (signing.Key, error) {
	overlap := r.Overlap
	if overlap < 0 || overlap > MaxRotationOverlap {
		return signing.Key{}, passkey.Invalid("overlap_seconds must be between 0 and %d", int64(MaxRotationOverlap/time.Second))
	}
	if r.RevokePrevious && overlap != 0 {
		return signing.Key{}, passkey.Invalid("overlap_seconds must be 0 or absent with revoke_previous")
	}
	if overlap == 0 {
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
	retire := Retirement{At: now.Add(s.activate), ExpiresAt: now.Add(s.activate + overlap)}
	if r.RevokePrevious {
		retire = Retirement{At: now, ExpiresAt: now, Revoke: true}
	}
	details := map[string]string{"kid": next.ID, "algorithm": string(next.Algorithm),
		"activates_at": retire.At.Format(time.RFC3339)}
	if r.RevokePrevious {
		details["revoke_previous"] = "true"
	}
	err = s.events.Commit(ctx, func(ctx context.Context) error { return s.store.RotateSigningKey(ctx, next, retire) },
		passkey.Event{Type: passkey.SigningKeyRotated, TenantID: tenantID, Details: details})
	if err != nil {
		return signing.Key{}, err
	}
	s.dir.Evict(tenantID)
	return next, nil
}
