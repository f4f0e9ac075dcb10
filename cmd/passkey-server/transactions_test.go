package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/transactions"
)

func (r *rp) txPath(p string) string {
	if r.keyScoped {
		return "/transaction" + p
	}
	return "/" + r.id + "/transaction" + p
}

// txInit starts a transaction and returns the response.
func (r *rp) txInit(user, id string, data string) []byte {
	r.t.Helper()
	body := fmt.Sprintf(`{"user_id":%q,"transaction_id":%q,"transaction_data":%s}`, user, id, data)
	resp := r.post(r.txPath("/initialize"), body, true)
	expectStatus(r.t, resp, 200, "")
	return readAll(r.t, resp)
}

func (r *rp) txList(user string) []httpapi.TransactionResponse {
	r.t.Helper()
	resp := r.get(r.txPath("/" + user))
	expectStatus(r.t, resp, 200, "")
	return decode[[]httpapi.TransactionResponse](r.t, resp)
}

func TestTransactions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		eachFamily(t, s, "example.com", func(t *testing.T, r *rp) {
			// A non-resident key: the user comes from the session, not from a user handle.
			key := authenticatortest.New(authenticatortest.Options{Attachment: authenticatortest.CrossPlatform})
			cfg := validConfig("example.com")
			cfg["webauthn"].(map[string]any)["resident_key_requirement"] = "discouraged"
			expectStatus(t, s.adminCall("PUT", "/tenants/"+r.id+"/config", cfg), 204, "")
			_, credID := r.register(key, "payer")
			if key.Credentials()[0].Resident {
				t.Fatal("want a non-resident credential")
			}

			data := `{"to": "DE89 3704 0044 0532 0130 00", "amount": 12345678901234567890.10, "currency": "EUR", "note": "<b>&</b> \u00e9"}`
			canonical := `{"amount":12345678901234567890.10,"currency":"EUR","note":"<b>&</b> é","to":"DE89 3704 0044 0532 0130 00"}`
			options := r.txInit("payer", "tx-1", data)

			// The challenge binds the data: its last 32 bytes are SHA-256(transaction_id ‖ canonical data).
			challenge, err := base64.RawURLEncoding.DecodeString(challengeOf(t, options))
			if err != nil || len(challenge) != 64 {
				t.Fatalf("challenge %d bytes: %v", len(challenge), err)
			}
			binding := sha256.Sum256([]byte("tx-1" + canonical))
			if !bytes.Equal(challenge[32:], binding[:]) {
				t.Fatal("challenge does not bind the canonical data")
			}
			if list := r.txList("payer"); len(list) != 1 || list[0].Status != transactions.StatusPending || list[0].Data != canonical {
				t.Fatalf("pending transaction %+v", list)
			}

			assertion, err := key.Get(options, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			// A transaction assertion is no login.
			expectStatus(t, r.loginFinalize(assertion), 401, "session_not_found")
			resp := r.post(r.txPath("/finalize"), assertion, true)
			expectStatus(t, resp, 200, "")
			c := r.claims(decode[httpapi.TokenResponse](t, resp).Token)
			dataHash := sha256.Sum256([]byte(canonical))
			if c["trans"] != "tx-1" || c["trans_hash"] != base64.RawURLEncoding.EncodeToString(dataHash[:]) || c["ceremony"] != "transaction" || c["sub"] != "payer" || c["cred"] != credID {
				t.Fatalf("transaction claims %v", c)
			}
			expectStatus(t, r.post(r.txPath("/finalize"), assertion, true), 401, "transaction_not_found")
			list := r.txList("payer")
			if len(list) != 1 || list[0].Status != transactions.StatusConfirmed || list[0].CredentialID == nil || *list[0].CredentialID != credID || list[0].ConfirmedAt == nil {
				t.Fatalf("confirmed transaction %+v", list)
			}
			// Hanko's clients name the user by our internal id.
			payer, err := s.ceremonies.User(t.Context(), mustSnapshot(t, s, r.id), "payer")
			if err != nil {
				t.Fatal(err)
			}
			if internal := r.txList(payer.Key.String()); len(internal) != 1 || internal[0].Identifier != "tx-1" {
				t.Fatalf("listing by internal user id: %+v", internal)
			}

			// Reuse of the id, in any state, is a 409.
			expectStatus(t, r.post(r.txPath("/initialize"), map[string]any{"user_id": "payer", "transaction_id": "tx-1", "transaction_data": map[string]any{"a": 1}}, true), 409, "transaction_exists")

			// Tampering, another user's credential, and failure recording.
			options = r.txInit("payer", "tx-2", `{"amount":"1.00"}`)
			bad, err := key.GetWith(options, testOrigin, authenticatortest.Tamper{Origin: "https://evil.example.org"})
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.post(r.txPath("/finalize"), bad, true), 401, "assertion_failed")
			good, _ := key.Get(options, testOrigin)
			expectStatus(t, r.post(r.txPath("/finalize"), good, true), 401, "transaction_not_found")
			other := authenticatortest.New(authenticatortest.Options{})
			r.register(other, "someone-else")
			options = r.txInit("payer", "tx-3", `{"amount":"2.00"}`)
			forged := strings.Replace(string(options), `"allowCredentials":[`, `"allowCredentials":[{"type":"public-key","id":"`+other.Credentials()[0].ID+`"},`, 1)
			stolen, err := other.Get([]byte(forged), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.post(r.txPath("/finalize"), stolen, true), 401, "assertion_failed")
			byID := map[string]transactions.Status{}
			for _, tx := range r.txList("payer") {
				byID[tx.Identifier] = tx.Status
			}
			if byID["tx-2"] != transactions.StatusFailed || byID["tx-3"] != transactions.StatusFailed || byID["tx-1"] != transactions.StatusConfirmed {
				t.Fatalf("statuses %v", byID)
			}

			// Expired.
			options = r.txInit("payer", "tx-4", `{"anything": [1]}`)
			expireSessions(t, s, r.id)
			late, _ := key.Get(options, testOrigin)
			expectStatus(t, r.post(r.txPath("/finalize"), late, true), 401, "session_not_found")

			// A login assertion is no transaction confirmation.
			loginAssertion, err := key.Get(r.loginOptions("payer"), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.post(r.txPath("/finalize"), loginAssertion, true), 401, "transaction_not_found")

			// Concurrent finalize of one transaction: exactly one wins.
			options = r.txInit("payer", "tx-5", `{"amount":"5.00"}`)
			assertion, _ = key.Get(options, testOrigin)
			var wg sync.WaitGroup
			statuses := make(chan int, 10)
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					statuses <- r.post(r.txPath("/finalize"), assertion, true).StatusCode
				}()
			}
			wg.Wait()
			close(statuses)
			ok := 0
			for st := range statuses {
				if st == 200 {
					ok++
				} else if st != 401 {
					t.Errorf("status %d", st)
				}
			}
			if ok != 1 {
				t.Fatalf("%d concurrent finalizes of one transaction succeeded", ok)
			}
		})
	})
}

func TestTransactionInputErrors(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		r.register(authenticatortest.New(authenticatortest.Options{}), "payer")
		r.s.ceremonies.BeginRegistration(t.Context(), mustSnapshot(t, s, r.id), credentials.Registration, credentials.RegistrationRequest{AppUserID: "nokeys", Username: "n"})
		init := r.txPath("/initialize")
		cases := []struct {
			name   string
			body   string
			status int
			code   string
		}{
			{"no user", `{"transaction_id":"a","transaction_data":{"x":1}}`, 400, "invalid_request"},
			{"no id", `{"user_id":"payer","transaction_data":{"x":1}}`, 400, "invalid_request"},
			{"id too long", `{"user_id":"payer","transaction_id":"` + strings.Repeat("i", 129) + `","transaction_data":{"x":1}}`, 400, "invalid_request"},
			{"no data", `{"user_id":"payer","transaction_id":"a"}`, 400, "invalid_request"},
			{"zero data", `{"user_id":"payer","transaction_id":"a","transaction_data":0}`, 400, "invalid_request"},
			{"duplicate member", `{"user_id":"payer","transaction_id":"a","transaction_data":{"x":1,"x":2}}`, 400, "invalid_request"},
			{"too deep", `{"user_id":"payer","transaction_id":"a","transaction_data":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`, 400, "invalid_request"},
			{"array data", `{"user_id":"payer","transaction_id":"a","transaction_data":[1,2]}`, 400, "invalid_request"},
			{"string data", `{"user_id":"payer","transaction_id":"a","transaction_data":"pay 100 EUR"}`, 400, "invalid_request"},
			{"lone surrogate", `{"user_id":"payer","transaction_id":"a","transaction_data":{"to":"\ud800"}}`, 400, "invalid_body"},
			{"too large", `{"user_id":"payer","transaction_id":"a","transaction_data":{"x":"` + strings.Repeat("y", 40<<10) + `"}}`, 413, "transaction_data_too_large"},
			{"unknown user", `{"user_id":"ghost","transaction_id":"a","transaction_data":{"x":1}}`, 404, "user_not_found"},
			{"user without credentials", `{"user_id":"nokeys","transaction_id":"a","transaction_data":{"x":1}}`, 400, "no_credentials"},
			{"broken json", `{"user_id":`, 400, "invalid_body"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				expectStatus(t, r.post(init, c.body, true), c.status, c.code)
			})
		}
		expectStatus(t, r.post(init, `{"user_id":"payer","transaction_id":"a","transaction_data":{"x":1}}`, false), 401, "api_key_missing")
		expectStatus(t, r.post(r.txPath("/finalize"), `{}`, true), 400, "invalid_credential_response")
		// Nothing was stored by the rejected calls: "a" is still free.
		expectStatus(t, r.post(init, `{"user_id":"payer","transaction_id":"a","transaction_data":{"x":1}}`, true), 200, "")
		if got := r.txList("nobody-at-all"); len(got) != 0 {
			t.Fatalf("unknown user has %d transactions", len(got))
		}
	})
}

// TestTransactionExpiry checks, through the HTTP API, a transaction whose time ran out while its
// ceremony session is still there: the list shows it expired and its finalize is refused, and it stays
// expired (not failed) afterwards.
func TestTransactionExpiry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		key := authenticatortest.New(authenticatortest.Options{})
		r.register(key, "payer")
		options := r.txInit("payer", "late-1", `{"amount":"5.00"}`)
		// The transaction's own deadline passes; the session (its own TTL in Redis) is left alone.
		past := time.Now().Add(-time.Minute).UTC()
		query, arg := `UPDATE transactions SET expires_at = $1 WHERE identifier = 'late-1'`, any(past)
		if d.Dialect() == "sqlite" { // Bun keeps SQLite times as text in this form
			query, arg = `UPDATE transactions SET expires_at = ? WHERE identifier = 'late-1'`, past.Format("2006-01-02 15:04:05.999999-07:00")
		}
		if _, err := d.SQL().Exec(query, arg); err != nil {
			t.Fatal(err)
		}
		if got := r.txList("payer"); len(got) != 1 || got[0].Status != transactions.StatusExpired {
			t.Fatalf("list %+v, want one expired transaction", got)
		}
		assertion, err := key.Get(options, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		e := expectStatus(t, r.post(r.txPath("/finalize"), assertion, true), 401, "transaction_not_found")
		if !strings.Contains(e.Details, "expired") {
			t.Errorf("details %q, want the transaction is expired", e.Details)
		}
		if got := r.txList("payer"); got[0].Status != transactions.StatusExpired || got[0].ConfirmedAt != nil {
			t.Fatalf("after the refused finalize: %+v", got[0])
		}
	})
}
