package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/attestation"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/metrics"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// testToken is the admin token of every test server.
const testToken = "test-admin-token-0123456789"

// testServer is one instance of the service, built by the same constructors serve uses.
type testServer struct {
	t  testing.TB
	db *db.DB
	// svc are the instance's domain services; tenants and ceremonies two of them, for tests that call
	// them directly.
	svc        *services
	tenants    *tenant.Service
	ceremonies *credentials.Service
	public     *fiber.App
	admin      *fiber.App
	// audit is the instance's audit recorder (Flush it before reading the log).
	audit *audit.Recorder
	// redis and redisPrefix hold the test's sessions, for tests that look at them.
	redis       redis.UniversalClient
	redisPrefix string
	// logs holds what the instance logged at warn and above: the cause of a 500 is logged there. It is
	// printed when the test fails.
	logs *lockedBuffer
}

func newTestSealer(t testing.TB) *signing.Sealer {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s, err := signing.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testOptions change how newTestServer builds an instance.
type testOptions struct {
	// Sessions replaces the instance's Redis session store.
	Sessions credentials.SessionStore
	// HTTP are the transport's options.
	HTTP httpapi.Options
	// Now is the clock of the tenants and their directory; KeyActivation the signing key activation
	// delay (serviceInput).
	Now           func() time.Time
	KeyActivation time.Duration
	// CacheRefresh is how often the tenant directory looks for changes other instances made
	// (serviceInput; the default when zero).
	CacheRefresh time.Duration
	// TenantCache is the most tenants the directory keeps (serviceInput; the default when zero).
	TenantCache int
	// Webhooks are the webhook settings (webhooks_test.go).
	Webhooks webhookSettings
	// Metadata is the FIDO metadata (serviceInput; none when nil).
	Metadata *attestation.Source
	// Subscribers join the event bus after those the instance wires.
	Subscribers []passkey.Sink
}

// newTestServer builds an instance on d, with its sessions in Redis. Instances made with the same sealer
// share keys, like replicas sharing a master key. options change the settings before the apps are
// built.
func newTestServer(t testing.TB, d *db.DB, sealer *signing.Sealer, options ...func(*testOptions)) *testServer {
	t.Helper()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		if t.Failed() && logs.Len() > 0 {
			t.Logf("server log:\n%s", logs)
		}
	})
	sessions, client, prefix := testRedisSessions(t)
	m := metrics.New()
	o := testOptions{Sessions: sessions, HTTP: httpapi.Options{Logger: log, AdminTokens: []string{testToken}, BodyLimit: 64 << 10,
		Ready: map[string]httpapi.Pinger{"database": d, "redis": sessions}, Metrics: m, PublicURL: "http://localhost:8000"}}
	for _, opt := range options {
		opt(&o)
	}
	svc := newServices(serviceInput{DB: d, Sessions: o.Sessions, Sealer: sealer, PublicURL: "http://localhost:8000", Metrics: m, Logger: log,
		Now: o.Now, KeyActivation: o.KeyActivation, CacheRefresh: o.CacheRefresh, TenantCache: o.TenantCache, Webhooks: o.Webhooks,
		Metadata: o.Metadata})
	for _, sub := range o.Subscribers {
		svc.bus.Subscribe(sub)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := svc.run(ctx) // the background work serve runs: directory refresh, key use, audit writes
	t.Cleanup(func() { stop(); <-done })
	return &testServer{t: t, db: d, svc: svc, tenants: svc.tenants, ceremonies: svc.credentials,
		public: httpapi.NewPublic(svc.http(), o.HTTP), admin: httpapi.NewAdmin(svc.http(), o.HTTP),
		redis: client, redisPrefix: prefix, logs: logs, audit: svc.audit}
}

// call sends a request to app, checks the response against openapi.yaml and returns it. A body that is
// not a string or []byte is sent as JSON.
func call(t testing.TB, app *fiber.App, method, path string, body any, headers ...string) *http.Response {
	t.Helper()
	req, resp := send(t, app, method, path, body, headers...)
	checkSpec(t, req, resp)
	return resp
}

// send is call without the check against openapi.yaml: for benchmarks, which time the server alone, and
// for callers that check the response themselves.
func send(t testing.TB, app *fiber.App, method, path string, body any, headers ...string) (*http.Request, *http.Response) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(js)
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return req, resp
}

// adminCall calls the admin API with the test token.
func (s *testServer) adminCall(method, path string, body any) *http.Response {
	s.t.Helper()
	return call(s.t, s.admin, method, path, body, "Authorization", "Bearer "+testToken)
}

// decode reads a JSON body into v and returns it.
func decode[T any](t testing.TB, resp *http.Response) T {
	t.Helper()
	var v T
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// expectStatus fails the test unless resp has the status; for errors it also checks the code.
func expectStatus(t testing.TB, resp *http.Response, status int, code string) httpapi.ErrorBody {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, b)
	}
	if code == "" {
		return httpapi.ErrorBody{}
	}
	var e httpapi.ErrorBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	if e.Code != code || e.Status != status || e.Title == "" {
		t.Fatalf("error body %s, want code %q", b, code)
	}
	return e
}

// validConfig is a tenant config that passes validation.
func validConfig(rpID string) map[string]any {
	origin := "https://" + rpID
	if rpID == "localhost" {
		origin = "http://localhost:3000"
	}
	return map[string]any{
		"cors": map[string]any{"allowed_origins": []string{origin}, "allow_unsafe_wildcard": false},
		"webauthn": map[string]any{
			"relying_party": map[string]any{"id": rpID, "display_name": "Test RP", "origins": []string{origin}},
			"timeout":       60000,
		},
	}
}

// createTenant makes a tenant through the admin API and returns its id and secret API key.
func (s *testServer) createTenant(rpID string) (string, string) {
	s.t.Helper()
	resp := s.adminCall("POST", "/tenants", map[string]any{"display_name": "T " + rpID, "config": validConfig(rpID), "create_api_key": true})
	expectStatus(s.t, resp, 201, "")
	out := decode[httpapi.CreateTenantResponse](s.t, resp)
	if out.APIKey == nil || !strings.HasPrefix(out.APIKey.Secret, "sk_") {
		s.t.Fatalf("no secret api key in %+v", out)
	}
	return out.ID.String(), out.APIKey.Secret
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func uuidOf(t testing.TB, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listenTest serves app on a loopback port until the test ends and returns its base URL.
func listenTest(t testing.TB, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	return "http://" + ln.Addr().String()
}

// testRedisSessions returns a Redis session store under a prefix of its own, removed when the test ends.
// A test server's sessions live in the real Redis, as in production.
func testRedisSessions(t testing.TB) (*db.RedisSessions, redis.UniversalClient, string) {
	t.Helper()
	ctx := context.Background()
	client, err := db.OpenRedis(ctx, dbtest.RedisURL())
	if err != nil {
		t.Fatalf("Redis at %s does not answer (run scripts/test.sh, which starts it): %v", dbtest.RedisURL(), err)
	}
	prefix := fmt.Sprintf("passkeytest:%s:", uuid.NewString())
	t.Cleanup(func() {
		iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		client.Close()
	})
	return db.NewRedisSessions(client, prefix), client, prefix
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers, for logs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
