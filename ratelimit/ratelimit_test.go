package ratelimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// allow checks one request with the keys k.
func allow(l *ratelimit.Limiter, k ratelimit.Keys) ratelimit.Decision {
	return l.Allow(context.Background(), k)
}

// allowedCount checks n requests with the keys k and returns how many were allowed.
func allowedCount(t *testing.T, l *ratelimit.Limiter, k ratelimit.Keys, n int) int {
	t.Helper()
	ok := 0
	for range n {
		d := allow(l, k)
		if d.Allowed {
			ok++
		} else if !d.Checked || d.RetryAfter < time.Second {
			t.Fatalf("refused without a check or a time to wait: %+v", d)
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
			k := ratelimit.Keys{Tenant: "t1", IP: "192.0.2.1"}
			for i, want := range []int{2, 1, 0} {
				if d := allow(l, k); !d.Allowed || !d.Checked || d.Remaining != want {
					t.Fatalf("request %d: %+v; want allowed, checked, remaining %d", i+1, d, want)
				}
			}
			d := allow(l, k)
			if d.Allowed || !d.Checked {
				t.Fatalf("4th request: %+v, want refused after a check", d)
			}
			// 1 request per 20 s, in whole seconds.
			if d.RetryAfter < time.Second || d.RetryAfter > 20*time.Second || d.RetryAfter%time.Second != 0 {
				t.Errorf("RetryAfter %v, want whole seconds in 1s..20s", d.RetryAfter)
			}
			if d.Remaining != 0 {
				t.Errorf("remaining %d when refused, want 0", d.Remaining)
			}
			if onError.Load() != 0 {
				t.Error("OnError called without a store failure")
			}
		})
	}
}

func TestOverride(t *testing.T) {
	rules := ratelimit.Rules{
		Limits: ratelimit.Limits{PerTenantPublic: ratelimit.PerMinute(2), PerIP: ratelimit.PerMinute(100)},
		Overrides: map[string]ratelimit.Override{
			"big": {PerTenantPublic: ptr(ratelimit.PerMinute(5))},
			// A zero limit switches the dimension off for the tenant; the per-IP default still applies.
			"unlimited": {PerTenantPublic: ptr(ratelimit.Limit{})},
		},
	}
	for name, l := range stores(t, rules) {
		t.Run(name, func(t *testing.T) {
			if got := allowedCount(t, l, ratelimit.Keys{Tenant: "small", IP: "192.0.2.1"}, 8); got != 2 {
				t.Errorf("default tenant: %d allowed, want 2", got)
			}
			if got := allowedCount(t, l, ratelimit.Keys{Tenant: "big", IP: "192.0.2.1"}, 8); got != 5 {
				t.Errorf("overridden tenant: %d allowed, want 5", got)
			}
			if got := allowedCount(t, l, ratelimit.Keys{Tenant: "unlimited", IP: "192.0.2.1"}, 8); got != 8 {
				t.Errorf("tenant limit switched off: %d allowed, want 8", got)
			}
		})
	}
}

func TestDimensionsIndependent(t *testing.T) {
	rules := ratelimit.Rules{Limits: ratelimit.Limits{
		PerTenantPublic: ratelimit.PerMinute(100), PerIP: ratelimit.PerMinute(2), PerKey: ratelimit.PerMinute(3),
	}}
	for name, l := range stores(t, rules) {
		t.Run(name, func(t *testing.T) {
			for _, k := range []ratelimit.Keys{
				{Tenant: "a", IP: "192.0.2.1"},
				{Tenant: "a", IP: "192.0.2.2"},   // another IP, same tenant
				{Tenant: "b", IP: "192.0.2.1"},   // same IP, another tenant
				{Tenant: "a", IP: "2001:db8::1"}, // IPv6
			} {
				if got := allowedCount(t, l, k, 4); got != 2 {
					t.Errorf("%+v: %d allowed, want 2 (per IP)", k, got)
				}
			}
			// The key limit binds across IPs; another key is unaffected.
			ok := 0
			for i := range 5 {
				if allow(l, ratelimit.Keys{Tenant: "c", IP: "198.51.100." + strconv.Itoa(i), APIKey: "sk_one"}).Allowed {
					ok++
				}
			}
			if ok != 3 {
				t.Errorf("one key from five IPs: %d allowed, want 3 (per key)", ok)
			}
			if d := allow(l, ratelimit.Keys{Tenant: "c", IP: "198.51.100.9", APIKey: "sk_two"}); !d.Allowed {
				t.Errorf("another key: %+v, want allowed", d)
			}
		})
	}
}

func TestTightestRemaining(t *testing.T) {
	rules := ratelimit.Rules{Limits: ratelimit.Limits{PerTenantPublic: ratelimit.PerMinute(2), PerIP: ratelimit.PerMinute(10)}}
	for name, l := range stores(t, rules) {
		t.Run(name, func(t *testing.T) {
			if d := allow(l, ratelimit.Keys{Tenant: "t", IP: "192.0.2.1"}); d.Remaining != 1 {
				t.Errorf("remaining %d, want 1 (the tenant's)", d.Remaining)
			}
		})
	}
}

func TestNoDimensions(t *testing.T) {
	for name, l := range stores(t, ratelimit.Rules{Limits: ratelimit.Limits{PerIP: ratelimit.PerSecond(1)}}) {
		t.Run(name, func(t *testing.T) {
			// No IP given, and no tenant or key limits: nothing to check.
			for i := range 5 {
				if d := allow(l, ratelimit.Keys{Tenant: "t", APIKey: "k"}); !d.Allowed || d.Checked {
					t.Fatalf("request %d: %+v, want allowed without a check", i+1, d)
				}
			}
		})
	}
	// A nil Limiter allows everything.
	var nilLimiter *ratelimit.Limiter
	if d := allow(nilLimiter, ratelimit.Keys{Tenant: "t", IP: "192.0.2.1", APIKey: "k"}); !d.Allowed || d.Checked {
		t.Errorf("nil Limiter: %+v, want allowed without a check", d)
	}
}

func TestWindowReset(t *testing.T) {
	for name, l := range stores(t, ratelimit.Rules{Limits: ratelimit.Limits{PerIP: ratelimit.PerSecond(2)}}) {
		t.Run(name, func(t *testing.T) {
			k := ratelimit.Keys{Tenant: "t", IP: "192.0.2.7"}
			if got := allowedCount(t, l, k, 3); got != 2 {
				t.Fatalf("%d allowed, want 2", got)
			}
			time.Sleep(1100 * time.Millisecond)
			if got := allowedCount(t, l, k, 3); got != 2 {
				t.Errorf("after the period: %d allowed, want 2", got)
			}
		})
	}
}

func TestConcurrentRequestsShareOneBudget(t *testing.T) {
	client := redisClient(t)
	rules := ratelimit.Rules{Limits: ratelimit.Limits{PerTenantPublic: ratelimit.PerMinute(10)}}
	// Two limiters, as two instances behind a load balancer.
	prefix := testPrefix(t, client)
	limiters := []*ratelimit.Limiter{ratelimit.New(client, prefix, rules), ratelimit.New(client, prefix, rules)}
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if allow(limiters[i%2], ratelimit.Keys{Tenant: "shared"}).Allowed {
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
	allow(l, ratelimit.Keys{Tenant: "t", APIKey: "sk_live_supersecret"})
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
		PerTenantPublic: ratelimit.PerSecond(1), PerIP: ratelimit.PerSecond(1), PerKey: ratelimit.PerSecond(1),
	}})
	l.OnError = func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	for range 3 {
		d := allow(l, ratelimit.Keys{Tenant: "t", IP: "192.0.2.1", APIKey: "k"})
		if !d.Allowed {
			t.Fatalf("%+v with Redis down, want allowed (fail open)", d)
		}
		if d.Checked {
			t.Error("decision reports a check that failed")
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

// TestRefusals checks that only counted refusals use up a client's budget: checking the budget counts
// nothing, a client is over it after as many refusals as the default per-IP limit allows, and another
// client is unaffected. Without a per-IP limit there is no budget.
func TestRefusals(t *testing.T) {
	ctx := context.Background()
	for name, l := range stores(t, ratelimit.Rules{Limits: ratelimit.Limits{PerIP: ratelimit.PerMinute(3)}}) {
		t.Run(name, func(t *testing.T) {
			for i := range 10 { // accepted requests: checked, never counted
				if _, over := l.RefusalExhausted(ctx, "192.0.2.1"); over {
					t.Fatalf("check %d without a refusal: over the budget", i)
				}
			}
			for i := range 3 {
				if _, over := l.RefusalExhausted(ctx, "192.0.2.1"); over {
					t.Fatalf("refusal %d within the budget: over", i)
				}
				l.CountRefusal(ctx, "192.0.2.1")
			}
			wait, over := l.RefusalExhausted(ctx, "192.0.2.1")
			if !over {
				t.Fatal("after 3 refusals: not over the budget of 3 per minute")
			}
			if wait != 20*time.Second { // one request of 3 per minute comes back after 20 s
				t.Errorf("retry after %v, want 20s", wait)
			}
			if _, over := l.RefusalExhausted(ctx, "192.0.2.2"); over {
				t.Error("another client is over the budget")
			}
		})
	}
	for name, l := range stores(t, ratelimit.Rules{Limits: ratelimit.Limits{PerTenantPublic: ratelimit.PerMinute(3)}}) {
		t.Run(name+"/no per-IP limit", func(t *testing.T) {
			for range 5 {
				l.CountRefusal(ctx, "192.0.2.1")
			}
			if _, over := l.RefusalExhausted(ctx, "192.0.2.1"); over {
				t.Error("over a budget without a per-IP limit")
			}
		})
	}
	var nilLimiter *ratelimit.Limiter
	nilLimiter.CountRefusal(ctx, "192.0.2.1")
	if _, over := nilLimiter.RefusalExhausted(ctx, "192.0.2.1"); over {
		t.Error("nil Limiter: over a budget")
	}
}

// TestAnonymousFloodSparesSecretKeys floods a tenant with anonymous requests from many addresses: they
// use up the tenant's public bucket, and the tenant's secret-key calls still go through on their own
// bucket (issue 12, point 12).
func TestAnonymousFloodSparesSecretKeys(t *testing.T) {
	rules := ratelimit.Rules{Limits: ratelimit.Limits{
		PerTenantSecret: ratelimit.PerMinute(5), PerTenantPublic: ratelimit.PerMinute(10),
		PerIP: ratelimit.PerMinute(2), PerKey: ratelimit.PerMinute(100),
	}}
	for name, l := range stores(t, rules) {
		t.Run(name, func(t *testing.T) {
			ok := 0
			for i := range 50 {
				if allow(l, ratelimit.Keys{Tenant: "t", IP: "198.51.100." + strconv.Itoa(i)}).Allowed {
					ok++
				}
			}
			if ok != 10 {
				t.Errorf("anonymous flood from 50 addresses: %d allowed, want 10 (the public bucket)", ok)
			}
			// A publishable key is anonymous traffic too.
			if d := allow(l, ratelimit.Keys{Tenant: "t", IP: "203.0.113.1", APIKey: "pk"}); d.Allowed {
				t.Errorf("publishable key after the flood: %+v, want refused", d)
			}
			secret := ratelimit.Keys{Tenant: "t", Secret: true, APIKey: "sk"}
			if got := allowedCount(t, l, secret, 7); got != 5 {
				t.Errorf("secret-key calls after the flood: %d allowed, want 5 (the secret-key bucket)", got)
			}
			// And the other way round: the servers' budget used up leaves the browsers theirs.
			if d := allow(l, ratelimit.Keys{Tenant: "u", Secret: true, APIKey: "sk-u"}); !d.Allowed {
				t.Fatalf("secret-key call of another tenant: %+v", d)
			}
			for range 10 {
				allow(l, ratelimit.Keys{Tenant: "u", Secret: true, APIKey: "sk-u"})
			}
			if d := allow(l, ratelimit.Keys{Tenant: "u", IP: "192.0.2.1"}); !d.Allowed {
				t.Errorf("anonymous request after the secret-key bucket ran out: %+v, want allowed", d)
			}
		})
	}
}

// TestTenantOverridesBothBuckets checks that an override sets each bucket on its own.
func TestTenantOverridesBothBuckets(t *testing.T) {
	rules := ratelimit.Rules{
		Limits: ratelimit.Limits{PerTenantSecret: ratelimit.PerMinute(2), PerTenantPublic: ratelimit.PerMinute(2)},
		Overrides: map[string]ratelimit.Override{
			"big": {PerTenantSecret: ptr(ratelimit.PerMinute(4)), PerTenantPublic: ptr(ratelimit.PerMinute(6))},
		},
	}
	for name, l := range stores(t, rules) {
		t.Run(name, func(t *testing.T) {
			if got := allowedCount(t, l, ratelimit.Keys{Tenant: "big", Secret: true}, 8); got != 4 {
				t.Errorf("secret: %d allowed, want 4", got)
			}
			if got := allowedCount(t, l, ratelimit.Keys{Tenant: "big"}, 8); got != 6 {
				t.Errorf("public: %d allowed, want 6", got)
			}
			if got := allowedCount(t, l, ratelimit.Keys{Tenant: "small", Secret: true}, 8); got != 2 {
				t.Errorf("default secret: %d allowed, want 2", got)
			}
		})
	}
}

// TestIPv6Grouping checks the per-address key: IPv6 addresses in one /64 (the default) share a budget,
// different /64s do not; the prefix is configurable; IPv4 counts per address, also when IPv4-mapped;
// the refusal budget groups the same way.
func TestIPv6Grouping(t *testing.T) {
	for _, prefix := range []int{0, 48, 128} {
		for name, l := range stores(t, ratelimit.Rules{Limits: ratelimit.Limits{PerIP: ratelimit.PerMinute(2)}, IPv6Prefix: prefix}) {
			t.Run(name+"/"+strconv.Itoa(prefix), func(t *testing.T) {
				share := func(a, b string) bool {
					tenant := a + b // a tenant of their own, so each pair starts fresh
					allowedCount(t, l, ratelimit.Keys{Tenant: tenant, IP: a}, 2)
					return !allow(l, ratelimit.Keys{Tenant: tenant, IP: b}).Allowed
				}
				for _, tc := range []struct {
					a, b string
					want bool
				}{
					{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", prefix != 128},
					{"2001:db8:1:2::1", "2001:db8:1:3::1", prefix == 48},
					{"2001:db8:1:2::1", "2001:db8:2:2::1", false},
					{"2001:db8:1:2::1", "2001:db8:1:2::1", true},
					{"fe80::1%eth0", "fe80::2%eth1", prefix != 128},
					{"192.0.2.1", "::ffff:192.0.2.1", true},
					{"192.0.2.1", "192.0.2.2", false},
				} {
					if got := share(tc.a, tc.b); got != tc.want {
						t.Errorf("%s and %s share a budget: %v, want %v", tc.a, tc.b, got, tc.want)
					}
				}
			})
		}
	}
	ctx := context.Background()
	for name, l := range stores(t, ratelimit.Rules{Limits: ratelimit.Limits{PerIP: ratelimit.PerMinute(2)}}) {
		t.Run(name+"/refusals", func(t *testing.T) {
			l.CountRefusal(ctx, "2001:db8:9::1")
			l.CountRefusal(ctx, "2001:db8:9::2")
			if _, over := l.RefusalExhausted(ctx, "2001:db8:9::3"); !over {
				t.Error("refusals from one /64: not over the budget")
			}
			if _, over := l.RefusalExhausted(ctx, "2001:db8:a::1"); over {
				t.Error("another /64 is over the budget")
			}
		})
	}
}

// TestMemoryNotFlushable: a client creating many keys does not evict another client's live counter;
// once the table is full, new clients are not counted per address but the tenant's bucket still is,
// and OnError is told.
func TestMemoryNotFlushable(t *testing.T) {
	l := ratelimit.NewMemory(ratelimit.Rules{Limits: ratelimit.Limits{
		PerIP: ratelimit.PerHour(2), PerTenantPublic: ratelimit.PerHour(1000),
	}}, 100)
	var onError atomic.Int32
	l.OnError = func(error) { onError.Add(1) }
	victim := ratelimit.Keys{Tenant: "t", IP: "192.0.2.1"}
	if got := allowedCount(t, l, victim, 3); got != 2 {
		t.Fatalf("victim: %d allowed, want 2", got)
	}
	for i := range 5000 { // far more keys than the table holds, each live for 30 minutes
		allow(l, ratelimit.Keys{Tenant: "t", IP: "2001:db8:" + strconv.FormatInt(int64(i), 16) + "::1"})
	}
	if d := allow(l, victim); d.Allowed {
		t.Errorf("victim after 5,000 other keys: %+v, want still refused", d)
	}
	if onError.Load() == 0 {
		t.Error("a full table did not tell OnError")
	}
	// The attacker's requests beyond the table still counted against the tenant's public bucket: 2
	// (victim) + 5,000 counted there, so it is exhausted.
	if d := allow(l, ratelimit.Keys{Tenant: "t", IP: "2001:db8:ffff::1"}); d.Allowed || !d.Checked {
		t.Errorf("a new client of the flooded tenant: %+v, want refused by the tenant bucket", d)
	}
	// Another tenant's bucket is tracked even with the table full.
	other := ratelimit.NewMemory(ratelimit.Rules{Limits: ratelimit.Limits{PerIP: ratelimit.PerHour(1), PerTenantPublic: ratelimit.PerHour(3)}}, 1)
	allow(other, ratelimit.Keys{Tenant: "x", IP: "192.0.2.1"}) // fills the table of one
	if got := allowedCount(t, other, ratelimit.Keys{Tenant: "y", IP: "192.0.2.2"}, 5); got != 3 {
		t.Errorf("full table: %d allowed, want 3 (the tenant bucket)", got)
	}
}
