package tenant

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// KeyKind tells what an API key may call.
type KeyKind string

const (
	// KindSecret keys (prefix "sk_") may call every route of their tenant. They belong on servers.
	KindSecret KeyKind = "secret"
	// KindPublishable keys (prefix "pk_") may call only what a browser may call: discoverable login and
	// registration finalize. They may be embedded in web pages.
	KindPublishable KeyKind = "publishable"
)

// Valid reports whether k is a known kind.
func (k KeyKind) Valid() bool { return k == KindSecret || k == KindPublishable }

func (k KeyKind) prefix() string {
	if k == KindPublishable {
		return "pk_"
	}
	return "sk_"
}

// apiKeyRandomBytes is the entropy of a key: 32 bytes, far beyond guessing.
const apiKeyRandomBytes = 32

// APIKey is a stored API key. The secret itself is never stored: only its SHA-256 hash, so a database
// leak does not leak usable keys. Lookups go by hash (an exact match on a unique index or map key), so
// no comparison of secret material happens in variable time.
type APIKey struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	Name     string
	Kind     KeyKind
	// Hash is SHA-256 of the full secret string, prefix included.
	Hash []byte
	// Hint is a masked form of the secret (prefix, first and last characters) that identifies it in lists.
	Hint       string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
}

// APIKeyRef names one API key by its tenant and id, the key of the stored keys: stores find a
// tenant's rows by tenant first.
type APIKeyRef struct {
	TenantID uuid.UUID
	ID       uuid.UUID
}

// Ref returns the reference of k.
func (k APIKey) Ref() APIKeyRef { return APIKeyRef{TenantID: k.TenantID, ID: k.ID} }

// Expired reports whether the key has an expiry at or before now.
func (k APIKey) Expired(now time.Time) bool {
	return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)
}

// NewAPIKey makes a key of the given kind. It returns the secret, to be shown once, and the record to
// store.
func NewAPIKey(tenantID uuid.UUID, name string, kind KeyKind, now time.Time, expiresAt *time.Time) (string, APIKey, error) {
	buf := make([]byte, apiKeyRandomBytes)
	if _, err := rand.Read(buf); err != nil {
		return "", APIKey{}, fmt.Errorf("generate api key: %w", err)
	}
	secret := kind.prefix() + base64.RawURLEncoding.EncodeToString(buf)
	return secret, APIKey{
		ID:        uuid.New(),
		TenantID:  tenantID,
		Name:      name,
		Kind:      kind,
		Hash:      HashAPIKey(secret),
		Hint:      maskAPIKey(secret),
		CreatedAt: now,
		ExpiresAt: expiresAt,
	}, nil
}

// HashAPIKey returns the SHA-256 hash under which a key secret is stored and looked up. Surrounding
// white space is ignored, as Hanko's server does.
func HashAPIKey(secret string) []byte {
	sum := hashAPIKey(secret)
	return sum[:]
}

// hashAPIKey is HashAPIKey as an array, for the request path, where the hash is only looked up: a key
// of our own (47 bytes) is copied to a buffer on the stack, so hashing allocates nothing.
func hashAPIKey(secret string) [32]byte {
	var buf [64]byte
	return sha256.Sum256(append(buf[:0], strings.TrimSpace(secret)...))
}

func maskAPIKey(secret string) string {
	if len(secret) < 12 {
		return "…"
	}
	return secret[:7] + "…" + secret[len(secret)-4:]
}
