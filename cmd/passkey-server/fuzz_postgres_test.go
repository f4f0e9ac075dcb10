package main

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
)

// FuzzTenantConfig sends arbitrary bodies to PUT /tenants/{id}/config. Every answer is a 204 or a 4xx
// with a JSON error, never a 5xx; a refused config leaves the stored tenant exactly as it was; after an
// accepted one the tenant still serves its JWKS and starts a usernameless login. It runs on PostgreSQL,
// the stricter store (no NUL in text, for one).
func FuzzTenantConfig(f *testing.F) {
	d := dbtest.Postgres(f)
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
			var e httpapi.ErrorBody
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

// FuzzTransactionInitialize sends arbitrary bodies to transaction/initialize on PostgreSQL: user ids,
// transaction ids and transaction_data of any shape are a 200 with options or a 4xx, never a 5xx
// (the data is canonicalized and stored as text, the ids in text columns).
func FuzzTransactionInitialize(f *testing.F) {
	s := newTestServer(f, dbtest.Postgres(f), newTestSealer(f))
	r := newRP(f, s, "example.com")
	r.register(authenticatortest.New(authenticatortest.Options{}), "fuzz-user-0")
	for _, seed := range []string{
		`{"user_id":"fuzz-user-0","transaction_id":"t-1","transaction_data":{"amount":"100.00","currency":"EUR"}}`,
		`{"user_id":"fuzz-user-0","transaction_id":"t-2","transaction_data":{"n":123456789012345678901234567890,"f":1.0e-7,"s":"\u0000\ud83d\ude00"}}`,
		`{"user_id":"fuzz-user-0","transaction_id":"t-3","transaction_data":{"a":{"b":[1,2,{"c":null}]},"a ":true}}`,
		`{"user_id":"fuzz-user-0","transaction_id":"t-4","transaction_data":{"x":"\ud800"}}`,
		`{"user_id":"fuzz-user-0","transaction_id":"t-5","transaction_data":[1]}`,
		`{"user_id":"nobody","transaction_id":"t-6","transaction_data":{}}`,
		`{"user_id":"fuzz-user-0","transaction_id":"","transaction_data":{"a":1}}`,
		`{"user_id":"fuzz-user-0","transaction_id":"t-1","transaction_data":{"a":1,"a":2}}`,
		"{}", "", "null", "\xff",
	} {
		f.Add([]byte(seed))
	}
	path := "/" + r.id + "/transaction/initialize"
	f.Fuzz(func(t *testing.T, body []byte) {
		req, resp := send(t, r.s.public, "POST", path, body, r.keyHeaders(true)...)
		checkAnswer(t, r, body, req, resp)
	})
}

// FuzzAuditLogs sends arbitrary filter values to the tenant's and the admin audit log queries on
// PostgreSQL: every answer is a 200 with a list or a 400 invalid_filter / invalid_request, never a 5xx.
// The log holds real events (a registration and a login), so the filters reach the SQL.
func FuzzAuditLogs(f *testing.F) {
	s := newTestServer(f, dbtest.Postgres(f), newTestSealer(f))
	r := newRP(f, s, "example.com")
	key := authenticatortest.New(authenticatortest.Options{})
	r.register(key, "fuzz-user-0")
	r.login(key, "")
	if err := s.audit.Flush(f.Context()); err != nil {
		f.Fatal(err)
	}
	f.Add("login_succeeded", "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z", "fuzz-user-0", "127.0.0.1", "fuzz", "1", "20")
	f.Add("login_succeeded,registration_succeeded", "", "", "", "", "", "", "")
	f.Add("nonsense", "yesterday", "2026-13-01T00:00:00Z", "%", "_", `\`, "0", "-1")
	f.Add("", "2026-01-01T00:00:00+14:00", "", "\x00", "\xff", "' OR 1=1 --", "99999999999999999999", "1001")
	paths := []struct {
		app     *fiber.App
		path    string
		headers []string
	}{
		{s.public, "/" + r.id + "/audit_logs", []string{"apiKey", r.secret}},
		{s.admin, "/tenants/" + r.id + "/audit_logs", []string{"Authorization", "Bearer " + testToken}},
		{s.admin, "/audit_logs", []string{"Authorization", "Bearer " + testToken}},
	}
	f.Fuzz(func(t *testing.T, typ, start, end, actor, ip, q, page, perPage string) {
		query := url.Values{}
		for name, v := range map[string]string{"type": typ, "start_time": start, "end_time": end, "actor_user_id": actor,
			"meta_source_ip": ip, "q": q, "page": page, "per_page": perPage} {
			if v != "" {
				query.Set(name, v)
			}
		}
		for _, p := range paths {
			resp := call(t, p.app, "GET", p.path+"?"+query.Encode(), nil, p.headers...)
			answer := readAll(t, resp)
			switch resp.StatusCode {
			case 200:
				var list []json.RawMessage
				if err := json.Unmarshal(answer, &list); err != nil {
					t.Fatalf("%s?%s: 200 without a list: %s", p.path, query.Encode(), answer)
				}
			case 400:
				var e httpapi.ErrorBody
				if err := json.Unmarshal(answer, &e); err != nil || (e.Code != "invalid_filter" && e.Code != "invalid_request") {
					t.Fatalf("%s?%s: 400 %s", p.path, query.Encode(), answer)
				}
			default:
				t.Fatalf("%s?%s: status %d: %s\nserver log:\n%s", p.path, query.Encode(), resp.StatusCode, answer, s.logs)
			}
		}
	})
}
