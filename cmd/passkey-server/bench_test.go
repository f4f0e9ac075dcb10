package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
)

// The benchmarks measure the full in-process HTTP path of one ceremony call (app.Test: Fiber, the
// middleware, the tenant cache, the ceremony, the database and the sessions in the real Redis), on
// PostgreSQL and on SQLite. What a call needs first (an initialize, the authenticator's response) is
// made with the timer stopped.
//
//	go test -run '^$' -bench . -benchmem ./cmd/passkey-server/

// tbRedisSessions is testRedisSessions for any testing.TB.
func tbRedisSessions(tb testing.TB) *db.RedisSessions {
	tb.Helper()
	ctx := context.Background()
	client, err := db.OpenRedis(ctx, dbtest.RedisURL())
	if err != nil {
		tb.Fatalf("Redis at %s does not answer (run scripts/test.sh, which starts it): %v", dbtest.RedisURL(), err)
	}
	prefix := fmt.Sprintf("passkeybench:%s:", uuid.NewString())
	tb.Cleanup(func() {
		iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		client.Close()
	})
	return db.NewRedisSessions(client, prefix)
}

// benchEachDB builds one instance per database, with sessions in Redis, and runs fn on each as the
// sub-benchmarks "postgres" and "sqlite".
func benchEachDB(b *testing.B, fn func(b *testing.B, rp *tbTenant)) {
	for _, c := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{{"postgres", dbtest.Postgres}, {"sqlite", dbtest.SQLite}} {
		rp := newTBServer(b, c.open(b), tbRedisSessions(b)).createTenant(b, 0)
		b.Run(c.name, func(b *testing.B) { fn(b, rp) })
	}
}

// BenchmarkLoginFinalize measures POST /{tenant}/login/finalize of a known-user login: parse, consume
// the session in Redis, load the user and credentials, verify the assertion, record the login, sign
// the token.
func BenchmarkLoginFinalize(b *testing.B) {
	benchEachDB(b, func(b *testing.B, rp *tbTenant) {
		a := authenticatortest.New(authenticatortest.Options{})
		rp.register(b, a, "bench-user")
		path := "/" + rp.id + "/login/finalize"
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			body, err := a.Get(rp.loginOptions(b, "bench-user"), tbOrigin)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if status, answer := tbCall(b, rp.s.public, "POST", path, body); status != 200 {
				b.Fatalf("status %d: %s", status, answer)
			}
		}
	})
}

// BenchmarkLoginInitialize measures POST /{tenant}/login/initialize: for a known user (secret key,
// user and credentials from the database) and discoverable (no key, no database), each storing a
// session in Redis.
func BenchmarkLoginInitialize(b *testing.B) {
	benchEachDB(b, func(b *testing.B, rp *tbTenant) {
		rp.register(b, authenticatortest.New(authenticatortest.Options{}), "bench-user")
		path := "/" + rp.id + "/login/initialize"
		for _, c := range []struct {
			name    string
			body    []byte
			headers []string
		}{
			{"user", []byte(`{"user_id":"bench-user"}`), []string{"apiKey", rp.secret}},
			{"discoverable", nil, nil},
		} {
			b.Run(c.name, func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					if status, answer := tbCall(b, rp.s.public, "POST", path, c.body, c.headers...); status != 200 {
						b.Fatalf("status %d: %s", status, answer)
					}
				}
			})
		}
	})
}

// BenchmarkRegistrationFinalize measures POST /{tenant}/registration/finalize for a new user: parse,
// consume the session, verify the attestation ("none"), store the credential, sign the token.
func BenchmarkRegistrationFinalize(b *testing.B) {
	benchEachDB(b, func(b *testing.B, rp *tbTenant) {
		a := authenticatortest.New(authenticatortest.Options{})
		path := "/" + rp.id + "/registration/finalize"
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			body, err := a.Create(rp.registrationOptions(b, "bench-"+uuid.NewString()), tbOrigin)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if status, answer := tbCall(b, rp.s.public, "POST", path, body); status != 200 {
				b.Fatalf("status %d: %s", status, answer)
			}
		}
	})
}
