package main

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/ratelimit"
)

// TestRateLimitBuckets runs the tenant buckets and the IPv6 grouping through HTTP, with the Redis
// limiter and the in-process one (issue 12, point 12): anonymous requests from many addresses use up
// the tenant's public bucket and get 429, while its secret-key calls, even from those addresses, go
// through on their own bucket; two IPv6 addresses in one /64 share a per-address budget, two /64s do not.
func TestRateLimitBuckets(t *testing.T) {
	rules := ratelimit.Rules{Limits: ratelimit.Limits{
		PerTenantSecret: ratelimit.PerMinute(20), PerTenantPublic: ratelimit.PerMinute(10),
		PerIP: ratelimit.PerMinute(2), PerKey: ratelimit.PerMinute(100),
	}}
	limiters := map[string]func(t *testing.T) *ratelimit.Limiter{
		"redis": func(t *testing.T) *ratelimit.Limiter {
			client, err := db.OpenRedis(context.Background(), dbtest.RedisURL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { client.Close() })
			return ratelimit.New(client, fmt.Sprintf("passkeytest:rlb:%d:", time.Now().UnixNano()), rules)
		},
		"memory": func(*testing.T) *ratelimit.Limiter { return ratelimit.NewMemory(rules, 0) },
	}
	for name, limiter := range limiters {
		t.Run(name, func(t *testing.T) {
			s := newTestServer(t, dbtest.SQLite(t), newTestSealer(t), func(o *testOptions) {
				o.HTTP.Limiter = limiter(t)
				proxies, _ := httpapi.ParseTrustedProxies([]string{"0.0.0.0"}) // app.Test's peer is 0.0.0.0
				o.HTTP.Proxies = proxies
			})
			a, aSecret := s.createTenant("example.com")
			b, _ := s.createTenant("example.com")
			jwks := func(tenant, ip string, headers ...string) int {
				return call(t, s.public, "GET", "/"+tenant+"/.well-known/jwks.json", nil, append([]string{"X-Forwarded-For", ip}, headers...)...).StatusCode
			}

			// An anonymous flood from 30 addresses, one request each: the public bucket allows 10.
			ok := 0
			for i := range 30 {
				switch st := jwks(a, "198.51.100."+strconv.Itoa(i)); st {
				case 200:
					ok++
				case 429:
				default:
					t.Fatalf("anonymous request %d: %d", i, st)
				}
			}
			if ok != 10 {
				t.Errorf("anonymous flood: %d allowed, want 10 (the public bucket)", ok)
			}
			expectStatus(t, call(t, s.public, "GET", "/"+a+"/.well-known/jwks.json", nil, "X-Forwarded-For", "203.0.113.50"), 429, "rate_limited")
			// A wrong key is anonymous traffic.
			if st := jwks(a, "203.0.113.51", "apiKey", "sk_made_up"); st != 429 {
				t.Errorf("wrong key after the flood: %d, want 429", st)
			}
			// The tenant's servers, with the secret key, from the flooding addresses too.
			for i := range 5 {
				if st := jwks(a, "198.51.100."+strconv.Itoa(i), "apiKey", aSecret); st != 200 {
					t.Fatalf("secret-key call %d after the anonymous flood: %d", i, st)
				}
			}
			// Another tenant is untouched.
			if st := jwks(b, "198.51.100.1"); st != 200 {
				t.Errorf("another tenant: %d", st)
			}

			// IPv6: two addresses of one /64 share the per-address budget of 2; another /64 has its own.
			for i, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2:abcd::7"} {
				if st := jwks(b, ip); st != 200 {
					t.Fatalf("IPv6 request %d: %d", i, st)
				}
			}
			expectStatus(t, call(t, s.public, "GET", "/"+b+"/.well-known/jwks.json", nil, "X-Forwarded-For", "2001:db8:1:2:ffff::1"), 429, "rate_limited")
			if st := jwks(b, "2001:db8:1:3::1"); st != 200 {
				t.Errorf("another /64: %d, want 200", st)
			}
			// IPv4 per address, also when written IPv4-mapped.
			jwks(b, "192.0.2.10")
			jwks(b, "::ffff:192.0.2.10")
			if st := jwks(b, "192.0.2.10"); st != 429 {
				t.Errorf("IPv4 after two requests, one IPv4-mapped: %d, want 429", st)
			}
			if st := jwks(b, "192.0.2.11"); st != 200 {
				t.Errorf("next IPv4 address: %d, want 200", st)
			}
		})
	}
}
