package db

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/archive"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
)

// HankoSource reads the database of a Hanko Passkey API server (github.com/teamhanko/passkeys), read
// only, for `passkey-server import hanko`. The tables and columns are those of Hanko's migrations
// up to 20240322134127_create_mfa_configs (testdata/hanko_schema.sql lists them). Hanko stores
// credential ids and public keys as base64url text, transports in their own table, and the
// application's user id as the user handle, as this server does.
type HankoSource struct {
	db *sql.DB
}

var _ archive.Source = (*HankoSource)(nil)

// hankoBatch is how many rows a read takes at a time (keyset pagination), so that a large Hanko
// database is never held in one result.
const hankoBatch = 1000

// OpenHanko opens a Hanko database at url (postgres://…).
func OpenHanko(ctx context.Context, url string) (*HankoSource, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("hanko database URL: %w", err)
	}
	d := sql.OpenDB(stdlib.GetConnector(*cfg))
	if err := d.PingContext(ctx); err != nil {
		d.Close()
		return nil, unavailable(kindDatabase, fmt.Errorf("hanko database: %w", err))
	}
	return &HankoSource{db: d}, nil
}

// Close closes the connection pool.
func (h *HankoSource) Close() error { return h.db.Close() }

// Tenants implements archive.Source: each tenant with its config (the WebAuthn config that is not an
// MFA one, its relying party and origins, CORS, the MFA config when there is one) and its API keys.
func (h *HankoSource) Tenants(ctx context.Context, problem func(string)) ([]archive.SourceTenant, error) {
	rows, err := h.db.QueryContext(ctx, `
SELECT t.id, t.display_name, t.created_at, t.updated_at, c.id,
       w.timeout, w.user_verification, w.attachment, w.attestation_preference, w.resident_key_requirement,
       rp.rp_id, rp.display_name, rp.icon,
       COALESCE((SELECT array_to_string(array_agg(o.origin ORDER BY o.origin), ' ') FROM webauthn_origins o WHERE o.relying_party_id = rp.id), ''),
       COALESCE(co.allow_unsafe, false),
       COALESCE((SELECT array_to_string(array_agg(x.origin ORDER BY x.origin), ' ') FROM cors_origins x WHERE x.cors_id = co.id), ''),
       m.timeout, m.user_verification, m.attachment, m.attestation_preference, m.resident_key_requirement
FROM tenants t
JOIN configs c ON c.tenant_id = t.id
JOIN webauthn_configs w ON w.config_id = c.id AND NOT w.is_mfa
JOIN relying_parties rp ON rp.webauthn_config_id = w.id
LEFT JOIN cors co ON co.config_id = c.id
LEFT JOIN mfa_configs m ON m.config_id = c.id
ORDER BY t.id`)
	if err != nil {
		return nil, unavailable(kindDatabase, err)
	}
	defer rows.Close()
	var out []archive.SourceTenant
	var configIDs []uuid.UUID
	for rows.Next() {
		var (
			t                                    tenant.Tenant
			configID                             uuid.UUID
			attachment, icon                     sql.NullString
			origins, corsOrigins                 string
			mTimeout                             sql.NullInt64
			mUV, mAttach, mAttest, mResident     sql.NullString
			w                                    = &t.Config.WebAuthn
			userVerification, attest, residentKy string
		)
		if err := rows.Scan(&t.ID, &t.DisplayName, &t.CreatedAt, &t.UpdatedAt, &configID,
			&w.Timeout, &userVerification, &attachment, &attest, &residentKy,
			&w.RelyingParty.ID, &w.RelyingParty.DisplayName, &icon, &origins,
			&t.Config.CORS.AllowUnsafeWildcard, &corsOrigins,
			&mTimeout, &mUV, &mAttach, &mAttest, &mResident); err != nil {
			return nil, err
		}
		w.UserVerification, w.AttestationPreference, w.ResidentKeyRequirement = userVerification, attest, residentKy
		if attachment.Valid && attachment.String != "" {
			w.Attachment = &attachment.String
		}
		if icon.Valid && icon.String != "" {
			w.RelyingParty.Icon = &icon.String
		}
		w.RelyingParty.Origins = strings.Fields(origins)
		t.Config.CORS.AllowedOrigins = strings.Fields(corsOrigins)
		if mTimeout.Valid {
			t.Config.MFA = &tenant.MFAConfig{Timeout: int(mTimeout.Int64), UserVerification: mUV.String, Attachment: mAttach.String,
				AttestationPreference: mAttest.String, ResidentKeyRequirement: mResident.String}
		}
		t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
		out = append(out, archive.SourceTenant{Tenant: t})
		configIDs = append(configIDs, configID)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		keys, err := h.apiKeys(ctx, out[i].Tenant.ID, configIDs[i])
		if err != nil {
			return nil, err
		}
		out[i].APIKeys = keys
	}
	return out, nil
}

// apiKeys reads a tenant's API secrets. Hanko keeps them in clear; this server keeps only their hash,
// as a secret key, so that the applications' keys go on working.
func (h *HankoSource) apiKeys(ctx context.Context, tenantID, configID uuid.UUID) ([]tenant.APIKey, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT id, name, key, created_at FROM secrets WHERE config_id = $1 AND is_api_secret ORDER BY created_at, id`, configID)
	if err != nil {
		return nil, unavailable(kindDatabase, err)
	}
	defer rows.Close()
	var keys []tenant.APIKey
	for rows.Next() {
		var (
			k      tenant.APIKey
			secret string
		)
		if err := rows.Scan(&k.ID, &k.Name, &secret, &k.CreatedAt); err != nil {
			return nil, err
		}
		k.TenantID, k.Kind, k.Hash, k.CreatedAt = tenantID, tenant.KindSecret, tenant.HashAPIKey(secret), k.CreatedAt.UTC()
		k.Hint = "…" + secret[max(0, len(secret)-4):]
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// EachUser implements archive.Source.
func (h *HankoSource) EachUser(ctx context.Context, tenantID uuid.UUID, fn func(credentials.User) error, problem func(string)) error {
	return h.batches(ctx, `SELECT id, user_id, name, display_name, icon, created_at, updated_at FROM webauthn_users
WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT `, tenantID, uuid.Nil, func(rows *sql.Rows) (any, error) {
		var u credentials.User
		var icon string
		if err := rows.Scan(&u.Key, &u.AppUserID, &u.Name, &u.DisplayName, &icon, &u.CreatedAt, &u.UpdatedAt); err != nil {
			return nil, err
		}
		if icon != "" {
			u.Icon = &icon
		}
		u.TenantID, u.CreatedAt, u.UpdatedAt = tenantID, u.CreatedAt.UTC(), u.UpdatedAt.UTC()
		switch {
		case u.AppUserID == "" || len(u.AppUserID) > 64 || !passkey.StorableText(u.AppUserID):
			// WebAuthn §5.4.3: a user handle is at most 64 bytes; Hanko did not check.
			problem(fmt.Sprintf("webauthn_users %s: user_id is not 1 to 64 bytes of text", u.Key))
		default:
			return u.Key, fn(u)
		}
		return u.Key, nil
	})
}

// EachCredential implements archive.Source.
func (h *HankoSource) EachCredential(ctx context.Context, tenantID uuid.UUID, fn func(credentials.Credential) error, problem func(string)) error {
	return h.batches(ctx, `SELECT c.id, u.user_id, c.name, c.public_key, c.attestation_type, c.aaguid, c.sign_count,
       c.backup_eligible, c.backup_state, c.is_mfa, c.created_at, c.updated_at, c.last_used_at,
       COALESCE((SELECT array_to_string(array_agg(tr.name ORDER BY tr.name), ' ') FROM webauthn_credential_transports tr WHERE tr.webauthn_credential_id = c.id), '')
FROM webauthn_credentials c JOIN webauthn_users u ON u.id = c.webauthn_user_id
WHERE u.tenant_id = $1 AND c.id > $2 ORDER BY c.id LIMIT `, tenantID, "", func(rows *sql.Rows) (any, error) {
		var (
			c                  credentials.Credential
			publicKey, transps string
			signCount          int64
			lastUsed           sql.NullTime
		)
		if err := rows.Scan(&c.ID, &c.AppUserID, &c.Name, &publicKey, &c.AttestationType, &c.AAGUID, &signCount,
			&c.BackupEligible, &c.BackupState, &c.IsMFA, &c.CreatedAt, &c.UpdatedAt, &lastUsed, &transps); err != nil {
			return nil, err
		}
		key, keyErr := base64.RawURLEncoding.DecodeString(publicKey)
		id, idErr := base64.RawURLEncoding.DecodeString(c.ID)
		if keyErr != nil || idErr != nil || len(key) == 0 || len(id) == 0 || signCount < 0 || signCount > 1<<32-1 {
			problem(fmt.Sprintf("webauthn_credentials %s: id, public_key or sign_count cannot be read", c.ID))
			return c.ID, nil
		}
		c.TenantID, c.PublicKey, c.SignCount = tenantID, key, uint32(signCount)
		c.Transports = strings.Fields(transps)
		// Hanko stored no user presence or verification flags; a registration it accepted had the user
		// present, and verified unless the tenant did not ask for it: presence is known, verification not.
		c.UserPresent = true
		c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
		if lastUsed.Valid {
			t := lastUsed.Time.UTC()
			c.LastUsedAt = &t
		}
		return c.ID, fn(c)
	})
}

// EachTransaction implements archive.Source.
func (h *HankoSource) EachTransaction(ctx context.Context, tenantID uuid.UUID, fn func(transactions.Transaction) error, problem func(string)) error {
	return h.batches(ctx, `SELECT t.id, u.user_id, t.identifier, t.data, t.challenge, t.created_at, t.updated_at
FROM transactions t JOIN webauthn_users u ON u.id = t.webauthn_user_id
WHERE t.tenant_id = $1 AND t.id > $2 ORDER BY t.id LIMIT `, tenantID, uuid.Nil, func(rows *sql.Rows) (any, error) {
		var t transactions.Transaction
		if err := rows.Scan(&t.ID, &t.AppUserID, &t.Identifier, &t.Data, &t.Challenge, &t.CreatedAt, &t.UpdatedAt); err != nil {
			return nil, err
		}
		t.TenantID, t.CreatedAt, t.UpdatedAt = tenantID, t.CreatedAt.UTC(), t.UpdatedAt.UTC()
		return t.ID, fn(t)
	})
}

// batches runs query (which ends in "LIMIT ") with the tenant and the last key read, a batch at a
// time, calling scan per row; scan returns the row's key.
func (h *HankoSource) batches(ctx context.Context, query string, tenantID uuid.UUID, after any, scan func(*sql.Rows) (any, error)) error {
	query += fmt.Sprint(hankoBatch)
	for {
		n, err := func() (int, error) {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			rows, err := h.db.QueryContext(ctx, query, tenantID, after)
			if err != nil {
				return 0, unavailable(kindDatabase, err)
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				key, err := scan(rows)
				if err != nil {
					return n, err
				}
				after = key
				n++
			}
			return n, rows.Err()
		}()
		if err != nil {
			return err
		}
		if n < hankoBatch {
			return nil
		}
	}
}
