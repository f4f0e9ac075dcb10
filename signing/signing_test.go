package signing

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

func testSealer(t testing.TB) *Sealer {
	t.Helper()
	s, err := NewSealer(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// genKey generates a signing key or fails the test.
func genKey(t testing.TB, tenantID uuid.UUID, alg Algorithm, sealer *Sealer, createdAt time.Time) Key {
	t.Helper()
	k, err := GenerateKey(tenantID, alg, sealer, createdAt)
	if err != nil {
		t.Fatalf("GenerateKey(%s): %v", alg, err)
	}
	return k
}

func TestNewSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer(%d bytes) succeeded, want error", n)
		}
	}
	if _, err := NewSealer(make([]byte, 32)); err != nil {
		t.Errorf("NewSealer(32 bytes): %v", err)
	}
}

func TestSealerRoundTrip(t *testing.T) {
	s := testSealer(t)
	for _, plain := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("secret"), 1000)} {
		ad := []byte("row-1")
		sealed, err := s.Seal(plain, ad)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != 12+len(plain)+16 {
			t.Errorf("sealed length %d, want nonce+plaintext+tag = %d", len(sealed), 12+len(plain)+16)
		}
		if len(plain) > 8 && bytes.Contains(sealed, plain) {
			t.Error("sealed output contains the plaintext")
		}
		got, err := s.Open(sealed, ad)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, plain) {
			t.Errorf("Open = %q, want %q", got, plain)
		}
	}

	a, _ := s.Seal([]byte("same"), nil)
	b, _ := s.Seal([]byte("same"), nil)
	if bytes.Equal(a[:12], b[:12]) {
		t.Error("two Seal calls used the same nonce")
	}
}

func TestSealerTamper(t *testing.T) {
	s := testSealer(t)
	ad := []byte("ad")
	sealed, err := s.Seal([]byte("private key bytes"), ad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed { // nonce, ciphertext and tag alike
		tampered := bytes.Clone(sealed)
		tampered[i] ^= 0x01
		if _, err := s.Open(tampered, ad); err == nil {
			t.Fatalf("Open succeeded with byte %d flipped", i)
		}
	}
	for _, short := range [][]byte{nil, sealed[:11], sealed[:27]} {
		if _, err := s.Open(short, ad); err == nil {
			t.Errorf("Open(%d bytes) succeeded", len(short))
		}
	}
}

func TestSealerWrongAdditionalData(t *testing.T) {
	s := testSealer(t)
	tenantA, tenantB := uuid.New(), uuid.New()
	sealed, err := s.Seal([]byte("k"), KeyAdditionalData(tenantA, "kid-1"))
	if err != nil {
		t.Fatal(err)
	}
	for name, ad := range map[string][]byte{
		"other kid":    KeyAdditionalData(tenantA, "kid-2"),
		"other tenant": KeyAdditionalData(tenantB, "kid-1"),
		"none":         nil,
	} {
		if _, err := s.Open(sealed, ad); err == nil {
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

func TestSealerWrongKey(t *testing.T) {
	s := testSealer(t)
	other, err := NewSealer(bytes.Repeat([]byte{0x43}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal([]byte("k"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open(sealed, nil); err == nil {
		t.Error("Open with another master key succeeded")
	}
}

func TestAlgorithmValid(t *testing.T) {
	for alg, want := range map[Algorithm]bool{ES256: true, RS256: true, "": false, "HS256": false, "es256": false, "none": false} {
		if got := alg.Valid(); got != want {
			t.Errorf("Algorithm(%q).Valid() = %v, want %v", alg, got, want)
		}
	}
	if !DefaultAlgorithm.Valid() {
		t.Error("DefaultAlgorithm is not valid")
	}
}

func TestGenerateSigningKey(t *testing.T) {
	sealer := testSealer(t)
	tenantID := uuid.New()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		alg     Algorithm
		members []string
	}{
		{ES256, []string{"alg", "crv", "kid", "kty", "use", "x", "y"}},
		{RS256, []string{"alg", "e", "kid", "kty", "n", "use"}},
	} {
		t.Run(string(tc.alg), func(t *testing.T) {
			k := genKey(t, tenantID, tc.alg, sealer, now)
			if _, err := uuid.Parse(k.ID); err != nil {
				t.Errorf("ID %q is not a UUID", k.ID)
			}
			if k.TenantID != tenantID || k.Algorithm != tc.alg || !k.CreatedAt.Equal(now) ||
				k.RetiredAt != nil || k.ExpiresAt != nil {
				t.Errorf("unexpected key fields: %+v", k)
			}
			var pub map[string]any
			if err := json.Unmarshal(k.PublicJWK, &pub); err != nil {
				t.Fatal(err)
			}
			if len(pub) != len(tc.members) {
				t.Errorf("public JWK members %v, want %v", keysOf(pub), tc.members)
			}
			for _, m := range tc.members {
				if _, ok := pub[m]; !ok {
					t.Errorf("public JWK lacks %q: %s", m, k.PublicJWK)
				}
			}
			if pub["kid"] != k.ID || pub["alg"] != string(tc.alg) || pub["use"] != "sig" {
				t.Errorf("public JWK kid/alg/use wrong: %s", k.PublicJWK)
			}
			if _, err := sealer.Open(k.EncryptedPrivateKey, KeyAdditionalData(tenantID, k.ID)); err != nil {
				t.Errorf("private key does not open with its row's additional data: %v", err)
			}
		})
	}
	if _, err := GenerateKey(tenantID, "HS256", sealer, now); err == nil {
		t.Error("GenerateKey(HS256) succeeded")
	}
	if _, err := GenerateKey(tenantID, "", sealer, now); err == nil {
		t.Error("GenerateKey(\"\") succeeded")
	}
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// jwksKIDs returns the kids of a JWKS in order, and checks each entry has the members clients need
// and no private members.
func jwksKIDs(t *testing.T, raw []byte) []string {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("JWKS is not JSON: %v\n%s", err, raw)
	}
	var kids []string
	for _, k := range set.Keys {
		for _, m := range []string{"kid", "alg", "use", "kty"} {
			if _, ok := k[m]; !ok {
				t.Errorf("JWKS entry lacks %q: %v", m, k)
			}
		}
		for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[m]; ok {
				t.Errorf("JWKS entry has private member %q", m)
			}
		}
		if k["use"] != "sig" {
			t.Errorf("JWKS entry use = %v, want sig", k["use"])
		}
		kids = append(kids, k["kid"].(string))
	}
	return kids
}

func TestNewSignerRotation(t *testing.T) {
	sealer := testSealer(t)
	tenantID := uuid.New()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ptr := func(t time.Time) *time.Time { return &t }

	expired := genKey(t, tenantID, ES256, sealer, now.Add(-72*time.Hour))
	expired.RetiredAt, expired.ExpiresAt = ptr(now.Add(-48*time.Hour)), ptr(now.Add(-time.Hour))
	justExpired := genKey(t, tenantID, ES256, sealer, now.Add(-60*time.Hour))
	justExpired.RetiredAt, justExpired.ExpiresAt = ptr(now.Add(-48*time.Hour)), ptr(now)
	previous := genKey(t, tenantID, RS256, sealer, now.Add(-48*time.Hour))
	current := genKey(t, tenantID, ES256, sealer, now.Add(-time.Hour))

	// Before rotation, previous is the active key and signs a token.
	before, err := NewSigner([]Key{previous, expired, justExpired}, sealer, now.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if before.KeyID() != previous.ID || before.Algorithm() != RS256 {
		t.Fatalf("before rotation: signer uses %s/%s, want %s/RS256", before.KeyID(), before.Algorithm(), previous.ID)
	}
	oldToken, err := before.Sign(Claims{Subject: "u", Audience: []string{"example.com"}, IssuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}

	previous.RetiredAt, previous.ExpiresAt = ptr(current.CreatedAt), ptr(now.Add(24*time.Hour))
	keys := []Key{expired, previous, justExpired, current} // order must not matter
	s, err := NewSigner(keys, sealer, now)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != current.ID || s.Algorithm() != ES256 {
		t.Errorf("signer uses %s/%s, want the current key %s/ES256", s.KeyID(), s.Algorithm(), current.ID)
	}
	kids := jwksKIDs(t, s.JWKS())
	if want := []string{current.ID, previous.ID}; !equalStrings(kids, want) {
		t.Errorf("JWKS kids = %v, want %v (active first, retired-but-unexpired next, expired gone)", kids, want)
	}

	// A token from before the rotation still verifies against the new JWKS; new tokens use the new key.
	if _, err := verifyToken(s.JWKS(), oldToken); err != nil {
		t.Errorf("token signed before rotation does not verify against the new JWKS: %v", err)
	}
	newToken, err := s.Sign(Claims{Subject: "u", Audience: []string{"example.com"}, IssuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if h := tokenHeader(t, newToken); h["kid"] != current.ID {
		t.Errorf("new token kid = %v, want %s", h["kid"], current.ID)
	}

	// Once previous expires, it leaves the JWKS.
	later, err := NewSigner(keys, sealer, now.Add(25*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if kids := jwksKIDs(t, later.JWKS()); !equalStrings(kids, []string{current.ID}) {
		t.Errorf("JWKS kids after expiry = %v, want only %s", kids, current.ID)
	}
}

func TestNewSignerNewestActiveKeySigns(t *testing.T) {
	sealer := testSealer(t)
	tenantID := uuid.New()
	now := time.Now()
	older := genKey(t, tenantID, ES256, sealer, now.Add(-time.Hour))
	newer := genKey(t, tenantID, ES256, sealer, now.Add(-time.Minute))
	s, err := NewSigner([]Key{older, newer}, sealer, now)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != newer.ID {
		t.Errorf("KeyID = %s, want the newest active key %s", s.KeyID(), newer.ID)
	}
	if kids := jwksKIDs(t, s.JWKS()); !equalStrings(kids, []string{newer.ID, older.ID}) {
		t.Errorf("JWKS kids = %v", kids)
	}
}

func TestNewSignerNoActiveKey(t *testing.T) {
	sealer := testSealer(t)
	tenantID := uuid.New()
	now := time.Now()
	retired := genKey(t, tenantID, ES256, sealer, now.Add(-time.Hour))
	retiredAt, expiresAt := now.Add(-time.Minute), now.Add(time.Hour)
	retired.RetiredAt, retired.ExpiresAt = &retiredAt, &expiresAt
	// An unretired key that has left the JWKS must not sign: nobody could verify its tokens.
	gone := genKey(t, tenantID, ES256, sealer, now.Add(-time.Hour))
	past := now.Add(-time.Second)
	gone.ExpiresAt = &past

	for name, keys := range map[string][]Key{
		"none":             nil,
		"only retired":     {retired},
		"active expired":   {gone},
		"retired and gone": {retired, gone},
	} {
		if _, err := NewSigner(keys, sealer, now); !errors.Is(err, ErrNoActiveKey) {
			t.Errorf("%s: NewSigner error = %v, want ErrNoActiveKey", name, err)
		}
	}
}

func TestNewSignerRejectsBadRows(t *testing.T) {
	sealer := testSealer(t)
	tenantID := uuid.New()
	now := time.Now()
	a := genKey(t, tenantID, ES256, sealer, now)
	b := genKey(t, tenantID, ES256, sealer, now)

	privJWK := func() []byte {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := jwk.FromRaw(priv)
		if err != nil {
			t.Fatal(err)
		}
		_ = k.Set(jwk.KeyIDKey, a.ID)
		_ = k.Set(jwk.AlgorithmKey, "ES256")
		raw, _ := json.Marshal(k)
		return raw
	}()

	for name, mutate := range map[string]func(k *Key){
		"ciphertext of another row":    func(k *Key) { k.EncryptedPrivateKey = b.EncryptedPrivateKey },
		"row moved to another tenant":  func(k *Key) { k.TenantID = uuid.New() },
		"public key of another row":    func(k *Key) { k.PublicJWK = b.PublicJWK },
		"algorithm changed":            func(k *Key) { k.Algorithm = RS256 },
		"private material in the JWKS": func(k *Key) { k.PublicJWK = privJWK },
		"public JWK not JSON":          func(k *Key) { k.PublicJWK = []byte("{") },
	} {
		k := a
		mutate(&k)
		s, err := NewSigner([]Key{k}, sealer, now)
		if err == nil || errors.Is(err, ErrNoActiveKey) {
			t.Errorf("%s: NewSigner = %v, %v; want a key error", name, s, err)
		}
	}

	// A retired key with private material in its stored public JWK must not reach the JWKS either.
	bad := b
	bad.PublicJWK = privJWK
	retiredAt, expiresAt := now, now.Add(time.Hour)
	bad.RetiredAt, bad.ExpiresAt = &retiredAt, &expiresAt
	if _, err := NewSigner([]Key{a, bad}, sealer, now); err == nil {
		t.Error("NewSigner published a retired key with private material")
	}

	other, _ := NewSealer(bytes.Repeat([]byte{7}, 32))
	if _, err := NewSigner([]Key{a}, other, now); err == nil {
		t.Error("NewSigner succeeded with another master key")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestNewSignerDelayedActivation: a rotation with an activation delay publishes the next key at once
// and lets the previous key sign until its RetiredAt; ChangesAt names that instant and then the
// previous key's expiry (issue 12, points 9 and 13). A second rotation before the first takes over
// keeps the order: each key signs after the one before it.
func TestNewSignerDelayedActivation(t *testing.T) {
	sealer := testSealer(t)
	tenantID := uuid.New()
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ptr := func(t time.Time) *time.Time { return &t }
	delay, overlap := 2*time.Minute, time.Hour

	a := genKey(t, tenantID, ES256, sealer, t0.Add(-time.Hour))
	b := genKey(t, tenantID, ES256, sealer, t0)
	a.RetiredAt, a.ExpiresAt = ptr(t0.Add(delay)), ptr(t0.Add(delay+overlap))
	keys := []Key{b, a}

	at := func(now time.Time) *Signer {
		t.Helper()
		s, err := NewSigner(keys, sealer, now)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := at(t0)
	if s.KeyID() != a.ID || !equalStrings(jwksKIDs(t, s.JWKS()), []string{a.ID, b.ID}) {
		t.Fatalf("during the delay: signs with %s, JWKS %v; want %s signing and both published", s.KeyID(), jwksKIDs(t, s.JWKS()), a.ID)
	}
	if !s.ChangesAt().Equal(t0.Add(delay)) {
		t.Errorf("ChangesAt = %v, want the activation %v", s.ChangesAt(), t0.Add(delay))
	}
	if got := ActivatesAt(keys, b); !got.Equal(t0.Add(delay)) {
		t.Errorf("ActivatesAt(next) = %v, want %v", got, t0.Add(delay))
	}
	s = at(t0.Add(delay))
	if s.KeyID() != b.ID || !equalStrings(jwksKIDs(t, s.JWKS()), []string{b.ID, a.ID}) {
		t.Fatalf("after the delay: signs with %s, JWKS %v", s.KeyID(), jwksKIDs(t, s.JWKS()))
	}
	if !s.ChangesAt().Equal(t0.Add(delay + overlap)) {
		t.Errorf("ChangesAt = %v, want the expiry %v", s.ChangesAt(), t0.Add(delay+overlap))
	}
	if s = at(t0.Add(delay + overlap)); !equalStrings(jwksKIDs(t, s.JWKS()), []string{b.ID}) || !s.ChangesAt().IsZero() {
		t.Errorf("after the expiry: JWKS %v, ChangesAt %v", jwksKIDs(t, s.JWKS()), s.ChangesAt())
	}

	// A second rotation during the delay: b retires one delay after it, c waits for b.
	c := genKey(t, tenantID, ES256, sealer, t0.Add(time.Minute))
	b.RetiredAt, b.ExpiresAt = ptr(t0.Add(time.Minute+delay)), ptr(t0.Add(time.Minute+delay+overlap))
	keys = []Key{c, b, a}
	for _, step := range []struct {
		at   time.Time
		want string
	}{{t0.Add(time.Minute), a.ID}, {t0.Add(delay), b.ID}, {t0.Add(time.Minute + delay), c.ID}} {
		if got := at(step.at).KeyID(); got != step.want {
			t.Errorf("at %v: signs with %s, want %s", step.at, got, step.want)
		}
	}
}
