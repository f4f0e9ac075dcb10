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
)

// auditLog flushes the recorder and reads a tenant's audit log through the public API.
func (r *rp) auditLog(query string) []audit.Entry {
	r.t.Helper()
	if err := r.s.audit.Flush(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	resp := call(r.t, r.s.public, "GET", "/"+r.id+"/audit_logs"+query, nil, "apiKey", r.secret)
	expectStatus(r.t, resp, 200, "")
	return decode[[]audit.Entry](r.t, resp)
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

		types := map[string]audit.Entry{}
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
		if got := decode[[]audit.Entry](t, resp); len(got) != 1 {
			t.Fatalf("admin audit log: %d entries", len(got))
		}
	})
}

func keysOf(m map[string]audit.Entry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
