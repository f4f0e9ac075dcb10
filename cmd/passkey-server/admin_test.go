package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/signing"
)

func TestAdminNeedsToken(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		cases := []struct {
			name   string
			header []string
		}{
			{"no header", nil},
			{"wrong token", []string{"Authorization", "Bearer not-the-token-at-all"}},
			{"basic scheme", []string{"Authorization", "Basic " + testToken}},
			{"token without scheme", []string{"Authorization", testToken}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				for _, path := range []string{"/tenants", "/tenants/" + "00000000-0000-0000-0000-000000000000", "/no/such/route"} {
					resp := call(t, s.admin, "GET", path, nil, c.header...)
					e := expectStatus(t, resp, 401, "admin_unauthorized")
					if strings.Contains(e.Details+e.Title, testToken) {
						t.Fatal("error leaks the token")
					}
				}
			})
		}
		expectStatus(t, call(t, s.admin, "GET", "/health/alive", nil), 200, "")
		expectStatus(t, call(t, s.admin, "GET", "/health/ready", nil), 200, "")
		expectStatus(t, s.adminCall("GET", "/tenants", nil), 200, "")
		expectStatus(t, call(t, s.admin, "GET", "/tenants", nil, "authorization", "bearer "+testToken), 200, "")
	})
}

func TestTenantLifecycle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		id, secret := s.createTenant("example.com")

		list := decode[[]httpapi.TenantSummary](t, s.adminCall("GET", "/tenants", nil))
		if len(list) != 1 || list[0].ID.String() != id {
			t.Fatalf("list = %+v", list)
		}
		detail := decode[httpapi.TenantDetail](t, s.adminCall("GET", "/tenants/"+id, nil))
		w := detail.Config.WebAuthn
		if w.UserVerification != "required" || w.AttestationPreference != "direct" || w.ResidentKeyRequirement != "required" {
			t.Fatalf("webauthn defaults not applied: %+v", w)
		}
		if m := detail.Config.MFA; m == nil || m.Attachment != "cross-platform" || m.UserVerification != "preferred" || m.Timeout != 60000 {
			t.Fatalf("mfa defaults not applied: %+v", m)
		}
		if detail.Config.SigningAlgorithm != signing.ES256 {
			t.Fatalf("signing algorithm %q", detail.Config.SigningAlgorithm)
		}

		expectStatus(t, s.adminCall("PUT", "/tenants/"+id, map[string]any{"display_name": "Renamed"}), 204, "")
		if got := decode[httpapi.TenantDetail](t, s.adminCall("GET", "/tenants/"+id, nil)); got.DisplayName != "Renamed" {
			t.Fatalf("rename: %q", got.DisplayName)
		}
		expectStatus(t, s.adminCall("PUT", "/tenants/"+id, map[string]any{"display_name": "  "}), 400, "invalid_request")

		cfg := validConfig("example.com")
		cfg["signing_algorithm"] = "RS256"
		expectStatus(t, s.adminCall("PUT", "/tenants/"+id+"/config", cfg), 204, "")
		if got := decode[httpapi.TenantDetail](t, s.adminCall("GET", "/tenants/"+id, nil)); got.Config.SigningAlgorithm != signing.RS256 {
			t.Fatalf("config not replaced: %+v", got.Config)
		}

		// The key created with the tenant works on its routes until the tenant is deleted; the
		// tenant's pending ceremony sessions go with it (after the request has answered: the
		// instance's SessionSweeper deletes them), another tenant's stay. Meanwhile they are unusable:
		// the tenant does not resolve.
		expectStatus(t, call(t, s.public, "GET", "/"+id+"/.well-known/jwks.json", nil, "apiKey", secret), 200, "")
		otherID, otherSecret := s.createTenant("example.com")
		for _, c := range []struct{ id, secret string }{{id, secret}, {otherID, otherSecret}} {
			body := map[string]any{"user_id": "alice", "username": "alice"}
			expectStatus(t, call(t, s.public, "POST", "/"+c.id+"/registration/initialize", body, "apiKey", c.secret), 200, "")
			expectStatus(t, call(t, s.public, "POST", "/"+c.id+"/login/initialize", nil), 200, "")
		}
		if n := sessionKeys(t, s, id); n != 2 {
			t.Fatalf("%d sessions before the delete", n)
		}
		expectStatus(t, s.adminCall("DELETE", "/tenants/"+id, nil), 204, "")
		expectStatus(t, call(t, s.public, "POST", "/"+id+"/login/finalize", map[string]any{"id": "x"}), 404, "tenant_not_found")
		for deadline := time.Now().Add(10 * time.Second); sessionKeys(t, s, id) != 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d sessions of the deleted tenant left 10 s after the delete", sessionKeys(t, s, id))
			}
		}
		if other := sessionKeys(t, s, otherID); other != 2 {
			t.Fatalf("sessions of the other tenant after the delete: %d, want 2", other)
		}
		expectStatus(t, s.adminCall("GET", "/tenants/"+id, nil), 404, "tenant_not_found")
		expectStatus(t, s.adminCall("DELETE", "/tenants/"+id, nil), 404, "tenant_not_found")
		expectStatus(t, call(t, s.public, "GET", "/"+id+"/.well-known/jwks.json", nil), 404, "tenant_not_found")
		expectStatus(t, s.adminCall("GET", "/tenants/not-a-uuid", nil), 400, "invalid_tenant_id")
	})
}

func TestTenantConfigValidation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		id, _ := s.createTenant("example.com")
		before := decode[httpapi.TenantDetail](t, s.adminCall("GET", "/tenants/"+id, nil))

		mutate := func(f func(c map[string]any)) map[string]any {
			c := validConfig("example.com")
			f(c)
			return c
		}
		rp := func(c map[string]any) map[string]any {
			return c["webauthn"].(map[string]any)["relying_party"].(map[string]any)
		}
		cases := []struct {
			name string
			body any
			want []string // substrings of details
			code string
		}{
			{"rp id with scheme", mutate(func(c map[string]any) { rp(c)["id"] = "https://example.com" }), []string{"relying_party.id"}, "invalid_config"},
			{"rp id ip", mutate(func(c map[string]any) { rp(c)["id"] = "10.0.0.1" }), []string{"relying_party.id"}, "invalid_config"},
			{"origin on other domain", mutate(func(c map[string]any) { rp(c)["origins"] = []string{"https://evil.com"} }), []string{"not on the relying party id"}, "invalid_config"},
			{"http origin", mutate(func(c map[string]any) { rp(c)["origins"] = []string{"http://example.com"} }), []string{"https"}, "invalid_config"},
			{"origin with path", mutate(func(c map[string]any) { rp(c)["origins"] = []string{"https://example.com/login"} }), []string{"path"}, "invalid_config"},
			{"no origins", mutate(func(c map[string]any) { rp(c)["origins"] = []string{} }), []string{"origins must have at least 1"}, "invalid_config"},
			{"timeout too small", mutate(func(c map[string]any) { c["webauthn"].(map[string]any)["timeout"] = -1 }), []string{"webauthn.timeout"}, "invalid_config"},
			{"bad enum", mutate(func(c map[string]any) { c["webauthn"].(map[string]any)["user_verification"] = "always" }), []string{"user_verification must be one of"}, "invalid_config"},
			{"bad mfa", mutate(func(c map[string]any) { c["mfa"] = map[string]any{"timeout": 60000, "attachment": "usb"} }), []string{"mfa.attachment"}, "invalid_config"},
			{"bad cors", mutate(func(c map[string]any) { c["cors"] = map[string]any{"allowed_origins": []string{"not an origin"}} }), []string{"cors.allowed_origins"}, "invalid_config"},
			{"cors scheme", mutate(func(c map[string]any) {
				c["cors"] = map[string]any{"allowed_origins": []string{"ftp://app.example.com"}}
			}), []string{"cors.allowed_origins"}, "invalid_config"},
			{"cors path", mutate(func(c map[string]any) {
				c["cors"] = map[string]any{"allowed_origins": []string{"https://app.example.com/login"}}
			}), []string{"cors.allowed_origins"}, "invalid_config"},
			{"bad algorithm", mutate(func(c map[string]any) { c["signing_algorithm"] = "HS256" }), []string{"signing_algorithm"}, "invalid_config"},
			{"every problem at once", map[string]any{"webauthn": map[string]any{"timeout": 5}, "cors": map[string]any{"allowed_origins": []string{}}},
				[]string{"relying_party.id is a required field", "display_name is a required field", "origins must have at least 1", "webauthn.timeout", "cors.allowed_origins"}, "invalid_config"},
			{"wrong type", `{"webauthn":{"timeout":"soon"}}`, []string{"Unmarshal type error"}, "invalid_body"},
			{"broken json", `{"webauthn":`, []string{"Syntax error"}, "invalid_body"},
			{"two values", `{} {}`, []string{"exactly one JSON value"}, "invalid_body"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e := expectStatus(t, s.adminCall("PUT", "/tenants/"+id+"/config", c.body), 400, c.code)
				for _, w := range c.want {
					if !strings.Contains(e.Details, w) {
						t.Errorf("details %q lack %q", e.Details, w)
					}
				}
			})
		}
		// Nothing was changed by the rejected calls.
		after := decode[httpapi.TenantDetail](t, s.adminCall("GET", "/tenants/"+id, nil))
		if b, a := mustJSON(t, before.Config), mustJSON(t, after.Config); a != b {
			t.Fatalf("config changed by rejected calls:\n%s\n%s", b, a)
		}

		resp := call(t, s.admin, "PUT", "/tenants/"+id+"/config", "display_name=x", "Authorization", "Bearer "+testToken, "Content-Type", "application/x-www-form-urlencoded")
		expectStatus(t, resp, 415, "unsupported_media_type")
		expectStatus(t, s.adminCall("POST", "/tenants", map[string]any{"display_name": "x"}), 400, "invalid_request")
		expectStatus(t, s.adminCall("POST", "/tenants", map[string]any{"config": validConfig("example.com")}), 400, "invalid_request")
		expectStatus(t, s.adminCall("PUT", "/tenants/"+"00000000-0000-0000-0000-000000000000"+"/config", validConfig("example.com")), 404, "tenant_not_found")
		if list := decode[[]httpapi.TenantSummary](t, s.adminCall("GET", "/tenants", nil)); len(list) != 1 {
			t.Fatalf("a rejected create stored a tenant: %+v", list)
		}
	})
}

// TestCreateTenantWithDefaults: a config that names only its relying party is complete (timeout, CORS
// origins, MFA profile get defaults); a refused create says so and names only what the request had
// wrong, never a field it left out.
func TestCreateTenantWithDefaults(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		rp := map[string]any{"id": "shop.example.com", "display_name": "Shop", "origins": []string{"https://shop.example.com"}}
		resp := s.adminCall("POST", "/tenants", map[string]any{"display_name": "Shop", "config": map[string]any{"webauthn": map[string]any{"relying_party": rp}}})
		expectStatus(t, resp, 201, "")
		id := decode[httpapi.CreateTenantResponse](t, resp).ID.String()
		got := decode[httpapi.TenantDetail](t, s.adminCall("GET", "/tenants/"+id, nil)).Config
		if got.WebAuthn.Timeout != 300_000 || got.MFA == nil || got.MFA.Timeout != 300_000 || len(got.CORS.AllowedOrigins) != 1 || got.CORS.AllowedOrigins[0] != "https://shop.example.com" {
			t.Fatalf("defaults: %+v", got)
		}

		e := expectStatus(t, s.adminCall("POST", "/tenants", map[string]any{"display_name": "Shop",
			"config": map[string]any{"webauthn": map[string]any{"relying_party": rp, "timeout": 5}}}), 400, "invalid_config")
		if e.Title != "unable to create tenant" || e.Details != "webauthn.timeout must be between 10000 and 600000 milliseconds" {
			t.Fatalf("refused create: %+v", e)
		}
		e = expectStatus(t, s.adminCall("POST", "/tenants", map[string]any{"display_name": "Shop"}), 400, "invalid_request")
		if e.Title != "unable to create tenant" {
			t.Fatalf("create without config: %+v", e)
		}
		// PUT config keeps Hanko's title.
		e = expectStatus(t, s.adminCall("PUT", "/tenants/"+id+"/config", map[string]any{"webauthn": map[string]any{"relying_party": rp, "timeout": 5}}), 400, "invalid_config")
		if e.Title != "unable to update tenant config" {
			t.Fatalf("refused update: %+v", e)
		}
	})
}

func TestLocalhostAndWildcardConfigs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		s.createTenant("localhost")
		c := validConfig("login.example.com")
		// A trailing slash is ignored when matching (as Hanko does), so it is accepted; so is a wildcard scheme.
		c["cors"] = map[string]any{"allowed_origins": []string{"https://*.example.com", "*", "https://app.example.com/", "*://b.example.com"}}
		c["webauthn"].(map[string]any)["relying_party"].(map[string]any)["origins"] = []string{"https://login.example.com", "android:apk-key-hash:abc"}
		expectStatus(t, s.adminCall("POST", "/tenants", map[string]any{"display_name": "w", "config": c}), 201, "")
	})
}

func TestMetricsEndpoint(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		id := r.id
		expectStatus(t, call(t, s.public, "GET", "/"+id+"/.well-known/jwks.json", nil), 200, "")
		r.register(authenticatortest.New(authenticatortest.Options{}), "alice")
		expectStatus(t, r.loginFinalize([]byte(`{}`)), 400, "")
		expectStatus(t, call(t, s.admin, "GET", "/metrics", nil), 401, "admin_unauthorized")
		resp := s.adminCall("GET", "/metrics", nil)
		expectStatus(t, resp, 200, "")
		body, _ := io.ReadAll(resp.Body)
		for _, want := range []string{`passkey_http_requests_total{app="public",method="GET",route="/:tenant_id/.well-known/jwks.json",status="200"} 1`, "go_goroutines",
			`passkey_ceremonies_total{kind="registration_final",outcome="succeeded",tenant="` + id + `"} 1`,
			`passkey_ceremonies_total{kind="login_final",outcome="failed",tenant="` + id + `"} 1`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if strings.Contains(string(body), `route="/`+id) {
			t.Error("a raw path (with the tenant id) became a route label")
		}
	})
}
