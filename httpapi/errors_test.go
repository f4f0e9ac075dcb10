package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
)

// TestErrorHandler checks the one error handler: every error is a JSON body with the request id, an
// unknown error is a 500 whose cause is logged and never sent, and Fiber's own errors have codes.
func TestErrorHandler(t *testing.T) {
	var logged bytes.Buffer
	s := newServer(Services{}, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil)), BodyLimit: 4096})
	app := s.newFiberApp("errors")
	app.Get("/panic", func(c *fiber.Ctx) error { panic("secret internal state sk_live_123") })
	app.Get("/internal", func(c *fiber.Ctx) error {
		return errors.New("pq: password authentication failed for user postgres")
	})
	app.Post("/echo", func(c *fiber.Ctx) error { return c.SendStatus(204) })

	cases := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"panic", "GET", "/panic", 500, "internal_error"},
		{"internal error", "GET", "/internal", 500, "internal_error"},
		{"unknown route", "GET", "/nope", 404, "not_found"},
		{"wrong method", "DELETE", "/echo", 405, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := app.Test(httptest.NewRequest(c.method, c.path, nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			e := errorBody(t, resp, c.status, c.code)
			if e.RequestID == "" || e.RequestID != resp.Header.Get("X-Request-Id") {
				t.Fatalf("request id %q vs header %q", e.RequestID, resp.Header.Get("X-Request-Id"))
			}
			if strings.Contains(e.Title+e.Details, "sk_live") || strings.Contains(e.Title+e.Details, "password") {
				t.Fatalf("error body leaks internals: %+v", e)
			}
		})
	}
	// A body over the limit is answered 413 and then drained: over a socket, the whole body sent first.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", 8192, strings.Repeat(" ", 8192))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	errorBody(t, resp, 413, "body_too_large")
	if !strings.Contains(logged.String(), "password authentication failed") {
		t.Fatalf("internal cause not logged: %s", logged.String())
	}
}

func errorBody(t *testing.T, resp *http.Response, status int, code string) ErrorBody {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	var e ErrorBody
	if resp.StatusCode != status || json.Unmarshal(b, &e) != nil || e.Code != code || e.Status != status || e.Title == "" {
		t.Fatalf("got %d %s, want %d %s", resp.StatusCode, b, status, code)
	}
	return e
}

// TestUnavailableIs503 checks that a dependency failure, and a request that runs past its deadline, are
// 503 service_unavailable with Retry-After and a title that names the kind of dependency, not its
// address, even when a ceremony's failure wraps the outage.
func TestUnavailableIs503(t *testing.T) {
	s := newServer(Services{}, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), BodyLimit: 4096,
		RequestTimeout: 50 * time.Millisecond})
	app := s.newFiberApp("unavailable")
	outage := passkey.WithDetails(fmt.Errorf("dial tcp 10.0.0.7:5432: %w", passkey.ErrUnavailable), "the database is unavailable")
	app.Get("/outage", func(c *fiber.Ctx) error { return outage })
	app.Get("/wrapped", func(c *fiber.Ctx) error {
		return fmt.Errorf("%w: %w", credentials.ErrAssertionFailed, outage)
	})
	app.Get("/slow", func(c *fiber.Ctx) error {
		<-c.UserContext().Done() // a store call that waits for its context
		return fmt.Errorf("query: %w", c.UserContext().Err())
	})
	for _, path := range []string{"/outage", "/wrapped", "/slow"} {
		t.Run(path, func(t *testing.T) {
			resp, err := app.Test(httptest.NewRequest("GET", path, nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			e := errorBody(t, resp, 503, "service_unavailable")
			if resp.Header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After %q, want 1", resp.Header.Get("Retry-After"))
			}
			if strings.Contains(e.Title+e.Details, "10.0.0.7") {
				t.Errorf("body leaks the address: %+v", e)
			}
			want := "the database is unavailable"
			if path == "/slow" {
				want = "the request took too long"
			}
			if e.Title != want || e.Details != want {
				t.Errorf("title %q details %q, want %q", e.Title, e.Details, want)
			}
		})
	}
}
