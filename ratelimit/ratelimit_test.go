package ratelimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/ratelimit"
)

// redisClient connects to the test Redis and fails the test when it does not answer.
func redisClient(t *testing.T) redis.UniversalClient {
	t.Helper()
	url := os.Getenv("PASSKEY_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("PASSKEY_TEST_REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s does not answer (the tests need a real Redis): %v", url, err)
	}
	return client
}

// testPrefix returns a random key prefix and deletes every key under it when the test ends.
func testPrefix(t *testing.T, client redis.UniversalClient) string {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	prefix := "passkey-test:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, "rate:"+prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean up test keys: %v", err)
		}
	})
	return prefix
}

// keysFromHeaders is the test apps' keyOf: the dimensions come from request headers.
func keysFromHeaders(c *fiber.Ctx) ratelimit.Keys {
	return ratelimit.Keys{Tenant: c.Get("X-Tenant"), IP: c.Get("X-Client-IP"), APIKey: c.Get("X-Key")}
}

// newApp builds an app whose error handler answers ErrRateLimited with 429, like cmd's.
func newApp(l *ratelimit.Limiter) *fiber.App {
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			status := fiber.StatusInternalServerError
			if errors.Is(err, ratelimit.ErrRateLimited) {
				status = fiber.StatusTooManyRequests
			}
			return c.Status(status).JSON(fiber.Map{"status": status, "code": "rate_limited", "details": passkey.Details(err)})
		},
	})
	app.Use(l.Middleware(keysFromHeaders))
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString("ok") })
	return app
}

type req struct{ tenant, ip, key string }

func do(t *testing.T, app *fiber.App, r req) *http.Response {
	t.Helper()
	hr := httptest.NewRequest("GET", "/", nil)
	hr.Header.Set("X-Tenant", r.tenant)
	hr.Header.Set("X-Client-IP", r.ip)
	hr.Header.Set("X-Key", r.key)
	resp, err := app.Test(hr, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// allowedCount sends n requests and returns how many got through.
func allowedCount(t *testing.T, app *fiber.App, r req, n int) int {
	t.Helper()
	ok := 0
	for range n {
		switch s := do(t, app, r).StatusCode; s {
		case 200:
			ok++
		case 429:
		default:
			t.Fatalf("status %d", s)
		}
	}
	return ok
}

// stores builds the same rules over Redis and in memory: the behaviour tests run against both.
func stores(t *testing.T, rules ratelimit.Rules) map[string]*ratelimit.Limiter {
	client := redisClient(t)
	return map[string]*ratelimit.Limiter{
		"redis":  ratelimit.New(client, testPrefix(t, client), rules),
		"memory": ratelimit.NewMemory(rules, 0),
	}
}

func TestTripsAfterN(t *testing.T) {
	for name, l := range stores(t, ratelimit.Rules{Limits: ratelimit.Limits{PerIP: ratelimit.PerMinute(3)}}) {
		t.Run(name, func(t *testing.T) {
			var onError atomic.Int32
			l.OnError = func(error) { onError.Add(1) }
			app := newApp(l)
			r := req{tenant: "t1", ip: "192.0.2.1"}
			for i, want := range []string{"2", "1", "0"} {
				resp := do(t, app, r)
				if resp.StatusCode != 200 || resp.Header.Get(ratelimit.HeaderRemaining) != want {
					t.Fatalf("request %d: status %d, remaining %q; want 200, %s", i+1, resp.StatusCode,
						resp.Header.Get(ratelimit.HeaderRemaining), want)
				}
			}
			resp := do(t, app, r)
			if resp.StatusCode != 429 {
				t.Fatalf("4th request: status %d, want 429", resp.StatusCode)
			}
			retry, err := strconv.Atoi(resp.Header.Get(fiber.HeaderRetryAfter))
			if err != nil || retry < 1 || retry > 20 { // 1 request per 20 s
				t.Errorf("Retry-After %q, want 1..20 seconds", resp.Header.Get(fiber.HeaderRetryAfter))
			}
			if got := resp.Header.Get(ratelimit.HeaderRemaining); got != "0" {
				t.Errorf("remaining %q on 429, want 0", got)
			}
			var body struct{ Details string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || !strings.Contains(body.Details, "retry after") {
				t.Errorf("body details %q (%v)", body.Details, err)
			}
			if onError.Load() != 0 {
				t.Error("OnError called without a store failure")
			}
		})
	}
}

func TestOverride(t *testing.T) {
	rules := ratelimit.Rules{
		Limits: ratelimit.Limits{PerTenant: ratelimit.PerMinute(2), PerIP: ratelimit.PerMinute(100)},
		Overrides: map[string]ratelimit.Override{
			"big": {PerTenant: ptr(ratelimit.PerMinute(5))},
			// A zero limit switches the dimension off for the tenant; the per-IP default still applies.
			"unlimited": {PerTenant: ptr(ratelimit.Limit{})},
		},
	}
	for name, l := range stores(t, rules) {
		t.Run(name, func(t *testing.T) {
			app := newApp(l)
			if got := allowedCount(t, app, req{tenant: "small", ip: "192.0.2.1"}, 8); got != 2 {
				t.Errorf("default tenant: %d allowed, want 2", got)
			}
			if got := allowedCount(t, app, req{tenant: "big", ip: "192.0.2.1"}, 8); got != 5 {
				t.Errorf("overridden tenant: %d allowed, want 5", got)
			}
			if got := allowedCount(t, app, req{tenant: "unlimited", ip: "192.0.2.1"}, 8); got != 8 {
				t.Errorf("tenant limit switched off: %d allowed, want 8", got)
			}
		})
	}
}

func TestDimensionsIndependent(t *testing.T) {
	rules := ratelimit.Rules{Limits: ratelimit.Limits{
		PerTenant: ratelimit.PerMinute(100), PerIP: ratelimit.PerMinute(2), PerKey: ratelimit.PerMinute(3),
	}}
	for name, l := range stores(t, rules) {
		t.Run(name, func(t *testing.T) {
			app := newApp(l)
			for _, r := range []req{
				{tenant: "a", ip: "192.0.2.1"},
				{tenant: "a", ip: "192.0.2.2"},   // another IP, same tenant
				{tenant: "b", ip: "192.0.2.1"},   // same IP, another tenant
				{tenant: "a", ip: "2001:db8::1"}, // IPv6
			} {
				if got := allowedCount(t, app, r, 4); got != 2 {
					t.Errorf("%+v: %d allowed, want 2 (per IP)", r, got)
				}
			}
			// The key limit binds across IPs; another key is unaffected.
			ok := 0
			for i := range 5 {
				if do(t, app, req{tenant: "c", ip: "198.51.100." + strconv.Itoa(i), key: "sk_one"}).StatusCode == 200 {
					ok++
				}
			}
			if ok != 3 {
				t.Errorf("one key from five IPs: %d allowed, want 3 (per key)", ok)
			}
			if got := do(t, app, req{tenant: "c", ip: "198.51.100.9", key: "sk_two"}).StatusCode; got != 200 {
				t.Errorf("another key: status %d, want 200", got)
			}
		})
	}
}

func TestTightestRemaining(t *testing.T) {
	rules := ratelimit.Rules{Limits: ratelimit.Limits{PerTenant: ratelimit.PerMinute(2), PerIP: ratelimit.PerMinute(10)}}
	for name, l := range stores(t, rules) {
		t.Run(name, func(t *testing.T) {
			resp := do(t, newApp(l), req{tenant: "t", ip: "192.0.2.1"})
			if got := resp.Header.Get(ratelimit.HeaderRemaining); got != "1" {
				t.Errorf("remaining %q, want 1 (the tenant's)", got)
			}
		})
	}
}

func TestNoDimensions(t *testing.T) {
	for name, l := range stores(t, ratelimit.Rules{Limits: ratelimit.Limits{PerIP: ratelimit.PerSecond(1)}}) {
		t.Run(name, func(t *testing.T) {
			// No IP given, and no tenant or key limits: nothing to check.
			if got := allowedCount(t, newApp(l), req{tenant: "t", key: "k"}, 5); got != 5 {
				t.Errorf("%d allowed, want 5", got)
			}
		})
	}
}

func TestWindowReset(t *testing.T) {
	for name, l := range stores(t, ratelimit.Rules{Limits: ratelimit.Limits{PerIP: ratelimit.PerSecond(2)}}) {
		t.Run(name, func(t *testing.T) {
			app := newApp(l)
			r := req{tenant: "t", ip: "192.0.2.7"}
			if got := allowedCount(t, app, r, 3); got != 2 {
				t.Fatalf("%d allowed, want 2", got)
			}
			time.Sleep(1100 * time.Millisecond)
			if got := allowedCount(t, app, r, 3); got != 2 {
				t.Errorf("after the period: %d allowed, want 2", got)
			}
		})
	}
}

func TestConcurrentRequestsShareOneBudget(t *testing.T) {
	client := redisClient(t)
	rules := ratelimit.Rules{Limits: ratelimit.Limits{PerTenant: ratelimit.PerMinute(10)}}
	// Two limiters, as two instances behind a load balancer.
	prefix := testPrefix(t, client)
	apps := []*fiber.App{newApp(ratelimit.New(client, prefix, rules)), newApp(ratelimit.New(client, prefix, rules))}
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hr := httptest.NewRequest("GET", "/", nil)
			hr.Header.Set("X-Tenant", "shared")
			resp, err := apps[i%2].Test(hr, -1)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 10 {
		t.Errorf("%d of 30 concurrent requests allowed, want 10", ok.Load())
	}
}

func TestAPIKeyNotStoredInClear(t *testing.T) {
	client := redisClient(t)
	prefix := testPrefix(t, client)
	l := ratelimit.New(client, prefix, ratelimit.Rules{Limits: ratelimit.Limits{PerKey: ratelimit.PerMinute(5)}})
	do(t, newApp(l), req{tenant: "t", key: "sk_live_supersecret"})
	keys, err := client.Keys(context.Background(), "rate:"+prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("keys %v, want one", keys)
	}
	if strings.Contains(keys[0], "supersecret") {
		t.Errorf("Redis key %q contains the API key", keys[0])
	}
}

func TestRedisDownFailsOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer client.Close()

	var mu sync.Mutex
	var errs []error
	l := ratelimit.New(client, "down:", ratelimit.Rules{Limits: ratelimit.Limits{
		PerTenant: ratelimit.PerSecond(1), PerIP: ratelimit.PerSecond(1), PerKey: ratelimit.PerSecond(1),
	}})
	l.OnError = func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	app := newApp(l)
	for range 3 {
		resp := do(t, app, req{tenant: "t", ip: "192.0.2.1", key: "k"})
		if resp.StatusCode != 200 {
			t.Fatalf("status %d with Redis down, want 200 (fail open)", resp.StatusCode)
		}
		if resp.Header.Get(ratelimit.HeaderRemaining) != "" {
			t.Error("remaining header set without a check")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 3 { // one per request: the first failure ends the request's checks
		t.Fatalf("OnError called %d times, want 3", len(errs))
	}
	if !strings.Contains(errs[0].Error(), "rate limit check") {
		t.Errorf("error %q lacks context", errs[0])
	}
}

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ratelimit.Limit
	}{
		{"600/m", ratelimit.PerMinute(600)},
		{"10/s", ratelimit.PerSecond(10)},
		{" 5000 / H ", ratelimit.PerHour(5000)},
		{"100/10m", ratelimit.Limit{Rate: 100, Burst: 100, Period: 10 * time.Minute}},
		{"3/minute", ratelimit.PerMinute(3)},
		{"", ratelimit.Limit{}},
		{"0", ratelimit.Limit{}},
		{"off", ratelimit.Limit{}},
	} {
		got, err := ratelimit.ParseLimit(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLimit(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"600", "x/m", "-1/m", "0/m", "10/y", "10/100ms", "10/", "/m", "1.5/s"} {
		if _, err := ratelimit.ParseLimit(bad); err == nil {
			t.Errorf("ParseLimit(%q) succeeded", bad)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestRefusals checks that only refused requests use up a client's budget: accepted ones are never
// counted, a client over the budget gets 429 before its request reaches the lookup, and another client
// is unaffected.
func TestRefusals(t *testing.T) {
	for name, l := range stores(t, ratelimit.Rules{Limits: ratelimit.Limits{PerIP: ratelimit.PerMinute(3)}}) {
		t.Run(name, func(t *testing.T) {
			lookups := 0
			app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
				if errors.Is(err, ratelimit.ErrRateLimited) {
					return c.SendStatus(fiber.StatusTooManyRequests)
				}
				return c.SendStatus(fiber.StatusNotFound)
			}})
			errUnknown := errors.New("unknown tenant")
			app.Use(l.Refusals(func(c *fiber.Ctx) string { return c.Get("X-Client-IP") }, func(err error) bool { return errors.Is(err, errUnknown) }))
			app.Get("/:tenant", func(c *fiber.Ctx) error {
				lookups++
				if c.Params("tenant") == "known" {
					return c.SendString("ok")
				}
				return errUnknown
			})
			get := func(ip, tenant string) int {
				hr := httptest.NewRequest("GET", "/"+tenant, nil)
				hr.Header.Set("X-Client-IP", ip)
				resp, err := app.Test(hr, -1)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			for i := range 10 {
				if st := get("192.0.2.1", "known"); st != 200 {
					t.Fatalf("accepted request %d: %d", i, st)
				}
			}
			for i := range 3 {
				if st := get("192.0.2.1", "nope"); st != 404 {
					t.Fatalf("refused request %d within the budget: %d", i, st)
				}
			}
			before := lookups
			if st := get("192.0.2.1", "nope"); st != 429 {
				t.Fatalf("over the budget: %d, want 429", st)
			}
			if st := get("192.0.2.1", "known"); st != 429 {
				t.Fatalf("over the budget, even a known tenant waits: %d, want 429", st)
			}
			if lookups != before {
				t.Error("a request over the budget reached the lookup")
			}
			if st := get("192.0.2.2", "nope"); st != 404 {
				t.Fatalf("another client: %d, want 404", st)
			}
		})
	}
}
