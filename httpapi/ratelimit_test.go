package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/passkey-server/passkey-server/ratelimit"
)

// newRateLimitApp builds an app from the constructor the servers use (so with the real error
// handler), with mws in front of a handler that answers 200, or the error errLookupRefused for the
// path /refused.
func newRateLimitApp(mws ...fiber.Handler) *fiber.App {
	s := newServer(Services{}, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	app := s.newFiberApp("ratelimit")
	for _, mw := range mws {
		app.Use(mw)
	}
	app.Get("/refused", func(*fiber.Ctx) error { return errLookupRefused })
	app.Get("/*", func(c *fiber.Ctx) error { return c.SendString("ok") })
	return app
}

// errLookupRefused stands for a refused lookup (an unknown tenant or key); the error handler answers
// it 500, which is all the tests need to tell it from 200 and 429.
var errLookupRefused = errors.New("lookup refused")

// keysFromHeaders gives the dimensions of a test request from its headers.
func keysFromHeaders(c *fiber.Ctx) ratelimit.Keys {
	return ratelimit.Keys{Tenant: c.Get("X-Tenant"), IP: c.Get("X-Client-IP"), APIKey: c.Get("X-Key")}
}

// getFrom sends GET path with the given X-Client-IP and X-Tenant headers.
func getFrom(t *testing.T, app *fiber.App, path, ip, tenantID string) *http.Response {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("X-Client-IP", ip)
	req.Header.Set("X-Tenant", tenantID)
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestLimitRequests checks the headers and the 429 of the rate limit middleware: X-RateLimit-Remaining
// on every checked request, Retry-After and the rate_limited error once the limit is exhausted, and no
// header when nothing was checked (ratelimit's tests cover the store failing, which checks nothing too).
func TestLimitRequests(t *testing.T) {
	l := ratelimit.NewMemory(ratelimit.Rules{Limits: ratelimit.Limits{PerIP: ratelimit.PerMinute(3)}}, 0)
	app := newRateLimitApp(limitRequests(l, keysFromHeaders))
	for i, want := range []string{"2", "1", "0"} {
		resp := getFrom(t, app, "/", "192.0.2.1", "t1")
		if resp.StatusCode != 200 || resp.Header.Get(headerRateLimitRemaining) != want || resp.Header.Get(fiber.HeaderRetryAfter) != "" {
			t.Fatalf("request %d: status %d, remaining %q, Retry-After %q; want 200, %s, none", i+1, resp.StatusCode,
				resp.Header.Get(headerRateLimitRemaining), want, resp.Header.Get(fiber.HeaderRetryAfter))
		}
	}
	resp := getFrom(t, app, "/", "192.0.2.1", "t1")
	e := errorBody(t, resp, 429, "rate_limited")
	retry, err := strconv.Atoi(resp.Header.Get(fiber.HeaderRetryAfter))
	if err != nil || retry < 1 || retry > 20 { // 1 request per 20 s
		t.Errorf("Retry-After %q, want 1..20 seconds", resp.Header.Get(fiber.HeaderRetryAfter))
	}
	if want := "too many requests, retry after " + strconv.Itoa(retry) + " seconds"; e.Details != want {
		t.Errorf("details %q, want %q", e.Details, want)
	}
	if got := resp.Header.Get(headerRateLimitRemaining); got != "0" {
		t.Errorf("remaining %q on 429, want 0", got)
	}

	// Another client has its own budget.
	if resp := getFrom(t, app, "/", "192.0.2.2", "t1"); resp.StatusCode != 200 || resp.Header.Get(headerRateLimitRemaining) != "2" {
		t.Errorf("another client: status %d, remaining %q; want 200, 2", resp.StatusCode, resp.Header.Get(headerRateLimitRemaining))
	}
	// No client IP, and no tenant or key limits: nothing checked, no header.
	if resp := getFrom(t, app, "/", "", "t1"); resp.StatusCode != 200 || resp.Header.Get(headerRateLimitRemaining) != "" {
		t.Errorf("no dimension: status %d, remaining %q; want 200 and no header", resp.StatusCode, resp.Header.Get(headerRateLimitRemaining))
	}
	// Without a limiter everything goes through, without the header.
	open := newRateLimitApp(limitRequests(nil, keysFromHeaders))
	for range 5 {
		if resp := getFrom(t, open, "/", "192.0.2.1", "t1"); resp.StatusCode != 200 || resp.Header.Get(headerRateLimitRemaining) != "" {
			t.Fatalf("no limiter: status %d, remaining %q; want 200 and no header", resp.StatusCode, resp.Header.Get(headerRateLimitRemaining))
		}
	}
}

// TestLimitRefusals checks that only refused requests use up a client's budget: accepted ones are never
// counted, a client over the budget gets 429 with Retry-After before its request reaches the lookup,
// and another client is unaffected.
func TestLimitRefusals(t *testing.T) {
	l := ratelimit.NewMemory(ratelimit.Rules{Limits: ratelimit.Limits{PerIP: ratelimit.PerMinute(3)}}, 0)
	lookups := 0
	lookup := func(c *fiber.Ctx) error { lookups++; return c.Next() }
	mw := limitRefusals(l, func(c *fiber.Ctx) string { return c.Get("X-Client-IP") },
		func(err error) bool { return errors.Is(err, errLookupRefused) })
	app := newRateLimitApp(mw, lookup)
	for i := range 10 {
		if st := getFrom(t, app, "/known", "192.0.2.1", "").StatusCode; st != 200 {
			t.Fatalf("accepted request %d: %d", i, st)
		}
	}
	for i := range 3 {
		if st := getFrom(t, app, "/refused", "192.0.2.1", "").StatusCode; st != 500 {
			t.Fatalf("refused request %d within the budget: %d", i, st)
		}
	}
	before := lookups
	resp := getFrom(t, app, "/refused", "192.0.2.1", "")
	e := errorBody(t, resp, 429, "rate_limited")
	if got := resp.Header.Get(fiber.HeaderRetryAfter); got != "20" { // one of 3 per minute comes back after 20 s
		t.Errorf("Retry-After %q, want 20", got)
	}
	if got := resp.Header.Get(headerRateLimitRemaining); got != "0" {
		t.Errorf("remaining %q on 429, want 0", got)
	}
	if want := "too many refused requests, retry after 20 seconds"; e.Details != want {
		t.Errorf("details %q, want %q", e.Details, want)
	}
	if st := getFrom(t, app, "/known", "192.0.2.1", "").StatusCode; st != 429 {
		t.Fatalf("over the budget, even a known tenant waits: %d, want 429", st)
	}
	if lookups != before {
		t.Error("a request over the budget reached the lookup")
	}
	if st := getFrom(t, app, "/refused", "192.0.2.2", "").StatusCode; st != 500 {
		t.Fatalf("another client: %d, want 500 (the lookup's refusal)", st)
	}

	// Without a per-IP limit there is no budget.
	free := newRateLimitApp(limitRefusals(ratelimit.NewMemory(ratelimit.Rules{}, 0), func(c *fiber.Ctx) string { return c.Get("X-Client-IP") },
		func(err error) bool { return errors.Is(err, errLookupRefused) }))
	for i := range 5 {
		if st := getFrom(t, free, "/refused", "192.0.2.1", "").StatusCode; st != 500 {
			t.Fatalf("no per-IP limit, refused request %d: %d, want 500", i, st)
		}
	}
}
