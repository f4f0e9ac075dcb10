package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
)

// withMember returns the JSON object body with one more member, written as raw JSON text.
func withMember(body []byte, member string) []byte {
	return append(bytes.TrimSuffix(bytes.TrimSpace(bytes.Clone(body)), []byte("}")), []byte(","+member+"}")...)
}

// TestLoneSurrogateEscapes: an unpaired UTF-16 surrogate escape decodes to U+FFFD, so "a\ud800" and
// "a\udc00" would be one user. Every body refuses them, the decoded ones and the finalize bodies the
// ceremonies parse themselves, even in a member nobody reads; pairs are fine.
func TestLoneSurrogateEscapes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		a := authenticatortest.New(authenticatortest.Options{})
		r.register(a, "alice")
		for _, c := range []struct {
			app, method, path, body string
		}{
			{"public", "POST", "/" + r.id + "/registration/initialize", `{"user_id":"a\ud800","username":"x"}`},
			{"public", "POST", "/" + r.id + "/registration/initialize", `{"user_id":"a\udc00","username":"x"}`},
			{"public", "POST", "/" + r.id + "/registration/initialize", `{"user_id":"a","username":"x\ud83d\u0041"}`},
			{"public", "POST", "/" + r.id + "/login/initialize", `{"user_id":"\ud800"}`},
			{"public", "POST", "/" + r.id + "/login/initialize", `{"ignored":"\udfff"}`},
			{"public", "POST", "/" + r.id + "/mfa/login/initialize", `{"user_id":"alice\ud800"}`},
			{"public", "POST", "/" + r.id + "/transaction/initialize", `{"user_id":"alice","transaction_id":"t\ud800","transaction_data":{"a":1}}`},
			{"public", "PATCH", "/" + r.id + "/credentials/x", `{"name":"\ud800"}`},
			{"admin", "PUT", "/tenants/" + r.id, `{"display_name":"\ud800"}`},
			{"admin", "POST", "/tenants/" + r.id + "/secrets/api", `{"name":"k\udc00"}`},
		} {
			app := s.public
			headers := []string{"apiKey", r.secret}
			if c.app == "admin" {
				app, headers = s.admin, []string{"Authorization", "Bearer " + testToken}
			}
			body := expectStatus(t, call(t, app, c.method, c.path, c.body, headers...), 400, "invalid_body")
			if !strings.Contains(body.Details, "unpaired UTF-16 surrogate") {
				t.Fatalf("%s %s: details %q", c.method, c.path, body.Details)
			}
		}
		// A surrogate pair is a character like any other.
		expectStatus(t, r.post("/"+r.id+"/registration/initialize", `{"user_id":"emoji-\ud83d\ude00","username":"x"}`, true), 200, "")

		// Finalize bodies: refused before the session is touched; the same body without the escape
		// then finishes its ceremony.
		att, err := authenticatortest.New(authenticatortest.Options{}).Create(r.registrationOptions("bob"), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		e := expectStatus(t, r.registrationFinalize(withMember(att, `"extra":"\ud800"`)), 400, "invalid_credential_response")
		if !strings.Contains(e.Details, "unpaired UTF-16 surrogate") {
			t.Fatalf("registration finalize: details %q", e.Details)
		}
		expectStatus(t, r.registrationFinalize(att), 200, "")
		assertion, err := a.Get(r.loginOptions(""), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, r.loginFinalize(withMember(assertion, `"clientExtensionResults":{"x":"\udc00"}`)), 400, "invalid_credential_response")
		expectStatus(t, r.loginFinalize(assertion), 200, "")
		expectStatus(t, r.post(r.txPath("/finalize"), `{"id":"\ud800","type":"public-key"}`, true), 400, "invalid_credential_response")
	})
}

// TestMemberNames: Go's decoder matches member names in any letter case and keeps the last of
// duplicates, so a body could mean one thing to a proxy, a log or a WAF rule and another to us. Both
// are a 400 that names the member; unknown members of public bodies stay ignored, as in Hanko.
func TestMemberNames(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		r.register(authenticatortest.New(authenticatortest.Options{}), "alice")
		for _, c := range []struct {
			path, body, details string
		}{
			{"/registration/initialize", `{"user_id":"mallory","username":"x","user_id":"alice"}`, "user_id appears more than once"},
			{"/registration/initialize", `{"USER_ID":"alice","username":"x"}`, "USER_ID must be written user_id (member names are case-sensitive)"},
			{"/login/initialize", `{"User_Id":"alice"}`, "User_Id must be written user_id"},
			{"/mfa/login/initialize", `{"user_id":"alice","user_id":"bob"}`, "user_id appears more than once"},
			{"/transaction/initialize", `{"user_id":"alice","Transaction_ID":"t","transaction_data":{"a":1}}`, "Transaction_ID must be written transaction_id"},
		} {
			e := expectStatus(t, r.post("/"+r.id+c.path, c.body, true), 400, "invalid_body")
			if !strings.Contains(e.Details, c.details) {
				t.Fatalf("%s %s: details %q, want %q", c.path, c.body, e.Details, c.details)
			}
		}
		// Both problems of one body at once.
		e := expectStatus(t, r.post("/"+r.id+"/registration/initialize", `{"user_id":"a","user_id":"b","UserName":"x"}`, true), 400, "invalid_body")
		if e.Details != "user_id appears more than once and UserName must be written username (member names are case-sensitive)" {
			t.Fatalf("details %q", e.Details)
		}
		// Members the API does not know are still ignored on public routes.
		expectStatus(t, r.post("/"+r.id+"/registration/initialize", `{"user_id":"carol","username":"c","extra":{"x":1}}`, true), 200, "")
		expectStatus(t, r.post("/"+r.id+"/login/initialize", `{"hint":"x"}`, false), 200, "")
	})
}

// TestAdminUnknownMembers: a misspelt setting in an admin body is a 400 that names it, at any depth,
// instead of leaving the setting at its default while the operator believes it holds.
func TestAdminUnknownMembers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		id, _ := s.createTenant("example.com")
		tenants := func() int { return len(decode[[]map[string]any](t, s.adminCall("GET", "/tenants", nil))) }
		before := tenants()

		typo := validConfig("example.com")
		typo["webauthn"].(map[string]any)["user_verfication"] = "discouraged"
		e := expectStatus(t, s.adminCall("POST", "/tenants", map[string]any{"display_name": "T", "config": typo}), 400, "invalid_body")
		if e.Details != "config.webauthn.user_verfication is not a known member" {
			t.Fatalf("details %q", e.Details)
		}
		if tenants() != before {
			t.Fatal("a tenant was created from a body with an unknown member")
		}
		nested := validConfig("example.com")
		nested["cors"].(map[string]any)["allowed_origin"] = []string{"https://example.com"}
		nested["mfa"] = map[string]any{"timeout": 60000, "user_verfication": "required"}
		nested["webauthn"].(map[string]any)["relying_party"].(map[string]any)["ID"] = "example.com"
		e = expectStatus(t, s.adminCall("PUT", "/tenants/"+id+"/config", nested), 400, "invalid_body")
		for _, want := range []string{"cors.allowed_origin is not a known member", "mfa.user_verfication is not a known member",
			"webauthn.relying_party.ID must be written webauthn.relying_party.id"} {
			if !strings.Contains(e.Details, want) {
				t.Fatalf("details %q, want %q", e.Details, want)
			}
		}
		for _, c := range []struct{ method, path, body, details string }{
			{"POST", "/tenants", `{"display_name":"T","config":{},"create_apikey":true}`, "create_apikey is not a known member"},
			{"PUT", "/tenants/" + id, `{"display_name":"T","name":"x"}`, "name is not a known member"},
			{"POST", "/tenants/" + id + "/secrets/api", `{"name":"k","kind":"secret","expires":"2030-01-01T00:00:00Z"}`, "expires is not a known member"},
			{"POST", "/tenants/" + id + "/signing_keys", `{"overlap":60}`, "overlap is not a known member"},
		} {
			e := expectStatus(t, s.adminCall(c.method, c.path, c.body), 400, "invalid_body")
			if e.Details != c.details {
				t.Fatalf("%s %s: details %q, want %q", c.method, c.path, e.Details, c.details)
			}
		}
		// What GET /tenants/{id} returns is a config PUT accepts as it is.
		detail := decode[map[string]any](t, s.adminCall("GET", "/tenants/"+id, nil))
		expectStatus(t, s.adminCall("PUT", "/tenants/"+id+"/config", detail["config"]), 204, "")
		expectStatus(t, s.adminCall("POST", "/tenants/"+id+"/signing_keys", `{"overlap_seconds":60}`), 201, "")
	})
}

// TestPaginationLinksIgnoreHost: Link headers are built from PASSKEY_PUBLIC_URL on the public API and
// are relative on the admin API, whatever Host, X-Forwarded-Host or X-Forwarded-Proto a client sends;
// Hanko's rel set and order stay.
func TestPaginationLinksIgnoreHost(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		spoof := []string{"X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https", "apiKey", r.secret}
		resp := call(t, s.public, "GET", "http://evil.example/"+r.id+"/credentials?user_id=a%3Eb&user_id=x", nil, spoof...)
		expectStatus(t, resp, 200, "")
		want := `<http://localhost:8000/` + r.id + `/credentials?page=1&per_page=20&user_id=a%3Eb&user_id=x>; rel="first"`
		if got := resp.Header.Get("Link"); got != want {
			t.Fatalf("public Link\n%s\nwant\n%s", got, want)
		}
		// A path that would end the <URI> early is escaped.
		resp = call(t, s.public, "GET", "http://evil.example/"+r.id+"/transaction/a%3Eb", nil, spoof...)
		expectStatus(t, resp, 200, "")
		if got := resp.Header.Get("Link"); !strings.HasPrefix(got, "<http://localhost:8000/"+r.id+"/transaction/a%3Eb?page=1") {
			t.Fatalf("transaction list Link %q", got)
		}
		for _, u := range []string{"u1", "u2", "u3"} {
			expectStatus(t, r.post("/"+r.id+"/registration/initialize", map[string]any{"user_id": u, "username": u}, true), 200, "")
		}
		resp = call(t, s.admin, "GET", "http://evil.example/tenants/"+r.id+"/users?per_page=1&page=2", nil,
			"Authorization", "Bearer "+testToken, "X-Forwarded-Host", "evil.example")
		expectStatus(t, resp, 200, "")
		base := "/tenants/" + r.id + "/users"
		want = "<" + base + `?page=1&per_page=1>; rel="first",<` + base + `?page=3&per_page=1>; rel="last",<` +
			base + `?page=3&per_page=1>; rel="next",<` + base + `?page=1&per_page=1>; rel="prev"`
		if got := resp.Header.Get("Link"); got != want || resp.Header.Get("X-Total-Count") != "3" {
			t.Fatalf("admin Link\n%s\nwant\n%s", got, want)
		}
	})
}

// TestAuditFilterTimeRange: a time no store can compare (year 0, or year 10000 once in UTC) is a 400
// invalid_filter, not a 500; the extreme years that stores take are answered.
func TestAuditFilterTimeRange(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		for _, q := range []string{
			"start_time=0000-01-01T00:00:00Z",
			"end_time=0000-12-31T23:59:59.999Z",
			"start_time=0001-01-01T00:30:00%2B01:00",
			"end_time=9999-12-31T23:00:00-05:00",
		} {
			e := expectStatus(t, r.get("/"+r.id+"/audit_logs?"+q), 400, "invalid_filter")
			if !strings.Contains(e.Details, "must be between the years 0001 and 9999") {
				t.Fatalf("%s: details %q", q, e.Details)
			}
			expectStatus(t, s.adminCall("GET", "/tenants/"+r.id+"/audit_logs?"+q, nil), 400, "invalid_filter")
			expectStatus(t, s.adminCall("GET", "/audit_logs?"+q, nil), 400, "invalid_filter")
		}
		expectStatus(t, r.get("/"+r.id+"/audit_logs?start_time=0001-01-01T00:00:01Z&end_time=9999-12-31T23:59:59Z"), 200, "")
		expectStatus(t, s.adminCall("GET", "/audit_logs?start_time=0001-01-01T00:00:01Z&end_time=9999-12-31T23:59:59Z", nil), 200, "")
	})
}

// TestRequestIDIsChosenByServer: the request id in X-Request-Id, error bodies, the access log and audit
// entries is a UUID the server generated; an X-Request-Id the client sends (here text that would forge
// a log line, and a well-formed UUID) appears nowhere.
func TestRequestIDIsChosenByServer(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		accessLog := &lockedBuffer{}
		s := newTestServer(t, d, newTestSealer(t), func(o *testOptions) {
			o.HTTP.Logger = slog.New(slog.NewJSONHandler(accessLog, nil))
		})
		r := newRP(t, s, "example.com")
		for _, sent := range []string{`forged" level=ERROR msg="admin login`, "3f1c2e3a-0b4d-4e5f-8a9b-0c1d2e3f4a5b"} {
			// Refused for want of a key: an error body and an audit entry.
			resp := call(t, s.public, "POST", "/"+r.id+"/registration/initialize", map[string]any{"user_id": "a", "username": "a"}, "X-Request-Id", sent)
			expectStatus(t, resp, 401, "")
			e := decode[httpapi.ErrorBody](t, resp)
			got := resp.Header.Get("X-Request-Id")
			if _, err := uuid.Parse(got); err != nil || got == sent || e.RequestID != got {
				t.Fatalf("sent %q: header %q, body %q", sent, got, e.RequestID)
			}
			ok := call(t, s.public, "POST", "/"+r.id+"/login/initialize", nil, "X-Request-Id", sent)
			expectStatus(t, ok, 200, "")
			if id := ok.Header.Get("X-Request-Id"); id == sent || id == got {
				t.Fatalf("sent %q: login got %q", sent, id)
			}
			for _, entry := range r.auditLog("") {
				if entry.RequestID == sent {
					t.Fatalf("audit entry %s carries the client's request id", entry.Type)
				}
			}
			if strings.Contains(accessLog.String(), sent) || !strings.Contains(accessLog.String(), got) {
				t.Fatalf("access log:\n%s", accessLog)
			}
		}
		if entries := r.auditLog(""); len(entries) == 0 || entries[0].RequestID == "" {
			t.Fatalf("audit entries %+v", entries)
		}
	})
}
