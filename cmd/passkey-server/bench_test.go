package main

import (
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/webhooks"
)

// The benchmarks measure the full in-process HTTP path of one ceremony call (app.Test: Fiber, the
// middleware, the tenant cache, the ceremony, the database and the sessions in the real Redis), on
// PostgreSQL and on SQLite. What a call needs first (an initialize, the authenticator's response) is
// made with the timer stopped. The timed calls go through send, not call: checking a response against
// openapi.yaml is the test's work, not the server's.
//
//	go test -run '^$' -bench . -benchmem ./cmd/passkey-server/

// benchEachDB builds one instance per database and runs fn with a new tenant of it as the
// sub-benchmarks "postgres" and "sqlite".
func benchEachDB(b *testing.B, fn func(b *testing.B, r *rp)) {
	for _, c := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{{"postgres", dbtest.Postgres}, {"sqlite", dbtest.SQLite}} {
		s := newTestServer(b, c.open(b), newTestSealer(b))
		b.Run(c.name, func(b *testing.B) { fn(b, newRP(b, s, "example.com")) })
	}
}

// expectOK fails b unless resp is a 200.
func expectOK(b *testing.B, resp *http.Response) {
	b.Helper()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d: %s", resp.StatusCode, readAll(b, resp))
	}
}

// BenchmarkLoginFinalize measures POST /{tenant}/login/finalize of a known-user login: parse, consume
// the session in Redis, load the user and credentials, verify the assertion, record the login, sign
// the token.
func BenchmarkLoginFinalize(b *testing.B) {
	benchEachDB(b, func(b *testing.B, r *rp) { benchLoginFinalize(b, r, "bench-user") })
}

// BenchmarkLoginFinalizeDiscoverable is BenchmarkLoginFinalize of a discoverable login: the user comes
// from the assertion's user handle.
func BenchmarkLoginFinalizeDiscoverable(b *testing.B) {
	benchEachDB(b, func(b *testing.B, r *rp) { benchLoginFinalize(b, r, "") })
}

// benchLoginFinalize times login finalizes of r's user bench-user, initialized with userID (empty: a
// discoverable login).
func benchLoginFinalize(b *testing.B, r *rp, userID string) {
	a := authenticatortest.New(authenticatortest.Options{})
	r.register(a, "bench-user")
	path := "/" + r.id + "/login/finalize"
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		body, err := a.Get(r.loginOptions(userID), testOrigin)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		_, resp := send(b, r.s.public, "POST", path, body)
		expectOK(b, resp)
	}
}

// BenchmarkLoginFinalizeWebhook is BenchmarkLoginFinalize in a tenant with a webhook endpoint
// subscribed to login.succeeded: the login's write and its delivery (a row and a River job) commit in
// one transaction (passkey.Bus.Commit). The deliveries are sent meanwhile, to a receiver on loopback.
func BenchmarkLoginFinalizeWebhook(b *testing.B) {
	for _, c := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{{"postgres", dbtest.Postgres}, {"sqlite", dbtest.SQLite}} {
		s := newTestServer(b, c.open(b), newTestSealer(b), fastWebhooks)
		b.Run(c.name, func(b *testing.B) {
			r := newRP(b, s, "example.com")
			s.createWebhook(r.id, newReceiver(b, nil), webhooks.LoginSucceeded)
			benchLoginFinalize(b, r, "bench-user")
		})
	}
}

// BenchmarkLoginInitialize measures POST /{tenant}/login/initialize: for a known user (secret key,
// user and credentials from the database) and discoverable (no key, no database), each storing a
// session in Redis.
func BenchmarkLoginInitialize(b *testing.B) {
	benchEachDB(b, func(b *testing.B, r *rp) {
		r.register(authenticatortest.New(authenticatortest.Options{}), "bench-user")
		path := "/" + r.id + "/login/initialize"
		for _, c := range []struct {
			name    string
			body    any
			headers []string
		}{
			{"user", `{"user_id":"bench-user"}`, r.keyHeaders(true)},
			{"discoverable", nil, nil},
		} {
			b.Run(c.name, func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					_, resp := send(b, r.s.public, "POST", path, c.body, c.headers...)
					expectOK(b, resp)
				}
			})
		}
	})
}

// BenchmarkRegistrationFinalize measures POST /{tenant}/registration/finalize for a new user: parse,
// consume the session, verify the attestation ("none"), store the credential, sign the token.
func BenchmarkRegistrationFinalize(b *testing.B) {
	benchEachDB(b, func(b *testing.B, r *rp) {
		a := authenticatortest.New(authenticatortest.Options{})
		path := "/" + r.id + "/registration/finalize"
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			body, err := a.Create(r.registrationOptions("bench-"+uuid.NewString()), testOrigin)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			_, resp := send(b, r.s.public, "POST", path, body)
			expectOK(b, resp)
		}
	})
}
