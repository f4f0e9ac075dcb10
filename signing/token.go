package signing

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// DefaultTokenTTL is the lifetime of a token whose Claims.TTL is zero: Hanko's 5 minutes.
const DefaultTokenTTL = 300 * time.Second

// Claims is what a token returned by a finalize call says (docs/hanko-compatibility.md#tokens, plus our own
// claims, which the official clients ignore).
type Claims struct {
	// Issuer is the "iss" claim, omitted when empty.
	Issuer string
	// Subject is the "sub" claim: the relying party's user id as given at registration. Required.
	Subject string
	// Audience is the "aud" claim, usually the tenant's relying party id. It is always serialized as a
	// JSON array, even with one element, because Hanko's clients expect an array. Required.
	Audience []string
	// CredentialID is the "cred" claim: the credential's id, base64url without padding.
	CredentialID string
	// Ceremony is the "ceremony" claim, the credentials.Ceremony that produced the token (registration,
	// login, mfa_registration, mfa_login, transaction); omitted when empty.
	Ceremony string
	// TransactionID is the "trans" claim, the transaction's identifier; omitted when empty.
	TransactionID string
	// TransactionHash is the "trans_hash" claim, a digest of the signed transaction data; omitted when
	// empty.
	TransactionHash string
	// AMR is the "amr" claim (RFC 8176 authentication method references); omitted when empty.
	AMR []string
	// IssuedAt is the "iat" claim, in whole seconds. Zero means the current time.
	IssuedAt time.Time
	// TTL is how long the token is valid: "exp" = "iat" + TTL. Zero means DefaultTokenTTL.
	TTL time.Duration
}

// tokenClaims is the JSON claims set of a token. Audience is a slice so that "aud" is always an
// array, as Hanko's clients expect.
type tokenClaims struct {
	Issuer          string   `json:"iss,omitempty"`
	Subject         string   `json:"sub"`
	Audience        []string `json:"aud"`
	CredentialID    string   `json:"cred,omitempty"`
	IssuedAt        int64    `json:"iat"`
	Expiry          int64    `json:"exp"`
	JTI             string   `json:"jti"`
	Ceremony        string   `json:"ceremony,omitempty"`
	TransactionID   string   `json:"trans,omitempty"`
	TransactionHash string   `json:"trans_hash,omitempty"`
	AMR             []string `json:"amr,omitempty"`
}

// Sign returns a compact JWS (RFC 7515 §7.1) of the claims, signed by jwx with the active key. The
// protected header is {"alg","kid","typ":"JWT"}; the claims are those of Claims, with a random UUID
// "jti". The key was parsed once by NewSigner: signing never decrypts or parses a key.
func (s *Signer) Sign(c Claims) (string, error) {
	if c.Subject == "" {
		return "", errors.New("sign token: subject is empty")
	}
	if len(c.Audience) == 0 {
		return "", errors.New("sign token: audience is empty")
	}
	if c.TTL < 0 {
		return "", fmt.Errorf("sign token: negative ttl %s", c.TTL)
	}
	if c.TTL == 0 {
		c.TTL = DefaultTokenTTL
	}
	iat := c.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	payload, err := json.Marshal(tokenClaims{
		Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, CredentialID: c.CredentialID,
		IssuedAt: iat.Unix(), Expiry: iat.Add(c.TTL).Unix(), JTI: uuid.NewString(),
		Ceremony: c.Ceremony, TransactionID: c.TransactionID, TransactionHash: c.TransactionHash, AMR: c.AMR,
	})
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	// jws.Sign writes "alg" into the headers it is given, so each call gets its own.
	return s.compact(payload)
}

// protectedHeader is the protected header of every token.
type protectedHeader struct {
	Algorithm string `json:"alg"`
	KeyID     string `json:"kid"`
	Type      string `json:"typ"`
}

// jwsSigners holds one jwx signer per algorithm: they keep no state, and making one per token was a
// good part of a token's allocations (issue 11).
var jwsSigners sync.Map // jwa.SignatureAlgorithm → jws.Signer

// compact signs payload and returns the token in JWS compact serialization (RFC 7515 §7.1), built in
// one buffer: base64url(header) "." base64url(payload) "." base64url(signature). jwx computes the
// signature; the header is this signer's alone, so it needs no jws.Headers.
func (s *Signer) compact(payload []byte) (string, error) {
	signer, err := jwsSignerFor(s.jwa)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	header, err := json.Marshal(protectedHeader{Algorithm: s.jwa.String(), KeyID: s.kid, Type: "JWT"})
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, enc.EncodedLen(len(header))+enc.EncodedLen(len(payload))+2+enc.EncodedLen(512))
	buf = enc.AppendEncode(buf, header)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	signature, err := signer.Sign(buf, s.private)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, signature)
	return string(buf), nil
}

func jwsSignerFor(alg jwa.SignatureAlgorithm) (jws.Signer, error) {
	if v, ok := jwsSigners.Load(alg); ok {
		return v.(jws.Signer), nil
	}
	signer, err := jws.NewSigner(alg)
	if err != nil {
		return nil, err
	}
	v, _ := jwsSigners.LoadOrStore(alg, signer)
	return v.(jws.Signer), nil
}
