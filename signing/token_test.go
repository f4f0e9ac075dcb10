package signing

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// verifyToken verifies a token the way a relying party does: against the JWKS bytes, by kid.
func verifyToken(jwks []byte, token string) (jwt.Token, error) {
	set, err := jwk.Parse(jwks)
	if err != nil {
		return nil, err
	}
	return jwt.Parse([]byte(token), jwt.WithKeySet(set), jwt.WithValidate(true))
}

// tokenPart decodes one base64url part of a compact JWS as a JSON object of raw members.
func tokenPart(t *testing.T, token string, i int) map[string]json.RawMessage {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3: %s", len(parts), token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("part %d is not base64url without padding: %v", i, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("part %d is not a JSON object: %v\n%s", i, err, raw)
	}
	return m
}

func tokenHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for k, v := range tokenPart(t, token, 0) {
		var x any
		_ = json.Unmarshal(v, &x)
		out[k] = x
	}
	return out
}

func newTestSigner(t testing.TB, alg Algorithm) (*Signer, Key) {
	t.Helper()
	sealer := testSealer(t)
	k := genKey(t, uuid.New(), alg, sealer, time.Now())
	s, err := NewSigner([]Key{k}, sealer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

func TestSignAndVerify(t *testing.T) {
	for _, alg := range []Algorithm{ES256, RS256} {
		t.Run(string(alg), func(t *testing.T) {
			s, key := newTestSigner(t, alg)
			iat := time.Now().Add(-10 * time.Second).Truncate(time.Second)
			c := Claims{
				Issuer:          "https://passkeys.example.com/tenant",
				Subject:         "user-\"1\"\n\u00e9",
				Audience:        []string{"example.com"},
				CredentialID:    "q83vEjRWeJA",
				Ceremony:        "transaction",
				TransactionID:   "tx-42",
				TransactionHash: "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg",
				AMR:             []string{"hwk", "user"},
				IssuedAt:        iat,
				TTL:             2 * time.Minute,
			}
			token, err := s.Sign(c)
			if err != nil {
				t.Fatal(err)
			}

			parsed, err := verifyToken(s.JWKS(), token)
			if err != nil {
				t.Fatalf("token does not verify against the JWKS: %v", err)
			}

			msg, err := jws.Parse([]byte(token))
			if err != nil {
				t.Fatal(err)
			}
			h := msg.Signatures()[0].ProtectedHeaders()
			if h.KeyID() != key.ID || h.KeyID() != s.KeyID() {
				t.Errorf("kid = %q, want %q", h.KeyID(), key.ID)
			}
			if h.Algorithm().String() != string(alg) {
				t.Errorf("alg = %q, want %q", h.Algorithm(), alg)
			}
			if h.Type() != "JWT" {
				t.Errorf("typ = %q, want JWT", h.Type())
			}
			if n := len(tokenHeader(t, token)); n != 3 {
				t.Errorf("header has %d members, want alg, kid, typ", n)
			}

			if parsed.Subject() != c.Subject {
				t.Errorf("sub = %q, want %q", parsed.Subject(), c.Subject)
			}
			if !equalStrings(parsed.Audience(), c.Audience) {
				t.Errorf("aud = %v, want %v", parsed.Audience(), c.Audience)
			}
			if parsed.Issuer() != c.Issuer {
				t.Errorf("iss = %q, want %q", parsed.Issuer(), c.Issuer)
			}
			if !parsed.IssuedAt().Equal(iat) {
				t.Errorf("iat = %v, want %v", parsed.IssuedAt(), iat)
			}
			if !parsed.Expiration().Equal(iat.Add(2 * time.Minute)) {
				t.Errorf("exp = %v, want iat + TTL", parsed.Expiration())
			}
			if _, err := uuid.Parse(parsed.JwtID()); err != nil || len(parsed.JwtID()) != 36 {
				t.Errorf("jti %q is not a UUID: %v", parsed.JwtID(), err)
			}
			for name, want := range map[string]any{
				"cred":       c.CredentialID,
				"ceremony":   c.Ceremony,
				"trans":      c.TransactionID,
				"trans_hash": c.TransactionHash,
				"amr":        []any{"hwk", "user"},
			} {
				got, ok := parsed.Get(name)
				if !ok {
					t.Errorf("claim %q missing", name)
					continue
				}
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(want)
				if string(gj) != string(wj) {
					t.Errorf("claim %q = %s, want %s", name, gj, wj)
				}
			}

			payload := tokenPart(t, token, 1)
			if len(payload) != 11 {
				t.Errorf("payload has %d claims, want 11: %v", len(payload), payload)
			}
			if aud := string(payload["aud"]); aud != `["example.com"]` {
				t.Errorf("raw aud = %s, want a one-element array", aud)
			}
			if iat := string(payload["iat"]); strings.ContainsAny(iat, ".eE\"") {
				t.Errorf("raw iat = %s, want integer seconds", iat)
			}
		})
	}
}

func TestSignMinimalClaims(t *testing.T) {
	s, _ := newTestSigner(t, ES256)
	iat := time.Now().Truncate(time.Second)
	token, err := s.Sign(Claims{Subject: "u1", Audience: []string{"example.com"}, CredentialID: "abc", IssuedAt: iat})
	if err != nil {
		t.Fatal(err)
	}
	payload := tokenPart(t, token, 1)
	want := []string{"sub", "aud", "cred", "iat", "exp", "jti"}
	if len(payload) != len(want) {
		t.Errorf("payload claims %v, want exactly %v (empty optional claims omitted)", payload, want)
	}
	for _, name := range want {
		if _, ok := payload[name]; !ok {
			t.Errorf("claim %q missing", name)
		}
	}
	var iatS, exp int64
	_ = json.Unmarshal(payload["iat"], &iatS)
	_ = json.Unmarshal(payload["exp"], &exp)
	if iatS != iat.Unix() || exp-iatS != 300 {
		t.Errorf("iat = %d, exp = %d; want iat = %d and exp = iat + 300", iatS, exp, iat.Unix())
	}
	if string(payload["aud"]) != `["example.com"]` {
		t.Errorf("raw aud = %s, want an array", payload["aud"])
	}
	if _, err := verifyToken(s.JWKS(), token); err != nil {
		t.Errorf("verify: %v", err)
	}

	// Two tokens never share a jti.
	token2, _ := s.Sign(Claims{Subject: "u1", Audience: []string{"example.com"}, IssuedAt: iat})
	if string(tokenPart(t, token2, 1)["jti"]) == string(payload["jti"]) {
		t.Error("two tokens have the same jti")
	}
}

func TestSignDefaultsIssuedAtToNow(t *testing.T) {
	s, _ := newTestSigner(t, ES256)
	before := time.Now().Unix()
	token, err := s.Sign(Claims{Subject: "u", Audience: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().Unix()
	var iat int64
	_ = json.Unmarshal(tokenPart(t, token, 1)["iat"], &iat)
	if iat < before || iat > after {
		t.Errorf("iat = %d, want between %d and %d", iat, before, after)
	}
}

func TestSignRejectsBadClaims(t *testing.T) {
	s, _ := newTestSigner(t, ES256)
	for name, c := range map[string]Claims{
		"no subject":   {Audience: []string{"a"}},
		"no audience":  {Subject: "u"},
		"negative ttl": {Subject: "u", Audience: []string{"a"}, TTL: -time.Second},
	} {
		if tok, err := s.Sign(c); err == nil {
			t.Errorf("%s: Sign = %q, want error", name, tok)
		}
	}
}

func TestSignConcurrent(t *testing.T) {
	s, _ := newTestSigner(t, ES256)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			var err error
			for j := 0; j < 20 && err == nil; j++ {
				var tok string
				sub := strings.Repeat("x", i*j*50) // vary buffer sizes across pooled uses
				if tok, err = s.Sign(Claims{Subject: sub + "u", Audience: []string{"a"}, IssuedAt: time.Now()}); err == nil {
					var parsed jwt.Token
					if parsed, err = verifyToken(s.JWKS(), tok); err == nil && parsed.Subject() != sub+"u" {
						err = errWrongSubject
					}
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

var errWrongSubject = errors.New("token carries another call's subject")

// TestAppendJSONString checks the hand-written JSON string encoder against encoding/json.
func benchmarkSign(b *testing.B, alg Algorithm) {
	s, _ := newTestSigner(b, alg)
	c := Claims{
		Subject:      "0f8f5b4e-2d3c-4a6b-9c1d-7e8f9a0b1c2d",
		Audience:     []string{"example.com"},
		CredentialID: "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQ",
		Ceremony:     "login",
		IssuedAt:     time.Now(),
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignES256 measures signing one login token with a P-256 key.
func BenchmarkSignES256(b *testing.B) { benchmarkSign(b, ES256) }

// BenchmarkSignRS256 measures signing one login token with a 2048-bit RSA key.
func BenchmarkSignRS256(b *testing.B) { benchmarkSign(b, RS256) }
