// Package signing signs a tenant's tokens and publishes its JWKS: the supported JWS algorithms, the
// stored signing keys and their generation, the Sealer that encrypts private keys at rest under the
// server's master key, and the Signer that a tenant's cached snapshot holds.
//
// It knows nothing of tenants beyond their ids and nothing of HTTP or storage: package tenant stores
// the keys and builds one Signer per tenant revision, so that signing on the ceremony path never
// touches the master key or parses key material.
package signing

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// ErrNoActiveKey means a tenant has no active signing key (never happens for tenants made by
// tenant.Service).
var ErrNoActiveKey = errors.New("tenant has no active signing key")

// Algorithm is the JWS algorithm a tenant's tokens are signed with (RFC 7518 §3.1).
type Algorithm string

const (
	// ES256 is ECDSA on P-256 with SHA-256. It is the default: keys are small and cheap to generate,
	// signing is fast, and every JOSE library verifies it.
	ES256 Algorithm = "ES256"
	// RS256 is RSASSA-PKCS1-v1_5 with SHA-256, for tenants whose verifiers accept only RSA (Hanko's
	// server signs with RS256).
	RS256 Algorithm = "RS256"

	// DefaultAlgorithm is the algorithm of tenants that do not choose one.
	DefaultAlgorithm = ES256
)

// Valid reports whether a is a supported algorithm.
func (a Algorithm) Valid() bool { return a == ES256 || a == RS256 }

// rsaKeyBits is the size of generated RSA keys. 2048 bits, not Hanko's 4096: NIST SP 800-57 Part 1
// rates 2048-bit RSA at 112 bits of security, acceptable through 2030, and a 4096-bit key costs several
// times more to generate (often over a second, with high variance) and about 7x more per signature.
// Keys are generated only when a tenant is created or rotates its key, never per request, so the
// generation cost matters for the admin API's latency, and the signing cost on every finalize call.
const rsaKeyBits = 2048

// Key is one stored token signing key of a tenant. The private key is only ever stored sealed
// (see Sealer); the public half is stored as a ready-to-publish JWK.
//
// A key is published in the JWKS from CreatedAt until ExpiresAt, and signs new tokens until RetiredAt.
// Rotation stores the next key (published at once) and sets the signing key's RetiredAt to when the
// next key takes over: later than CreatedAt when the rotation has an activation delay, so that every
// instance and every JWKS cache has the next key before any token carries it (issue 12, point 9). Which
// key signs at an instant follows from these columns alone (see Current), so all instances agree
// without coordination.
type Key struct {
	// ID is the key id (the JWK and JWS "kid"), a random UUID string.
	ID string
	// TenantID is the tenant the key belongs to.
	TenantID uuid.UUID
	// Algorithm is the JWS algorithm the key signs with.
	Algorithm Algorithm
	// EncryptedPrivateKey is the PKCS #8 DER private key sealed by Sealer.Seal with
	// KeyAdditionalData(TenantID, ID) as additional data.
	EncryptedPrivateKey []byte
	// PublicJWK is the JSON of the public JWK, with "kid", "alg" and "use":"sig".
	PublicJWK []byte
	// CreatedAt is when the key was generated, and published.
	CreatedAt time.Time
	// RetiredAt is when the key stops signing (it may lie in the future: the next key's activation);
	// nil while no rotation has replaced it.
	RetiredAt *time.Time
	// ExpiresAt is when the key leaves the JWKS; nil means it stays.
	ExpiresAt *time.Time
}

// Active reports whether k may still sign at now: it is not retired yet and has not left the JWKS.
// Several keys may be active during a rotation; Current says which of them signs.
func (k Key) Active(now time.Time) bool {
	return (k.RetiredAt == nil || k.RetiredAt.After(now)) && k.published(now)
}

// published reports whether k belongs in the JWKS at now.
func (k Key) published(now time.Time) bool {
	return k.ExpiresAt == nil || k.ExpiresAt.After(now)
}

// Current returns the key that signs new tokens at now, and false when no key is active.
//
// Among the active keys, one that is due to retire signs until it does, the earliest due first: after
// a rotation with an activation delay the previous key signs until the next one takes over. With no
// retirement due, the newest unretired key signs.
func Current(keys []Key, now time.Time) (Key, bool) {
	var cur *Key
	for i := range keys {
		k := &keys[i]
		if !k.Active(now) {
			continue
		}
		if cur == nil || signsBefore(*k, *cur) {
			cur = k
		}
	}
	if cur == nil {
		return Key{}, false
	}
	return *cur, true
}

// signsBefore reports whether active key a signs rather than active key b.
func signsBefore(a, b Key) bool {
	switch {
	case a.RetiredAt != nil && b.RetiredAt != nil:
		if !a.RetiredAt.Equal(*b.RetiredAt) {
			return a.RetiredAt.Before(*b.RetiredAt)
		}
	case a.RetiredAt != nil:
		return true
	case b.RetiredAt != nil:
		return false
	}
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.ID > b.ID
}

// ActivatesAt returns when k starts (or started) signing: keys sign in the order they retire, so k
// takes over when the last key that retires before it does, or at its CreatedAt when that is later.
// A key whose ActivatesAt is not before its RetiredAt never signed (a rotation or revocation replaced
// it first).
func ActivatesAt(keys []Key, k Key) time.Time {
	at := k.CreatedAt
	for _, o := range keys {
		if o.ID == k.ID || o.RetiredAt == nil || k.RetiredAt != nil && !o.RetiredAt.Before(*k.RetiredAt) {
			continue
		}
		if o.RetiredAt.After(at) {
			at = *o.RetiredAt
		}
	}
	return at
}

// changesAt returns the first instant after now at which Current or the JWKS of keys changes (a key
// retires or expires); zero when none is due.
func changesAt(keys []Key, now time.Time) time.Time {
	var next time.Time
	for _, k := range keys {
		for _, t := range []*time.Time{k.RetiredAt, k.ExpiresAt} {
			if t != nil && t.After(now) && (next.IsZero() || t.Before(next)) {
				next = *t
			}
		}
	}
	return next
}

// Sealer encrypts secrets at rest with AES-256-GCM under the server's master key.
//
// Each message gets a fresh random 12-byte nonce, prepended to the ciphertext. Random nonces are safe
// for far more messages than this server seals (NIST SP 800-38D allows 2^32 per key); a counter would
// need coordinated state across instances. GCM authenticates the ciphertext and the additional data,
// so tampering, a wrong master key, or a ciphertext copied to another row all make Open fail.
type Sealer struct {
	aead cipher.AEAD
}

// masterKeySize is the length of the master key: 32 bytes selects AES-256.
const masterKeySize = 32

// NewSealer returns a Sealer for a master key of exactly 32 bytes. Shorter keys are refused rather than
// silently selecting AES-128 or AES-192.
func NewSealer(masterKey []byte) (*Sealer, error) {
	if len(masterKey) != masterKeySize {
		return nil, fmt.Errorf("master key must be %d bytes, got %d", masterKeySize, len(masterKey))
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts and authenticates plaintext and authenticates additionalData, which must be passed
// unchanged to Open. The result is nonce ‖ ciphertext ‖ tag.
func (s *Sealer) Seal(plaintext, additionalData []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	out := make([]byte, ns, ns+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return s.aead.Seal(out, out, plaintext, additionalData), nil
}

// errOpen is the one error Open returns for every failure, so it tells nothing about why.
var errOpen = errors.New("open sealed data: message authentication failed")

// Open decrypts a value made by Seal with the same master key and additional data. It fails if any of
// them differ or the ciphertext was modified.
func (s *Sealer) Open(ciphertext, additionalData []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(ciphertext) < ns+s.aead.Overhead() {
		return nil, errOpen
	}
	plain, err := s.aead.Open(nil, ciphertext[:ns], ciphertext[ns:], additionalData)
	if err != nil {
		return nil, errOpen
	}
	return plain, nil
}

// KeyAdditionalData returns the additional data a signing key's private key is sealed with: the
// 16 tenant id bytes followed by the kid. It binds the ciphertext to its row, so a ciphertext copied
// to another key or tenant cannot be opened (and so cannot be made to sign for that tenant).
func KeyAdditionalData(tenantID uuid.UUID, kid string) []byte {
	ad := make([]byte, 0, len(tenantID)+len(kid))
	ad = append(ad, tenantID[:]...)
	return append(ad, kid...)
}

// GenerateKey makes a new active signing key for the tenant, its private key sealed by sealer.
// ES256 keys are P-256; RS256 keys are 2048-bit RSA (see rsaKeyBits for why not 4096). It is called
// when a tenant is created or rotates its key, never while serving a ceremony.
func GenerateKey(tenantID uuid.UUID, alg Algorithm, sealer *Sealer, now time.Time) (Key, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaKeyBits)
	default:
		return Key{}, fmt.Errorf("generate signing key: unsupported algorithm %q", alg)
	}
	if err != nil {
		return Key{}, fmt.Errorf("generate %s signing key: %w", alg, err)
	}

	kid := uuid.NewString()
	pub, err := publicJWK(priv.Public(), kid, alg)
	if err != nil {
		return Key{}, fmt.Errorf("generate signing key: %w", err)
	}
	pubJSON, err := json.Marshal(pub)
	if err != nil {
		return Key{}, fmt.Errorf("generate signing key: marshal public jwk: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return Key{}, fmt.Errorf("generate signing key: marshal private key: %w", err)
	}
	sealed, err := sealer.Seal(der, KeyAdditionalData(tenantID, kid))
	clear(der)
	if err != nil {
		return Key{}, fmt.Errorf("generate signing key: %w", err)
	}
	return Key{
		ID:                  kid,
		TenantID:            tenantID,
		Algorithm:           alg,
		EncryptedPrivateKey: sealed,
		PublicJWK:           pubJSON,
		CreatedAt:           now,
	}, nil
}

// publicJWK returns the public JWK of pub with kid, alg and use=sig set.
func publicJWK(pub crypto.PublicKey, kid string, alg Algorithm) (jwk.Key, error) {
	key, err := jwk.FromRaw(pub)
	if err != nil {
		return nil, fmt.Errorf("public jwk: %w", err)
	}
	for name, value := range map[string]any{
		jwk.KeyIDKey:     kid,
		jwk.AlgorithmKey: jwa.SignatureAlgorithm(alg),
		jwk.KeyUsageKey:  jwk.ForSignature,
	} {
		if err := key.Set(name, value); err != nil {
			return nil, fmt.Errorf("public jwk: set %s: %w", name, err)
		}
	}
	return key, nil
}

// Signer signs a tenant's tokens and serves its JWKS. It is built once per tenant revision and cached
// by the caller: NewSigner does the decryption and parsing, so that signing a token on the ceremony
// path never touches the master key or parses key material. A Signer is safe for concurrent use.
type Signer struct {
	kid string
	alg Algorithm
	// private is the parsed private key (ECDSA P-256 or RSA), jwa its JWS algorithm.
	private crypto.Signer
	jwa     jwa.SignatureAlgorithm
	jwks    []byte
	// changesAt is when the keys' schedule changes the signing key or the JWKS (zero: never).
	changesAt time.Time
}

// NewSigner returns a Signer for a tenant's signing keys as of now.
//
// The active key is the key that signs at now (see Current); its private key is opened with sealer and
// must match its stored public JWK and algorithm. The JWKS holds the public JWK of every key whose
// ExpiresAt is nil or after now, active key first, then newest first: a next key that does not sign
// yet is published already. Each public JWK is parsed and re-serialized, so a corrupt row can never
// publish private key material. If no key is active, NewSigner returns ErrNoActiveKey. The Signer is
// valid until ChangesAt.
func NewSigner(keys []Key, sealer *Sealer, now time.Time) (*Signer, error) {
	cur, ok := Current(keys, now)
	if !ok {
		return nil, ErrNoActiveKey
	}
	active := &cur

	s := &Signer{kid: active.ID, alg: active.Algorithm, changesAt: changesAt(keys, now)}
	if err := s.loadPrivateKey(*active, sealer); err != nil {
		return nil, fmt.Errorf("signing key %s: %w", active.ID, err)
	}

	published := make([]Key, 0, len(keys))
	for _, k := range keys {
		if k.ID != active.ID && k.published(now) {
			published = append(published, k)
		}
	}
	sort.SliceStable(published, func(i, j int) bool { return published[i].CreatedAt.After(published[j].CreatedAt) })
	set := jwk.NewSet()
	for _, k := range append([]Key{*active}, published...) {
		pub, err := parsePublicJWK(k)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		if err := set.AddKey(pub); err != nil {
			return nil, fmt.Errorf("signing key %s: add to jwks: %w", k.ID, err)
		}
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("marshal jwks: %w", err)
	}
	s.jwks = jwks

	s.jwa = jwa.SignatureAlgorithm(s.alg)
	return s, nil
}

// loadPrivateKey opens k's private key and checks it against k's algorithm and public JWK.
func (s *Signer) loadPrivateKey(k Key, sealer *Sealer) error {
	der, err := sealer.Open(k.EncryptedPrivateKey, KeyAdditionalData(k.TenantID, k.ID))
	if err != nil {
		return err
	}
	defer clear(der)
	// PKCS #8 parsing gives an RSA key with its CRT values precomputed, which signing needs to be fast.
	raw, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return fmt.Errorf("parse private key: %w", err)
	}
	var pub crypto.PublicKey
	switch key := raw.(type) {
	case *ecdsa.PrivateKey:
		if k.Algorithm != ES256 || key.Curve != elliptic.P256() {
			return fmt.Errorf("private key does not fit algorithm %q", k.Algorithm)
		}
		s.private, pub = key, key.Public()
	case *rsa.PrivateKey:
		if k.Algorithm != RS256 || key.N.BitLen() < rsaKeyBits {
			return fmt.Errorf("private key does not fit algorithm %q", k.Algorithm)
		}
		s.private, pub = key, key.Public()
	default:
		return fmt.Errorf("unsupported private key type %T", raw)
	}

	want, err := publicJWK(pub, k.ID, k.Algorithm)
	if err != nil {
		return err
	}
	got, err := parsePublicJWK(k)
	if err != nil {
		return err
	}
	wantTP, err := want.Thumbprint(crypto.SHA256)
	if err != nil {
		return fmt.Errorf("thumbprint: %w", err)
	}
	gotTP, err := got.Thumbprint(crypto.SHA256)
	if err != nil {
		return fmt.Errorf("thumbprint: %w", err)
	}
	if !bytes.Equal(wantTP, gotTP) {
		return errors.New("private key does not match the stored public jwk")
	}
	return nil
}

// parsePublicJWK parses k.PublicJWK and checks it is a public key with k's kid and algorithm. It returns
// the key with use=sig set.
func parsePublicJWK(k Key) (jwk.Key, error) {
	key, err := jwk.ParseKey(k.PublicJWK)
	if err != nil {
		return nil, fmt.Errorf("parse public jwk: %w", err)
	}
	pub, err := jwk.PublicKeyOf(key)
	if err != nil {
		return nil, fmt.Errorf("public jwk: %w", err)
	}
	if isPrivate(key) {
		return nil, errors.New("stored public jwk holds private key material")
	}
	if pub.KeyID() != k.ID {
		return nil, fmt.Errorf("public jwk kid %q does not match key id", pub.KeyID())
	}
	if pub.Algorithm().String() != string(k.Algorithm) {
		return nil, fmt.Errorf("public jwk alg %q does not match %q", pub.Algorithm(), k.Algorithm)
	}
	if err := pub.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return nil, fmt.Errorf("public jwk: set use: %w", err)
	}
	return pub, nil
}

// isPrivate reports whether key holds private key material of any kind.
func isPrivate(key jwk.Key) bool {
	switch key.(type) {
	case jwk.RSAPrivateKey, jwk.ECDSAPrivateKey, jwk.OKPPrivateKey, jwk.SymmetricKey:
		return true
	}
	return false
}

// JWKS returns the tenant's JSON Web Key Set, {"keys":[...]}, serialized once by NewSigner. The caller
// must not modify the returned bytes.
func (s *Signer) JWKS() []byte { return s.jwks }

// ChangesAt returns when the Signer goes stale: the first instant after it was built at which a key
// retires (the next key takes over) or leaves the JWKS. The zero time means never. A cache of Signers
// must build a new one from the same keys once ChangesAt has passed, even though no key changed.
func (s *Signer) ChangesAt() time.Time { return s.changesAt }

// KeyID returns the kid of the key that signs new tokens.
func (s *Signer) KeyID() string { return s.kid }

// Algorithm returns the algorithm new tokens are signed with.
func (s *Signer) Algorithm() Algorithm { return s.alg }
