package main

import (
	"encoding/base64"

	"encoding/json"
	"github.com/google/uuid"
	"strings"
	"testing"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
)

// configWith returns validConfig(rpID) with webauthn members changed.
func configWith(rpID string, webauthn map[string]any) map[string]any {
	c := validConfig(rpID)
	w := c["webauthn"].(map[string]any)
	for k, v := range webauthn {
		w[k] = v
	}
	return c
}

// TestRelatedOrigins: a tenant's related origins are served as its well-known document and accepted
// in ceremonies, an unrelated origin is refused, and bad lists are 400s that store nothing.
func TestRelatedOrigins(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")

		resp := call(t, s.public, "GET", "/"+r.id+"/.well-known/webauthn", nil)
		expectStatus(t, resp, 200, "")
		if got := string(readAll(t, resp)); got != `{"origins":[]}` {
			t.Fatalf("empty document %s", got)
		}

		// The trap of go-webauthn's naive label count: with an Android origin configured, it would
		// count example.co.uk as "co" and so on; these six origins have two labels by the public-suffix
		// list, and the tenant must still run ceremonies.
		related := []string{"https://example.co.uk", "https://example.com.au", "https://example.co.jp",
			"https://shop.example.de", "https://a.example.org.uk", "https://example.ne.jp", "https://other.com"}
		cfg := configWith("example.com", map[string]any{"related_origins": related})
		rpc := cfg["webauthn"].(map[string]any)["relying_party"].(map[string]any)
		rpc["origins"] = []string{"https://example.com", "android:apk-key-hash:abcdefghijklmnop"}
		expectStatus(t, s.adminCall("PUT", "/tenants/"+r.id+"/config", cfg), 204, "")

		resp = call(t, s.public, "GET", "/"+r.id+"/.well-known/webauthn", nil)
		expectStatus(t, resp, 200, "")
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("headers %v", resp.Header)
		}
		var doc struct{ Origins []string }
		if err := json.Unmarshal(readAll(t, resp), &doc); err != nil || strings.Join(doc.Origins, " ") != strings.Join(related, " ") {
			t.Fatalf("document %v %v", doc, err)
		}

		a := authenticatortest.New(authenticatortest.Options{})
		r.register(a, "alice")
		for _, c := range []struct {
			origin string
			status int
		}{{"https://shop.example.de", 200}, {"https://example.co.uk", 200}, {"https://evil.example.net", 401}} {
			assertion, err := a.GetWith(r.loginOptions(""), testOrigin, authenticatortest.Tamper{Origin: c.origin})
			if err != nil {
				t.Fatal(err)
			}
			code := ""
			if c.status != 200 {
				code = "assertion_failed"
			}
			expectStatus(t, r.loginFinalize(assertion), c.status, code)
		}

		bad := []struct {
			name    string
			origins any
			want    string
		}{
			{"http", []string{"http://shop.example.de"}, "must use https"},
			{"path", []string{"https://shop.example.de/login"}, "path"},
			{"public suffix", []string{"https://co.uk"}, "registrable domain"},
			{"ip", []string{"https://10.0.0.1"}, "IP address"},
			{"twice", []string{"https://a.example.de", "https://a.example.de"}, "more than once"},
			{"over budget", []string{"https://a.com", "https://b.com", "https://c.co.uk", "https://a.de", "https://d.de", "https://e.de", "https://f.net", "https://c.fr"},
				"would be ignored: https://f.net"},
		}
		for _, c := range bad {
			t.Run(c.name, func(t *testing.T) {
				e := expectStatus(t, s.adminCall("PUT", "/tenants/"+r.id+"/config", configWith("example.com", map[string]any{"related_origins": c.origins})), 400, "invalid_config")
				if !strings.Contains(e.Details, c.want) {
					t.Fatalf("details %q lack %q", e.Details, c.want)
				}
			})
		}
		resp = call(t, s.public, "GET", "/"+r.id+"/.well-known/webauthn", nil)
		if err := json.Unmarshal(readAll(t, resp), &doc); err != nil || len(doc.Origins) != len(related) {
			t.Fatalf("a refused config changed the document: %v", doc)
		}
	})
}

// TestHints: hints of the body, or the tenant's defaults, reach publicKey.hints; MFA defaults to
// security-key; unknown values are a 400 that stores nothing.
func TestHints(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		eachFamily(t, s, "example.com", func(t *testing.T, r *rp) {
			hintsOf := func(options []byte) string {
				var o struct {
					PublicKey struct{ Hints []string } `json:"publicKey"`
				}
				if err := json.Unmarshal(options, &o); err != nil {
					t.Fatal(err)
				}
				return strings.Join(o.PublicKey.Hints, ",")
			}
			regPath := r.path("/registration/initialize", "/credentials/register/initialize")
			post := func(path string, body map[string]any) []byte {
				resp := r.post(path, body, true)
				expectStatus(t, resp, 200, "")
				return readAll(t, resp)
			}
			if h := hintsOf(post(regPath, map[string]any{"user_id": "u1", "username": "u1"})); h != "" {
				t.Fatalf("no default, hints %q", h)
			}
			if h := hintsOf(post(regPath, map[string]any{"user_id": "u1", "username": "u1", "hints": []string{"hybrid", "client-device"}})); h != "hybrid,client-device" {
				t.Fatalf("hints %q", h)
			}
			mfaPath := r.path("/mfa/registration/initialize", "/credentials/mfa/register/initialize")
			if h := hintsOf(post(mfaPath, map[string]any{"user_id": "u1", "username": "u1"})); h != "security-key" {
				t.Fatalf("mfa default hints %q", h)
			}
			if h := hintsOf(post(mfaPath, map[string]any{"user_id": "u1", "username": "u1", "hints": []string{}})); h != "" {
				t.Fatalf("mfa hints [] gave %q", h)
			}
			loginPath := r.path("/login/initialize", "/credentials/login/initialize")
			if h := hintsOf(post(loginPath, map[string]any{"hints": []string{"client-device"}})); h != "client-device" {
				t.Fatalf("login hints %q", h)
			}
			expectStatus(t, s.adminCall("PUT", "/tenants/"+r.id+"/config", configWith("example.com", map[string]any{"hints": []string{"hybrid"}})), 204, "")
			if h := hintsOf(post(loginPath, nil)); h != "hybrid" {
				t.Fatalf("tenant default login hints %q", h)
			}
			for _, c := range []struct {
				path string
				body map[string]any
			}{
				{regPath, map[string]any{"user_id": "new-user", "username": "n", "hints": []string{"usb"}}},
				{regPath, map[string]any{"user_id": "new-user", "username": "n", "hints": []string{"hybrid", "hybrid"}}},
				{loginPath, map[string]any{"hints": []string{"Security-Key"}}},
			} {
				e := expectStatus(t, r.post(c.path, c.body, true), 400, "invalid_request")
				if !strings.Contains(e.Details, "hints") {
					t.Fatalf("details %q", e.Details)
				}
			}
			expectStatus(t, s.adminCall("GET", "/tenants/"+r.id+"/users/new-user", nil), 404, "user_not_found") // nothing stored
			e := expectStatus(t, s.adminCall("PUT", "/tenants/"+r.id+"/config", configWith("example.com", map[string]any{"hints": []string{"nfc"}})), 400, "invalid_config")
			if !strings.Contains(e.Details, "webauthn.hints") {
				t.Fatalf("details %q", e.Details)
			}
		})
	})
}

// TestSignals: an unknown credential's failed login carries signals.unknownCredential (and nothing
// else changes in the answer), a known one's does not; finalize with ?signals=true and the signals
// route return every accepted credential and the user's names, per user handle.
func TestSignals(t *testing.T) {
	type signals struct {
		UnknownCredential *struct {
			RPID         string `json:"rpId"`
			CredentialID string `json:"credentialId"`
		} `json:"unknownCredential"`
		AllAcceptedCredentials []struct {
			RPID   string   `json:"rpId"`
			UserID string   `json:"userId"`
			IDs    []string `json:"allAcceptedCredentialIds"`
		} `json:"allAcceptedCredentials"`
		CurrentUserDetails []struct {
			RPID        string `json:"rpId"`
			UserID      string `json:"userId"`
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
		} `json:"currentUserDetails"`
	}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		eachFamily(t, s, "example.com", func(t *testing.T, r *rp) {
			a := authenticatortest.New(authenticatortest.Options{})
			_, gone := r.register(a, "alice")
			_, kept := r.register(authenticatortest.New(authenticatortest.Options{}), "alice")
			expectStatus(t, call(t, s.public, "DELETE", r.path("/credentials/"+gone, "/credentials/"+gone), nil, r.keyHeaders(true)...), 204, "")

			// Off by default (webauthn.signals): no signal in the failed login, 409 from the route.
			assertion, err := a.Get(r.loginOptions(""), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			resp := r.loginFinalize(assertion)
			if body := readAll(t, resp); resp.StatusCode != 401 || strings.Contains(string(body), "signals") {
				t.Fatalf("a failed login of a tenant without signals: %d %s", resp.StatusCode, body)
			}
			expectStatus(t, call(t, s.public, "GET", r.path("/users/alice/signals", "/users/alice/signals"), nil, r.keyHeaders(true)...), 409, "signals_disabled")
			expectStatus(t, s.adminCall("PUT", "/tenants/"+r.id+"/config", configWith("example.com", map[string]any{"signals": true})), 204, "")

			// Unknown to the tenant: the generic detail, plus the signal.
			assertion, err = a.Get(r.loginOptions(""), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			resp = r.loginFinalize(assertion)
			unknown := expectStatus(t, resp, 401, "assertion_failed")
			var body struct{ Signals signals }
			_ = json.Unmarshal(readAll(t, resp), &body)
			if u := body.Signals.UnknownCredential; u == nil || u.RPID != "example.com" || u.CredentialID != gone {
				t.Fatalf("unknown credential signal %+v", body.Signals)
			}

			// Known, but the handle is not its owner's: the same detail, no signal.
			b := authenticatortest.New(authenticatortest.Options{})
			r.register(b, "bob")
			assertion, err = b.GetWith(r.loginOptions(""), testOrigin, authenticatortest.Tamper{UserHandle: []byte("alice")})
			if err != nil {
				t.Fatal(err)
			}
			resp = r.loginFinalize(assertion)
			known := expectStatus(t, resp, 401, "assertion_failed")
			if strings.Contains(string(readAll(t, resp)), "signals") || known.Details != unknown.Details {
				t.Fatalf("known credential: %+v vs %+v", known, unknown)
			}
			// A bad signature of a known credential: no signal.
			assertion, _ = b.GetWith(r.loginOptions(""), testOrigin, authenticatortest.Tamper{CorruptSignature: true})
			resp = r.loginFinalize(assertion)
			expectStatus(t, resp, 401, "assertion_failed")
			if strings.Contains(string(readAll(t, resp)), "signals") {
				t.Fatal("signals on a bad signature")
			}

			check := func(sig signals, handles ...string) {
				t.Helper()
				if len(sig.AllAcceptedCredentials) != len(handles) || len(sig.CurrentUserDetails) != len(handles) || sig.UnknownCredential != nil {
					t.Fatalf("signals %+v", sig)
				}
				for i, h := range handles {
					all, cur := sig.AllAcceptedCredentials[i], sig.CurrentUserDetails[i]
					if all.RPID != "example.com" || all.UserID != h || cur.UserID != h || cur.RPID != "example.com" {
						t.Fatalf("signals %+v", sig)
					}
				}
			}
			// A registration and a login asking for signals: the user's credentials and names.
			path := r.path("/login/finalize", "/credentials/login/finalize")
			reg := r.registrationOptions("carol")
			att, err := b.Create(reg, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			resp = r.post(r.path("/registration/finalize", "/credentials/register/finalize")+"?signals=true", att, false)
			expectStatus(t, resp, 200, "")
			var tok struct{ Signals signals }
			_ = json.Unmarshal(readAll(t, resp), &tok)
			check(tok.Signals, b64("carol"))
			if c := tok.Signals.CurrentUserDetails[0]; c.Name != "carol@example.com" || c.DisplayName != "carol@example.com" || len(tok.Signals.AllAcceptedCredentials[0].IDs) != 1 {
				t.Fatalf("carol %+v", tok.Signals)
			}

			assertion, err = b.Get(r.loginOptions("carol"), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			resp = r.post(path+"?signals=true", assertion, false)
			expectStatus(t, resp, 200, "")
			tok.Signals = signals{}
			_ = json.Unmarshal(readAll(t, resp), &tok)
			check(tok.Signals, b64("carol"))
			// Without the parameter the answer is Hanko's.
			assertion, _ = b.Get(r.loginOptions("carol"), testOrigin)
			resp = r.loginFinalize(assertion)
			expectStatus(t, resp, 200, "")
			if strings.Contains(string(readAll(t, resp)), "signals") {
				t.Fatal("signals without asking")
			}

			resp = r.get(r.path("/users/alice/signals", "/users/alice/signals"))
			expectStatus(t, resp, 200, "")
			var sig signals
			_ = json.Unmarshal(readAll(t, resp), &sig)
			check(sig, b64("alice"))
			if ids := sig.AllAcceptedCredentials[0].IDs; len(ids) != 1 || ids[0] != kept {
				t.Fatalf("alice's credentials %v, want [%s]", ids, kept)
			}

			// A UUID user id: its text handle and Hanko's 16-byte one.
			id := uuid.New()
			r.register(authenticatortest.New(authenticatortest.Options{}), id.String())
			resp = r.get(r.path("/users/"+id.String()+"/signals", "/users/"+id.String()+"/signals"))
			sig = signals{}
			_ = json.Unmarshal(readAll(t, resp), &sig)
			check(sig, b64(id.String()), base64.RawURLEncoding.EncodeToString(id[:]))

			expectStatus(t, r.get(r.path("/users/nobody/signals", "/users/nobody/signals")), 404, "user_not_found")
			resp = call(t, s.public, "GET", r.path("/users/alice/signals", "/users/alice/signals"), nil)
			if resp.StatusCode != 401 {
				t.Fatalf("no key: %d", resp.StatusCode)
			}
		})
	})
}
