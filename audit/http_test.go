package audit_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/api"
	"github.com/passkey-server/passkey-server/audit"
)

// Errors of the test app, and their rows in its error table.
var (
	errKnown  = errors.New("failed to validate assertion")
	errSecret = errors.New("pq: password authentication failed for user admin at db.internal:5432")
)

// describe is the test app's error table, shaped like cmd's classify: it never returns error text.
func describe(err error) (int, string, string) {
	switch {
	case errors.Is(err, errKnown):
		return 401, "assertion_failed", api.Details(err)
	case errors.Is(err, api.ErrInvalidRequest):
		return 400, "invalid_request", api.Details(err)
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return fe.Code, "fiber_error", ""
	}
	return 500, "internal_error", ""
}

// errorHandler writes the JSON error body, like cmd's.
func errorHandler(c *fiber.Ctx, err error) error {
	status, code, details := describe(err)
	return c.Status(status).JSON(fiber.Map{"title": "error", "details": details, "status": status, "code": code})
}

// routes is the test app's route table.
var routes = map[string]audit.Route{
	audit.RouteKey("POST", "/:tenant_id/login/initialize"): {Type: "webauthn_authentication_init", Ceremony: audit.CeremonyLogin},
	audit.RouteKey("POST", "/:tenant_id/login/finalize"):   {Type: "webauthn_authentication_final", Ceremony: audit.CeremonyLogin},
	audit.RouteKey("POST", "/:tenant_id/transaction/finalize"): {
		Type: "webauthn_transaction_final", Ceremony: audit.CeremonyTransaction,
	},
	audit.RouteKey("DELETE", "/:tenant_id/credentials/:credential_id"): {Type: "webauthn_credential_deleted", Plain: true},
	audit.RouteKey("DELETE", "/tenants/:tenant_id"):                    {Type: "tenant_deleted", Global: true},
	audit.RouteKey("POST", "/tenants"):                                 {Type: "tenant_created", Plain: true},
	audit.RouteKey("POST", "/tenants/from-response"):                   {Type: "tenant_created", Plain: true, TenantFromResponse: true},
}

// testApp builds an app with the middleware order of cmd/passkey-server: request id, client address,
// a middleware that renders errors (the access log), the audit middleware, panic recovery. outer puts
// the audit middleware before the error-rendering middleware instead.
func testApp(rec *audit.Recorder, proxies api.TrustedProxies, outer bool) *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: errorHandler})
	app.Use(requestid.New())
	app.Use(proxies.Middleware())
	mw := audit.Middleware(rec, audit.NewRoutes(routes), describe)
	if outer {
		app.Use(mw)
	}
	app.Use(func(c *fiber.Ctx) error { // renders errors, as cmd's access log does
		if err := c.Next(); err != nil {
			return c.App().ErrorHandler(c, err)
		}
		return nil
	})
	if !outer {
		app.Use(mw)
	}
	app.Use(recover.New())

	app.Post("/tenants", func(c *fiber.Ctx) error {
		audit.SetTenant(c, uuid.MustParse("00000000-0000-4000-8000-0000000000aa"))
		return c.SendStatus(201)
	})
	app.Post("/tenants/from-response", func(c *fiber.Ctx) error {
		return c.Status(201).JSON(fiber.Map{"id": "00000000-0000-4000-8000-0000000000bb"})
	})
	app.Delete("/tenants/:tenant_id", func(c *fiber.Ctx) error { return c.SendStatus(204) })
	app.Post("/tenants/:tenant_id/secrets/api", func(c *fiber.Ctx) error {
		id := uuid.MustParse(c.Params("tenant_id"))
		audit.Admin(c, "api_key_created", &id, map[string]any{"name": c.Query("name")})
		return c.SendStatus(201)
	})
	t := app.Group("/:tenant_id")
	t.Post("/login/initialize", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"publicKey": fiber.Map{}})
	})
	t.Post("/login/finalize", func(c *fiber.Ctx) error {
		audit.SetActor(c, c.Get("X-Test-User"))
		switch c.Get("X-Test-Fail") {
		case "known":
			return api.WithDetails(errKnown, "Error validating challenge")
		case "secret":
			return errSecret
		case "panic":
			panic("boom: " + errSecret.Error())
		case "status":
			// An error response written by the handler itself, without returning an error.
			return c.Status(409).JSON(fiber.Map{"code": "conflict", "details": "already done"})
		}
		return c.JSON(fiber.Map{"token": "t"})
	})
	t.Post("/transaction/finalize", func(c *fiber.Ctx) error {
		audit.SetActor(c, "alice")
		audit.SetTransaction(c, c.Get("X-Test-Transaction"))
		return c.JSON(fiber.Map{"token": "t"})
	})
	t.Delete("/credentials/:credential_id", func(c *fiber.Ctx) error {
		if c.Params("credential_id") == "missing" {
			return fiber.ErrNotFound
		}
		return c.SendStatus(204)
	})
	t.Get("/unaudited", func(c *fiber.Ctx) error { return errSecret })
	return app
}

// send makes one request to app and returns the response.
func send(t *testing.T, app *fiber.App, method, path string, headers ...string) (*fiber.Map, int) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m fiber.Map
	_ = json.Unmarshal(body, &m)
	return &m, resp.StatusCode
}

const tenantA = "5b3c6a4e-0f3e-4a52-9a39-8d0b1d7b7c01"

func TestMiddleware(t *testing.T) {
	tenantID := uuid.MustParse(tenantA)
	tests := []struct {
		name    string
		method  string
		path    string
		headers []string
		status  int
		want    *audit.Event // nil: no event
	}{
		{
			name: "ceremony success", method: "POST", path: "/" + tenantA + "/login/initialize",
			headers: []string{"User-Agent", "agent/1.0", "X-Request-Id", "req-1"}, status: 200,
			want: &audit.Event{Type: "webauthn_authentication_init_succeeded", Ceremony: "login", RequestID: "req-1", UserAgent: "agent/1.0"},
		},
		{
			name: "ceremony failure with a known error", method: "POST", path: "/" + tenantA + "/login/finalize",
			headers: []string{"X-Test-Fail", "known", "X-Test-User", "alice"}, status: 401,
			want: &audit.Event{
				Type: "webauthn_authentication_final_failed", Ceremony: "login", ActorUserID: "alice",
				Error: "assertion_failed: Error validating challenge",
			},
		},
		{
			name: "internal error text is never stored", method: "POST", path: "/" + tenantA + "/login/finalize",
			headers: []string{"X-Test-Fail", "secret", "X-Test-User", "bob"}, status: 500,
			want: &audit.Event{Type: "webauthn_authentication_final_failed", Ceremony: "login", ActorUserID: "bob", Error: "internal_error"},
		},
		{
			name: "panic", method: "POST", path: "/" + tenantA + "/login/finalize",
			headers: []string{"X-Test-Fail", "panic"}, status: 500,
			want: &audit.Event{Type: "webauthn_authentication_final_failed", Ceremony: "login", Error: "internal_error"},
		},
		{
			name: "error status without an error", method: "POST", path: "/" + tenantA + "/login/finalize",
			headers: []string{"X-Test-Fail", "status"}, status: 409,
			want: &audit.Event{Type: "webauthn_authentication_final_failed", Ceremony: "login", Error: "conflict: already done"},
		},
		{
			name: "actor and transaction", method: "POST", path: "/" + tenantA + "/transaction/finalize",
			headers: []string{"X-Test-Transaction", "tx-42"}, status: 200,
			want: &audit.Event{Type: "webauthn_transaction_final_succeeded", Ceremony: "transaction", ActorUserID: "alice", TransactionID: "tx-42"},
		},
		{
			name: "plain success", method: "DELETE", path: "/" + tenantA + "/credentials/abc", status: 204,
			want: &audit.Event{Type: "webauthn_credential_deleted", Details: map[string]any{"credential_id": "abc"}},
		},
		{name: "plain failure records nothing", method: "DELETE", path: "/" + tenantA + "/credentials/missing", status: 404},
		{name: "unaudited route", method: "GET", path: "/" + tenantA + "/unaudited", status: 500},
		{name: "unknown route", method: "GET", path: "/" + tenantA + "/nothing", status: 404},
		// Nobody could read an event of no tenant, and clients must not be able to fill the log with them.
		{name: "no tenant records nothing", method: "POST", path: "/not-a-uuid/login/initialize", status: 200},
	}
	for _, outer := range []bool{false, true} {
		name := "inside the error renderer"
		if outer {
			name = "outside the error renderer"
		}
		t.Run(name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					store := &countingStore{}
					rec := audit.NewRecorder(store, discardLog())
					start(t, rec)
					app := testApp(rec, nil, outer)

					body, status := send(t, app, tc.method, tc.path, tc.headers...)
					if status != tc.status {
						t.Fatalf("status = %d, want %d (body %v)", status, tc.status, *body)
					}
					flush(t, rec)
					events, _ := store.snapshot()
					if tc.want == nil {
						if len(events) != 0 {
							t.Fatalf("recorded %+v, want nothing", events)
						}
						return
					}
					if len(events) != 1 {
						t.Fatalf("recorded %d events, want 1: %+v", len(events), events)
					}
					got := events[0]
					want := *tc.want
					if strings.HasPrefix(tc.path, "/"+tenantA) {
						want.TenantID = &tenantID
					}
					if want.RequestID == "" {
						want.RequestID = got.RequestID // generated
					}
					want.ID, want.CreatedAt, want.SourceIP = got.ID, got.CreatedAt, "0.0.0.0"
					if got.RequestID == "" {
						t.Error("no request id")
					}
					mustEqual(t, got, want)
					for _, s := range []string{got.Error, got.UserAgent, got.ActorUserID} {
						if strings.Contains(s, "pq:") || strings.Contains(s, "db.internal") || strings.Contains(s, "boom") {
							t.Errorf("internal error text recorded: %q", s)
						}
					}
					// The error reached the app's error handler, which wrote the body.
					if status >= 400 && status != 409 && (*body)["code"] == nil {
						t.Errorf("error body without code: %v", *body)
					}
				})
			}
		})
	}
}

func TestMiddlewareTenantEvents(t *testing.T) {
	store := &countingStore{}
	rec := audit.NewRecorder(store, discardLog())
	start(t, rec)
	app := testApp(rec, nil, false)

	send(t, app, "POST", "/tenants")
	send(t, app, "POST", "/tenants/"+tenantA+"/secrets/api?name=ci")
	send(t, app, "DELETE", "/tenants/"+tenantA)
	send(t, app, "POST", "/tenants/from-response")
	flush(t, rec)
	events, _ := store.snapshot()
	if len(events) != 4 {
		t.Fatalf("recorded %d events, want 4: %+v", len(events), events)
	}
	created, key, deleted, fromResponse := events[0], events[1], events[2], events[3]
	if fromResponse.TenantID == nil || fromResponse.TenantID.String() != "00000000-0000-4000-8000-0000000000bb" {
		t.Errorf("tenant created, tenant from the response: %+v", fromResponse)
	}
	if created.Type != "tenant_created" || created.TenantID == nil || created.TenantID.String() != "00000000-0000-4000-8000-0000000000aa" {
		t.Errorf("tenant created: %+v (want the tenant SetTenant gave)", created)
	}
	if key.Type != "api_key_created" || key.TenantID == nil || key.TenantID.String() != tenantA || key.Details["name"] != "ci" {
		t.Errorf("api key created: %+v", key)
	}
	// A deleted tenant's events are deleted with it, so its deletion is a deployment-wide event.
	if deleted.Type != "tenant_deleted" || deleted.TenantID != nil || deleted.Details["tenant_id"] != tenantA {
		t.Errorf("tenant deleted: %+v", deleted)
	}
}

// TestMiddlewareClientAddress checks that X-Forwarded-For is believed only from a trusted proxy.
func TestMiddlewareClientAddress(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxies api.TrustedProxies
		want    string
	}{
		{"no trusted proxy", nil, "0.0.0.0"},
		{"trusted proxy", api.TrustedProxies{netip.MustParsePrefix("0.0.0.0/32")}, "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &countingStore{}
			rec := audit.NewRecorder(store, discardLog())
			start(t, rec)
			app := testApp(rec, tc.proxies, false)
			send(t, app, "POST", "/"+tenantA+"/login/initialize", "X-Forwarded-For", "203.0.113.9",
				"User-Agent", strings.Repeat("u", 3000))
			flush(t, rec)
			events, _ := store.snapshot()
			if len(events) != 1 || events[0].SourceIP != tc.want {
				t.Fatalf("events = %+v, want source ip %s", events, tc.want)
			}
			if len(events[0].UserAgent) != 1024 {
				t.Errorf("User-Agent of %d bytes stored, want 1,024", len(events[0].UserAgent))
			}
		})
	}
}

// TestMiddlewareNeverBlocks checks that requests are answered while the store is stuck and the
// buffer full.
func TestMiddlewareNeverBlocks(t *testing.T) {
	store := &countingStore{block: make(chan struct{})}
	defer close(store.block)
	rec := audit.NewRecorder(store, discardLog(), audit.WithBufferSize(1), audit.WithBatchSize(1))
	start(t, rec)
	app := testApp(rec, nil, false)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			if _, status := send(t, app, "POST", "/"+tenantA+"/login/initialize"); status != 200 {
				t.Errorf("status = %d, want 200", status)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("requests blocked on the audit log")
	}
	if rec.Dropped() == 0 {
		t.Error("no event was dropped")
	}
}

func mustEqual(t *testing.T, got, want audit.Event) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("event:\n got %s\nwant %s", g, w)
	}
}
