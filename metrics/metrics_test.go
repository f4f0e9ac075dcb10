package metrics_test

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"

	"github.com/passkey-server/passkey-server/metrics"
)

var errConflict = errors.New("conflict")

// newApp builds an app like cmd's: one error handler mapping errors to statuses, the metrics
// middleware before recover.
func newApp(m *metrics.Metrics) *fiber.App {
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			status := fiber.StatusInternalServerError
			var fe *fiber.Error
			switch {
			case errors.Is(err, errConflict):
				status = fiber.StatusConflict
			case errors.As(err, &fe):
				status = fe.Code
			}
			return c.Status(status).JSON(fiber.Map{"status": status})
		},
	})
	app.Use(m.Middleware("public"))
	app.Use(recover.New())
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString("root") })
	app.Post("/conflict", func(*fiber.Ctx) error { return errConflict })
	app.Get("/panic", func(*fiber.Ctx) error { panic("boom") })
	// Like cmd's tenant group: a middleware on a parameter prefix, which also sees unknown paths.
	t := app.Group("/:tenant_id", func(c *fiber.Ctx) error {
		if c.Params("tenant_id") == "bad" {
			return fiber.ErrBadRequest
		}
		return c.Next()
	})
	t.Get("/login/finalize", func(c *fiber.Ctx) error { return c.SendString("ok") })
	return app
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	admin := fiber.New(fiber.Config{DisableStartupMessage: true})
	admin.Get("/metrics", m.Handler())
	resp, err := admin.Test(httptest.NewRequest("GET", "/metrics", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("scrape content type %q", ct)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func TestMiddleware(t *testing.T) {
	m := metrics.New()
	app := newApp(m)
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

	body := scrape(t, m)
	for _, want := range []string{
		`passkey_http_requests_total{app="public",method="GET",route="/:tenant_id/login/finalize",status="200"} 2`,
		`passkey_http_requests_total{app="public",method="POST",route="/conflict",status="409"} 1`,
		`passkey_http_requests_total{app="public",method="GET",route="/panic",status="500"} 1`,
		`passkey_http_requests_total{app="public",method="GET",route="unmatched",status="404"} 1`,
		`passkey_http_requests_total{app="public",method="GET",route="unmatched",status="400"} 1`,
		`passkey_http_requests_total{app="public",method="GET",route="/",status="200"} 1`,
		`passkey_http_request_duration_seconds_count{app="public",method="GET",route="/:tenant_id/login/finalize",status="200"} 2`,
		`passkey_http_request_duration_seconds_bucket{app="public",method="GET",route="unmatched",status="404",le="+Inf"} 1`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
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

func TestCeremonyTenantLabelBound(t *testing.T) {
	const n = 10
	m := metrics.New(metrics.WithTenantLabelLimit(n))
	for i := range n + 5 {
		m.Ceremony(fmt.Sprintf("tenant-%02d", i), "login", "success")
	}
	m.Ceremony("tenant-00", "login", "success")        // labelled tenant: still its own label
	m.Ceremony("tenant-14", "registration", "failure") // beyond the limit: "other"

	body := scrape(t, m)
	tenants := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "passkey_ceremonies_total{") {
			continue
		}
		_, rest, _ := strings.Cut(line, `tenant="`)
		tenant, _, _ := strings.Cut(rest, `"`)
		tenants[tenant] = true
	}
	if len(tenants) != n+1 || !tenants[metrics.OtherTenant] {
		t.Fatalf("tenant label values %v: want %d tenants and %q", tenants, n, metrics.OtherTenant)
	}
	for _, want := range []string{
		`passkey_ceremonies_total{kind="login",outcome="success",tenant="tenant-00"} 2`,
		`passkey_ceremonies_total{kind="login",outcome="success",tenant="other"} 5`,
		`passkey_ceremonies_total{kind="registration",outcome="failure",tenant="other"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

func TestCeremonyConcurrent(t *testing.T) {
	m := metrics.New(metrics.WithTenantLabelLimit(3))
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 50 {
				m.Ceremony(fmt.Sprintf("t%d", (g*50+i)%20), "login", "success")
			}
		}()
	}
	for range 8 {
		<-done
	}
	body := scrape(t, m)
	if got := strings.Count(body, "passkey_ceremonies_total{"); got != 4 {
		t.Errorf("%d ceremony series, want 3 tenants + other", got)
	}
	if !strings.Contains(body, `tenant="other"`) {
		t.Error("no other series")
	}
}

func TestPoolCollectors(t *testing.T) {
	m := metrics.New()
	db := sql.OpenDB(nopConnector{}) // never connects: stats of an empty pool
	defer db.Close()
	if err := m.RegisterDB("main", db); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterDB("main", db); err == nil {
		t.Error("registering the same database twice succeeded")
	}
	dropped := uint64(0)
	if err := m.RegisterCounter("passkey_audit_events_dropped_total", "dropped", func() uint64 { return dropped }); err != nil {
		t.Fatal(err)
	}
	dropped = 3 // read at scrape time
	err := m.RegisterRedisPool("sessions", func() metrics.RedisPoolStats {
		return metrics.RedisPoolStats{Hits: 7, Misses: 2, Timeouts: 1, Total: 5, Idle: 3, Stale: 4}
	})
	if err != nil {
		t.Fatal(err)
	}
	body := scrape(t, m)
	for _, want := range []string{
		`go_sql_open_connections{db_name="main"} 0`,
		`passkey_redis_pool_hits_total{name="sessions"} 7`,
		`passkey_redis_pool_misses_total{name="sessions"} 2`,
		`passkey_redis_pool_timeouts_total{name="sessions"} 1`,
		`passkey_redis_pool_connections{name="sessions"} 5`,
		`passkey_redis_pool_idle_connections{name="sessions"} 3`,
		`passkey_redis_pool_stale_connections_total{name="sessions"} 4`,
		`passkey_audit_events_dropped_total 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

func TestRegistriesIndependent(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.Ceremony("t1", "login", "success")
	if strings.Contains(scrape(t, b), "passkey_ceremonies_total{") {
		t.Error("a ceremony counted in one Metrics shows in another")
	}
}
