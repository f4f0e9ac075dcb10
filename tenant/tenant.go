// Package tenant holds tenants: their lifecycle and WebAuthn, CORS and MFA configuration (Service), the
// Directory that serves resolved tenants from memory by revision, and API-key authentication with
// last-use recording (Keys). It knows nothing of HTTP.
//
// Everything a ceremony needs about its tenant is served from the Directory: the hot path never
// reloads a tenant from the database and never decrypts a key.
package tenant

import (
	"context"
	"time"

	passkey "github.com/passkey-server/passkey-server"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/signing"
)

// Errors of this package, each with its stable code; the transport layer maps each to a status.
var (
	// ErrNotFound means no tenant with the given id exists.
	ErrNotFound = passkey.NewError("tenant_not_found", "tenant not found")
	// ErrInvalidID means a tenant id is not a UUID.
	ErrInvalidID = passkey.NewError("invalid_tenant_id", "tenant_id must be a valid uuid")
	// ErrInvalidConfig means a tenant configuration failed validation; details say why.
	ErrInvalidConfig = passkey.NewError("invalid_config", "invalid tenant config")
	// ErrAPIKeyNotFound means no API key with the given id exists in the tenant.
	ErrAPIKeyNotFound = passkey.NewError("api_key_not_found", "api key not found")
	// ErrAPIKeyNameTaken means the tenant already has an API key with that name.
	ErrAPIKeyNameTaken = passkey.NewError("api_key_name_taken", "api key name already in use")
	// ErrInvalidAPIKey means the request carried no API key, or one that does not belong to the tenant.
	ErrInvalidAPIKey = passkey.NewError("invalid_api_key", "the api key is invalid")
	// ErrAPIKeyMissing means a route that needs an API key for this input got none.
	ErrAPIKeyMissing = passkey.NewError("api_key_missing", "api key is missing")
	// ErrForbiddenKey means a publishable key was used on a route that needs a secret key.
	ErrForbiddenKey = passkey.NewError("secret_key_required", "this route needs a secret api key")
)

// Tenant is one customer of the service: an isolated set of users, credentials and keys with its own
// relying party configuration.
type Tenant struct {
	ID          uuid.UUID
	DisplayName string
	Config      Config
	// Revision grows with every change to the tenant, its config, its API keys or its signing keys.
	// Instances compare revisions to refresh their caches.
	Revision  int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Store persists tenants, API keys and signing keys. Every mutating method increments the tenant's
// Revision and records a Change in the same database transaction (TouchAPIKeys changes nothing
// instances cache, and does neither). Implementations return ErrNotFound, ErrAPIKeyNotFound and
// ErrAPIKeyNameTaken for those conditions.
type Store interface {
	// CreateTenant stores a new tenant with its first API keys and signing key, all or nothing.
	CreateTenant(ctx context.Context, t Tenant, keys []APIKey, signingKey signing.Key) error
	// GetTenant returns one tenant.
	GetTenant(ctx context.Context, id uuid.UUID) (Tenant, error)
	// ListTenants returns every tenant, oldest first.
	ListTenants(ctx context.Context) ([]Tenant, error)
	// UpdateTenant replaces the display name and config of an existing tenant.
	UpdateTenant(ctx context.Context, t Tenant) error
	// DeleteTenant removes a tenant and everything it owns.
	DeleteTenant(ctx context.Context, id uuid.UUID) error
	// TenantChanges returns the changes committed since the read that returned since, and the cursor
	// of this read; the zero cursor returns every change kept. Changes made less than ChangeReplay
	// before since was read are returned again, so a reader must apply changes idempotently (by
	// revision); in exchange a change that commits late (PostgreSQL commits transactions in another
	// order than it numbers their changes) is never skipped. Changes are kept for ChangeRetention at
	// least; a reader whose cursor is older may have missed some.
	TenantChanges(ctx context.Context, since ChangeCursor) ([]Change, ChangeCursor, error)

	// CreateAPIKey stores a new API key of an existing tenant.
	CreateAPIKey(ctx context.Context, k APIKey) error
	// ListAPIKeys returns the tenant's API keys, oldest first.
	ListAPIKeys(ctx context.Context, tenantID uuid.UUID) ([]APIKey, error)
	// DeleteAPIKey removes one API key of the tenant.
	DeleteAPIKey(ctx context.Context, tenantID, keyID uuid.UUID) error
	// APIKeyByHash finds an API key by the SHA-256 hash of its secret, across all tenants.
	APIKeyByHash(ctx context.Context, hash []byte) (APIKey, error)
	// TouchAPIKeys records when keys were last used (keys that no longer exist are ignored). It does
	// not change any revision.
	TouchAPIKeys(ctx context.Context, lastUsed map[APIKeyRef]time.Time) error

	// ListSigningKeys returns all signing keys of the tenant, newest first.
	ListSigningKeys(ctx context.Context, tenantID uuid.UUID) ([]signing.Key, error)
	// RotateSigningKey retires the tenant's previous keys as r says and stores next, all or nothing.
	RotateSigningKey(ctx context.Context, next signing.Key, r Retirement) error
}

// Change is one change to a tenant, as the store's change feed reports it to every instance.
type Change struct {
	// ID numbers the changes in the order they were written (not always the order they committed); a
	// change returned again has the same ID.
	ID       int64
	TenantID uuid.UUID
	// Revision is the tenant's revision after the change; 0 when the change deleted the tenant.
	Revision int64
}

// ChangeCursor is a position in the change feed: where a read of it ended. The zero cursor is the
// start of the feed.
type ChangeCursor struct {
	// ID is the largest change id the read returned (or the one before it).
	ID int64
	// At is when the read was made, by the database's clock: every instance reads the same clock.
	At time.Time
}

// ChangeReplay is how long after a read a change is still returned again (see Store.TenantChanges).
// It covers the time from a change's insert to its commit, and from a load's read of a tenant to the
// moment it caches the snapshot (loadTimeout): both are seconds at most.
const ChangeReplay = time.Minute

// ChangeRetention is how long the store keeps changes. A reader that did not read the feed for that
// long (its database was unreachable) drops everything it cached.
const ChangeRetention = time.Hour

// Retirement is how a rotation retires a tenant's previous signing keys.
type Retirement struct {
	// At is when the key that signs until the rotation (RetiredAt nil) stops signing: the next key's
	// activation. ExpiresAt is when it leaves the JWKS. A key whose RetiredAt is already set keeps it.
	At, ExpiresAt time.Time
	// Revoke also ends every other previous key at once, for an emergency: none signs after At (a
	// later RetiredAt becomes At) and none stays in the JWKS after ExpiresAt (a later or missing
	// ExpiresAt becomes ExpiresAt).
	Revoke bool
}
