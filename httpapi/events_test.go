package httpapi

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/tenant"
)

// sink collects events.
type sink struct {
	mu     sync.Mutex
	events []passkey.Event
}

func (s *sink) Emit(_ context.Context, e passkey.Event) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *sink) all() []passkey.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]passkey.Event(nil), s.events...)
}

// TestRequestContext checks what events learn of their request: the request id, the client address
// (X-Forwarded-For only from a trusted proxy) and the first 1,024 bytes of the User-Agent.
func TestRequestContext(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxies TrustedProxies
		want    string
	}{
		{"no trusted proxy", nil, "0.0.0.0"},
		{"trusted proxy", TrustedProxies{netip.MustParsePrefix("0.0.0.0/32")}, "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := &sink{}
			bus := passkey.NewBus(events)
			s := newServer(Services{Events: bus}, Options{Proxies: tc.proxies})
			app := s.newFiberApp("test")
			app.Post("/emit", func(c *fiber.Ctx) error {
				bus.Emit(c.UserContext(), passkey.Event{Type: passkey.CredentialDeleted})
				return c.SendStatus(204)
			})
			req := httptest.NewRequest("POST", "/emit", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("User-Agent", strings.Repeat("u", 3000))
			resp, err := app.Test(req, -1)
			if err != nil || resp.StatusCode != 204 {
				t.Fatalf("%v, %v", resp, err)
			}
			got := events.all()
			if len(got) != 1 {
				t.Fatalf("%d events", len(got))
			}
			r := got[0].Request
			if r.SourceIP != tc.want || len(r.UserAgent) != 1024 || r.ID == "" || r.ID != resp.Header.Get("X-Request-Id") {
				t.Fatalf("request %+v, want source ip %s, a 1,024-byte User-Agent and the request id", r, tc.want)
			}
		})
	}
}

// TestRefusedStep checks that a ceremony step refused before its service emitted anything gets its
// failure event from the transport, with the code the client was told (a panic is an internal_error),
// that a step whose service emitted gets no second event, and that a request whose tenant was never
// resolved records nothing.
func TestRefusedStep(t *testing.T) {
	events := &sink{}
	bus := passkey.NewBus(events)
	s := newServer(Services{Events: bus}, Options{BodyLimit: 4096})
	app := s.newFiberApp("test")
	step := s.refusedStep(credentials.Login, passkey.StepInitialize)
	snap := &tenant.Snapshot{Tenant: tenant.Tenant{ID: uuid.MustParse("7d4b4c52-1b8d-4c1e-9d52-2c2b3f8a1e11")}}
	resolved := func(c *fiber.Ctx) error { c.Locals(snapshotLocal, snap); return c.Next() }
	app.Post("/refused", step, resolved, func(c *fiber.Ctx) error { return tenant.ErrAPIKeyMissing })
	app.Post("/fiber", step, resolved, func(c *fiber.Ctx) error { return fiber.ErrRequestEntityTooLarge })
	app.Post("/panic", step, resolved, func(c *fiber.Ctx) error { panic("a bug") })
	app.Post("/served", step, resolved, func(c *fiber.Ctx) error {
		bus.Emit(c.UserContext(), passkey.Event{Type: passkey.CeremonyStartFailed, Ceremony: "login", Err: credentials.ErrUserNotFound})
		return credentials.ErrUserNotFound
	})
	app.Post("/unresolved", step, func(c *fiber.Ctx) error { return tenant.ErrNotFound })
	for _, path := range []string{"refused", "fiber", "panic", "served", "unresolved"} {
		if _, err := app.Test(httptest.NewRequest("POST", "/"+path, nil), -1); err != nil {
			t.Fatal(err)
		}
	}
	got := events.all()
	if len(got) != 4 {
		t.Fatalf("%d events, want 4: %+v", len(got), got)
	}
	for i, want := range []string{"api_key_missing", "body_too_large", passkey.CodeInternal, "user_not_found"} {
		e := got[i]
		if e.Type != passkey.CeremonyStartFailed || e.Ceremony != "login" || passkey.ErrorCode(e.Err) != want {
			t.Errorf("event %d: %+v (code %s), want a login start failure with %s", i, e, passkey.ErrorCode(e.Err), want)
		}
		if i < 3 && (e.TenantID != snap.ID || e.Step != passkey.StepInitialize) {
			t.Errorf("event %d: tenant %s step %q", i, e.TenantID, e.Step)
		}
	}
	if !errors.Is(got[0].Err, tenant.ErrAPIKeyMissing) {
		t.Errorf("the refusal's error is not the one returned: %v", got[0].Err)
	}
}
