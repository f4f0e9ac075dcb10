package authenticatortest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
)

const origin = "https://example.com"

// user is a minimal webauthn.User.
type user struct {
	id    []byte
	creds []webauthn.Credential
}

func (u *user) WebAuthnID() []byte                         { return u.id }
func (u *user) WebAuthnName() string                       { return "alice" }
func (u *user) WebAuthnDisplayName() string                { return "Alice" }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func newRP(t *testing.T) *webauthn.WebAuthn {
	t.Helper()
	rp, err := webauthn.New(&webauthn.Config{RPID: "example.com", RPDisplayName: "x", RPOrigins: []string{origin}})
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// register runs a registration through go-webauthn and returns the verified credential.
func register(t *testing.T, rp *webauthn.WebAuthn, a *authenticatortest.Authenticator, u *user, opts ...webauthn.RegistrationOption) *webauthn.Credential {
	t.Helper()
	creation, session, err := rp.BeginRegistration(u, opts...)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Create(mustJSON(t, creation), origin)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(resp)
	if err != nil {
		t.Fatalf("parse creation response: %v\n%s", err, resp)
	}
	cred, err := rp.CreateCredential(u, *session, parsed)
	if err != nil {
		t.Fatalf("CreateCredential: %v", details(err))
	}
	u.creds = append(u.creds, *cred)
	return cred
}

// login runs a login for u through go-webauthn with the response forged as tamper says.
func login(t *testing.T, rp *webauthn.WebAuthn, a *authenticatortest.Authenticator, u *user, tamper authenticatortest.Tamper, opts ...webauthn.LoginOption) (*webauthn.Credential, error) {
	t.Helper()
	assertion, session, err := rp.BeginLogin(u, opts...)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.GetWith(mustJSON(t, assertion), origin, tamper)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(resp)
	if err != nil {
		return nil, err
	}
	return rp.ValidateLogin(u, *session, parsed)
}

// details includes go-webauthn's developer detail in failure messages.
func details(err error) string {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return fmt.Sprintf("%v (%s)", err, perr.DevInfo)
	}
	return err.Error()
}

func TestRegisterAndLogin(t *testing.T) {
	for _, alg := range []authenticatortest.Algorithm{authenticatortest.ES256, authenticatortest.EdDSA} {
		for _, att := range []string{"none", "packed"} {
			t.Run(fmt.Sprintf("%v/%s", alg, att), func(t *testing.T) {
				rp := newRP(t)
				aaguid := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
				a := authenticatortest.New(authenticatortest.Options{Algorithm: alg, Attestation: att, AAGUID: aaguid})
				u := &user{id: []byte("user-1")}
				cred := register(t, rp, a, u)

				if cred.AttestationFormat != att {
					t.Errorf("attestation format = %q, want %q", cred.AttestationFormat, att)
				}
				wantType := "none"
				if att == "packed" {
					// go-webauthn names packed self attestation by its FIDO metadata type.
					wantType = string(metadata.BasicSurrogate)
				}
				if cred.AttestationType != wantType {
					t.Errorf("attestation type = %q, want %q", cred.AttestationType, wantType)
				}
				if !bytes.Equal(cred.Authenticator.AAGUID, aaguid[:]) {
					t.Errorf("AAGUID = %x", cred.Authenticator.AAGUID)
				}
				key, err := webauthncose.ParsePublicKey(cred.PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				wantAlg := int64(alg)
				switch k := key.(type) {
				case webauthncose.EC2PublicKeyData:
					if k.Algorithm != wantAlg {
						t.Errorf("key alg = %d, want %d", k.Algorithm, wantAlg)
					}
				case webauthncose.OKPPublicKeyData:
					if k.Algorithm != wantAlg {
						t.Errorf("key alg = %d, want %d", k.Algorithm, wantAlg)
					}
				default:
					t.Errorf("key type %T", key)
				}
				if !cred.Flags.UserPresent || !cred.Flags.UserVerified || cred.Flags.BackupEligible {
					t.Errorf("flags = %+v", cred.Flags)
				}
				if cred.Authenticator.Attachment != protocol.Platform {
					t.Errorf("attachment = %q", cred.Authenticator.Attachment)
				}
				if len(cred.Transport) != 1 || cred.Transport[0] != protocol.Internal {
					t.Errorf("transports = %v", cred.Transport)
				}

				for want := uint32(1); want <= 2; want++ {
					got, err := login(t, rp, a, u, authenticatortest.Tamper{})
					if err != nil {
						t.Fatalf("ValidateLogin: %v", details(err))
					}
					if got.Authenticator.SignCount != want || got.Authenticator.CloneWarning {
						t.Errorf("sign count = %d (clone warning %v), want %d", got.Authenticator.SignCount, got.Authenticator.CloneWarning, want)
					}
					u.creds[0] = *got
				}
				if c := a.Credentials(); len(c) != 1 || c[0].SignCount != 2 || c[0].Resident || c[0].Algorithm != alg {
					t.Errorf("Credentials() = %+v", c)
				}
			})
		}
	}
}

func TestDiscoverableLogin(t *testing.T) {
	rp := newRP(t)
	a := authenticatortest.New(authenticatortest.Options{Algorithm: authenticatortest.EdDSA, BackupEligible: true, BackupState: true, ZeroCounter: true})
	alice := &user{id: []byte("alice")}
	bob := &user{id: []byte("bob")}
	register(t, rp, a, alice, webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
	bobCred := register(t, rp, a, bob, webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
	if !bobCred.Flags.BackupEligible || !bobCred.Flags.BackupState {
		t.Errorf("flags = %+v", bobCred.Flags)
	}

	for range 2 {
		assertion, session, err := rp.BeginDiscoverableLogin()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.Get(mustJSON(t, assertion), origin)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := protocol.ParseCredentialRequestResponseBytes(resp)
		if err != nil {
			t.Fatal(err)
		}
		handler := func(rawID, userHandle []byte) (webauthn.User, error) {
			for _, u := range []*user{alice, bob} {
				if bytes.Equal(u.id, userHandle) {
					return u, nil
				}
			}
			return nil, errors.New("unknown user")
		}
		got, cred, err := rp.ValidatePasskeyLogin(handler, *session, parsed)
		if err != nil {
			t.Fatalf("ValidatePasskeyLogin: %v", details(err))
		}
		// The most recent discoverable credential answers.
		if got != bob || !bytes.Equal(cred.ID, bobCred.ID) {
			t.Errorf("logged in %s with %x, want bob with %x", got.WebAuthnName(), cred.ID, bobCred.ID)
		}
		if cred.Authenticator.SignCount != 0 || cred.Authenticator.CloneWarning {
			t.Errorf("sign count = %d, clone warning %v; want 0, false", cred.Authenticator.SignCount, cred.Authenticator.CloneWarning)
		}
	}
}

func TestNonResidentCredential(t *testing.T) {
	rp := newRP(t)
	a := authenticatortest.New(authenticatortest.Options{Attachment: authenticatortest.CrossPlatform, SkipUserVerification: true})
	u := &user{id: []byte("user-1")}
	cred := register(t, rp, a, u, webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementDiscouraged))
	if cred.Flags.UserVerified || cred.Authenticator.Attachment != protocol.CrossPlatform ||
		len(cred.Transport) != 1 || cred.Transport[0] != protocol.USB {
		t.Errorf("credential = %+v", cred)
	}

	// Not discoverable: an empty allowCredentials finds nothing.
	assertion, _, err := rp.BeginDiscoverableLogin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(mustJSON(t, assertion), origin); !errors.Is(err, authenticatortest.ErrNoCredential) {
		t.Errorf("discoverable Get: err = %v, want ErrNoCredential", err)
	}

	assertion, _, err = rp.BeginLogin(u)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Get(mustJSON(t, assertion), origin)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Response map[string]any `json:"response"`
	}
	if err := json.Unmarshal(resp, &body); err != nil {
		t.Fatal(err)
	}
	if uh, ok := body.Response["userHandle"]; !ok || uh != nil {
		t.Errorf("userHandle = %v (present %v), want null", uh, ok)
	}
	if _, err := login(t, rp, a, u, authenticatortest.Tamper{}); err != nil {
		t.Errorf("ValidateLogin: %v", details(err))
	}
}

func TestTamperedLoginRejected(t *testing.T) {
	tests := []struct {
		name   string
		tamper authenticatortest.Tamper
		opts   []webauthn.LoginOption
	}{
		{name: "challenge", tamper: authenticatortest.Tamper{Challenge: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		{name: "origin", tamper: authenticatortest.Tamper{Origin: "https://evil.example"}},
		{name: "type", tamper: authenticatortest.Tamper{Type: "webauthn.create"}},
		{name: "signature", tamper: authenticatortest.Tamper{CorruptSignature: true}},
		{name: "user presence", tamper: authenticatortest.Tamper{ClearFlags: authenticatortest.FlagUP}},
		{name: "user verification", tamper: authenticatortest.Tamper{ClearFlags: authenticatortest.FlagUV},
			opts: []webauthn.LoginOption{webauthn.WithUserVerification(protocol.VerificationRequired)}},
		{name: "rp id hash", tamper: authenticatortest.Tamper{RPID: "evil.example"}},
		{name: "user handle", tamper: authenticatortest.Tamper{UserHandle: []byte("mallory")}},
	}
	for _, alg := range []authenticatortest.Algorithm{authenticatortest.ES256, authenticatortest.EdDSA} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%v/%s", alg, tt.name), func(t *testing.T) {
				rp := newRP(t)
				a := authenticatortest.New(authenticatortest.Options{Algorithm: alg})
				u := &user{id: []byte("user-1")}
				register(t, rp, a, u)
				if _, err := login(t, rp, a, u, tt.tamper, tt.opts...); err == nil {
					t.Fatal("tampered assertion accepted")
				}
				// The same ceremony untampered passes, so the rejection is down to the tampering.
				if _, err := login(t, rp, a, u, authenticatortest.Tamper{}, tt.opts...); err != nil {
					t.Fatalf("untampered assertion rejected: %v", details(err))
				}
			})
		}
	}
}

func TestTamperedRegistrationRejected(t *testing.T) {
	tests := []struct {
		name   string
		tamper authenticatortest.Tamper
	}{
		{name: "challenge", tamper: authenticatortest.Tamper{Challenge: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		{name: "origin", tamper: authenticatortest.Tamper{Origin: "https://evil.example"}},
		{name: "type", tamper: authenticatortest.Tamper{Type: "webauthn.get"}},
		{name: "attestation signature", tamper: authenticatortest.Tamper{CorruptSignature: true}},
		{name: "user presence", tamper: authenticatortest.Tamper{ClearFlags: authenticatortest.FlagUP}},
		{name: "rp id hash", tamper: authenticatortest.Tamper{RPID: "evil.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := newRP(t)
			a := authenticatortest.New(authenticatortest.Options{Attestation: "packed"})
			u := &user{id: []byte("user-1")}
			creation, session, err := rp.BeginRegistration(u)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := a.CreateWith(mustJSON(t, creation), origin, tt.tamper)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := protocol.ParseCredentialCreationResponseBytes(resp)
			if err != nil {
				t.Fatalf("parse: %v", err) // each tampering must reach verification
			}
			if _, err := rp.CreateCredential(u, *session, parsed); err == nil {
				t.Fatal("tampered attestation accepted")
			}
		})
	}
}

func TestExcludeCredentials(t *testing.T) {
	rp := newRP(t)
	a := authenticatortest.New(authenticatortest.Options{})
	u := &user{id: []byte("user-1")}
	cred := register(t, rp, a, u)

	creation, _, err := rp.BeginRegistration(u, webauthn.WithExclusions([]protocol.CredentialDescriptor{cred.Descriptor()}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Create(mustJSON(t, creation), origin); !errors.Is(err, authenticatortest.ErrExcluded) {
		t.Errorf("Create with own credential excluded: err = %v, want ErrExcluded", err)
	}
	// Another authenticator does not hold the excluded credential.
	if _, err := authenticatortest.New(authenticatortest.Options{}).Create(mustJSON(t, creation), origin); err != nil {
		t.Errorf("Create on another authenticator: %v", err)
	}
	// The same credential ID under another RP does not exclude.
	other, _, err := rp.BeginRegistration(u, webauthn.WithExclusions([]protocol.CredentialDescriptor{cred.Descriptor()}),
		webauthn.WithRegistrationRelyingPartyID("login.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Create(mustJSON(t, other), "https://login.example.com"); err != nil {
		t.Errorf("Create for another RP: %v", err)
	}
}

func TestAlgorithmNotOffered(t *testing.T) {
	rp := newRP(t)
	u := &user{id: []byte("user-1")}
	creation, _, err := rp.BeginRegistration(u, webauthn.WithCredentialParameters([]protocol.CredentialParameter{
		{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256},
	}))
	if err != nil {
		t.Fatal(err)
	}
	a := authenticatortest.New(authenticatortest.Options{Algorithm: authenticatortest.EdDSA})
	if _, err := a.Create(mustJSON(t, creation), origin); !errors.Is(err, authenticatortest.ErrAlgorithmNotOffered) {
		t.Errorf("err = %v, want ErrAlgorithmNotOffered", err)
	}
	if len(a.Credentials()) != 0 {
		t.Error("credential stored after a failed Create")
	}
}

func TestRPIDMustMatchOrigin(t *testing.T) {
	rp := newRP(t)
	a := authenticatortest.New(authenticatortest.Options{})
	u := &user{id: []byte("user-1")}
	creation, _, err := rp.BeginRegistration(u)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"https://evil.example", "https://notexample.com"} {
		if _, err := a.Create(mustJSON(t, creation), o); !errors.Is(err, authenticatortest.ErrRPIDMismatch) {
			t.Errorf("origin %s: err = %v, want ErrRPIDMismatch", o, err)
		}
	}
	// A subdomain origin may use its parent domain as RP ID.
	if _, err := a.Create(mustJSON(t, creation), "https://app.example.com:8443"); err != nil {
		t.Errorf("subdomain origin: %v", err)
	}
}

func TestSignCountRegression(t *testing.T) {
	rp := newRP(t)
	a := authenticatortest.New(authenticatortest.Options{})
	u := &user{id: []byte("user-1")}
	register(t, rp, a, u)
	for range 3 {
		got, err := login(t, rp, a, u, authenticatortest.Tamper{})
		if err != nil {
			t.Fatal(details(err))
		}
		u.creds[0] = *got
	}
	if err := a.SetCounter(a.Credentials()[0].ID, 1); err != nil {
		t.Fatal(err)
	}
	got, err := login(t, rp, a, u, authenticatortest.Tamper{})
	if err != nil {
		t.Fatal(details(err))
	}
	if !got.Authenticator.CloneWarning {
		t.Errorf("no clone warning for counter 2 after 3")
	}
	if err := a.SetCounter("AAAA", 1); !errors.Is(err, authenticatortest.ErrNoCredential) {
		t.Errorf("SetCounter(unknown): err = %v, want ErrNoCredential", err)
	}
}

// TestResponseJSON checks the shape of the responses: the members toJSON() writes, binary members in
// base64url without padding, and the clientDataJSON member order browsers use.
func TestResponseJSON(t *testing.T) {
	rp := newRP(t)
	a := authenticatortest.New(authenticatortest.Options{Attestation: "packed"})
	u := &user{id: []byte("user-1")}
	creation, _, err := rp.BeginRegistration(u, webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()))
	if err != nil {
		t.Fatal(err)
	}
	// The bare inner object works like the {"publicKey": ...} wrapper.
	resp, err := a.Create(mustJSON(t, creation.Response), origin)
	if err != nil {
		t.Fatal(err)
	}
	b64url := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	var reg struct {
		ID, RawID, Type, AuthenticatorAttachment string
		Response                                 struct {
			ClientDataJSON, AttestationObject, AuthenticatorData, PublicKey string
			PublicKeyAlgorithm                                              int64
			Transports                                                      []string
		}
		ClientExtensionResults map[string]map[string]any
	}
	if err := json.Unmarshal(resp, &reg); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"id": reg.ID, "rawId": reg.RawID, "clientDataJSON": reg.Response.ClientDataJSON,
		"attestationObject": reg.Response.AttestationObject, "authenticatorData": reg.Response.AuthenticatorData, "publicKey": reg.Response.PublicKey} {
		if !b64url.MatchString(v) {
			t.Errorf("%s = %q, not unpadded base64url", name, v)
		}
	}
	if reg.ID != reg.RawID || reg.Type != "public-key" || reg.AuthenticatorAttachment != "platform" || reg.Response.PublicKeyAlgorithm != -7 {
		t.Errorf("registration response = %s", resp)
	}
	if rk, ok := reg.ClientExtensionResults["credProps"]["rk"]; !ok || rk != true {
		t.Errorf("clientExtensionResults = %v, want credProps.rk true", reg.ClientExtensionResults)
	}
	cdj, err := base64.RawURLEncoding.DecodeString(reg.Response.ClientDataJSON)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"type":"webauthn.create","challenge":"%s","origin":"https://example.com","crossOrigin":false}`, creation.Response.Challenge)
	if string(cdj) != want {
		t.Errorf("clientDataJSON = %s, want %s", cdj, want)
	}
}

func TestConcurrentUse(t *testing.T) {
	rp := newRP(t)
	a := authenticatortest.New(authenticatortest.Options{})
	u := &user{id: []byte("user-1")}
	register(t, rp, a, u)
	assertion, _, err := rp.BeginLogin(u)
	if err != nil {
		t.Fatal(err)
	}
	opts := mustJSON(t, assertion)
	done := make(chan error)
	for range 8 {
		go func() {
			_, err := a.Get(opts, origin)
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if n := a.Credentials()[0].SignCount; n != 8 {
		t.Errorf("sign count = %d, want 8", n)
	}
}
