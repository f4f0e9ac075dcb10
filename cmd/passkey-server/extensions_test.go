package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
)

// withExtensionResults returns a credential response whose clientExtensionResults are results (they
// are the client's, not signed by the authenticator, so a test may write them as a browser would).
func withExtensionResults(t *testing.T, body []byte, results map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	m["clientExtensionResults"] = results
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// optionsExtensions returns publicKey.extensions and the top-level mediation of ceremony options.
func optionsExtensions(t *testing.T, options []byte) (map[string]any, string) {
	t.Helper()
	var o struct {
		Mediation string `json:"mediation"`
		PublicKey struct {
			Extensions map[string]any `json:"extensions"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatal(err)
	}
	return o.PublicKey.Extensions, o.Mediation
}

type extensionAnswer struct {
	Token      string `json:"token"`
	Extensions *struct {
		PRF *struct {
			Enabled *bool `json:"enabled"`
			Results *struct {
				First  string `json:"first"`
				Second string `json:"second"`
			} `json:"results"`
		} `json:"prf"`
	} `json:"extensions"`
}

// TestPRFAndCredProps: every registration asks for credProps and the PRF probe, and the credential
// records rk and prf.enabled; PRF salts of the body reach the options (eval, and evalByCredential on
// a login that names its user), the client's PRF results come back in the finalize answer and are
// neither stored nor logged; bad inputs are 400 invalid_request before anything is stored.
func TestPRFAndCredProps(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	salt1, salt2 := b64([]byte(strings.Repeat("s", 32))), b64([]byte("second salt"))
	out1, out2 := b64([]byte("prf-result-number-one-0123456789")), b64([]byte("prf-result-number-two-0123456789"))
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		eachFamily(t, s, "example.com", func(t *testing.T, r *rp) {
			regPath := r.path("/registration/initialize", "/credentials/register/initialize")
			loginPath := r.path("/login/initialize", "/credentials/login/initialize")

			// Registration: credProps and prf always; the caller's eval salts too.
			resp := r.post(regPath, map[string]any{"user_id": "alice", "username": "alice",
				"extensions": map[string]any{"prf": map[string]any{"eval": map[string]any{"first": salt1}}}}, true)
			expectStatus(t, resp, 200, "")
			options := readAll(t, resp)
			ext, mediation := optionsExtensions(t, options)
			prf, _ := ext["prf"].(map[string]any)
			if ext["credProps"] != true || prf == nil || mediation != "" {
				t.Fatalf("registration extensions %v, mediation %q", ext, mediation)
			}
			if eval, _ := prf["eval"].(map[string]any); eval["first"] != salt1 {
				t.Fatalf("prf input %v", prf)
			}
			a := authenticatortest.New(authenticatortest.Options{})
			att, err := a.Create(options, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			att = withExtensionResults(t, att, map[string]any{"credProps": map[string]any{"rk": true},
				"prf": map[string]any{"enabled": true, "results": map[string]any{"first": out1}}})
			resp = r.registrationFinalize(att)
			expectStatus(t, resp, 200, "")
			answer := decode[extensionAnswer](t, resp)
			if p := answer.Extensions; p == nil || p.PRF == nil || p.PRF.Enabled == nil || !*p.PRF.Enabled || p.PRF.Results == nil || p.PRF.Results.First != out1 {
				t.Fatalf("registration answer %+v", answer)
			}
			var id struct{ ID string }
			_ = json.Unmarshal(att, &id)
			cred := r.credential(id.ID)
			if cred.Discoverable == nil || !*cred.Discoverable || cred.PRFEnabled == nil || !*cred.PRFEnabled || cred.CreatedConditionally {
				t.Fatalf("credential %+v", cred)
			}

			// A client that reports neither: both stay unknown.
			b := authenticatortest.New(authenticatortest.Options{})
			att, err = b.Create(r.registrationOptions("bob"), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			att = withExtensionResults(t, att, map[string]any{})
			resp = r.registrationFinalize(att)
			expectStatus(t, resp, 200, "")
			if answer := decode[extensionAnswer](t, resp); answer.Extensions != nil {
				t.Fatalf("answer without outputs %+v", answer)
			}
			_ = json.Unmarshal(att, &id)
			if cred := r.credential(id.ID); cred.Discoverable != nil || cred.PRFEnabled != nil {
				t.Fatalf("credential without outputs %+v", cred)
			}

			// Login naming its user, evalByCredential for the user's credential.
			cid := cred.ID
			resp = r.post(loginPath, map[string]any{"user_id": "alice", "extensions": map[string]any{"prf": map[string]any{
				"eval":             map[string]any{"first": salt1},
				"evalByCredential": map[string]any{cid: map[string]any{"first": salt1, "second": salt2}}}}}, true)
			expectStatus(t, resp, 200, "")
			options = readAll(t, resp)
			ext, _ = optionsExtensions(t, options)
			byCred, _ := ext["prf"].(map[string]any)["evalByCredential"].(map[string]any)
			if v, _ := byCred[cid].(map[string]any); v["first"] != salt1 || v["second"] != salt2 {
				t.Fatalf("login prf input %v", ext)
			}
			assertion, err := a.Get(options, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			assertion = withExtensionResults(t, assertion, map[string]any{"prf": map[string]any{"results": map[string]any{"first": out1, "second": out2}}})
			resp = r.loginFinalize(assertion)
			expectStatus(t, resp, 200, "")
			answer = decode[extensionAnswer](t, resp)
			if p := answer.Extensions; p == nil || p.PRF == nil || p.PRF.Results == nil || p.PRF.Results.First != out1 || p.PRF.Results.Second != out2 {
				t.Fatalf("login answer %+v", answer)
			}
			if r.claims(answer.Token)["sub"] != "alice" {
				t.Fatal("token")
			}

			// A discoverable login that asked for no PRF: the client's unsolicited results are ignored
			// (the default policy) and not passed on.
			assertion, err = a.Get(r.loginOptions(""), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			assertion = withExtensionResults(t, assertion, map[string]any{"prf": map[string]any{"results": map[string]any{"first": out1}}, "made-up": 1})
			resp = r.loginFinalize(assertion)
			expectStatus(t, resp, 200, "")
			if answer := decode[extensionAnswer](t, resp); answer.Extensions != nil {
				t.Fatalf("unsolicited outputs passed on: %+v", answer)
			}

			// Neither the salts' results nor the PRF outputs are stored or logged.
			resp = call(t, s.public, "GET", "/"+r.id+"/audit_logs?per_page=100", nil, "apiKey", r.secret)
			expectStatus(t, resp, 200, "")
			if audit := string(readAll(t, resp)); strings.Contains(audit, out1) || strings.Contains(audit, salt1) {
				t.Fatal("the audit log holds PRF values")
			}
			if strings.Contains(s.logs.String(), out1) {
				t.Fatal("the log holds PRF results")
			}

			// Bad inputs: 400 invalid_request naming the member, and no user stored.
			long := b64(make([]byte, 257))
			bad := []struct {
				name, path string
				body       map[string]any
				want       string
			}{
				{"unknown extension", regPath, map[string]any{"extensions": map[string]any{"largeBlob": map[string]any{}}}, "extensions.largeBlob"},
				{"extension case", regPath, map[string]any{"extensions": map[string]any{"PRF": map[string]any{}}}, "extensions.PRF"},
				{"extensions not an object", regPath, map[string]any{"extensions": []int{1}}, "extensions must be an object"},
				{"prf not an object", regPath, map[string]any{"extensions": map[string]any{"prf": true}}, "extensions.prf must be an object"},
				{"unknown prf member", regPath, map[string]any{"extensions": map[string]any{"prf": map[string]any{"evaluate": map[string]any{}}}}, "extensions.prf.evaluate"},
				{"salt a number", regPath, map[string]any{"extensions": map[string]any{"prf": map[string]any{"eval": map[string]any{"first": 7}}}}, "extensions.prf.eval.first must be a base64url string"},
				{"salt not base64url", regPath, map[string]any{"extensions": map[string]any{"prf": map[string]any{"eval": map[string]any{"first": "a+b/"}}}}, "must be base64url"},
				{"salt empty", regPath, map[string]any{"extensions": map[string]any{"prf": map[string]any{"eval": map[string]any{"first": ""}}}}, "1 to 256 bytes"},
				{"salt too long", regPath, map[string]any{"extensions": map[string]any{"prf": map[string]any{"eval": map[string]any{"first": salt1, "second": long}}}}, "extensions.prf.eval.second must be 1 to 256 bytes"},
				{"first missing", regPath, map[string]any{"extensions": map[string]any{"prf": map[string]any{"eval": map[string]any{"second": salt2}}}}, "extensions.prf.eval.first is a required field"},
				{"unknown values member", regPath, map[string]any{"extensions": map[string]any{"prf": map[string]any{"eval": map[string]any{"first": salt1, "third": salt1}}}}, "extensions.prf.eval.third"},
				{"evalByCredential at registration", regPath, map[string]any{"extensions": map[string]any{"prf": map[string]any{"evalByCredential": map[string]any{cid: map[string]any{"first": salt1}}}}}, "only for logins"},
				{"evalByCredential discoverable", loginPath, map[string]any{"extensions": map[string]any{"prf": map[string]any{"evalByCredential": map[string]any{cid: map[string]any{"first": salt1}}}}}, "names its user"},
				{"evalByCredential another credential", loginPath, map[string]any{"user_id": "alice", "extensions": map[string]any{"prf": map[string]any{"evalByCredential": map[string]any{"AAAA": map[string]any{"first": salt1}}}}}, `evalByCredential["AAAA"] is not one of`},
				{"evalByCredential bad key", loginPath, map[string]any{"user_id": "alice", "extensions": map[string]any{"prf": map[string]any{"evalByCredential": map[string]any{"not base64!": map[string]any{"first": salt1}}}}}, "base64url credential id"},
				{"evalByCredential bad salt", loginPath, map[string]any{"user_id": "alice", "extensions": map[string]any{"prf": map[string]any{"evalByCredential": map[string]any{cid: map[string]any{"first": 1}}}}}, "must be a base64url string"},
			}
			for _, c := range bad {
				t.Run(c.name, func(t *testing.T) {
					if c.path == regPath {
						c.body["user_id"], c.body["username"] = "new-user", "new"
					}
					e := expectStatus(t, r.post(c.path, c.body, true), 400, "invalid_request")
					if !strings.Contains(e.Details, c.want) {
						t.Fatalf("details %q lack %q", e.Details, c.want)
					}
				})
			}
			expectStatus(t, s.adminCall("GET", "/tenants/"+r.id+"/users/new-user", nil), 404, "user_not_found")
		})
	})
}

// TestConditionalCreate: mediation "conditional" reaches the options and the session, which alone
// accepts a credential created without user presence; the credential says how it was created.
func TestConditionalCreate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		eachFamily(t, s, "example.com", func(t *testing.T, r *rp) {
			regPath := r.path("/registration/initialize", "/credentials/register/initialize")
			noUP := authenticatortest.Tamper{ClearFlags: authenticatortest.FlagUP}
			a := authenticatortest.New(authenticatortest.Options{})

			// A plain session refuses a credential without user presence.
			att, err := a.CreateWith(r.registrationOptions("alice"), testOrigin, noUP)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.registrationFinalize(att), 400, "attestation_failed")

			resp := r.post(regPath, map[string]any{"user_id": "alice", "username": "alice", "mediation": "conditional"}, true)
			expectStatus(t, resp, 200, "")
			options := readAll(t, resp)
			if _, mediation := optionsExtensions(t, options); mediation != "conditional" {
				t.Fatalf("mediation %q", mediation)
			}
			att, err = a.CreateWith(options, testOrigin, noUP)
			if err != nil {
				t.Fatal(err)
			}
			resp = r.registrationFinalize(att)
			expectStatus(t, resp, 200, "")
			var id struct{ ID string }
			_ = json.Unmarshal(att, &id)
			if cred := r.credential(id.ID); !cred.CreatedConditionally {
				t.Fatalf("credential %+v", cred)
			}
			r.login(a, "alice") // and it logs in, with user presence, like any other

			for _, m := range []any{"silent", "required", "optional", "Conditional", ""} {
				if m == "" {
					continue // absent and "" are the default
				}
				e := expectStatus(t, r.post(regPath, map[string]any{"user_id": "new-user", "username": "n", "mediation": m}, true), 400, "invalid_request")
				if !strings.Contains(e.Details, "mediation") {
					t.Fatalf("details %q", e.Details)
				}
			}
			expectStatus(t, r.post(regPath, map[string]any{"user_id": "new-user", "username": "n", "mediation": 1}, true), 400, "invalid_body")
			expectStatus(t, s.adminCall("GET", "/tenants/"+r.id+"/users/new-user", nil), 404, "user_not_found")
		})
	})
}

// TestExtensionOutputPolicy: unsolicited client extension outputs are ignored by default and fail
// the ceremony under webauthn.extension_outputs "refuse"; an unknown policy is invalid_config.
func TestExtensionOutputPolicy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		a := authenticatortest.New(authenticatortest.Options{})
		r.register(a, "alice")
		unsolicited := func() []byte {
			assertion, err := a.Get(r.loginOptions(""), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			return withExtensionResults(t, assertion, map[string]any{"hmacGetSecret": map[string]any{"output1": "AAAA"}})
		}
		expectStatus(t, r.loginFinalize(unsolicited()), 200, "")

		expectStatus(t, s.adminCall("PUT", "/tenants/"+r.id+"/config", configWith("example.com", map[string]any{"extension_outputs": "refuse"})), 204, "")
		e := expectStatus(t, r.loginFinalize(unsolicited()), 401, "assertion_failed")
		if !strings.Contains(e.Details, "hmacGetSecret") {
			t.Fatalf("details %q", e.Details)
		}
		// What the ceremony asked for is no problem: registration's credProps and prf.
		att, err := a.Create(r.registrationOptions("bob"), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		att = withExtensionResults(t, att, map[string]any{"credProps": map[string]any{"rk": true}, "prf": map[string]any{"enabled": false}})
		expectStatus(t, r.registrationFinalize(att), 200, "")
		att, err = authenticatortest.New(authenticatortest.Options{}).Create(r.registrationOptions("carol"), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, r.registrationFinalize(withExtensionResults(t, att, map[string]any{"largeBlob": map[string]any{"supported": true}})), 400, "attestation_failed")

		e = expectStatus(t, s.adminCall("PUT", "/tenants/"+r.id+"/config", configWith("example.com", map[string]any{"extension_outputs": "reject"})), 400, "invalid_config")
		if !strings.Contains(e.Details, "webauthn.extension_outputs") {
			t.Fatalf("details %q", e.Details)
		}
	})
}
