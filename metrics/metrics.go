// Package metrics exposes the service's Prometheus metrics: HTTP requests per route, ceremony outcomes
// per tenant, database and Redis connection pools, and the Go runtime and process. Each Metrics owns
// its own registry (never the global default one), so tests can build as many as they like.
package metrics

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	passkey "github.com/passkey-server/passkey-server"
)

// DefaultTenantLabelLimit is how many distinct tenants get their own value of the tenant label of
// passkey_ceremonies_total unless WithTenantLabelLimit says otherwise.
const DefaultTenantLabelLimit = 100

// Label values used when the real value would make the number of series unbounded.
const (
	// OtherTenant is the tenant label of ceremonies of tenants beyond the label limit.
	OtherTenant = "other"
	// UnmatchedRoute is the route label of requests that no route handled (see ObserveRequest).
	UnmatchedRoute = "unmatched"
	// OtherMethod is the method label of requests with a non-standard HTTP method.
	OtherMethod = "other"
)

// Metrics holds the service's collectors and the registry they are registered with.
type Metrics struct {
	reg        *prometheus.Registry
	duration   *prometheus.HistogramVec
	requests   *prometheus.CounterVec
	ceremonies *prometheus.CounterVec
	// webhookAttempts: metrics/webhooks.go.
	webhookAttempts *prometheus.CounterVec
	webhookOnce     sync.Once

	tenantLimit int
	mu          sync.RWMutex
	tenants     map[string]struct{} // tenants that have their own label value
}

// Option configures New.
type Option func(*Metrics)

// WithTenantLabelLimit sets how many distinct tenants get their own tenant label value in
// passkey_ceremonies_total (default DefaultTenantLabelLimit). Zero aggregates every tenant as "other".
func WithTenantLabelLimit(n int) Option {
	return func(m *Metrics) {
		if n >= 0 {
			m.tenantLimit = n
		}
	}
}

// New returns Metrics with a fresh registry holding the HTTP and ceremony metrics and the Go runtime
// and process collectors.
func New(opts ...Option) *Metrics {
	m := &Metrics{
		reg:         prometheus.NewRegistry(),
		tenantLimit: DefaultTenantLabelLimit,
		tenants:     map[string]struct{}{},
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "passkey_http_request_duration_seconds",
			Help:    "Time to handle an HTTP request, including writing the error response, by app, method, route pattern and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"app", "method", "route", "status"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "passkey_http_requests_total",
			Help: "HTTP requests handled, by app, method, route pattern and status code.",
		}, []string{"app", "method", "route", "status"}),
		ceremonies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "passkey_ceremonies_total",
			Help: `WebAuthn ceremonies by tenant, kind and outcome. Only the first N distinct tenants seen by this process get their own tenant label; the rest are counted as tenant="other".`,
		}, []string{"tenant", "kind", "outcome"}),
	}
	for _, o := range opts {
		o(m)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.duration, m.requests, m.ceremonies,
	)
	return m
}

// Registry returns the registry behind Handler, for packages that want to register their own
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest records one handled HTTP request in passkey_http_request_duration_seconds and
// passkey_http_requests_total: app names the server (e.g. "public" or "admin"), method is the request
// method, route the pattern of the route that handled it, status the status code the client got, and d
// the time taken, including writing an error response.
//
// Label values must come from small sets, or the number of series grows without bound: route is a
// pattern (e.g. "/:tenant_id/login/finalize"), never the raw path, and requests that no route handled
// (404s, and requests that a middleware answered before any route matched) are labelled
// UnmatchedRoute. Methods outside the standard ones are counted as OtherMethod. The method is mapped
// to a constant string, so it may point into a reused request buffer; app and route become label values
// that outlive the call, so they must not (a route's registered pattern does not).
func (m *Metrics) ObserveRequest(app, method, route string, status int, d time.Duration) {
	labels := []string{app, normalizeMethod(method), route, strconv.Itoa(status)}
	m.duration.WithLabelValues(labels...).Observe(d.Seconds())
	m.requests.WithLabelValues(labels...).Inc()
}

// normalizeMethod maps the request method to a constant string: the caller's string may point into a
// reused buffer, and label values outlive the request. Unknown methods become "other".
func normalizeMethod(method string) string {
	switch method {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodOptions:
		return http.MethodOptions
	case http.MethodConnect:
		return http.MethodConnect
	case http.MethodTrace:
		return http.MethodTrace
	}
	return OtherMethod
}

// Ceremony counts one ceremony in passkey_ceremonies_total. kind names the ceremony (e.g.
// "registration", "login", "mfa_registration", "mfa_login", "transaction") and outcome its result
// (e.g. "success", "failure"); both must come from small fixed sets chosen by the caller.
//
// The tenant label is bounded: the first N distinct tenant ids this process counts (N is
// DefaultTenantLabelLimit, or WithTenantLabelLimit) keep their own label value for the life of the
// process; every later tenant is counted as tenant="other". With thousands of tenants the series count
// therefore stays at most (N+1) × kinds × outcomes. Which tenants get a label depends on the order they
// are seen after a start, so per-tenant dashboards are reliable only for deployments with at most N
// tenants; the sum over tenants is always exact.
func (m *Metrics) Ceremony(tenantID, kind, outcome string) {
	m.ceremonies.WithLabelValues(m.tenantLabel(tenantID), kind, outcome).Inc()
}

// tenantLabel returns tenantID if it has, or may still get, its own label value, else OtherTenant.
func (m *Metrics) tenantLabel(tenantID string) string {
	m.mu.RLock()
	_, ok := m.tenants[tenantID]
	full := len(m.tenants) >= m.tenantLimit
	m.mu.RUnlock()
	if ok {
		return tenantID
	}
	if full {
		return OtherTenant
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tenants[tenantID]; ok {
		return tenantID
	}
	if len(m.tenants) >= m.tenantLimit {
		return OtherTenant
	}
	id := string([]byte(tenantID)) // a copy: the caller's string may live in a reused request buffer
	m.tenants[id] = struct{}{}
	return id
}

// RegisterDB exports the connection pool statistics of db (go_sql_* metrics with db_name=name) through
// client_golang's DBStatsCollector. A *bun.DB embeds its *sql.DB, so pass bunDB.DB.
func (m *Metrics) RegisterDB(name string, db *sql.DB) error {
	if err := m.reg.Register(collectors.NewDBStatsCollector(db, name)); err != nil {
		return fmt.Errorf("register database stats %q: %w", name, err)
	}
	return nil
}

// RedisPoolStats is a snapshot of a Redis client's connection pool: the fields of go-redis's
// PoolStats, passed as plain numbers so that this package does not depend on go-redis.
type RedisPoolStats struct {
	Hits     uint32 // times a free connection was found in the pool
	Misses   uint32 // times a free connection was not found in the pool
	Timeouts uint32 // times a wait for a connection timed out
	Total    uint32 // connections in the pool
	Idle     uint32 // idle connections in the pool
	Stale    uint32 // stale connections removed from the pool
}

// RegisterRedisPool exports the pool statistics that stats returns at each scrape as
// passkey_redis_pool_* metrics with name=name. cmd passes a func that converts
// db.ReadRedisPoolStats.
func (m *Metrics) RegisterRedisPool(name string, stats func() RedisPoolStats) error {
	if err := m.reg.Register(newRedisPoolCollector(name, stats)); err != nil {
		return fmt.Errorf("register redis pool stats %q: %w", name, err)
	}
	return nil
}

// RegisterCounter exports a counter that another package keeps (the audit log's dropped events, the
// rate limiter's Redis failures): value is read at each scrape.
func (m *Metrics) RegisterCounter(name, help string, value func() uint64) error {
	c := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(value()) })
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("register %s: %w", name, err)
	}
	return nil
}

// Handler serves the registry in the Prometheus exposition format (GET /metrics on the admin app).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Emit counts the steps of ceremonies in passkey_ceremonies_total, making Metrics a subscriber of the
// event bus: kind is the ceremony and its step ("login_init", "mfa_registration_final",
// "transaction_final"), outcome "succeeded" or "failed". Steps of requests whose tenant is unknown are
// not counted.
func (m *Metrics) Emit(_ context.Context, e passkey.Event) {
	if e.Ceremony == "" || e.TenantID == uuid.Nil {
		return
	}
	kind := e.Ceremony + "_init"
	if e.Step == passkey.StepFinalize {
		kind = e.Ceremony + "_final"
	}
	outcome := "succeeded"
	if e.Failed() {
		outcome = "failed"
	}
	m.Ceremony(e.TenantID.String(), kind, outcome)
}
