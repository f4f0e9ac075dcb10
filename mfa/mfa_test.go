package mfa_test

import (
	"context"
	"encoding/base64"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/mfa"
	"github.com/passkey-server/passkey-server/tenant"
)

// origin is the tenant's only origin (dbtest.Tenant); its RP ID is example.com.
const origin = dbtest.Origin

// env is one tenant on a fresh SQLite database with a credentials service whose events are recorded.
type env struct {
	t      *testing.T
	ctx    context.Context
	snap   *tenant.Snapshot
	svc    *credentials.Service
	events *dbtest.Events
}

// newEnv makes a tenant (RP ID example.com, passkey timeout 60 s) whose MFA profile is mfaCfg.
func newEnv(t *testing.T, mfaCfg *tenant.MFAConfig) *env {
	t.Helper()
	ctx := context.Background()
	d := dbtest.SQLite(t)
	snap := dbtest.Tenant(t, d, func(c *tenant.Config) { c.MFA = mfaCfg })
	rec := &dbtest.Events{}
	svc := dbtest.Credentials(d, rec)
	return &env{t: t, ctx: ctx, snap: snap, svc: svc, events: rec}
}

// with returns e for a subtest: its helpers fail t.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func mustJSON(t *testing.T, v any) []byte { return dbtest.JSON(t, v) }

// beginRegistration starts a registration of the ceremony for userID.
func (e *env) beginRegistration(c credentials.Ceremony, userID string) *protocol.CredentialCreation {
	e.t.Helper()
	creation, err := e.svc.BeginRegistration(e.ctx, e.snap, c, credentials.RegistrationRequest{AppUserID: userID, Username: userID + "@example.com"})
	if err != nil {
		e.t.Fatalf("BeginRegistration(%s, %q): %v", c.Name, userID, err)
	}
	return creation
}

// attest answers a registration of the ceremony for userID with key and returns the finalize body.
func (e *env) attest(c credentials.Ceremony, key *authenticatortest.Authenticator, userID string) []byte {
	e.t.Helper()
	att, err := key.Create(mustJSON(e.t, e.beginRegistration(c, userID)), origin)
	if err != nil {
		e.t.Fatalf("authenticator Create: %v", err)
	}
	return att
}

// register runs a whole registration of the ceremony with key.
func (e *env) register(c credentials.Ceremony, key *authenticatortest.Authenticator, userID string) credentials.Result {
	e.t.Helper()
	res, err := e.svc.FinishRegistration(e.ctx, e.snap, c, e.attest(c, key, userID))
	if err != nil {
		e.t.Fatalf("FinishRegistration(%s, %q): %v", c.Name, userID, err)
	}
	return res
}

// beginLogin starts an assertion of the ceremony (discoverable when userID is empty).
func (e *env) beginLogin(c credentials.Ceremony, userID string) *protocol.CredentialAssertion {
	e.t.Helper()
	assertion, err := e.svc.BeginLogin(e.ctx, e.snap, c, userID)
	if err != nil {
		e.t.Fatalf("BeginLogin(%s, %q): %v", c.Name, userID, err)
	}
	return assertion
}

// assert answers an assertion's options with key.
func (e *env) assert(key *authenticatortest.Authenticator, a *protocol.CredentialAssertion) []byte {
	e.t.Helper()
	body, err := key.Get(mustJSON(e.t, a), origin)
	if err != nil {
		e.t.Fatalf("authenticator Get: %v", err)
	}
	return body
}

// allowed returns the ids in an assertion's allowCredentials, sorted.
func allowed(a *protocol.CredentialAssertion) []string {
	var ids []string
	for _, d := range a.Response.AllowedCredentials {
		ids = append(ids, base64.RawURLEncoding.EncodeToString(d.CredentialID))
	}
	slices.Sort(ids)
	return ids
}

// ceremonyEvent is a ceremony step's event as the service emits it.
func (e *env) ceremonyEvent(typ passkey.EventType, c credentials.Ceremony, step, appUserID, credID string, err error) passkey.Event {
	return passkey.Event{Type: typ, TenantID: e.snap.ID, Ceremony: c.Name, Step: step, AppUserID: appUserID, CredentialID: credID, Err: err}
}

func TestRegistrationStoresMFACredentials(t *testing.T) {
	cases := []struct {
		name        string
		mfa         *tenant.MFAConfig
		residentKey protocol.ResidentKeyRequirement
		timeout     int
	}{
		// Normalize's MFA profile: cross-platform, direct, discouraged, UV preferred, the passkey timeout.
		{"default profile", nil, protocol.ResidentKeyRequirementDiscouraged, 60000},
		{"discoverable, short timeout", &tenant.MFAConfig{Timeout: 30000, ResidentKeyRequirement: "required"}, protocol.ResidentKeyRequirementRequired, 30000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.mfa)
			key := authenticatortest.New(authenticatortest.Options{Attachment: authenticatortest.CrossPlatform})

			creation := e.beginRegistration(mfa.Registration, "alice")
			sel := creation.Response.AuthenticatorSelection
			if sel.AuthenticatorAttachment != protocol.CrossPlatform || sel.ResidentKey != tc.residentKey ||
				sel.UserVerification != protocol.VerificationPreferred || creation.Response.Timeout != tc.timeout {
				t.Errorf("MFA options = %+v, timeout %d; want the MFA profile (cross-platform, %s, preferred, %d)",
					sel, creation.Response.Timeout, tc.residentKey, tc.timeout)
			}
			att, err := key.Create(mustJSON(t, creation), origin)
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.svc.FinishRegistration(e.ctx, e.snap, mfa.Registration, att)
			if err != nil {
				t.Fatalf("FinishRegistration: %v", err)
			}
			id := key.Credentials()[0].ID
			if !res.Credential.IsMFA || res.Credential.ID != id {
				t.Errorf("registered credential = %+v, want MFA credential %s", res.Credential, id)
			}
			if stored, err := e.svc.Get(e.ctx, e.snap, id); err != nil || !stored.IsMFA {
				t.Errorf("stored credential IsMFA = %v, %v; want true", stored.IsMFA, err)
			}
			c := dbtest.Claims(t, res.Token)
			if c["ceremony"] != "mfa_registration" || c["sub"] != "alice" || c["cred"] != id || c["amr"] != nil {
				t.Errorf("token claims = %v", c)
			}
			dbtest.CheckEvents(t, e.events.Take(),
				e.ceremonyEvent(passkey.CeremonyStarted, mfa.Registration, passkey.StepInitialize, "alice", "", nil),
				e.ceremonyEvent(passkey.CeremonySucceeded, mfa.Registration, passkey.StepFinalize, "alice", id, nil))

			// A passkey registration of the same user still uses the passkey profile.
			plain := e.beginRegistration(credentials.Registration, "alice").Response
			if plain.AuthenticatorSelection.ResidentKey != protocol.ResidentKeyRequirementRequired || plain.Timeout != 60000 ||
				plain.AuthenticatorSelection.UserVerification != protocol.VerificationRequired {
				t.Errorf("passkey options = %+v, timeout %d; want the passkey profile", plain.AuthenticatorSelection, plain.Timeout)
			}
		})
	}
}

func TestPlainLoginRefusesMFACredentials(t *testing.T) {
	// A discoverable MFA credential, so the authenticator answers even a discoverable login with it.
	e := newEnv(t, &tenant.MFAConfig{ResidentKeyRequirement: "required"})
	second := authenticatortest.New(authenticatortest.Options{})
	e.register(mfa.Registration, second, "mfa-only")
	e.events.Take()

	t.Run("not offered to a named user", func(t *testing.T) {
		e := e.with(t)
		_, err := e.svc.BeginLogin(e.ctx, e.snap, credentials.Login, "mfa-only")
		if !errors.Is(err, credentials.ErrNoCredentials) || passkey.ErrorCode(err) != "no_credentials" {
			t.Fatalf("BeginLogin = %v, want ErrNoCredentials", err)
		}
		dbtest.CheckEvents(t, e.events.Take(),
			e.ceremonyEvent(passkey.CeremonyStartFailed, credentials.Login, passkey.StepInitialize, "mfa-only", "", credentials.ErrNoCredentials))
	})

	t.Run("not accepted in a discoverable login", func(t *testing.T) {
		e := e.with(t)
		body := e.assert(second, e.beginLogin(credentials.Login, ""))
		res, err := e.svc.FinishLogin(e.ctx, e.snap, credentials.Login, body)
		if !errors.Is(err, credentials.ErrAssertionFailed) || res.Token != "" {
			t.Fatalf("FinishLogin = %q, %v; want ErrAssertionFailed", res.Token, err)
		}
		// The user of the handle has no credential the ceremony accepts.
		if got, want := passkey.Details(err), "no registered credential matches the credential ID and user handle"; got != want {
			t.Errorf("details = %q, want %q", got, want)
		}
		dbtest.CheckEvents(t, e.events.Take(),
			e.ceremonyEvent(passkey.CeremonyStarted, credentials.Login, passkey.StepInitialize, "", "", nil),
			e.ceremonyEvent(passkey.CeremonyFailed, credentials.Login, passkey.StepFinalize, "", "", credentials.ErrAssertionFailed))
	})

	t.Run("not accepted for a named user with a passkey", func(t *testing.T) {
		e := e.with(t)
		first := authenticatortest.New(authenticatortest.Options{})
		passkeyID := e.register(credentials.Registration, first, "both").Credential.ID
		mfaKey := authenticatortest.New(authenticatortest.Options{})
		mfaID := e.register(mfa.Registration, mfaKey, "both").Credential.ID
		e.events.Take()

		options := e.beginLogin(credentials.Login, "both")
		if got := allowed(options); !slices.Equal(got, []string{passkeyID}) {
			t.Errorf("plain login allowCredentials = %v, want only the passkey %s", got, passkeyID)
		}
		// A client that answers with the MFA credential anyway is refused.
		id, _ := base64.RawURLEncoding.DecodeString(mfaID)
		options.Response.AllowedCredentials = []protocol.CredentialDescriptor{{Type: protocol.PublicKeyCredentialType, CredentialID: id}}
		_, err := e.svc.FinishLogin(e.ctx, e.snap, credentials.Login, e.assert(mfaKey, options))
		if !errors.Is(err, credentials.ErrAssertionFailed) {
			t.Fatalf("FinishLogin with the MFA credential = %v, want ErrAssertionFailed", err)
		}
		if got, want := passkey.Details(err), "the credential is not one of the user's credentials that this login accepts"; got != want {
			t.Errorf("details = %q, want %q", got, want)
		}
		dbtest.CheckEvents(t, e.events.Take(),
			e.ceremonyEvent(passkey.CeremonyStarted, credentials.Login, passkey.StepInitialize, "both", "", nil),
			e.ceremonyEvent(passkey.CeremonyFailed, credentials.Login, passkey.StepFinalize, "both", "", credentials.ErrAssertionFailed))
	})
}

func TestMFALoginAcceptsMFACredentialsAndPasskeys(t *testing.T) {
	e := newEnv(t, nil)
	passkeyKey := authenticatortest.New(authenticatortest.Options{BackupEligible: true, BackupState: true})
	passkeyID := e.register(credentials.Registration, passkeyKey, "alice").Credential.ID
	mfaKey := authenticatortest.New(authenticatortest.Options{Attachment: authenticatortest.CrossPlatform})
	mfaID := e.register(mfa.Registration, mfaKey, "alice").Credential.ID
	// A security key without PIN: the MFA profile prefers user verification but does not require it.
	noUVKey := authenticatortest.New(authenticatortest.Options{Attachment: authenticatortest.CrossPlatform, SkipUserVerification: true})
	noUVID := e.register(mfa.Registration, noUVKey, "alice").Credential.ID
	e.events.Take()

	want := []string{passkeyID, mfaID, noUVID}
	slices.Sort(want)
	if got := allowed(e.beginLogin(mfa.Login, "alice")); !slices.Equal(got, want) {
		t.Errorf("MFA login allowCredentials = %v, want both %v", got, want)
	}
	e.events.Take()

	cases := []struct {
		name    string
		key     *authenticatortest.Authenticator
		id      string
		wantAMR []any
	}{
		{"passkey", passkeyKey, passkeyID, []any{"swk", "user"}},
		{"mfa credential", mfaKey, mfaID, []any{"hwk", "user"}},
		{"mfa credential without user verification", noUVKey, noUVID, []any{"hwk"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			res, err := e.svc.FinishLogin(e.ctx, e.snap, mfa.Login, e.assert(tc.key, e.beginLogin(mfa.Login, "alice")))
			if err != nil {
				t.Fatalf("FinishLogin: %v", err)
			}
			c := dbtest.Claims(t, res.Token)
			if c["ceremony"] != "mfa_login" || c["sub"] != "alice" || c["cred"] != tc.id || !reflect.DeepEqual(c["amr"], tc.wantAMR) {
				t.Errorf("token claims = %v; want mfa_login by %s with amr %v", c, tc.id, tc.wantAMR)
			}
			dbtest.CheckEvents(t, e.events.Take(),
				e.ceremonyEvent(passkey.CeremonyStarted, mfa.Login, passkey.StepInitialize, "alice", "", nil),
				e.ceremonyEvent(passkey.CeremonySucceeded, mfa.Login, passkey.StepFinalize, "alice", tc.id, nil))
		})
	}
}

func TestMFALoginNeedsAUser(t *testing.T) {
	e := newEnv(t, nil)
	_, err := e.svc.BeginLogin(e.ctx, e.snap, mfa.Login, "")
	if !errors.Is(err, passkey.ErrInvalidRequest) || passkey.Details(err) != "user_id is a required field" {
		t.Fatalf("BeginLogin without a user = %v (details %q), want ErrInvalidRequest", err, passkey.Details(err))
	}
	dbtest.CheckEvents(t, e.events.Take(),
		e.ceremonyEvent(passkey.CeremonyStartFailed, mfa.Login, passkey.StepInitialize, "", "", passkey.ErrInvalidRequest))
}

// TestSessionsBelongToTheirCeremony checks that a challenge issued for one ceremony never finishes
// another, and that the wrong ceremony does not spend it.
func TestSessionsBelongToTheirCeremony(t *testing.T) {
	e := newEnv(t, nil)
	passkeyKey, mfaKey := authenticatortest.New(authenticatortest.Options{}), authenticatortest.New(authenticatortest.Options{})
	e.register(credentials.Registration, passkeyKey, "alice")
	e.register(mfa.Registration, mfaKey, "alice")
	e.events.Take()

	cases := []struct {
		name          string
		begun, finish credentials.Ceremony
		body          func(e *env, userID string) []byte
		want          error
	}{
		{"registration as mfa registration", credentials.Registration, mfa.Registration, func(e *env, u string) []byte {
			return e.attest(credentials.Registration, authenticatortest.New(authenticatortest.Options{}), u)
		}, credentials.ErrSessionNotFound},
		{"mfa registration as registration", mfa.Registration, credentials.Registration, func(e *env, u string) []byte {
			return e.attest(mfa.Registration, authenticatortest.New(authenticatortest.Options{}), u)
		}, credentials.ErrSessionNotFound},
		{"login as mfa login", credentials.Login, mfa.Login, func(e *env, _ string) []byte {
			return e.assert(passkeyKey, e.beginLogin(credentials.Login, "alice"))
		}, credentials.ErrLoginSessionNotFound},
		{"mfa login as login", mfa.Login, credentials.Login, func(e *env, _ string) []byte {
			return e.assert(passkeyKey, e.beginLogin(mfa.Login, "alice"))
		}, credentials.ErrLoginSessionNotFound},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			user := "user-" + string(rune('a'+i))
			body := tc.body(e, user)
			e.events.Take()
			finish := func(c credentials.Ceremony) (credentials.Result, error) {
				if strings.HasSuffix(c.Name, "registration") {
					return e.svc.FinishRegistration(e.ctx, e.snap, c, body)
				}
				return e.svc.FinishLogin(e.ctx, e.snap, c, body)
			}
			if _, err := finish(tc.finish); !errors.Is(err, tc.want) || passkey.ErrorCode(err) != "session_not_found" {
				t.Fatalf("finished as %s: %v, want %v", tc.finish.Name, err, tc.want)
			}
			dbtest.CheckEvents(t, e.events.Take(), e.ceremonyEvent(passkey.CeremonyFailed, tc.finish, passkey.StepFinalize, "", "", tc.want))
			// The session is still there for its own ceremony.
			res, err := finish(tc.begun)
			if err != nil {
				t.Fatalf("finished as %s afterwards: %v", tc.begun.Name, err)
			}
			if got := dbtest.Claims(t, res.Token)["ceremony"]; got != tc.begun.Name {
				t.Errorf("token ceremony = %v, want %s", got, tc.begun.Name)
			}
			if strings.HasSuffix(tc.begun.Name, "registration") && res.Credential.IsMFA != tc.begun.SecondFactor {
				t.Errorf("registered IsMFA = %v, want %v", res.Credential.IsMFA, tc.begun.SecondFactor)
			}
			e.events.Take()
		})
	}
}
