package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
)

// TestDiscoverableLoginTellsNoUsers: without any API key, an attacker can sign a discoverable login
// finalize with a key of their own for any user handle. The answer must not say whether a user with
// that handle exists (issue 12, point 11): an existing and a missing handle give the same status and
// byte-identical bodies apart from the request id.
func TestDiscoverableLoginTellsNoUsers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		r.register(authenticatortest.New(authenticatortest.Options{}), "alice@example.com")

		// The attacker's key: a credential for the RP ID that the server never registered.
		attacker := authenticatortest.New(authenticatortest.Options{})
		if _, err := attacker.Create(r.registrationOptions("attacker"), testOrigin); err != nil {
			t.Fatal(err)
		}
		answer := func(handle string) (int, []byte) {
			t.Helper()
			body, err := attacker.GetWith(r.loginOptions(""), testOrigin, authenticatortest.Tamper{UserHandle: []byte(handle)})
			if err != nil {
				t.Fatal(err)
			}
			resp := r.loginFinalize(body)
			var m map[string]any
			if err := json.Unmarshal(readAll(t, resp), &m); err != nil {
				t.Fatal(err)
			}
			if m["request_id"] == nil {
				t.Fatalf("error body without request_id: %v", m)
			}
			delete(m, "request_id")
			b, _ := json.Marshal(m)
			return resp.StatusCode, b
		}
		existingStatus, existing := answer("alice@example.com")
		missingStatus, missing := answer("nobody@example.com")
		if existingStatus != 401 || missingStatus != existingStatus || !bytes.Equal(existing, missing) {
			t.Fatalf("existing user: %d %s\nmissing user: %d %s", existingStatus, existing, missingStatus, missing)
		}
	})
}

// TestLoginDuringDatabaseOutage: a valid login finalize while the database cannot answer is a server
// error, never a 4xx (issue 12, point 1), for a named user and for a discoverable login.
func TestLoginDuringDatabaseOutage(t *testing.T) {
	for _, userID := range []string{"alice", ""} {
		t.Run("user="+userID, func(t *testing.T) {
			d := dbtest.SQLite(t)
			s := newTestServer(t, d, newTestSealer(t))
			r := newRP(t, s, "example.com")
			key := authenticatortest.New(authenticatortest.Options{})
			r.register(key, "alice")
			body, err := key.Get(r.loginOptions(userID), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			// The tenant is cached by the directory; the database closes before the finalize.
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			// A closed pool is a database that cannot answer: 503, never a failed login.
			expectStatus(t, r.loginFinalize(body), 503, "service_unavailable")
		})
	}
}
