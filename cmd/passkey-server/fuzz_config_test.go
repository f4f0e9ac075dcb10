package main

import (
	"encoding/json"
	"testing"

	"github.com/passkey-server/passkey-server/db/dbtest"
)

// FuzzTenantConfig sends arbitrary bodies to PUT /tenants/{id}/config. Every answer is a 204 or a 4xx
// with a JSON error, never a 5xx; a refused config leaves the stored tenant exactly as it was; after an
// accepted one the tenant still serves its JWKS and starts a usernameless login.
func FuzzTenantConfig(f *testing.F) {
	d := dbtest.SQLite(f)
	s := newTestServer(f, d, newTestSealer(f))
	id, _ := s.createTenant("example.com")
	full := validConfig("example.com")
	full["mfa"] = map[string]any{"timeout": 60000, "attachment": "cross-platform", "user_verification": "preferred",
		"attestation_preference": "direct", "resident_key_requirement": "discouraged"}
	full["signing_algorithm"] = "RS256"
	full["cors"] = map[string]any{"allowed_origins": []string{"*", "https://*.example.com"}, "allow_unsafe_wildcard": true}
	for _, seed := range []any{validConfig("example.com"), validConfig("localhost"), full} {
		b, err := json.Marshal(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, seed := range []string{"", "{}", "null", "[]", `{"webauthn":null}`, `{"cors":{"allowed_origins":[1]}}`,
		`{"webauthn":{"timeout":1e400}}`, `{"signing_algorithm":"none"}`, "\xff"} {
		f.Add([]byte(seed))
	}
	admin := []string{"Authorization", "Bearer " + testToken}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := readAll(t, call(t, s.admin, "GET", "/tenants/"+id, nil, admin...))
		resp := call(t, s.admin, "PUT", "/tenants/"+id+"/config", body, append(admin, "Content-Type", "application/json")...)
		answer := readAll(t, resp)
		switch {
		case resp.StatusCode == 204:
			for _, c := range []struct{ method, path string }{{"GET", "/" + id + "/.well-known/jwks.json"}, {"POST", "/" + id + "/login/initialize"}} {
				if after := call(t, s.public, c.method, c.path, nil); after.StatusCode != 200 {
					t.Fatalf("after the accepted config %q, %s %s is %d: %s", body, c.method, c.path, after.StatusCode, readAll(t, after))
				}
			}
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			var e ErrorBody
			if err := json.Unmarshal(answer, &e); err != nil || e.Code == "" || e.Status != resp.StatusCode {
				t.Fatalf("status %d with a malformed error body: %s\nbody: %q", resp.StatusCode, answer, body)
			}
			if after := readAll(t, call(t, s.admin, "GET", "/tenants/"+id, nil, admin...)); string(after) != string(before) {
				t.Fatalf("the refused config %q changed the tenant:\n%s\n%s", body, before, after)
			}
		default:
			t.Fatalf("status %d: %s\nbody: %q\nserver log:\n%s", resp.StatusCode, answer, body, s.logs)
		}
	})
}
