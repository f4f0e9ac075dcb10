package audit_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/api"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// TestRecorderSQLite records through the Recorder into the database store and reads the events back.
func TestRecorderSQLite(t *testing.T) {
	d := dbtest.SQLite(t)
	_, a, _ := tenants(t, d)
	store := db.NewAuditStore(d)
	rec := audit.NewRecorder(store, discardLog())
	stop := start(t, rec)
	for i := range 450 {
		rec.Record(audit.Event{TenantID: &a, Type: "webauthn_credential_updated", ActorUserID: strings.Repeat("a", i%5+1)})
	}
	flush(t, rec)
	list, total, err := store.List(context.Background(), audit.Filter{TenantID: &a, Page: passkey.Page{Size: 1000}})
	if err != nil || total != 450 || len(list) != 450 {
		t.Fatalf("List = %d events, total %d, %v; want 450", len(list), total, err)
	}
	// Events recorded just before shutdown land too.
	for range 30 {
		rec.Record(audit.Event{TenantID: &a, Type: "webauthn_credential_deleted"})
	}
	stop()
	if _, total, _ := store.List(context.Background(), audit.Filter{TenantID: &a}); total != 480 {
		t.Fatalf("after shutdown: total %d, want 480", total)
	}
}

// tenants makes a tenant service on d with two tenants.
func tenants(t *testing.T, d *db.DB) (*tenant.Service, uuid.UUID, uuid.UUID) {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	sealer, err := signing.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	svc := tenant.NewService(tenant.Options{Store: db.NewTenantStore(d), Sealer: sealer, PublicURL: "http://localhost:8000", Logger: discardLog()})
	var ids []uuid.UUID
	for _, rp := range []string{"a.example.com", "b.example.com"} {
		tn, _, err := svc.Create(context.Background(), tenant.CreateInput{DisplayName: rp, Config: tenantConfig(rp)})
		if err != nil {
			t.Fatalf("create tenant: %v", err)
		}
		ids = append(ids, tn.ID)
	}
	return svc, ids[0], ids[1]
}

func tenantConfig(rpID string) tenant.Config {
	return tenant.Config{
		CORS: tenant.CORSConfig{AllowedOrigins: []string{"https://" + rpID}},
		WebAuthn: tenant.WebAuthnConfig{
			RelyingParty:           tenant.RelyingParty{ID: rpID, DisplayName: rpID, Origins: []string{"https://" + rpID}},
			Timeout:                60000,
			UserVerification:       "preferred",
			AttestationPreference:  "none",
			ResidentKeyRequirement: "required",
		},
		SigningAlgorithm: signing.ES256,
	}
}

// describeAll is describe plus the errors of tenants and queries, as cmd's table has them.
func describeAll(err error) (int, string, string) {
	switch {
	case errors.Is(err, audit.ErrInvalidFilter):
		return 400, "invalid_filter", api.Details(err)
	case errors.Is(err, tenant.ErrInvalidID):
		return 400, "invalid_tenant_id", ""
	case errors.Is(err, tenant.ErrNotFound):
		return 404, "tenant_not_found", ""
	}
	return describe(err)
}

// queryApp is a public and admin app in one: the audit middleware, the tenant middleware, one
// ceremony route and the two audit log endpoints.
func queryApp(svc *tenant.Service, rec *audit.Recorder, h *audit.Handlers) *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		status, code, details := describeAll(err)
		return c.Status(status).JSON(fiber.Map{"title": "error", "details": details, "status": status, "code": code})
	}})
	app.Use(requestid.New())
	app.Use(audit.Middleware(rec, audit.NewRoutes(routes), describeAll))
	app.Get("/tenants/:tenant_id/audit_logs", h.AdminList)
	g := app.Group("/:tenant_id", svc.PathTenant())
	g.Post("/login/finalize", func(c *fiber.Ctx) error {
		audit.SetActor(c, c.Get("X-Test-User"))
		if c.Get("X-Test-Fail") != "" {
			return api.WithDetails(errKnown, "Error validating challenge")
		}
		return c.JSON(fiber.Map{"token": "t"})
	})
	g.Post("/transaction/finalize", func(c *fiber.Ctx) error {
		audit.SetActor(c, "carol")
		audit.SetTransaction(c, "tx-1")
		return c.JSON(fiber.Map{"token": "t"})
	})
	g.Get("/audit_logs", h.PublicList)
	return app
}

type response struct {
	status  int
	headers map[string]string
	list    []map[string]any
	err     map[string]any
}

func get(t *testing.T, app *fiber.App, method, target string, headers ...string) response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, headers: map[string]string{
		"X-Total-Count": resp.Header.Get("X-Total-Count"), "Link": resp.Header.Get("Link"),
	}}
	if resp.StatusCode == 200 && method == "GET" {
		if err := json.Unmarshal(body, &out.list); err != nil {
			t.Fatalf("%s: body %s: %v", target, body, err)
		}
	} else {
		_ = json.Unmarshal(body, &out.err)
	}
	return out
}

func TestHandlers(t *testing.T) {
	d := dbtest.SQLite(t)
	svc, a, b := tenants(t, d)
	store := db.NewAuditStore(d)
	rec := audit.NewRecorder(store, discardLog())
	start(t, rec)
	h := audit.NewHandlers(store, svc, audit.Types(routes, "tenant_created", "api_key_created"))
	app := queryApp(svc, rec, h)

	A, B := "/"+a.String(), "/"+b.String()
	get(t, app, "POST", A+"/login/finalize", "X-Test-User", "alice", "User-Agent", "agent/1", "X-Request-Id", "req-1")
	get(t, app, "POST", A+"/login/finalize", "X-Test-User", "bob", "X-Test-Fail", "1")
	get(t, app, "POST", A+"/transaction/finalize")
	get(t, app, "POST", B+"/login/finalize", "X-Test-User", "alice")
	flush(t, rec)

	t.Run("shape", func(t *testing.T) {
		r := get(t, app, "GET", A+"/audit_logs")
		if r.status != 200 || len(r.list) != 3 || r.headers["X-Total-Count"] != "3" {
			t.Fatalf("status %d, %d entries, headers %v", r.status, len(r.list), r.headers)
		}
		tx, failed, ok := r.list[0], r.list[1], r.list[2]
		if tx["transaction_id"] != "tx-1" || tx["actor_user_id"] != "carol" || tx["ceremony"] != "transaction" {
			t.Errorf("transaction event: %v", tx)
		}
		if failed["type"] != "webauthn_authentication_final_failed" || failed["error"] != "assertion_failed: Error validating challenge" {
			t.Errorf("failed event: %v", failed)
		}
		want := map[string]any{
			"type": "webauthn_authentication_final_succeeded", "meta_http_request_id": "req-1", "meta_source_ip": "0.0.0.0",
			"meta_user_agent": "agent/1", "actor_user_id": "alice", "tenant_id": a.String(), "transaction_id": nil,
			"ceremony": "login",
		}
		for k, v := range want {
			got, present := ok[k]
			if !present || got != v {
				t.Errorf("%s = %v (present %v), want %v", k, got, present, v)
			}
		}
		if _, present := ok["error"]; present {
			t.Errorf("error present on a success: %v", ok)
		}
		for _, k := range []string{"id", "created_at", "updated_at"} {
			if s, _ := ok[k].(string); s == "" {
				t.Errorf("%s missing: %v", k, ok)
			}
		}
		if len(ok) != 11 {
			t.Errorf("success event has %d members, want 11: %v", len(ok), ok)
		}
	})

	t.Run("cross-tenant", func(t *testing.T) {
		r := get(t, app, "GET", B+"/audit_logs?q=bob")
		if r.status != 200 || len(r.list) != 0 {
			t.Errorf("tenant B sees A's events: %v", r.list)
		}
		r = get(t, app, "GET", B+"/audit_logs")
		if len(r.list) != 1 || r.list[0]["tenant_id"] != b.String() {
			t.Errorf("tenant B's events: %v", r.list)
		}
	})

	t.Run("admin", func(t *testing.T) {
		r := get(t, app, "GET", "/tenants/"+a.String()+"/audit_logs?per_page=2&page=2")
		if r.status != 200 || len(r.list) != 1 || r.headers["X-Total-Count"] != "3" {
			t.Fatalf("status %d, %d entries, headers %v", r.status, len(r.list), r.headers)
		}
		if !strings.Contains(r.headers["Link"], `rel="first"`) || !strings.Contains(r.headers["Link"], `rel="prev"`) {
			t.Errorf("Link = %s", r.headers["Link"])
		}
		if r := get(t, app, "GET", "/tenants/"+uuid.NewString()+"/audit_logs"); r.status != 404 {
			t.Errorf("unknown tenant: status %d, want 404", r.status)
		}
		if r := get(t, app, "GET", "/tenants/nope/audit_logs"); r.status != 400 || r.err["code"] != "invalid_tenant_id" {
			t.Errorf("invalid tenant id: %d %v", r.status, r.err)
		}
	})

	t.Run("filters", func(t *testing.T) {
		succ, fail := "webauthn_authentication_final_succeeded", "webauthn_authentication_final_failed"
		tx := "webauthn_transaction_final_succeeded"
		tests := []struct {
			query  string
			status int
			count  int
			detail string
		}{
			{"type=" + succ, 200, 1, ""},
			{"type=" + succ + "&type=" + fail, 200, 2, ""},
			{"type=" + url.QueryEscape(succ+","+fail), 200, 2, ""},
			{"type=" + succ + "," + tx + "&type=" + fail, 200, 3, ""},
			{"type=mfa_authentication_init_succeeded", 200, 0, ""}, // a Hanko type this table does not record
			{"type=tenant_created", 200, 0, ""},
			{"type=nope", 400, 0, `type "nope" is not a known audit log type`},
			{"type=" + url.QueryEscape("' OR 1=1 --"), 400, 0, "not a known audit log type"},
			{"type=" + succ + ",nope", 400, 0, "nope"},
			{"start_time=2000-01-01T00:00:00Z", 200, 3, ""},
			{"start_time=2000-01-01T00:00:00.5%2B02:00&end_time=2999-01-01T00:00:00Z", 200, 3, ""},
			{"end_time=2000-01-01T00:00:00Z", 200, 0, ""},
			{"start_time=yesterday", 400, 0, "start_time must be an RFC 3339 time"},
			{"end_time=2026-01-01", 400, 0, "end_time must be an RFC 3339 time"},
			{"start_time=x&end_time=y&type=z&per_page=q", 400, 0, "start_time"},
			{"actor_user_id=li", 200, 1, ""},
			{"actor_user_id=o", 200, 2, ""},
			{"meta_source_ip=0.0", 200, 3, ""},
			{"meta_source_ip=10.", 200, 0, ""},
			{"q=carol", 200, 1, ""},
			{"q=" + url.QueryEscape("' OR 1=1 --"), 200, 0, ""},
			{"q=%25", 200, 0, ""},
			{"actor_user_id=_", 200, 0, ""},
			{"meta_source_ip=" + url.QueryEscape(`"; DROP TABLE audit_logs; --`), 200, 0, ""},
			{"q=%00", 400, 0, "q must be valid UTF-8"},
			{"actor_user_id=%FF", 400, 0, "actor_user_id must be valid UTF-8"},
			{"q=" + strings.Repeat("x", 300), 400, 0, "q cannot be longer"},
			{"per_page=1001", 400, 0, "per_page"},
		}
		for _, tc := range tests {
			t.Run(tc.query, func(t *testing.T) {
				r := get(t, app, "GET", A+"/audit_logs?"+tc.query)
				if r.status != tc.status {
					t.Fatalf("status %d, want %d (%v)", r.status, tc.status, r.err)
				}
				if tc.status == 200 && len(r.list) != tc.count {
					t.Errorf("%d entries, want %d", len(r.list), tc.count)
				}
				if tc.status == 400 {
					details, _ := r.err["details"].(string)
					if r.err["code"] != "invalid_filter" || !strings.Contains(details, tc.detail) {
						t.Errorf("error %v, want invalid_filter with %q", r.err, tc.detail)
					}
				}
			})
		}
		// The table survived.
		if r := get(t, app, "GET", A+"/audit_logs"); len(r.list) != 3 {
			t.Errorf("%d events after the hostile queries, want 3", len(r.list))
		}
	})

	t.Run("several problems at once", func(t *testing.T) {
		r := get(t, app, "GET", A+"/audit_logs?start_time=x&end_time=y&type=z")
		details, _ := r.err["details"].(string)
		for _, want := range []string{"start_time", "end_time", `"z"`} {
			if !strings.Contains(details, want) {
				t.Errorf("details %q do not mention %s", details, want)
			}
		}
	})

	t.Run("empty list", func(t *testing.T) {
		d2 := dbtest.SQLite(t)
		svc2, c, _ := tenants(t, d2)
		app2 := queryApp(svc2, nil, audit.NewHandlers(db.NewAuditStore(d2), svc2, audit.HankoTypes()))
		req := httptest.NewRequest("GET", "/"+c.String()+"/audit_logs", nil)
		resp, err := app2.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "[]" {
			t.Errorf("empty list: %d %s, want 200 []", resp.StatusCode, body)
		}
	})
}
