package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/ratelimit"
)

func TestRateLimits(t *testing.T) {
	d := dbtest.SQLite(t)
	var s *testServer
	s = newTestServer(t, d, newTestSealer(t), func(o *testOptions) {
		client, err := db.OpenRedis(context.Background(), dbtest.RedisURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		prefix := fmt.Sprintf("passkeytest:rl:%d:", time.Now().UnixNano())
		o.HTTP.Limiter = ratelimit.New(client, prefix, ratelimit.Rules{Limits: ratelimit.Limits{PerIP: ratelimit.PerSecond(3)}})
		proxies, _ := httpapi.ParseTrustedProxies([]string{"0.0.0.0"}) // app.Test's peer is 0.0.0.0
		o.HTTP.Proxies = proxies
	})
	a, aSecret := s.createTenant("example.com")
	b, _ := s.createTenant("example.com")
	jwks := func(tenant, ip string) (int, string) {
		resp := call(t, s.public, "GET", "/"+tenant+"/.well-known/jwks.json", nil, "X-Forwarded-For", ip)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for i := range 3 {
		if st, _ := jwks(a, "203.0.113.1"); st != 200 {
			t.Fatalf("request %d: %d", i, st)
		}
	}
	resp := call(t, s.public, "GET", "/"+a+"/.well-known/jwks.json", nil, "X-Forwarded-For", "203.0.113.1")
	e := expectStatus(t, resp, 429, "rate_limited")
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("Retry-After %q (%s)", resp.Header.Get("Retry-After"), e.Details)
	}
	// Another client, and the same client at another tenant, are not limited by it.
	if st, _ := jwks(a, "203.0.113.2"); st != 200 {
		t.Fatalf("other ip: %d", st)
	}
	if st, _ := jwks(b, "203.0.113.1"); st != 200 {
		t.Fatalf("other tenant: %d", st)
	}
	// The application's server, with its secret key, is limited per key, not per address: it calls for
	// all its users from one address.
	for i := range 5 {
		resp := call(t, s.public, "GET", "/"+a+"/.well-known/jwks.json", nil, "X-Forwarded-For", "203.0.113.1", "apiKey", aSecret)
		if resp.StatusCode != 200 {
			t.Fatalf("secret-key request %d from a limited address: %d", i, resp.StatusCode)
		}
	}
	// A wrong key does not escape the address limit.
	if st := call(t, s.public, "GET", "/"+a+"/.well-known/jwks.json", nil, "X-Forwarded-For", "203.0.113.1", "apiKey", "sk_made_up").StatusCode; st != 429 {
		t.Fatalf("wrong key from a limited address: %d", st)
	}
	// Requests naming a tenant or key that does not exist cost a lookup each and have no tenant whose
	// limits apply: they are limited per address before the lookup.
	unknown := uuid.NewString()
	for range 3 {
		expectStatus(t, call(t, s.public, "GET", "/"+unknown+"/.well-known/jwks.json", nil, "X-Forwarded-For", "203.0.113.9"), 404, "tenant_not_found")
		expectStatus(t, call(t, s.public, "GET", "/credentials", nil, "X-Forwarded-For", "203.0.113.8", "Authorization", "Bearer sk_made_up"), 401, "invalid_api_key")
	}
	expectStatus(t, call(t, s.public, "GET", "/"+unknown+"/.well-known/jwks.json", nil, "X-Forwarded-For", "203.0.113.9"), 429, "rate_limited")
	expectStatus(t, call(t, s.public, "GET", "/credentials", nil, "X-Forwarded-For", "203.0.113.8", "Authorization", "Bearer sk_made_up"), 429, "rate_limited")
	if st, _ := jwks(b, "203.0.113.7"); st != 200 {
		t.Fatalf("a client with no refused requests: %d", st)
	}

	// The window resets.
	time.Sleep(1100 * time.Millisecond)
	if st, _ := jwks(a, "203.0.113.1"); st != 200 {
		t.Fatalf("after the window: %d", st)
	}
}

// TestReadinessFollowsRedis runs a private Redis on another loopback port (never the shared one), stops
// it and starts it again: readiness turns 503 with a reason and back to 200.
func TestReadinessFollowsRedis(t *testing.T) {
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	start := func() *exec.Cmd {
		cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start a private redis-server (the test script installs Redis): %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		return cmd
	}
	url := "redis://127.0.0.1:" + port + "/0"
	redisCmd := start()
	var client = waitRedis(t, url)
	defer client.Close()
	d := dbtest.SQLite(t)
	s := newTestServer(t, d, newTestSealer(t), func(o *testOptions) {
		o.HTTP.Ready = map[string]httpapi.Pinger{"database": d, "redis": db.NewRedisSessions(client, "passkeytest:")}
	})
	ready := func() (int, map[string]any) {
		resp := call(t, s.admin, "GET", "/health/ready", nil)
		var body map[string]any
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &body)
		return resp.StatusCode, body
	}
	if st, _ := ready(); st != 200 {
		t.Fatalf("ready with redis up: %d", st)
	}
	_ = redisCmd.Process.Kill()
	_, _ = redisCmd.Process.Wait()
	st, body := ready()
	if st != 503 || !strings.Contains(fmt.Sprint(body["failed"]), "redis") {
		t.Fatalf("ready with redis down: %d %v", st, body)
	}
	start()
	waitRedis(t, url).Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, _ := ready(); st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readiness did not come back with redis")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitRedis(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := db.OpenRedis(context.Background(), url)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("private redis on %s did not start: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStoreErrorsLogSparingly checks that a Redis outage seen by the rate limiter is counted in full but
// logged once per interval, not once per request.
func TestStoreErrorsLogSparingly(t *testing.T) {
	var buf lockedBuffer
	var s storeErrors
	record := s.record(newTextLogger(&buf), "rate limiter: Redis failed, requests are let through")
	for range 100 {
		record(errors.New("redis: connection refused"))
	}
	if got := s.count.Load(); got != 100 {
		t.Errorf("counted %d failures, want 100", got)
	}
	if n := strings.Count(buf.String(), "rate limiter: Redis failed"); n != 1 {
		t.Errorf("logged %d warnings for 100 failures, want 1:\n%s", n, buf.String())
	}
}
