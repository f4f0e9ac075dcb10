package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/signing"
)

func TestAPIKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		a, aSecret := s.createTenant("a.example.com")
		b, bSecret := s.createTenant("b.example.com")

		resp := s.adminCall("POST", "/tenants/"+a+"/secrets/api", map[string]any{"name": "browser", "kind": "publishable"})
		expectStatus(t, resp, 201, "")
		pk := decode[httpapi.APIKeyDTO](t, resp)
		if !strings.HasPrefix(pk.Secret, "pk_") || len(pk.Secret) < 40 {
			t.Fatalf("publishable key %+v", pk)
		}
		expectStatus(t, s.adminCall("POST", "/tenants/"+a+"/secrets/api", map[string]any{"name": "browser"}), 409, "api_key_name_taken")
		expectStatus(t, s.adminCall("POST", "/tenants/"+a+"/secrets/api", map[string]any{"name": ""}), 400, "invalid_request")
		expectStatus(t, s.adminCall("POST", "/tenants/"+a+"/secrets/api", map[string]any{"name": "x", "kind": "root"}), 400, "invalid_request")
		expectStatus(t, s.adminCall("POST", "/tenants/"+a+"/secrets/api", map[string]any{"name": "x", "expires_at": "2001-01-01T00:00:00Z"}), 400, "invalid_request")

		// Listing never shows a secret, only the hint.
		resp = s.adminCall("GET", "/tenants/"+a+"/secrets/api", nil)
		raw, _ := io.ReadAll(resp.Body)
		if strings.Contains(string(raw), aSecret) || strings.Contains(string(raw), pk.Secret) || strings.Contains(string(raw), `"secret":`) {
			t.Fatalf("list leaks secrets: %s", raw)
		}
		var keys []httpapi.APIKeyDTO
		if err := json.Unmarshal(raw, &keys); err != nil || len(keys) != 2 || keys[1].Hint == "" || !strings.HasPrefix(keys[1].Hint, "pk_") {
			t.Fatalf("list = %s", raw)
		}

		probe := func(path, header, value string) int {
			return call(t, s.public, "GET", path, nil, header, value).StatusCode
		}
		// Every accepted header form, on the right tenant.
		for _, h := range []string{"apiKey", "apikey", "APIKEY", "X-API-KEY", "x-api-key"} {
			if got := probe("/"+a+"/credentials", h, aSecret); got != 200 {
				t.Errorf("header %s: %d", h, got)
			}
		}
		if got := probe("/"+a+"/credentials", "Authorization", "Bearer "+aSecret); got != 200 {
			t.Errorf("bearer: %d", got)
		}
		// Tenant A's key on tenant B's routes, and the reverse.
		expectStatus(t, call(t, s.public, "GET", "/"+b+"/credentials", nil, "apiKey", aSecret), 401, "invalid_api_key")
		expectStatus(t, call(t, s.public, "GET", "/"+a+"/credentials", nil, "apiKey", bSecret), 401, "invalid_api_key")
		expectStatus(t, call(t, s.public, "GET", "/"+a+"/credentials", nil), 401, "api_key_missing")
		expectStatus(t, call(t, s.public, "GET", "/"+a+"/credentials", nil, "apiKey", aSecret+"x"), 401, "invalid_api_key")
		// Publishable keys only where allowed.
		expectStatus(t, call(t, s.public, "GET", "/"+a+"/credentials", nil, "apiKey", pk.Secret), 403, "secret_key_required")
		expectStatus(t, call(t, s.public, "POST", "/credentials/login/initialize", nil, "apiKey", pk.Secret), 200, "")
		// Paths no route matches keep their family's key rule: the credentials and MFA sub-paths need a
		// secret key before a 404 or 405 is given away.
		for _, c := range []struct {
			method, path string
			headers      []string
			status       int
			code         string
		}{
			{"PUT", "/" + a + "/credentials/abc", nil, 401, "api_key_missing"},
			{"GET", "/" + a + "/mfa/login/initialize", nil, 401, "api_key_missing"},
			{"GET", "/" + a + "/credentials/a/b", []string{"apiKey", aSecret}, 404, "not_found"},
			{"POST", "/credentials/foo", []string{"apiKey", pk.Secret}, 403, "secret_key_required"},
			{"GET", "/credentials/foo/bar", []string{"apiKey", aSecret}, 404, "not_found"},
			{"GET", "/transaction/a/b", []string{"apiKey", pk.Secret}, 404, "not_found"},
		} {
			_, resp := send(t, s.public, c.method, c.path, nil, c.headers...)
			expectStatus(t, resp, c.status, c.code)
		}

		// Deleting a key revokes it at once on this instance; a key id of another tenant is not found.
		expectStatus(t, s.adminCall("DELETE", "/tenants/"+b+"/secrets/api/"+pk.ID.String(), nil), 404, "api_key_not_found")
		expectStatus(t, s.adminCall("DELETE", "/tenants/"+a+"/secrets/api/not-a-uuid", nil), 400, "invalid_request")
		expectStatus(t, s.adminCall("DELETE", "/tenants/"+a+"/secrets/api/"+pk.ID.String(), nil), 204, "")
		expectStatus(t, call(t, s.public, "POST", "/credentials/login/initialize", nil, "apiKey", pk.Secret), 401, "invalid_api_key")

		// Last use is recorded in the background, not per request.
		s.svc.keys.Flush(context.Background())
		keys = decode[[]httpapi.APIKeyDTO](t, s.adminCall("GET", "/tenants/"+a+"/secrets/api", nil))
		if len(keys) != 1 || keys[0].LastUsedAt == nil {
			t.Fatalf("last_used_at not recorded: %+v", keys)
		}
	})
}

func TestKeyScopedTenant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		a, aSecret := s.createTenant("a.example.com")
		b, bSecret := s.createTenant("b.example.com")
		ctx := context.Background()
		for secret, want := range map[string]string{aSecret: a, bSecret: b} {
			snap, _, err := s.svc.keys.Authenticate(ctx, secret)
			if err != nil || snap.ID.String() != want {
				t.Fatalf("key of %s resolved to %v, %v", want, snap, err)
			}
			// Over HTTP: the key alone names the tenant; each sees only its own credentials.
			expectStatus(t, call(t, s.public, "GET", "/credentials", nil, "Authorization", "Bearer "+secret), 200, "")
		}
		expectStatus(t, call(t, s.public, "GET", "/credentials", nil, "Authorization", "Bearer sk_unknown"), 401, "invalid_api_key")
		expectStatus(t, call(t, s.public, "GET", "/credentials", nil), 401, "invalid_api_key")
	})
}

func TestCORS(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		id, _ := s.createTenant("example.com")
		preflight := func(origin string) *responseHeaders {
			resp := call(t, s.public, "OPTIONS", "/"+id+"/login/initialize", nil,
				"Origin", origin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,apikey")
			return &responseHeaders{resp.StatusCode, resp.Header.Get}
		}
		h := preflight("https://example.com")
		if h.status != 204 || h.get("Access-Control-Allow-Origin") != "https://example.com" || h.get("Access-Control-Allow-Credentials") != "" ||
			!strings.Contains(h.get("Access-Control-Allow-Headers"), "apikey") || h.get("Access-Control-Max-Age") != "7200" {
			t.Fatalf("allowed preflight: %d %q %q %q", h.status, h.get("Access-Control-Allow-Origin"), h.get("Access-Control-Allow-Headers"), h.get("Access-Control-Max-Age"))
		}
		if h := preflight("https://evil.example.org"); h.status != 204 || h.get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("disallowed preflight allowed: %d %q", h.status, h.get("Access-Control-Allow-Origin"))
		}
		// A real request: headers for the allowed origin, exposure of the pagination headers, and a JSON
		// 404 for an unknown sub-path that the browser can read.
		resp := call(t, s.public, "GET", "/"+id+"/no/such/route", nil, "Origin", "https://example.com")
		expectStatus(t, resp, 404, "not_found")
		if resp.Header.Get("Access-Control-Allow-Origin") != "https://example.com" || resp.Header.Get("Access-Control-Allow-Credentials") != "" ||
			!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Total-Count") ||
			!strings.Contains(resp.Header.Get("Vary"), "Origin") {
			t.Fatalf("cors headers on 404: %v", resp.Header)
		}
		resp = call(t, s.public, "GET", "/"+id+"/.well-known/jwks.json", nil, "Origin", "https://evil.example.org")
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("disallowed origin got cors headers: %v", resp.Header)
		}

		// "*" without allow_unsafe_wildcard: a literal * and no credentials.
		c := validConfig("example.com")
		c["cors"] = map[string]any{"allowed_origins": []string{"*"}}
		expectStatus(t, s.adminCall("PUT", "/tenants/"+id+"/config", c), 204, "")
		h = preflight("https://anything.test")
		if h.get("Access-Control-Allow-Origin") != "*" || h.get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("wildcard: %q %q", h.get("Access-Control-Allow-Origin"), h.get("Access-Control-Allow-Credentials"))
		}
		// allow_unsafe_wildcard (Hanko: reflect the origin, with credentials) changes nothing, and a
		// pattern whose host is all wildcards is "*" too: no origin is reflected with credentials.
		for _, cors := range []map[string]any{
			{"allowed_origins": []string{"*"}, "allow_unsafe_wildcard": true},
			{"allowed_origins": []string{"https://*"}},
			{"allowed_origins": []string{"https://example.com", "*://*"}, "allow_unsafe_wildcard": true},
			{"allowed_origins": []string{"http://*:*"}},
		} {
			c["cors"] = cors
			expectStatus(t, s.adminCall("PUT", "/tenants/"+id+"/config", c), 204, "")
			h := preflight("https://anything.test")
			if h.get("Access-Control-Allow-Origin") != "*" || h.get("Access-Control-Allow-Credentials") != "" {
				t.Fatalf("%v: %q %q", cors, h.get("Access-Control-Allow-Origin"), h.get("Access-Control-Allow-Credentials"))
			}
			resp := call(t, s.public, "POST", "/"+id+"/login/initialize", nil, "Origin", "https://anything.test")
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatalf("%v: real request %v", cors, resp.Header)
			}
		}
		c["cors"] = map[string]any{"allowed_origins": []string{"https://*.example.com"}}
		expectStatus(t, s.adminCall("PUT", "/tenants/"+id+"/config", c), 204, "")
		if h := preflight("https://shop.example.com"); h.get("Access-Control-Allow-Origin") != "https://shop.example.com" || h.get("Access-Control-Allow-Credentials") != "" {
			t.Fatal("pattern origin not allowed, or allowed with credentials")
		}
		if h := preflight("https://example.com.evil.org"); h.get("Access-Control-Allow-Origin") != "" {
			t.Fatal("pattern matched a foreign origin")
		}

		// Tenant errors carry no CORS headers (the tenant, and so its policy, is unknown).
		resp = call(t, s.public, "GET", "/not-a-uuid/.well-known/jwks.json", nil, "Origin", "https://example.com")
		expectStatus(t, resp, 400, "invalid_tenant_id")
	})
}

type responseHeaders struct {
	status int
	get    func(string) string
}

func TestJWKSAndRotation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		id, _ := s.createTenant("example.com")

		// HEAD answers wherever GET does.
		if _, resp := send(t, s.public, "HEAD", "/"+id+"/.well-known/jwks.json", nil); resp.StatusCode != 200 {
			t.Fatalf("HEAD jwks: %d", resp.StatusCode)
		}
		jwks := func() jwk.Set {
			resp := call(t, s.public, "GET", "/"+id+"/.well-known/jwks.json", nil)
			expectStatus(t, resp, 200, "")
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
				t.Fatalf("Cache-Control %q", cc)
			}
			b, _ := io.ReadAll(resp.Body)
			set, err := jwk.Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			return set
		}
		set := jwks()
		if set.Len() != 1 {
			t.Fatalf("%d keys", set.Len())
		}
		k0, _ := set.Key(0)
		if k0.KeyID() == "" || k0.Algorithm().String() != "ES256" {
			t.Fatalf("key %v %v", k0.KeyID(), k0.Algorithm())
		}
		snap, err := s.svc.directory.Resolve(context.Background(), uuidOf(t, id))
		if err != nil {
			t.Fatal(err)
		}
		token, err := snap.Signer.Sign(signing.Claims{Subject: "user-1", Audience: []string{"example.com"}, CredentialID: "cred", Ceremony: "login", Issuer: snap.Issuer, IssuedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}

		// Switch to RS256 and rotate: the new key signs, the old one stays in the JWKS, so the token made
		// before the rotation still verifies.
		cfg := validConfig("example.com")
		cfg["signing_algorithm"] = "RS256"
		expectStatus(t, s.adminCall("PUT", "/tenants/"+id+"/config", cfg), 204, "")
		resp := s.adminCall("POST", "/tenants/"+id+"/signing_keys", map[string]any{"overlap_seconds": 3600})
		expectStatus(t, resp, 201, "")
		next := decode[httpapi.SigningKeyDTO](t, resp)
		if next.Algorithm != signing.RS256 || !next.Active || next.KID == k0.KeyID() {
			t.Fatalf("rotated key %+v", next)
		}
		set = jwks()
		if set.Len() != 2 {
			t.Fatalf("after rotation %d keys", set.Len())
		}
		if first, _ := set.Key(0); first.KeyID() != next.KID {
			t.Fatalf("active key not first: %s", first.KeyID())
		}
		if _, err := jwt.Parse([]byte(token), jwt.WithKeySet(set), jwt.WithAudience("example.com")); err != nil {
			t.Fatalf("token signed before rotation no longer verifies: %v", err)
		}
		keys := decode[[]httpapi.SigningKeyDTO](t, s.adminCall("GET", "/tenants/"+id+"/signing_keys", nil))
		if len(keys) != 2 || !keys[0].Active || keys[1].Active || keys[1].ExpiresAt == nil {
			t.Fatalf("signing keys %+v", keys)
		}
		expectStatus(t, s.adminCall("POST", "/tenants/"+id+"/signing_keys", map[string]any{"overlap_seconds": -5}), 400, "invalid_request")
		expectStatus(t, s.adminCall("POST", "/tenants/00000000-0000-0000-0000-000000000000/signing_keys", nil), 404, "tenant_not_found")

		// A rotation with the default overlap (24 h) keeps both earlier keys in the JWKS.
		expectStatus(t, s.adminCall("POST", "/tenants/"+id+"/signing_keys", nil), 201, "")
		if n := jwks().Len(); n != 3 {
			t.Fatalf("default overlap keeps keys: want 3, got %d", n)
		}
	})
}

// TestInstancesShareState runs two instances on one database: a restart (a new instance) sees the same
// tenants, keys and kids, and a change made through one instance reaches the other at its next refresh.
func TestInstancesShareState(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		sealer := newTestSealer(t)
		one, two := newTestServer(t, d, sealer), newTestServer(t, d, sealer)
		id, secret := one.createTenant("example.com")
		kid := func(s *testServer) string {
			b, _ := io.ReadAll(call(t, s.public, "GET", "/"+id+"/.well-known/jwks.json", nil).Body)
			set, err := jwk.Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			k, _ := set.Key(0)
			return k.KeyID()
		}
		if kid(one) != kid(two) {
			t.Fatal("instances disagree on the kid")
		}
		expectStatus(t, call(t, two.public, "GET", "/"+id+"/credentials", nil, "apiKey", secret), 200, "")

		// Revoke through instance one: instance two still has the key cached until it refreshes.
		keys := decode[[]httpapi.APIKeyDTO](t, one.adminCall("GET", "/tenants/"+id+"/secrets/api", nil))
		expectStatus(t, one.adminCall("DELETE", "/tenants/"+id+"/secrets/api/"+keys[0].ID.String(), nil), 204, "")
		if err := two.svc.directory.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		expectStatus(t, call(t, two.public, "GET", "/"+id+"/credentials", nil, "apiKey", secret), 401, "invalid_api_key")

		// A rotation on one is seen by two after refresh; a restarted instance sees it at once.
		before := kid(two)
		expectStatus(t, one.adminCall("POST", "/tenants/"+id+"/signing_keys", nil), 201, "")
		if err := two.svc.directory.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		after := kid(two)
		if after == before || after != kid(one) || after != kid(newTestServer(t, d, sealer)) {
			t.Fatalf("kid after rotation: before %s, two %s, one %s", before, after, kid(one))
		}
		// Deleting the tenant through one: two answers 404 after refresh.
		expectStatus(t, one.adminCall("DELETE", "/tenants/"+id, nil), 204, "")
		if err := two.svc.directory.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		expectStatus(t, call(t, two.public, "GET", "/"+id+"/.well-known/jwks.json", nil), 404, "tenant_not_found")
	})
}
