// Package authenticatortest provides a software WebAuthn authenticator and client for tests, in the
// spirit of net/http/httptest.
//
// An [Authenticator] takes the JSON a relying party returns from an initialize call
// (PublicKeyCredentialCreationOptionsJSON or PublicKeyCredentialRequestOptionsJSON, bare or wrapped in
// {"publicKey": ...}) and produces the JSON a browser's PublicKeyCredential.toJSON() would send to
// finalize (WebAuthn §5.1, RegistrationResponseJSON and AuthenticationResponseJSON). Every binary
// member is base64url without padding.
//
// It plays both roles of a real ceremony: the client (it builds clientDataJSON, §5.8.1, and checks the
// RP ID against the origin like a browser, §5.1.3 and §5.1.4.1) and the authenticator (it builds
// authenticator data, §6.1, attested credential data, §6.5.1, and a "none" or packed self attestation,
// §8.7 and §8.2). [Tamper] forges the responses a malicious or broken client would send.
//
// It is for tests only: keys live in memory and nothing is protected.
package authenticatortest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Errors returned by [Authenticator.Create] and [Authenticator.Get]. They stand for the DOMExceptions a
// browser would raise.
var (
	// ErrExcluded means excludeCredentials lists a credential this authenticator holds for the RP
	// (WebAuthn §6.3.2; a browser reports InvalidStateError).
	ErrExcluded = errors.New("authenticatortest: authenticator holds an excluded credential")
	// ErrNoCredential means no stored credential may answer the request: none for the RP is listed in
	// allowCredentials, or, for an empty list, none is discoverable (§6.3.3; NotAllowedError).
	ErrNoCredential = errors.New("authenticatortest: no credential for this request")
	// ErrAlgorithmNotOffered means pubKeyCredParams does not offer the authenticator's algorithm
	// (§6.3.2; NotSupportedError).
	ErrAlgorithmNotOffered = errors.New("authenticatortest: algorithm not offered in pubKeyCredParams")
	// ErrRPIDMismatch means the RP ID is neither the origin's host nor a parent domain of it
	// (§5.1.3, §5.1.4.1; SecurityError). Use [Tamper.Origin] to forge such a response.
	ErrRPIDMismatch = errors.New("authenticatortest: RP ID is not a registrable suffix of the origin's host")
	// ErrInvalidOptions means the options JSON is malformed or misses a required member (TypeError).
	ErrInvalidOptions = errors.New("authenticatortest: invalid options")
)

// Algorithm is a COSE algorithm identifier (IANA COSE Algorithms registry).
type Algorithm int64

// Supported credential algorithms.
const (
	// ES256 is ECDSA with P-256 and SHA-256 (COSE -7); the default.
	ES256 Algorithm = -7
	// EdDSA is Ed25519 (COSE -8, OKP key with crv 6).
	EdDSA Algorithm = -8
)

// String returns the algorithm's COSE name.
func (a Algorithm) String() string {
	switch a {
	case ES256:
		return "ES256"
	case EdDSA:
		return "EdDSA"
	}
	return fmt.Sprintf("Algorithm(%d)", int64(a))
}

// Flag is a bit of the authenticator data flags byte (WebAuthn §6.1).
type Flag byte

// Authenticator data flags (WebAuthn §6.1; bit 0 is the least significant).
const (
	FlagUP Flag = 1 << 0 // user present
	FlagUV Flag = 1 << 2 // user verified
	FlagBE Flag = 1 << 3 // backup eligible
	FlagBS Flag = 1 << 4 // backup state
	FlagAT Flag = 1 << 6 // attested credential data included
	FlagED Flag = 1 << 7 // extension data included
)

// Attachment values reported as authenticatorAttachment (WebAuthn §5.4.5).
const (
	Platform      = "platform"
	CrossPlatform = "cross-platform"
)

// Options configure an [Authenticator]. The zero value is a platform authenticator that verifies the
// user, creates ES256 credentials with "none" attestation and counts signatures.
type Options struct {
	// Algorithm is the credential algorithm: ES256 (the zero value) or EdDSA.
	Algorithm Algorithm
	// Attestation is the attestation statement format: "none" (the zero value) or "packed" (self
	// attestation, §8.2: alg and a signature over authData‖clientDataHash by the credential key, no
	// x5c). It is returned whatever the RP's attestation conveyance preference: the client-side
	// rewrite of §5.1.3 is not applied, so tests can exercise either format.
	Attestation string
	// AAGUID is reported in the attested credential data (§6.5.1); zero by default.
	AAGUID [16]byte
	// SkipUserVerification leaves the UV flag clear, like a security key without PIN or biometrics.
	// By default UV is set on every ceremony, whatever the RP's userVerification requirement.
	SkipUserVerification bool
	// BackupEligible and BackupState set the BE and BS flags (§6.1.3), as a synced passkey would.
	BackupEligible, BackupState bool
	// Transports are reported in response.transports; default ["internal"] for a platform
	// authenticator, ["usb"] for a cross-platform one.
	Transports []string
	// Attachment is reported as authenticatorAttachment: Platform (default) or CrossPlatform.
	Attachment string
	// ZeroCounter keeps the signature counter at 0, like synced passkeys (§6.1.1). By default the
	// counter grows by one per assertion.
	ZeroCounter bool
	// AttestationKey and AttestationChain make "packed" attestation basic (full) attestation (§8.2,
	// x5c present): the statement is signed with AttestationKey (an ECDSA P-256 key, alg ES256), and
	// x5c is AttestationChain, DER, attestation certificate first (attestationtest issues them).
	AttestationKey   crypto.Signer
	AttestationChain [][]byte
}

// Tamper forges a response. The zero value changes nothing. Fields apply to Create and Get alike
// unless noted; signatures are computed over the tampered data, so each field tests one check.
type Tamper struct {
	// Type, Challenge and Origin replace clientDataJSON's members when non-empty (§5.8.1).
	// Challenge is written as given (it should be base64url).
	Type, Challenge, Origin string
	// CrossOrigin sets clientDataJSON's crossOrigin member to true.
	CrossOrigin bool
	// RPID, when non-empty, is hashed into authenticator data instead of the request's RP ID. The
	// RP ID check against the origin still uses the request's RP ID.
	RPID string
	// SetFlags and ClearFlags are or-ed into, then cleared from, the authenticator data flags.
	SetFlags, ClearFlags Flag
	// CorruptSignature flips a bit of the assertion signature (Get) or of the packed attestation
	// signature (Create; no effect with "none" attestation).
	CorruptSignature bool
	// UserHandle, when non-nil, is reported as response.userHandle instead of the stored one (Get).
	UserHandle []byte
}

// StoredCredential describes a credential held by an [Authenticator].
type StoredCredential struct {
	// ID is the credential ID, base64url without padding.
	ID string
	// RPID is the RP ID the credential is scoped to.
	RPID string
	// UserHandle is user.id from the creation options.
	UserHandle []byte
	// Resident reports a discoverable (client-side) credential (§6.2.2).
	Resident bool
	// SignCount is the signature counter: the value the last response reported.
	SignCount uint32
	// Algorithm is the credential's algorithm.
	Algorithm Algorithm
	// PublicKey is the credential public key, COSE_Key encoded (§6.5.1.1).
	PublicKey []byte
}

// credential is a stored credential with its private key.
type credential struct {
	id         []byte
	rpID       string
	userHandle []byte
	resident   bool
	counter    uint32
	alg        Algorithm
	signer     crypto.Signer
	coseKey    []byte
}

// Authenticator is a software authenticator and client. It is safe for concurrent use.
type Authenticator struct {
	opts Options

	mu    sync.Mutex
	creds []*credential // in creation order
}

// New returns an authenticator with no credentials. It panics on an unsupported Algorithm,
// Attestation or Attachment, as those are mistakes in the test itself.
func New(o Options) *Authenticator {
	if o.Algorithm == 0 {
		o.Algorithm = ES256
	}
	if o.Algorithm != ES256 && o.Algorithm != EdDSA {
		panic(fmt.Sprintf("authenticatortest: unsupported algorithm %v", o.Algorithm))
	}
	if o.Attestation == "" {
		o.Attestation = "none"
	}
	if o.Attestation != "none" && o.Attestation != "packed" {
		panic(fmt.Sprintf("authenticatortest: unsupported attestation format %q", o.Attestation))
	}
	if o.Attachment == "" {
		o.Attachment = Platform
	}
	if o.Attachment != Platform && o.Attachment != CrossPlatform {
		panic(fmt.Sprintf("authenticatortest: unsupported attachment %q", o.Attachment))
	}
	if o.Transports == nil {
		o.Transports = []string{"internal"}
		if o.Attachment == CrossPlatform {
			o.Transports = []string{"usb"}
		}
	}
	o.Transports = slices.Clone(o.Transports)
	return &Authenticator{opts: o}
}

// Credentials returns the stored credentials, oldest first.
func (a *Authenticator) Credentials() []StoredCredential {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]StoredCredential, 0, len(a.creds))
	for _, c := range a.creds {
		out = append(out, StoredCredential{
			ID:         b64(c.id),
			RPID:       c.rpID,
			UserHandle: slices.Clone(c.userHandle),
			Resident:   c.resident,
			SignCount:  c.counter,
			Algorithm:  c.alg,
			PublicKey:  slices.Clone(c.coseKey),
		})
	}
	return out
}

// SetCounter sets the signature counter of the credential with the given base64url ID; the next
// assertion reports n+1 (or n with ZeroCounter). Use it to test counter regressions (§6.1.1).
func (a *Authenticator) SetCounter(credID string, n uint32) error {
	id, err := decodeB64(credID)
	if err != nil {
		return fmt.Errorf("credential id: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.creds {
		if string(c.id) == string(id) {
			c.counter = n
			return nil
		}
	}
	return ErrNoCredential
}

// newCredential makes a key pair for the configured algorithm.
func (a *Authenticator) newCredential(rpID string, userHandle []byte, resident bool) (*credential, error) {
	c := &credential{
		id:         make([]byte, 32),
		rpID:       rpID,
		userHandle: slices.Clone(userHandle),
		resident:   resident,
		alg:        a.opts.Algorithm,
	}
	if _, err := rand.Read(c.id); err != nil {
		return nil, err
	}
	switch a.opts.Algorithm {
	case ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		c.signer = k
	case EdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		c.signer = k
	}
	key, err := coseKey(c.signer.Public())
	if err != nil {
		return nil, err
	}
	c.coseKey = key
	return c, nil
}

// sign signs data as the credential's algorithm requires (§6.5.5): ES256 signs SHA-256(data) and
// encodes the signature in ASN.1 DER; EdDSA signs data itself.
func (c *credential) sign(data []byte) ([]byte, error) {
	switch k := c.signer.(type) {
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(data)
		return ecdsa.SignASN1(rand.Reader, k, h[:])
	case ed25519.PrivateKey:
		return ed25519.Sign(k, data), nil
	}
	return nil, fmt.Errorf("authenticatortest: unsupported key %T", c.signer)
}

// b64 encodes base64url without padding, as toJSON() does.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeB64 decodes base64url, tolerating padding.
func decodeB64(s string) ([]byte, error) {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	return base64.RawURLEncoding.DecodeString(s)
}
