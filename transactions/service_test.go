package transactions_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/mfa"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
)

// origin is the tenant's only origin (dbtest.Tenant); its RP ID is example.com.
const origin = dbtest.Origin

// timeout is the tenant's ceremony timeout: a transaction expires this long after initialize.
const timeout = 60 * time.Second

// clock is the transaction service's clock, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// env is one tenant on a fresh SQLite database with the credentials and transaction services, whose
// events are recorded. Only the transaction service runs on the test's clock.
type env struct {
	t      *testing.T
	ctx    context.Context
	snap   *tenant.Snapshot
	creds  *credentials.Service
	txs    *transactions.Service
	clock  *clock
	events *dbtest.Events
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	d := dbtest.SQLite(t)
	snap := dbtest.Tenant(t, d, func(c *tenant.Config) { c.WebAuthn.Timeout = int(timeout / time.Millisecond) })
	rec := &dbtest.Events{}
	creds := dbtest.Credentials(d, rec)
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	txs := transactions.NewService(db.NewTransactionStore(d), creds, clk.now)
	return &env{t: t, ctx: ctx, snap: snap, creds: creds, txs: txs, clock: clk, events: rec}
}

// with returns e for a subtest: its helpers fail t.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func mustJSON(t *testing.T, v any) []byte { return dbtest.JSON(t, v) }

// register runs a whole registration of the ceremony with key and returns the credential id.
func (e *env) register(c credentials.Ceremony, key *authenticatortest.Authenticator, userID string) string {
	e.t.Helper()
	creation, err := e.creds.BeginRegistration(e.ctx, e.snap, c, credentials.RegistrationRequest{AppUserID: userID, Username: userID})
	if err != nil {
		e.t.Fatalf("BeginRegistration: %v", err)
	}
	att, err := key.Create(mustJSON(e.t, creation), origin)
	if err != nil {
		e.t.Fatalf("authenticator Create: %v", err)
	}
	res, err := e.creds.FinishRegistration(e.ctx, e.snap, c, att)
	if err != nil {
		e.t.Fatalf("FinishRegistration: %v", err)
	}
	e.events.Take()
	return res.Credential.ID
}

// begin initializes a transaction that must succeed.
func (e *env) begin(userID, txID, data string) *protocol.CredentialAssertion {
	e.t.Helper()
	a, err := e.txs.Begin(e.ctx, e.snap, transactions.InitRequest{AppUserID: userID, TransactionID: txID, TransactionData: json.RawMessage(data)})
	if err != nil {
		e.t.Fatalf("Begin(%q): %v", txID, err)
	}
	return a
}

// assert answers an assertion's options with key, forged by tamper.
func (e *env) assert(key *authenticatortest.Authenticator, a *protocol.CredentialAssertion, tamper authenticatortest.Tamper) []byte {
	e.t.Helper()
	body, err := key.GetWith(mustJSON(e.t, a), origin, tamper)
	if err != nil {
		e.t.Fatalf("authenticator Get: %v", err)
	}
	return body
}

// transaction returns the user's transaction with the identifier, from List.
func (e *env) transaction(userID, txID string) transactions.Transaction {
	e.t.Helper()
	list, _, err := e.txs.List(e.ctx, e.snap, userID, passkey.Page{Number: 1, Size: 100})
	if err != nil {
		e.t.Fatalf("List: %v", err)
	}
	for _, tx := range list {
		if tx.Identifier == txID {
			return tx
		}
	}
	e.t.Fatalf("transaction %q of %q not listed", txID, userID)
	return transactions.Transaction{}
}

// event is a transaction ceremony step's event as the service emits it.
func (e *env) event(typ passkey.EventType, step, appUserID, txID string, err error) passkey.Event {
	return passkey.Event{Type: typ, TenantID: e.snap.ID, Ceremony: "transaction", Step: step, AppUserID: appUserID, TransactionID: txID, Err: err}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestTransactionSigning(t *testing.T) {
	e := newEnv(t)
	key := authenticatortest.New(authenticatortest.Options{})
	credID := e.register(credentials.Registration, key, "alice")
	// alice's MFA credential cannot sign: it is never offered.
	e.register(mfa.Registration, authenticatortest.New(authenticatortest.Options{}), "alice")

	cases := []struct {
		name, id, data string
		// canonical is the canonical data (RFC 8785, numbers as written) the challenge and token bind.
		canonical string
	}{
		{"payment", "pay-1", `{ "to": "DE89 3704 0044", "amount": 12.30, "currency": "EUR" }`, `{"amount":12.30,"currency":"EUR","to":"DE89 3704 0044"}`},
		{"nested", "addr-1", "{\"b\":{\"y\":[1, 2e3],\"x\":\"\\u00e9\\n<>\"},\n\"a\":null,\"big\":12345678901234567890}",
			`{"a":null,"b":{"x":"é\n<>","y":[1,2e3]},"big":12345678901234567890}`},
		{"utf16 order", "ünï-ü", `{"ﬁ":true,"😀":false}`, `{"😀":false,"ﬁ":true}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			assertion := e.begin("alice", tc.id, tc.data)
			dbtest.CheckEvents(t, e.events.Take(), e.event(passkey.CeremonyStarted, passkey.StepInitialize, "alice", tc.id, nil))

			// The challenge is 32 random bytes and SHA-256(transaction_id ‖ canonical data).
			binding := sha256.Sum256([]byte(tc.id + tc.canonical))
			challenge := []byte(assertion.Response.Challenge)
			if len(challenge) != 64 || !slices.Equal(challenge[32:], binding[:]) {
				t.Errorf("challenge %x does not end with SHA-256(id ‖ %s) %x", challenge, tc.canonical, binding)
			}
			if allow := assertion.Response.AllowedCredentials; len(allow) != 1 || b64(allow[0].CredentialID) != credID {
				t.Errorf("allowCredentials = %v, want only the passkey %s", allow, credID)
			}
			if pending := e.transaction("alice", tc.id); pending.Status != transactions.StatusPending || pending.Data != tc.canonical ||
				!pending.ExpiresAt.Equal(e.clock.now().Add(timeout)) {
				t.Errorf("pending transaction = %+v, want pending, data %s, expiring after the timeout", pending, tc.canonical)
			}

			token, tx, err := e.txs.Finish(e.ctx, e.snap, e.assert(key, assertion, authenticatortest.Tamper{}))
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			if tx.Identifier != tc.id || tx.AppUserID != "alice" || tx.Data != tc.canonical {
				t.Errorf("Finish returned transaction %+v", tx)
			}
			dataHash := sha256.Sum256([]byte(tc.canonical))
			c := dbtest.Claims(t, token)
			want := map[string]any{"ceremony": "transaction", "trans": tc.id, "trans_hash": b64(dataHash[:]), "sub": "alice", "cred": credID,
				"amr": []any{"hwk", "user"}, "aud": []any{"example.com"}, "iss": "http://localhost:8000/" + e.snap.ID.String()}
			for k, v := range want {
				if !reflect.DeepEqual(c[k], v) {
					t.Errorf("claim %s = %v, want %v", k, c[k], v)
				}
			}
			succeeded := e.event(passkey.CeremonySucceeded, passkey.StepFinalize, "alice", tc.id, nil)
			succeeded.CredentialID = credID // the credential that signed
			dbtest.CheckEvents(t, e.events.Take(), succeeded)

			done := e.transaction("alice", tc.id)
			if done.Status != transactions.StatusConfirmed || done.CredentialID == nil || *done.CredentialID != credID || done.ConfirmedAt == nil {
				t.Errorf("finished transaction = %+v, want confirmed with %s", done, credID)
			}
		})
	}
}

func TestTransactionInitializeFailures(t *testing.T) {
	e := newEnv(t)
	e.register(credentials.Registration, authenticatortest.New(authenticatortest.Options{}), "alice")
	e.register(mfa.Registration, authenticatortest.New(authenticatortest.Options{}), "mfa-only")
	e.begin("alice", "taken", `{"a":1}`)
	e.events.Take()

	cases := []struct {
		name    string
		req     transactions.InitRequest
		want    error
		code    string
		details string
	}{
		{"nothing", transactions.InitRequest{}, passkey.ErrInvalidRequest, "invalid_request",
			"user_id is a required field and transaction_id is a required field and transaction_data is a required field"},
		{"null data", transactions.InitRequest{AppUserID: "alice", TransactionID: "t", TransactionData: json.RawMessage(" null ")},
			passkey.ErrInvalidRequest, "invalid_request", "transaction_data is a required field"},
		{"array data", transactions.InitRequest{AppUserID: "alice", TransactionID: "t", TransactionData: json.RawMessage(`[1]`)},
			passkey.ErrInvalidRequest, "invalid_request", "transaction_data must be a JSON object"},
		{"duplicate member", transactions.InitRequest{AppUserID: "alice", TransactionID: "t", TransactionData: json.RawMessage(`{"a":1,"a":2}`)},
			passkey.ErrInvalidRequest, "invalid_request", `transaction_data has the member "a" twice`},
		{"unpaired surrogate", transactions.InitRequest{AppUserID: "alice", TransactionID: "t", TransactionData: json.RawMessage(`{"a":"\ud800"}`)},
			passkey.ErrInvalidRequest, "invalid_request", "transaction_data has an unpaired UTF-16 surrogate escape"},
		{"long transaction id", transactions.InitRequest{AppUserID: "alice", TransactionID: strings.Repeat("ü", 129), TransactionData: json.RawMessage(`{"a":1}`)},
			passkey.ErrInvalidRequest, "invalid_request", "transaction_id cannot have more than 128 entries"},
		{"too large", transactions.InitRequest{AppUserID: "alice", TransactionID: "t", TransactionData: json.RawMessage(`{"a":"` + strings.Repeat("x", transactions.MaxDataBytes) + `"}`)},
			transactions.ErrDataTooLarge, "transaction_data_too_large", "transaction_data may have at most 32768 bytes"},
		{"unknown user", transactions.InitRequest{AppUserID: "nobody", TransactionID: "t", TransactionData: json.RawMessage(`{"a":1}`)},
			credentials.ErrUserNotFound, "user_not_found", ""},
		{"mfa-only user", transactions.InitRequest{AppUserID: "mfa-only", TransactionID: "t", TransactionData: json.RawMessage(`{"a":1}`)},
			credentials.ErrNoCredentials, "no_credentials", ""},
		{"duplicate transaction id", transactions.InitRequest{AppUserID: "alice", TransactionID: "taken", TransactionData: json.RawMessage(`{"a":2}`)},
			transactions.ErrExists, "transaction_exists", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			_, err := e.txs.Begin(e.ctx, e.snap, tc.req)
			if !errors.Is(err, tc.want) || passkey.ErrorCode(err) != tc.code {
				t.Fatalf("Begin = %v (code %q), want %v (code %q)", err, passkey.ErrorCode(err), tc.want, tc.code)
			}
			if got := passkey.Details(err); got != tc.details {
				t.Errorf("details = %q, want %q", got, tc.details)
			}
			dbtest.CheckEvents(t, e.events.Take(), e.event(passkey.CeremonyStartFailed, passkey.StepInitialize, tc.req.AppUserID, tc.req.TransactionID, tc.want))
		})
	}
	// Nothing was stored by a refused initialize: alice has only "taken", with its first data.
	for _, user := range []string{"alice", "mfa-only"} {
		list, total, err := e.txs.List(e.ctx, e.snap, user, passkey.Page{Number: 1, Size: 100})
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if user == "alice" {
			want = 1
		}
		if total != want || len(list) != want || want == 1 && (list[0].Identifier != "taken" || list[0].Data != `{"a":1}`) {
			t.Errorf("%s's transactions = %+v (total %d), want %d", user, list, total, want)
		}
	}
}

func TestTransactionFinalizeFailures(t *testing.T) {
	e := newEnv(t)
	key := authenticatortest.New(authenticatortest.Options{})
	e.register(credentials.Registration, key, "alice")
	bobKey := authenticatortest.New(authenticatortest.Options{})
	bobID := e.register(credentials.Registration, bobKey, "bob")

	cases := []struct {
		name string
		// body answers the transaction's options.
		body func(e *env, a *protocol.CredentialAssertion) []byte
		want error
		code string
		// refused: the user's assertion was refused, so the transaction failed; otherwise it is
		// still pending (nothing matched it, or the response was no assertion).
		refused bool
	}{
		{"foreign origin", func(e *env, a *protocol.CredentialAssertion) []byte {
			return e.assert(key, a, authenticatortest.Tamper{Origin: "https://evil.example.net"})
		}, credentials.ErrAssertionFailed, "assertion_failed", true},
		{"corrupt signature", func(e *env, a *protocol.CredentialAssertion) []byte {
			return e.assert(key, a, authenticatortest.Tamper{CorruptSignature: true})
		}, credentials.ErrAssertionFailed, "assertion_failed", true},
		{"another user's passkey", func(e *env, a *protocol.CredentialAssertion) []byte {
			id, _ := base64.RawURLEncoding.DecodeString(bobID)
			forged := *a // a client that offers bob's passkey for alice's transaction
			forged.Response.AllowedCredentials = []protocol.CredentialDescriptor{{Type: protocol.PublicKeyCredentialType, CredentialID: id}}
			return e.assert(bobKey, &forged, authenticatortest.Tamper{})
		}, credentials.ErrAssertionFailed, "assertion_failed", true},
		{"other challenge", func(e *env, a *protocol.CredentialAssertion) []byte {
			return e.assert(key, a, authenticatortest.Tamper{Challenge: b64(make([]byte, 64))})
		}, transactions.ErrNotFound, "transaction_not_found", false},
		{"not an assertion", func(*env, *protocol.CredentialAssertion) []byte { return []byte(`{"id":"x"}`) },
			transactions.ErrInvalidResponse, "invalid_credential_response", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			id := "tx-" + string(rune('a'+i))
			assertion := e.begin("alice", id, `{"amount":"1.00"}`)
			e.events.Take()

			token, tx, err := e.txs.Finish(e.ctx, e.snap, tc.body(e, assertion))
			if !errors.Is(err, tc.want) || passkey.ErrorCode(err) != tc.code || token != "" {
				t.Fatalf("Finish = %q, %v (code %q), want %v (code %q)", token, err, passkey.ErrorCode(err), tc.want, tc.code)
			}
			wantUser, wantID, wantStatus := "", "", transactions.StatusPending
			if tc.refused {
				wantUser, wantID, wantStatus = "alice", id, transactions.StatusFailed
			}
			if tx.Identifier != wantID {
				t.Errorf("Finish returned transaction %q, want %q", tx.Identifier, wantID)
			}
			dbtest.CheckEvents(t, e.events.Take(), e.event(passkey.CeremonyFailed, passkey.StepFinalize, wantUser, wantID, tc.want))
			if got := e.transaction("alice", id); got.Status != wantStatus || got.CredentialID != nil || got.ConfirmedAt != nil {
				t.Errorf("transaction after the failure = %+v, want %s", got, wantStatus)
			}

			// A failed transaction stays failed: even a genuine assertion cannot confirm it.
			_, _, err = e.txs.Finish(e.ctx, e.snap, e.assert(key, assertion, authenticatortest.Tamper{}))
			switch {
			case tc.refused && (!errors.Is(err, transactions.ErrNotFound) || passkey.Details(err) != "the transaction is failed"):
				t.Errorf("genuine assertion for a failed transaction = %v, want ErrNotFound (the transaction is failed)", err)
			case !tc.refused && err != nil:
				t.Errorf("genuine assertion for a pending transaction = %v, want success", err)
			}
			e.events.Take()
		})
	}
}

func TestExpiredTransaction(t *testing.T) {
	cases := []struct {
		name    string
		after   time.Duration
		want    error
		details string
		status  transactions.Status // the status as of then
	}{
		{"just in time", timeout - time.Second, nil, "", transactions.StatusConfirmed},
		{"at the timeout", timeout, transactions.ErrNotFound, "the transaction is expired", transactions.StatusExpired},
		{"long after", time.Hour, transactions.ErrNotFound, "the transaction is expired", transactions.StatusExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			key := authenticatortest.New(authenticatortest.Options{})
			credID := e.register(credentials.Registration, key, "alice")
			assertion := e.begin("alice", "tx", `{"a":1}`)
			e.events.Take()

			e.clock.advance(tc.after)
			token, tx, err := e.txs.Finish(e.ctx, e.snap, e.assert(key, assertion, authenticatortest.Tamper{}))
			if !errors.Is(err, tc.want) || tc.want == nil && err != nil || passkey.Details(err) != tc.details {
				t.Fatalf("Finish %v after initialize = %v, want %v (%s)", tc.after, err, tc.want, tc.details)
			}
			if (token != "") != (tc.want == nil) || tx.Identifier != "tx" {
				t.Errorf("Finish returned token %q and transaction %q", token, tx.Identifier)
			}
			last := passkey.CeremonySucceeded
			if tc.want != nil {
				last = passkey.CeremonyFailed
			}
			want := e.event(last, passkey.StepFinalize, "alice", "tx", tc.want)
			if tc.want == nil {
				want.CredentialID = credID
			}
			dbtest.CheckEvents(t, e.events.Take(), want)
			if got := e.transaction("alice", "tx").EffectiveStatus(e.clock.now()); got != tc.status {
				t.Errorf("status = %s, want %s", got, tc.status)
			}
		})
	}
}

func TestDeletedUserCannotSign(t *testing.T) {
	e := newEnv(t)
	key := authenticatortest.New(authenticatortest.Options{})
	e.register(credentials.Registration, key, "alice")
	assertion := e.begin("alice", "tx", `{"a":1}`)
	e.events.Take()

	if err := e.creds.DeleteUser(e.ctx, e.snap, "alice"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	dbtest.CheckEvents(t, e.events.Take(), passkey.Event{Type: passkey.UserDeleted, TenantID: e.snap.ID, AppUserID: "alice", Details: map[string]string{"user_id": "alice"}})
	// The user's transactions went with it.
	_, tx, err := e.txs.Finish(e.ctx, e.snap, e.assert(key, assertion, authenticatortest.Tamper{}))
	if !errors.Is(err, transactions.ErrNotFound) || tx.Identifier != "" {
		t.Fatalf("Finish for a deleted user = %q, %v; want ErrNotFound", tx.Identifier, err)
	}
	dbtest.CheckEvents(t, e.events.Take(), e.event(passkey.CeremonyFailed, passkey.StepFinalize, "", "", transactions.ErrNotFound))
	// The transaction id is free again for a new user of the same id.
	e.register(credentials.Registration, authenticatortest.New(authenticatortest.Options{}), "alice")
	e.begin("alice", "tx", `{"a":2}`)
}
