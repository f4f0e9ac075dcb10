package credentials_test

import (
	"errors"
	"testing"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/mfa"
	"github.com/passkey-server/passkey-server/tenant"
)

// TestStoreFailureIsNoAuthenticationFailure: a login finalize whose database cannot answer returns the
// store's error, never a failed assertion (issue 12, point 1): apps, failure metrics and lockout logic
// must not count an outage as failed logins. The database is real and closed after setup.
func TestStoreFailureIsNoAuthenticationFailure(t *testing.T) {
	for _, userID := range []string{"alice", ""} { // known user, then discoverable
		name := "known user"
		if userID == "" {
			name = "discoverable"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			key := authenticatortest.New(authenticatortest.Options{})
			e.register(credentials.Registration, key, "alice")
			body := e.assert(key, e.loginOptions(credentials.Login, userID), authenticatortest.Tamper{})
			e.events.Take()
			if err := e.db.Close(); err != nil {
				t.Fatal(err)
			}

			_, err := e.svc.FinishLogin(e.ctx, e.snap, credentials.Login, body)
			if err == nil {
				t.Fatal("FinishLogin succeeded on a closed database")
			}
			// Not a domain error, or the one for a store that cannot answer.
			var pe *passkey.Error
			if errors.Is(err, credentials.ErrAssertionFailed) || errors.As(err, &pe) && pe.Code != "service_unavailable" {
				t.Fatalf("FinishLogin = %v (code %q), want the store's error", err, passkey.ErrorCode(err))
			}
			events := e.events.Take()
			if len(events) != 1 || events[0].Type != passkey.CeremonyFailed || events[0].Err == nil {
				t.Fatalf("events %s, want one ceremony.failed", describe(events))
			}
			if code := passkey.ErrorCode(events[0].Err); code == "assertion_failed" {
				t.Fatalf("ceremony.failed carries code %q", code)
			}
		})
	}
}

// TestDiscoverableFailuresAreAlike: every discoverable login that finds no usable credential answers
// the same error with the same detail, whether the credential id is unknown (with an existing or a
// missing handle), the credential is another user's or the handle names nobody, or the ceremony does
// not accept the credential (issue 12, point 11).
func TestDiscoverableFailuresAreAlike(t *testing.T) {
	e := newEnv(t, func(c *tenant.Config) { c.MFA = &tenant.MFAConfig{ResidentKeyRequirement: "required"} })
	alice := authenticatortest.New(authenticatortest.Options{})
	e.register(credentials.Registration, alice, "alice")
	e.register(credentials.Registration, authenticatortest.New(authenticatortest.Options{}), "bob")
	second := authenticatortest.New(authenticatortest.Options{})
	e.register(mfa.Registration, second, "carol")
	// throwaway holds a credential of this relying party that the tenant does not know, as an
	// attacker's own key would: registered, then deleted.
	throwaway := authenticatortest.New(authenticatortest.Options{})
	e.register(credentials.Registration, throwaway, "eve")
	if err := e.svc.Delete(e.ctx, e.snap, throwaway.Credentials()[0].ID); err != nil {
		t.Fatal(err)
	}
	e.events.Take()

	cases := []struct {
		name   string
		key    *authenticatortest.Authenticator
		handle []byte
	}{
		{"unknown credential, existing handle", throwaway, []byte("alice")},
		{"unknown credential, missing handle", throwaway, []byte("nobody")},
		{"credential of another user", alice, []byte("bob")},
		{"credential with a missing handle", alice, []byte("nobody")},
		{"credential the ceremony does not accept", second, nil},
	}
	var details string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			body := e.assert(tc.key, e.loginOptions(credentials.Login, ""), authenticatortest.Tamper{UserHandle: tc.handle})
			_, err := e.svc.FinishLogin(e.ctx, e.snap, credentials.Login, body)
			if !errors.Is(err, credentials.ErrAssertionFailed) {
				t.Fatalf("FinishLogin = %v, want ErrAssertionFailed", err)
			}
			if details == "" {
				details = passkey.Details(err)
			}
			if got := passkey.Details(err); got != details {
				t.Errorf("details %q, want %q as in the first case", got, details)
			}
			e.events.Take()
		})
	}
	// The credential's own user still logs in.
	if _, err := e.login(credentials.Login, alice, ""); err != nil {
		t.Fatalf("discoverable login of alice: %v", err)
	}
}
