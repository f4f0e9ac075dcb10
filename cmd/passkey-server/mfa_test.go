package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
)

// mfaPath returns an MFA route of the family r uses.
func (r *rp) mfaPath(hanko, keyed string) string {
	if r.keyScoped {
		return "/credentials/mfa" + keyed
	}
	return "/" + r.id + "/mfa" + hanko
}

// mfaRegister registers a second factor for user with a roaming key and returns the token and the
// registration options it answered.
func (r *rp) mfaRegister(key *authenticatortest.Authenticator, user string) (string, []byte) {
	r.t.Helper()
	resp := r.post(r.mfaPath("/registration/initialize", "/register/initialize"), map[string]any{"user_id": user, "username": user}, true)
	expectStatus(r.t, resp, 200, "")
	options := readAll(r.t, resp)
	att, err := key.Create(options, testOrigin)
	if err != nil {
		r.t.Fatal(err)
	}
	resp = r.post(r.mfaPath("/registration/finalize", "/register/finalize"), att, true)
	expectStatus(r.t, resp, 200, "")
	return decode[httpapi.TokenResponse](r.t, resp).Token, options
}

func (r *rp) mfaLoginOptions(user string) []byte {
	r.t.Helper()
	resp := r.post(r.mfaPath("/login/initialize", "/login/initialize"), map[string]any{"user_id": user}, true)
	expectStatus(r.t, resp, 200, "")
	return readAll(r.t, resp)
}

func TestMFA(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		eachFamily(t, s, "example.com", func(t *testing.T, r *rp) {
			key := authenticatortest.New(authenticatortest.Options{Attachment: authenticatortest.CrossPlatform, Transports: []string{"usb"}})
			token, options := r.mfaRegister(key, "bob")
			var o struct {
				PublicKey struct {
					AuthenticatorSelection struct {
						AuthenticatorAttachment string `json:"authenticatorAttachment"`
						ResidentKey             string `json:"residentKey"`
						UserVerification        string `json:"userVerification"`
					} `json:"authenticatorSelection"`
					Attestation string `json:"attestation"`
				} `json:"publicKey"`
			}
			if err := json.Unmarshal(options, &o); err != nil {
				t.Fatal(err)
			}
			if sel := o.PublicKey.AuthenticatorSelection; sel.AuthenticatorAttachment != "cross-platform" || sel.ResidentKey != "discouraged" ||
				sel.UserVerification != "preferred" || o.PublicKey.Attestation != "direct" {
				t.Fatalf("MFA profile not applied: %s", options)
			}
			c := r.claims(token)
			if c["sub"] != "bob" || c["ceremony"] != "mfa_registration" {
				t.Fatalf("claims %v", c)
			}
			credID := c["cred"].(string)
			if !r.credential(credID).IsMFA {
				t.Fatal("not stored as an MFA credential")
			}

			// MFA login for bob: the key answers (it holds no resident credential, so allowCredentials is
			// what lets it answer).
			assertion, err := key.Get(r.mfaLoginOptions("bob"), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			resp := r.post(r.mfaPath("/login/finalize", "/login/finalize"), assertion, true)
			expectStatus(t, resp, 200, "")
			if c := r.claims(decode[httpapi.TokenResponse](t, resp).Token); c["ceremony"] != "mfa_login" || c["sub"] != "bob" ||
				fmt.Sprint(c["amr"]) != "[hwk user]" {
				// A roaming security key that verified the user: a device-bound key ("hwk") and "user".
				t.Fatalf("mfa login claims %v", c)
			}

			// MFA login also accepts the user's passkeys.
			passkey := authenticatortest.New(authenticatortest.Options{})
			r.register(passkey, "bob")
			assertion, err = passkey.Get(r.mfaLoginOptions("bob"), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.post(r.mfaPath("/login/finalize", "/login/finalize"), assertion, true), 200, "")

			// Another user's credential cannot finish bob's MFA login.
			carolKey := authenticatortest.New(authenticatortest.Options{Attachment: authenticatortest.CrossPlatform})
			r.mfaRegister(carolKey, "carol")
			bobOptions := r.mfaLoginOptions("bob")
			carolCred := carolKey.Credentials()[0].ID
			forged := strings.Replace(string(bobOptions), `"allowCredentials":[`, `"allowCredentials":[{"type":"public-key","id":"`+carolCred+`"},`, 1)
			assertion, err = carolKey.Get([]byte(forged), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.post(r.mfaPath("/login/finalize", "/login/finalize"), assertion, true), 401, "assertion_failed")

			// Sessions are bound to their ceremony: an MFA registration cannot finish on the passkey route,
			// a passkey registration cannot finish on the MFA route, an MFA login challenge cannot finish a
			// plain login.
			resp = r.post(r.mfaPath("/registration/initialize", "/register/initialize"), map[string]any{"user_id": "dan", "username": "dan"}, true)
			att, err := authenticatortest.New(authenticatortest.Options{}).Create(readAll(t, resp), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.registrationFinalize(att), 400, "session_not_found")
			att, err = authenticatortest.New(authenticatortest.Options{}).Create(r.registrationOptions("dan"), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.post(r.mfaPath("/registration/finalize", "/register/finalize"), att, true), 400, "session_not_found")
			assertion, err = key.Get(r.mfaLoginOptions("bob"), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.loginFinalize(assertion), 401, "session_not_found")

			// Input errors and keys.
			expectStatus(t, r.post(r.mfaPath("/login/initialize", "/login/initialize"), map[string]any{}, true), 400, "invalid_request")
			expectStatus(t, r.post(r.mfaPath("/login/initialize", "/login/initialize"), map[string]any{"user_id": "nobody"}, true), 404, "user_not_found")
			if !r.keyScoped {
				expectStatus(t, call(t, s.public, "POST", r.mfaPath("/login/initialize", ""), map[string]any{"user_id": "bob"}), 401, "api_key_missing")
				expectStatus(t, call(t, s.public, "POST", r.mfaPath("/registration/finalize", ""), att), 401, "api_key_missing")
			}
		})
	})
}
