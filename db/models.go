package db

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// Row structs mirror the tables of migrations/*/..._initial_schema.tx.up.sql, one field per column.
// Times are written through dbTime (UTC, microseconds) and read back in UTC. Every table but tenants
// is keyed by (tenant_id, id), tenant first (migrations/*/..._tenant_first_keys.tx.up.sql), and so are
// the rows' pk tags.

// tenantRow is a row of tenants.
type tenantRow struct {
	bun.BaseModel `bun:"table:tenants"`

	ID          uuid.UUID `bun:"id,pk"`
	DisplayName string    `bun:"display_name"`
	// Config is the JSON of tenant.Config. A string (not []byte) so PostgreSQL receives a text literal
	// it converts to jsonb, where bytes would be sent as bytea.
	Config    string    `bun:"config"`
	Revision  int64     `bun:"revision"`
	CreatedAt time.Time `bun:"created_at"`
	UpdatedAt time.Time `bun:"updated_at"`
}

func newTenantRow(t tenant.Tenant) (tenantRow, error) {
	config, err := json.Marshal(t.Config)
	if err != nil {
		return tenantRow{}, fmt.Errorf("encode tenant config: %w", err)
	}
	return tenantRow{
		ID:          t.ID,
		DisplayName: t.DisplayName,
		Config:      string(config),
		Revision:    t.Revision,
		CreatedAt:   dbTime(t.CreatedAt),
		UpdatedAt:   dbTime(t.UpdatedAt),
	}, nil
}

func (r tenantRow) tenant() (tenant.Tenant, error) {
	var config tenant.Config
	if err := json.Unmarshal([]byte(r.Config), &config); err != nil {
		return tenant.Tenant{}, fmt.Errorf("decode config of tenant %s: %w", r.ID, err)
	}
	return tenant.Tenant{
		ID:          r.ID,
		DisplayName: r.DisplayName,
		Config:      config,
		Revision:    r.Revision,
		CreatedAt:   r.CreatedAt.UTC(),
		UpdatedAt:   r.UpdatedAt.UTC(),
	}, nil
}

// apiKeyRow is a row of api_keys.
type apiKeyRow struct {
	bun.BaseModel `bun:"table:api_keys"`

	TenantID   uuid.UUID  `bun:"tenant_id,pk"`
	ID         uuid.UUID  `bun:"id,pk"`
	Name       string     `bun:"name"`
	Kind       string     `bun:"kind"`
	Hash       []byte     `bun:"hash"`
	Hint       string     `bun:"hint"`
	CreatedAt  time.Time  `bun:"created_at"`
	LastUsedAt *time.Time `bun:"last_used_at"`
	ExpiresAt  *time.Time `bun:"expires_at"`
}

func newAPIKeyRow(k tenant.APIKey) apiKeyRow {
	return apiKeyRow{
		ID:         k.ID,
		TenantID:   k.TenantID,
		Name:       k.Name,
		Kind:       string(k.Kind),
		Hash:       k.Hash,
		Hint:       k.Hint,
		CreatedAt:  dbTime(k.CreatedAt),
		LastUsedAt: dbTimePtr(k.LastUsedAt),
		ExpiresAt:  dbTimePtr(k.ExpiresAt),
	}
}

func (r apiKeyRow) apiKey() tenant.APIKey {
	return tenant.APIKey{
		ID:         r.ID,
		TenantID:   r.TenantID,
		Name:       r.Name,
		Kind:       tenant.KeyKind(r.Kind),
		Hash:       r.Hash,
		Hint:       r.Hint,
		CreatedAt:  r.CreatedAt.UTC(),
		LastUsedAt: utcPtr(r.LastUsedAt),
		ExpiresAt:  utcPtr(r.ExpiresAt),
	}
}

// signingKeyRow is a row of signing_keys.
type signingKeyRow struct {
	bun.BaseModel `bun:"table:signing_keys"`

	TenantID  uuid.UUID `bun:"tenant_id,pk"`
	ID        string    `bun:"id,pk"`
	Algorithm string    `bun:"algorithm"`
	// PrivateKey is the sealed (encrypted) private key, never plaintext.
	PrivateKey []byte     `bun:"private_key"`
	PublicJWK  string     `bun:"public_jwk"`
	CreatedAt  time.Time  `bun:"created_at"`
	RetiredAt  *time.Time `bun:"retired_at"`
	ExpiresAt  *time.Time `bun:"expires_at"`
}

func newSigningKeyRow(k signing.Key) signingKeyRow {
	return signingKeyRow{
		ID:         k.ID,
		TenantID:   k.TenantID,
		Algorithm:  string(k.Algorithm),
		PrivateKey: k.EncryptedPrivateKey,
		PublicJWK:  string(k.PublicJWK),
		CreatedAt:  dbTime(k.CreatedAt),
		RetiredAt:  dbTimePtr(k.RetiredAt),
		ExpiresAt:  dbTimePtr(k.ExpiresAt),
	}
}

func (r signingKeyRow) signingKey() signing.Key {
	return signing.Key{
		ID:                  r.ID,
		TenantID:            r.TenantID,
		Algorithm:           signing.Algorithm(r.Algorithm),
		EncryptedPrivateKey: r.PrivateKey,
		PublicJWK:           []byte(r.PublicJWK),
		CreatedAt:           r.CreatedAt.UTC(),
		RetiredAt:           utcPtr(r.RetiredAt),
		ExpiresAt:           utcPtr(r.ExpiresAt),
	}
}

// userRow is a row of users: one user of a tenant, known by the application's own id.
type userRow struct {
	bun.BaseModel `bun:"table:users"`

	TenantID    uuid.UUID `bun:"tenant_id,pk"`
	ID          uuid.UUID `bun:"id,pk"`
	UserID      string    `bun:"user_id"`
	Name        string    `bun:"name"`
	DisplayName string    `bun:"display_name"`
	Icon        *string   `bun:"icon"`
	CreatedAt   time.Time `bun:"created_at"`
	UpdatedAt   time.Time `bun:"updated_at"`
}

// credentialRow is a row of credentials. Its user must belong to the same tenant: the schema has a
// foreign key on (tenant_id, user_id).
type credentialRow struct {
	bun.BaseModel `bun:"table:credentials"`

	TenantID  uuid.UUID `bun:"tenant_id,pk"`
	ID        string    `bun:"id,pk"`
	UserID    uuid.UUID `bun:"user_id"`
	Name      *string   `bun:"name"`
	PublicKey []byte    `bun:"public_key"`
	// AttestationType is the attestation format the credential was registered with.
	AttestationType string    `bun:"attestation_type"`
	AAGUID          uuid.UUID `bun:"aaguid"`
	SignCount       int64     `bun:"sign_count"`
	CloneWarning    bool      `bun:"clone_warning"`
	BackupEligible  bool      `bun:"backup_eligible"`
	BackupState     bool      `bun:"backup_state"`
	UserPresent     bool      `bun:"user_present"`
	UserVerified    bool      `bun:"user_verified"`
	// Transports is a JSON array of strings, "[]" when there are none.
	Transports              string     `bun:"transports"`
	AuthenticatorAttachment *string    `bun:"authenticator_attachment"`
	IsMFA                   bool       `bun:"is_mfa"`
	CreatedAt               time.Time  `bun:"created_at"`
	UpdatedAt               time.Time  `bun:"updated_at"`
	LastUsedAt              *time.Time `bun:"last_used_at"`
	// The judgement of the attestation (migrations/*/..._credential_attestation.tx.up.sql);
	// AttestationViolations is a JSON array of strings, "[]" when there are none.
	AttestationVerdict    string  `bun:"attestation_verdict"`
	AttestationRoot       *string `bun:"attestation_root"`
	MDSStatus             *string `bun:"mds_status"`
	CertificationLevel    *string `bun:"certification_level"`
	AttestationViolations string  `bun:"attestation_violations"`
	// AppUserID is the owning user's users.user_id. It is no column of credentials: reads fill it
	// from a join with users, and writes leave it out.
	AppUserID string `bun:"app_user_id,scanonly"`
}

// transactionRow is a row of transactions: one transaction-signing request and its outcome.
type transactionRow struct {
	bun.BaseModel `bun:"table:transactions"`

	TenantID   uuid.UUID `bun:"tenant_id,pk"`
	ID         uuid.UUID `bun:"id,pk"`
	UserID     uuid.UUID `bun:"user_id"`
	Identifier string    `bun:"identifier"`
	// Data is the canonical JSON of the transaction, DataHash its SHA-256.
	Data         string     `bun:"data"`
	DataHash     []byte     `bun:"data_hash"`
	Challenge    string     `bun:"challenge"`
	Status       string     `bun:"status"`
	CredentialID *string    `bun:"credential_id"`
	CreatedAt    time.Time  `bun:"created_at"`
	UpdatedAt    time.Time  `bun:"updated_at"`
	ConfirmedAt  *time.Time `bun:"confirmed_at"`
	ExpiresAt    *time.Time `bun:"expires_at"`
}

// auditLogRow is a row of audit_logs. TenantID is deploymentTenant for deployment-wide (admin)
// events, whose audit.Event has no tenant.
type auditLogRow struct {
	bun.BaseModel `bun:"table:audit_logs"`

	TenantID      uuid.UUID `bun:"tenant_id,pk"`
	ID            uuid.UUID `bun:"id,pk"`
	Type          string    `bun:"type"`
	Ceremony      *string   `bun:"ceremony"`
	Error         *string   `bun:"error"`
	RequestID     string    `bun:"request_id"`
	SourceIP      string    `bun:"source_ip"`
	UserAgent     string    `bun:"user_agent"`
	ActorUserID   *string   `bun:"actor_user_id"`
	TransactionID *string   `bun:"transaction_id"`
	// Details is a JSON object or nil. A string for the reason given at tenantRow.Config.
	Details   *string   `bun:"details"`
	CreatedAt time.Time `bun:"created_at"`
	UpdatedAt time.Time `bun:"updated_at"`
}

// utcPtr returns a copy of *t in UTC, or nil.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}
