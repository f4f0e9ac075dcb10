package metrics_test

import (
	"database/sql"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/passkey-server/passkey-server/metrics"
)

// scrape reads m's metrics through its HTTP handler.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("scrape content type %q", ct)
	}
	return rec.Body.String()
}

func TestObserveRequest(t *testing.T) {
	m := metrics.New()
	for _, r := range []struct {
		method, route string
		status        int
	}{
		{"GET", "/:tenant_id/login/finalize", 200},
		{"GET", "/:tenant_id/login/finalize", 200},
		{"POST", "/conflict", 409},
		{"GET", metrics.UnmatchedRoute, 404},
		{"BREW", metrics.UnmatchedRoute, 405}, // a non-standard method
	} {
		m.ObserveRequest("public", r.method, r.route, r.status, 30*time.Millisecond)
	}
	m.ObserveRequest("admin", "GET", "/tenants", 200, 2*time.Second)

	body := scrape(t, m)
	for _, want := range []string{
		`passkey_http_requests_total{app="public",method="GET",route="/:tenant_id/login/finalize",status="200"} 2`,
		`passkey_http_requests_total{app="public",method="POST",route="/conflict",status="409"} 1`,
		`passkey_http_requests_total{app="public",method="GET",route="unmatched",status="404"} 1`,
		`passkey_http_requests_total{app="public",method="other",route="unmatched",status="405"} 1`,
		`passkey_http_requests_total{app="admin",method="GET",route="/tenants",status="200"} 1`,
		`passkey_http_request_duration_seconds_count{app="public",method="GET",route="/:tenant_id/login/finalize",status="200"} 2`,
		`passkey_http_request_duration_seconds_bucket{app="public",method="GET",route="/:tenant_id/login/finalize",status="200",le="0.05"} 2`,
		`passkey_http_request_duration_seconds_bucket{app="admin",method="GET",route="/tenants",status="200",le="1"} 0`,
		`passkey_http_request_duration_seconds_bucket{app="admin",method="GET",route="/tenants",status="200",le="+Inf"} 1`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(body, "BREW") {
		t.Error("a non-standard method is a label value")
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
