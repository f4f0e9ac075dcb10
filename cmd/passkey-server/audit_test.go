package main

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
)

// auditLog flushes the recorder and reads a tenant's audit log through the public API.
func (r *rp) auditLog(query string) []httpapi.AuditEntry {
	r.t.Helper()
	if err := r.s.audit.Flush(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	resp := call(r.t, r.s.public, "GET", "/"+r.id+"/audit_logs"+query, nil, "apiKey", r.secret)
	expectStatus(r.t, resp, 200, "")
	return decode[[]httpapi.AuditEntry](r.t, resp)
}

func TestAuditLog(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r, other := newRP(t, s, "example.com"), newRP(t, s, "example.com")
		key := authenticatortest.New(authenticatortest.Options{})
		_, credID := r.register(key, "alice")
		r.login(key, "alice")
		bad, err := key.GetWith(r.loginOptions(""), testOrigin, authenticatortest.Tamper{Origin: "https://evil.example.org"})
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, r.loginFinalize(bad), 401, "assertion_failed")
		expectStatus(t, call(t, s.public, "PATCH", "/"+r.id+"/credentials/"+credID, map[string]any{"name": "Laptop"}, "apiKey", r.secret), 204, "")
		options := r.txInit("alice", "pay-1", `{"amount":"1.00"}`)
		assertion, _ := key.Get(options, testOrigin)
		expectStatus(t, r.post("/"+r.id+"/transaction/finalize", assertion, true), 200, "")
		expectStatus(t, s.adminCall("POST", "/tenants/"+r.id+"/signing_keys", nil), 201, "")
		expectStatus(t, call(t, s.public, "DELETE", "/"+r.id+"/credentials/"+credID, nil, "apiKey", r.secret), 204, "")

		types := map[string]httpapi.AuditEntry{}
		for _, e := range r.auditLog("?per_page=100") {
			types[e.Type] = e
			if e.TenantID == nil || e.TenantID.String() != r.id || e.RequestID == "" || e.SourceIP == "" {
				t.Fatalf("entry without its fields: %+v", e)
			}
		}
		for _, want := range []string{"webauthn_registration_init_succeeded", "webauthn_registration_final_succeeded",
			"webauthn_authentication_init_succeeded", "webauthn_authentication_final_succeeded", "webauthn_authentication_final_failed",
			"webauthn_credential_updated", "webauthn_credential_deleted", "webauthn_transaction_init_succeeded",
			"webauthn_transaction_final_succeeded", "tenant_created", "signing_key_rotated"} {
			if _, ok := types[want]; !ok {
				t.Errorf("no %s event; have %v", want, keysOf(types))
			}
		}
		if e := types["webauthn_authentication_final_failed"]; !strings.HasPrefix(e.Error, "assertion_failed") || e.Ceremony != "login" {
			t.Errorf("failure event %+v", e)
		}
		if e := types["webauthn_registration_final_succeeded"]; e.ActorUserID != "alice" {
			t.Errorf("registration actor %q", e.ActorUserID)
		}
		if e := types["webauthn_transaction_final_succeeded"]; e.TransactionID == nil || *e.TransactionID != "pay-1" || e.ActorUserID != "alice" {
			t.Errorf("transaction event %+v", e)
		}

		// Filters: type (repeated and comma-separated), actor, time; SQL metacharacters are literal.
		if got := r.auditLog("?type=webauthn_credential_updated,webauthn_credential_deleted"); len(got) != 2 {
			t.Errorf("comma-separated types: %d", len(got))
		}
		if got := r.auditLog("?type=webauthn_credential_updated&type=tenant_created"); len(got) != 2 {
			t.Errorf("repeated types: %d", len(got))
		}
		if got := r.auditLog("?actor_user_id=lic"); len(got) == 0 {
			t.Error("actor substring found nothing")
		}
		for _, evil := range []string{"' OR 1=1 --", "%", "_", `\`, `"; DROP TABLE audit_logs; --`} {
			if got := r.auditLog("?actor_user_id=" + url.QueryEscape(evil) + "&q=" + url.QueryEscape(evil) + "&meta_source_ip=" + url.QueryEscape(evil)); len(got) != 0 {
				t.Errorf("filter %q matched %d events", evil, len(got))
			}
		}
		if got := r.auditLog("?start_time=2999-01-01T00:00:00Z"); len(got) != 0 {
			t.Errorf("future start_time: %d", len(got))
		}
		expectStatus(t, call(t, s.public, "GET", "/"+r.id+"/audit_logs?type=nonsense", nil, "apiKey", r.secret), 400, "invalid_filter")
		expectStatus(t, call(t, s.public, "GET", "/"+r.id+"/audit_logs?start_time=yesterday", nil, "apiKey", r.secret), 400, "invalid_filter")
		expectStatus(t, call(t, s.public, "GET", "/"+r.id+"/audit_logs", nil), 401, "api_key_missing")

		// Tenants see only their own events; the admin API sees the same log.
		for _, e := range other.auditLog("?per_page=100") {
			if e.TenantID.String() != other.id {
				t.Fatalf("tenant B sees %+v", e)
			}
		}
		resp := s.adminCall("GET", "/tenants/"+r.id+"/audit_logs?type=signing_key_rotated", nil)
		if got := decode[[]httpapi.AuditEntry](t, resp); len(got) != 1 {
			t.Fatalf("admin audit log: %d entries", len(got))
		}
	})
}

func keysOf(m map[string]httpapi.AuditEntry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestAuditEveryEventType drives every audited route of the real route table, on both route families,
// once to success and once to failure, and checks that every type the table can record appears with
// its fields: ceremony, error code, actor, transaction, and what an admin or credential change acted
// on. Failures that a group middleware answers before the route runs (a missing or publishable key on
// an MFA route) are recorded too.
func TestAuditEveryEventType(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		seen := map[string]httpapi.AuditEntry{}
		eachFamily(t, s, "example.com", func(t *testing.T, r *rp) {
			resp := s.adminCall("POST", "/tenants/"+r.id+"/secrets/api", map[string]any{"name": "web", "kind": "publishable"})
			pk := decode[httpapi.APIKeyDTO](t, resp).Secret
			key := authenticatortest.New(authenticatortest.Options{})
			roaming := authenticatortest.New(authenticatortest.Options{})
			garbage := []byte(`{"type":"public-key"}`)

			_, credID := r.register(key, "alice")
			expectStatus(t, r.post(r.path("/registration/initialize", "/credentials/register/initialize"), map[string]any{"user_id": "bob"}, true), 400, "invalid_request")
			expectStatus(t, r.registrationFinalize(garbage), 400, "invalid_credential_response")
			r.login(key, "alice")
			expectStatus(t, r.post(r.path("/login/initialize", "/credentials/login/initialize"), map[string]any{"user_id": "nobody"}, true), 404, "user_not_found")
			expectStatus(t, r.loginFinalize(garbage), 400, "invalid_credential_response")

			r.mfaRegister(roaming, "alice")
			assertion, err := roaming.Get(r.mfaLoginOptions("alice"), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.post(r.mfaPath("/login/finalize", "/login/finalize"), assertion, true), 200, "")
			// MFA routes need a secret key; the group middleware refuses before the route runs.
			noKey := []string{}
			status, code := 401, "api_key_missing"
			if r.keyScoped {
				noKey, status, code = []string{"Authorization", "Bearer " + pk}, 403, "secret_key_required"
			}
			for _, p := range []string{r.mfaPath("/registration/initialize", "/register/initialize"), r.mfaPath("/registration/finalize", "/register/finalize"),
				r.mfaPath("/login/initialize", "/login/initialize"), r.mfaPath("/login/finalize", "/login/finalize")} {
				expectStatus(t, call(t, s.public, "POST", p, map[string]any{"user_id": "alice", "username": "alice"}, noKey...), status, code)
			}

			options := r.txInit("alice", "pay-1", `{"amount":"1.00"}`)
			assertion, err = key.Get(options, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.post(r.txPath("/finalize"), assertion, true), 200, "")
			expectStatus(t, r.post(r.txPath("/initialize"), `{"user_id":"alice","transaction_id":"pay-1","transaction_data":{"a":1}}`, true), 409, "transaction_exists")
			expectStatus(t, r.post(r.txPath("/finalize"), assertion, true), 401, "transaction_not_found")

			credPath := r.path("/credentials/"+credID, "/credentials/"+credID)
			expectStatus(t, call(t, s.public, "PATCH", credPath, map[string]any{"name": "Laptop"}, r.keyHeaders(true)...), 204, "")
			expectStatus(t, call(t, s.public, "DELETE", credPath, nil, r.keyHeaders(true)...), 204, "")

			entries := r.auditLog("?per_page=200")
			for _, e := range entries {
				if e.TenantID == nil || e.TenantID.String() != r.id || e.RequestID == "" || e.SourceIP == "" {
					t.Fatalf("entry without its fields: %+v", e)
				}
				if strings.HasSuffix(e.Type, audit.SuffixFailed) && e.Error == "" {
					t.Errorf("failure without its error: %+v", e)
				}
				if _, ok := seen[e.Type]; !ok || e.ActorUserID != "" {
					seen[e.Type] = e
				}
			}
			for _, e := range entries {
				switch e.Type {
				case "mfa_registration_init_failed", "mfa_authentication_final_failed":
					if !strings.HasPrefix(e.Error, code) {
						t.Errorf("%s: error %q, want %s", e.Type, e.Error, code)
					}
				case "webauthn_credential_updated", "webauthn_credential_deleted":
					if e.ActorUserID != "alice" || e.Details["credential_id"] != credID {
						t.Errorf("%s: actor %q details %v", e.Type, e.ActorUserID, e.Details)
					}
				case "webauthn_transaction_init_failed":
					if e.TransactionID == nil || *e.TransactionID != "pay-1" || !strings.HasPrefix(e.Error, "transaction_exists") {
						t.Errorf("%+v", e)
					}
				}
			}
		})

		// Admin changes.
		r := newRP(t, s, "example.com")
		expectStatus(t, s.adminCall("PUT", "/tenants/"+r.id, map[string]any{"display_name": "Renamed"}), 204, "")
		expectStatus(t, s.adminCall("PUT", "/tenants/"+r.id+"/config", validConfig("example.com")), 204, "")
		k := decode[httpapi.APIKeyDTO](t, s.adminCall("POST", "/tenants/"+r.id+"/secrets/api", map[string]any{"name": "second"}))
		expectStatus(t, s.adminCall("DELETE", "/tenants/"+r.id+"/secrets/api/"+k.ID.String(), nil), 204, "")
		kid := decode[map[string]any](t, s.adminCall("POST", "/tenants/"+r.id+"/signing_keys", nil))["kid"]
		r.register(authenticatortest.New(authenticatortest.Options{}), "carol/x")
		dump := ndjsonCall(s, "GET", "/tenants/"+r.id+"/export", nil)
		ndjsonCall(s, "POST", "/tenants/"+r.id+"/import?on_conflict=skip", dump)
		expectStatus(t, s.adminCall("DELETE", "/tenants/"+r.id+"/users/"+url.PathEscape("carol/x"), nil), 204, "")
		for _, e := range r.auditLog("?per_page=200") {
			seen[e.Type] = e
		}
		want := map[string]map[string]any{
			"api_key_created":     {"api_key_id": k.ID.String(), "name": "second", "kind": "secret"},
			"api_key_deleted":     {"secret_id": k.ID.String()},
			"signing_key_rotated": {"kid": kid, "algorithm": "ES256"},
			"user_deleted":        {"user_id": "carol/x"}, // decoded, as the handler reads it
			"tenant_imported":     {"on_conflict": "skip", "tenant": "unchanged", "users": "0 created, 0 replaced, 1 skipped"},
		}
		for typ, details := range want {
			for k, v := range details {
				if got := seen[typ].Details[k]; got != v {
					t.Errorf("%s: details[%s] = %v, want %v (%v)", typ, k, got, v, seen[typ].Details)
				}
			}
		}
		for _, e := range seen {
			if strings.Contains(mustJSON(t, e), k.Secret) || strings.Contains(mustJSON(t, e), r.secret) {
				t.Fatalf("an audit entry holds an API key: %+v", e)
			}
		}

		// The deletion of a tenant is a deployment-wide event, listed by GET /audit_logs.
		expectStatus(t, s.adminCall("DELETE", "/tenants/"+r.id, nil), 204, "")
		if err := s.audit.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, e := range decode[[]httpapi.AuditEntry](t, s.adminCall("GET", "/audit_logs?type=tenant_deleted", nil)) {
			if e.Details["tenant_id"] == r.id && e.TenantID == nil {
				seen[e.Type] = e
			}
		}
		expectStatus(t, s.adminCall("GET", "/audit_logs?type=nonsense", nil), 400, "invalid_filter")

		for _, typ := range audit.Types() {
			if typ == "authenticator_status_changed" {
				continue // needs FIDO metadata that revokes a model: TestAttestationRevokedAtLogin records it
			}
			if typ == "webhook_endpoint_disabled" {
				continue // needs a webhook receiver that answers 410: TestWebhookDeliveryPolicy records it
			}
			if _, ok := seen[typ]; !ok {
				t.Errorf("no %s event was recorded", typ)
			}
		}
	})
}
