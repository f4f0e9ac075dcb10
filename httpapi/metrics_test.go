package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"

	"github.com/passkey-server/passkey-server/metrics"
)

var errMetricsConflict = errors.New("conflict")

// newMetricsApp builds an app like the servers': one error handler mapping errors to statuses, the
// metrics middleware before recover.
func newMetricsApp(m *metrics.Metrics) *fiber.App {
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			status := fiber.StatusInternalServerError
			var fe *fiber.Error
			switch {
			case errors.Is(err, errMetricsConflict):
				status = fiber.StatusConflict
			case errors.As(err, &fe):
				status = fe.Code
			}
			return c.Status(status).JSON(fiber.Map{"status": status})
		},
	})
	app.Use(observeRequests(m, "public"))
	app.Use(recover.New())
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString("root") })
	app.Post("/conflict", func(*fiber.Ctx) error { return errMetricsConflict })
	app.Get("/panic", func(*fiber.Ctx) error { panic("boom") })
	// Like the public app's tenant family: a middleware on a parameter prefix, which also sees unknown
	// paths.
	t := app.Group("/:tenant_id", func(c *fiber.Ctx) error {
		if c.Params("tenant_id") == "bad" {
			return fiber.ErrBadRequest
		}
		return c.Next()
	})
	t.Get("/login/finalize", func(c *fiber.Ctx) error { return c.SendString("ok") })
	return app
}

// scrapeMetrics reads m's metrics through its HTTP handler.
func scrapeMetrics(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape status %d", rec.Code)
	}
	return rec.Body.String()
}

// TestObserveRequests checks the metrics middleware: route patterns as labels, "unmatched" for what no
// endpoint handled, and the status the client got, errors and panics included.
func TestObserveRequests(t *testing.T) {
	m := metrics.New()
	app := newMetricsApp(m)
	requests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/3f1e0a52-8a5f-4f3b-9a8e-0c2f1d7b6a11/login/finalize", 200},
		{"GET", "/5b1e0a52-8a5f-4f3b-9a8e-0c2f1d7b6a12/login/finalize", 200},
		{"POST", "/conflict", 409},
		{"GET", "/panic", 500},
		{"GET", "/does/not/exist", 404},
		{"GET", "/bad/login/finalize", 400},
		{"GET", "/", 200},
	}
	for _, r := range requests {
		resp, err := app.Test(httptest.NewRequest(r.method, r.path, nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != r.status {
			t.Errorf("%s %s: status %d, want %d", r.method, r.path, resp.StatusCode, r.status)
		}
	}

	body := scrapeMetrics(t, m)
	for _, want := range []string{
		`passkey_http_requests_total{app="public",method="GET",route="/:tenant_id/login/finalize",status="200"} 2`,
		`passkey_http_requests_total{app="public",method="POST",route="/conflict",status="409"} 1`,
		`passkey_http_requests_total{app="public",method="GET",route="/panic",status="500"} 1`,
		`passkey_http_requests_total{app="public",method="GET",route="unmatched",status="404"} 1`,
		`passkey_http_requests_total{app="public",method="GET",route="unmatched",status="400"} 1`,
		`passkey_http_requests_total{app="public",method="GET",route="/",status="200"} 1`,
		`passkey_http_request_duration_seconds_count{app="public",method="GET",route="/:tenant_id/login/finalize",status="200"} 2`,
		`passkey_http_request_duration_seconds_bucket{app="public",method="GET",route="unmatched",status="404",le="+Inf"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(body, `route="/",status="404"`) || strings.Contains(body, `route="/:tenant_id",`) {
		t.Error("a request no endpoint handled is labelled with a middleware's path")
	}
	for _, raw := range []string{"3f1e0a52", "does/not/exist"} {
		if strings.Contains(body, raw) {
			t.Errorf("scrape contains raw path fragment %q", raw)
		}
	}
}

// TestAdminMetrics checks that the admin app serves the metrics in the Prometheus text format, to
// admin tokens only, and counts its own requests as app="admin".
func TestAdminMetrics(t *testing.T) {
	m := metrics.New()
	app := NewAdmin(Services{}, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m, AdminTokens: []string{"admin-token"}})
	get := func(auth string) (int, string, string) {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if auth != "" {
			req.Header.Set(fiber.HeaderAuthorization, auth)
		}
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get(fiber.HeaderContentType), string(b)
	}
	if st, _, body := get(""); st != 401 || strings.Contains(body, "passkey_") {
		t.Errorf("without a token: %d %.80s, want 401 without metrics", st, body)
	}
	st, ct, body := get("Bearer admin-token")
	if st != 200 || !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape: %d %q", st, ct)
	}
	for _, want := range []string{
		`passkey_http_requests_total{app="admin",method="GET",route="unmatched",status="401"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}
