package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
)

func TestBadInputOnPublicRoutes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		id, _ := s.createTenant("example.com")
		expectStatus(t, call(t, s.public, "GET", "/not-a-uuid/.well-known/jwks.json", nil), 400, "invalid_tenant_id")
		expectStatus(t, call(t, s.public, "GET", "/00000000-0000-0000-0000-000000000000/.well-known/jwks.json", nil), 404, "tenant_not_found")
		expectStatus(t, call(t, s.public, "GET", "/"+id+"/nothing-here", nil), 404, "not_found")
		expectStatus(t, postOversized(t, listenTest(t, s.public), "/"+id+"/.well-known/jwks.json", 100<<10), 413, "body_too_large")
		body, _ := io.ReadAll(call(t, s.public, "GET", "/", nil).Body)
		if !strings.Contains(string(body), "passkey-server") {
			t.Fatalf("status page %s", body)
		}
	})
}

// postOversized posts a body of size bytes with net/http's client, which writes the whole body before
// it reads the answer: the server must answer 413 and drain the body, so that the client reads the
// answer rather than a connection reset.
func postOversized(t *testing.T, base, path string, size int) *http.Response {
	t.Helper()
	resp, err := http.Post(base+path, "application/json", bytes.NewReader(bytes.Repeat([]byte(" "), size)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestTextThatNoDatabaseStores sends NUL characters into every free-text input: PostgreSQL cannot store
// them, so each must be a 400, never a 500 (found by FuzzLoginInitialize). Bytes that are not UTF-8 are
// a 400 too, rather than becoming U+FFFD (which would make "a\xffb" and "a\xfeb" the same user).
func TestTextThatNoDatabaseStores(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		_, credID := r.register(authenticatortest.New(authenticatortest.Options{}), "alice")
		nul := "a\x00b"
		cfg := validConfig("example.com")
		cfg["webauthn"].(map[string]any)["relying_party"].(map[string]any)["display_name"] = nul
		cors := validConfig("example.com")
		cors["cors"] = map[string]any{"allowed_origins": []string{"https://a\x00.example.com"}}
		for _, c := range []struct {
			app          string
			method, path string
			body         any
			status       int
			code         string
		}{
			{"admin", "POST", "/tenants", map[string]any{"display_name": nul, "config": validConfig("example.com")}, 400, "invalid_request"},
			{"admin", "PUT", "/tenants/" + r.id, map[string]any{"display_name": nul}, 400, "invalid_request"},
			{"admin", "PUT", "/tenants/" + r.id + "/config", cfg, 400, "invalid_config"},
			{"admin", "PUT", "/tenants/" + r.id + "/config", cors, 400, "invalid_config"},
			{"admin", "POST", "/tenants/" + r.id + "/secrets/api", map[string]any{"name": nul}, 400, "invalid_request"},
			{"public", "POST", "/" + r.id + "/registration/initialize", map[string]any{"user_id": nul, "username": "x"}, 400, "invalid_request"},
			{"public", "POST", "/" + r.id + "/registration/initialize", map[string]any{"user_id": "x", "username": nul}, 400, "invalid_request"},
			{"public", "POST", "/" + r.id + "/login/initialize", map[string]any{"user_id": nul}, 400, "invalid_request"},
			{"public", "POST", "/" + r.id + "/mfa/login/initialize", map[string]any{"user_id": nul}, 400, "invalid_request"},
			{"public", "POST", "/" + r.id + "/transaction/initialize", map[string]any{"user_id": "alice", "transaction_id": nul, "transaction_data": map[string]any{"a": 1}}, 400, "invalid_request"},
			{"public", "PATCH", "/" + r.id + "/credentials/" + credID, map[string]any{"name": nul}, 400, "invalid_request"},
			{"public", "GET", "/" + r.id + "/credentials/%00", nil, 404, "credential_not_found"},
			{"public", "POST", "/" + r.id + "/registration/initialize", "{\"user_id\":\"a\xffb\",\"username\":\"x\"}", 400, "invalid_body"},
			{"public", "POST", "/" + r.id + "/login/initialize", "{\"user_id\":\"a\xfeb\"}", 400, "invalid_body"},
			{"admin", "POST", "/tenants", "{\"display_name\":\"\xc3\",\"config\":{}}", 400, "invalid_body"},
		} {
			if c.app == "admin" {
				expectStatus(t, s.adminCall(c.method, c.path, c.body), c.status, c.code)
			} else {
				expectStatus(t, call(t, s.public, c.method, c.path, c.body, "apiKey", r.secret), c.status, c.code)
			}
		}
	})
}
