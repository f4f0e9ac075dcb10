package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/webhooks"
)

// fastWebhooks are webhook settings for tests: loopback http receivers, a short timeout and retry
// schedule, fast polling.
func fastWebhooks(o *testOptions) {
	o.Webhooks = webhookSettings{AllowPrivate: true, AllowHTTP: true, Timeout: 400 * time.Millisecond,
		Schedule:     []time.Duration{0, 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond},
		PollInterval: 50 * time.Millisecond, Refresh: 100 * time.Millisecond}
}

// received is one verified webhook request.
type received struct {
	ID        string
	Signature string
	Payload   webhooks.Payload
}

// receiver is a webhook endpoint on loopback that verifies every request with the Standard Webhooks
// library and answers what respond says for the n-th request (from 1).
type receiver struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	secrets []string
	got     []received
	hits    atomic.Int32
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t testing.TB, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{t: t, respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	n := int(rc.hits.Add(1))
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	secrets := rc.secrets
	rc.mu.Unlock()
	for _, secret := range secrets {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			rc.t.Errorf("receiver: %v", err)
			return
		}
		if err := wh.Verify(body, r.Header); err != nil {
			rc.t.Errorf("receiver: signature of %s does not verify with %s…: %v", body, secret[:10], err)
		}
	}
	if rc.respond != nil {
		rc.respond(n, w, r)
	}
	var p webhooks.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		rc.t.Errorf("receiver: body %s: %v", body, err)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, received{ID: r.Header.Get("webhook-id"), Signature: r.Header.Get("webhook-signature"), Payload: p})
	rc.mu.Unlock()
}

func (rc *receiver) received() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// createWebhook makes an endpoint of the tenant for rc and tells rc its secret.
func (s *testServer) createWebhook(tenantID string, rc *receiver, events ...string) httpapi.WebhookDTO {
	s.t.Helper()
	if len(events) == 0 {
		events = webhooks.EventTypes
	}
	resp := s.adminCall("POST", "/tenants/"+tenantID+"/webhooks", map[string]any{"url": rc.srv.URL + "/hook", "events": events, "description": "test"})
	expectStatus(s.t, resp, 201, "")
	ep := decode[httpapi.WebhookDTO](s.t, resp)
	if !strings.HasPrefix(ep.Secret, "whsec_") {
		s.t.Fatalf("secret %q", ep.Secret)
	}
	rc.mu.Lock()
	rc.secrets = []string{ep.Secret}
	rc.mu.Unlock()
	return ep
}

func (s *testServer) deliveries(tenantID string, ep httpapi.WebhookDTO) []httpapi.WebhookDeliveryDTO {
	s.t.Helper()
	resp := s.adminCall("GET", "/tenants/"+tenantID+"/webhooks/"+ep.ID.String()+"/deliveries", nil)
	expectStatus(s.t, resp, 200, "")
	return decode[[]httpapi.WebhookDeliveryDTO](s.t, resp)
}

// TestWebhookEvents: every event type the API can cause arrives once, signed, with its data.
func TestWebhookEvents(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t), fastWebhooks)
		r := newRP(t, s, "example.com")
		rc := newReceiver(t, nil)
		s.createWebhook(r.id, rc)

		a := authenticatortest.New(authenticatortest.Options{})
		_, credID := r.register(a, "alice")                                                                    // passkey.registered
		r.login(a, "alice")                                                                                    // login.succeeded
		expectStatus(t, r.loginFinalize([]byte(`{"id":"x"}`)), 400, "")                                        // login.failed
		expectStatus(t, r.s.adminCall("PUT", "/tenants/"+r.id+"/config", validConfig("example.com")), 204, "") // tenant.config_changed
		expectStatus(t, call(t, s.public, "PATCH", "/"+r.id+"/credentials/"+credID, map[string]any{"name": "laptop"}, r.keyHeaders(true)...), 204, "")
		key := authenticatortest.New(authenticatortest.Options{Attachment: authenticatortest.CrossPlatform, Transports: []string{"usb"}})
		r.mfaRegister(key, "bob") // mfa.registered
		assertion, err := key.Get(r.mfaLoginOptions("bob"), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, r.post(r.mfaPath("/login/finalize", "/login/finalize"), assertion, true), 200, "") // mfa.succeeded
		assertion, err = a.Get(r.txInit("alice", "tx-1", `{"amount":1}`), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, r.post(r.txPath("/finalize"), assertion, true), 200, "")                       // transaction.signed
		expectStatus(t, r.post(r.txPath("/finalize"), []byte(`{"id":"x"}`), true), 400, "")            // transaction.failed
		resp := s.adminCall("POST", "/tenants/"+r.id+"/secrets/api", map[string]any{"name": "second"}) // api_key.created
		expectStatus(t, resp, 201, "")
		keyID := decode[httpapi.APIKeyDTO](t, resp).ID
		expectStatus(t, s.adminCall("DELETE", "/tenants/"+r.id+"/secrets/api/"+keyID.String(), nil), 204, "")              // api_key.revoked
		expectStatus(t, s.adminCall("POST", "/tenants/"+r.id+"/signing_keys", nil), 201, "")                               // signing_key.rotated
		expectStatus(t, call(t, s.public, "DELETE", "/"+r.id+"/credentials/"+credID, nil, r.keyHeaders(true)...), 204, "") // passkey.deleted
		expectStatus(t, s.adminCall("DELETE", "/tenants/"+r.id+"/users/bob", nil), 204, "")                                // user.deleted

		want := map[string]int{webhooks.PasskeyRegistered: 1, webhooks.LoginSucceeded: 1, webhooks.LoginFailed: 1,
			webhooks.TenantConfigChanged: 1, webhooks.PasskeyRenamed: 1, webhooks.MFARegistered: 1, webhooks.MFASucceeded: 1,
			webhooks.TransactionSigned: 1, webhooks.TransactionFailed: 1, webhooks.APIKeyCreated: 1, webhooks.APIKeyRevoked: 1,
			webhooks.SigningKeyRotated: 1, webhooks.PasskeyDeleted: 1, webhooks.UserDeleted: 1}
		total := 0
		for _, n := range want {
			total += n
		}
		waitFor(t, "every event", func() bool { return len(rc.received()) >= total })
		time.Sleep(100 * time.Millisecond) // nothing more arrives
		got := map[string]int{}
		byType := map[string]webhooks.Payload{}
		ids := map[string]bool{}
		for _, m := range rc.received() {
			got[m.Payload.Type]++
			byType[m.Payload.Type] = m.Payload
			if ids[m.ID] {
				t.Errorf("webhook-id %s twice", m.ID)
			}
			ids[m.ID] = true
			if m.Payload.Data["tenant_id"] != r.id {
				t.Errorf("%s: tenant_id %v", m.Payload.Type, m.Payload.Data["tenant_id"])
			}
		}
		for typ, n := range want {
			if got[typ] != n {
				t.Errorf("%s arrived %d times, want %d", typ, got[typ], n)
			}
		}
		if len(got) != len(want) {
			t.Errorf("types %v, want %v", got, want)
		}
		check := func(typ, field string, want any) {
			t.Helper()
			if v := byType[typ].Data[field]; v != want {
				t.Errorf("%s: data.%s = %v, want %v (data %v)", typ, field, v, want, byType[typ].Data)
			}
		}
		check(webhooks.PasskeyRegistered, "user_id", "alice")
		check(webhooks.PasskeyRegistered, "credential_id", credID)
		check(webhooks.LoginSucceeded, "credential_id", credID)
		check(webhooks.LoginFailed, "error_code", "invalid_credential_response")
		check(webhooks.PasskeyRenamed, "credential_id", credID)
		check(webhooks.MFARegistered, "user_id", "bob")
		check(webhooks.TransactionSigned, "transaction_id", "tx-1")
		check(webhooks.APIKeyCreated, "api_key_id", keyID.String())
		check(webhooks.APIKeyRevoked, "api_key_id", keyID.String())
		check(webhooks.UserDeleted, "user_id", "bob")
		for _, m := range rc.received() {
			raw, _ := json.Marshal(m.Payload)
			for _, secretish := range []string{"whsec_", "sk_", "private", "prf"} {
				if strings.Contains(string(raw), secretish) {
					t.Errorf("payload %s contains %q", raw, secretish)
				}
			}
		}
	})
}

// TestWebhookDeliveryPolicy: retries, 410, timeout, redelivery and secret rotation.
func TestWebhookDeliveryPolicy(t *testing.T) {
	d := dbtest.Postgres(t)
	s := newTestServer(t, d, newTestSealer(t), fastWebhooks)
	r := newRP(t, s, "example.com")
	base := "/tenants/" + r.id + "/webhooks/"

	t.Run("fails 3 times, succeeds on the 4th", func(t *testing.T) {
		rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n <= 3 {
				w.WriteHeader(500)
			}
		})
		ep := s.createWebhook(r.id, rc)
		expectStatus(t, s.adminCall("POST", base+ep.ID.String()+"/test", nil), 202, "")
		waitFor(t, "the delivery", func() bool {
			ds := s.deliveries(r.id, ep)
			return len(ds) == 1 && ds[0].Status == "succeeded"
		})
		ds := s.deliveries(r.id, ep)
		if ds[0].Attempts != 4 || ds[0].LastStatusCode != 200 || rc.hits.Load() != 4 {
			t.Fatalf("delivery %+v after %d requests, want 4 attempts", ds[0], rc.hits.Load())
		}
		got := rc.received()
		for _, m := range got[1:] {
			if m.ID != got[0].ID {
				t.Errorf("webhook-id changed between attempts: %s, %s", got[0].ID, m.ID)
			}
		}

		// Redelivery: the same message again, from a first attempt.
		resp := s.adminCall("POST", base+ep.ID.String()+"/deliveries/"+ds[0].ID.String()+"/redeliver", nil)
		expectStatus(t, resp, 202, "")
		// received, not hits: a request is counted when it arrives and recorded when its handler ends.
		waitFor(t, "the redelivery", func() bool { return len(rc.received()) == 5 })
		if last := rc.received()[4]; last.ID != got[0].ID || last.Payload.Type != webhooks.Test {
			t.Errorf("redelivered %+v", last)
		}

		// Rotation: both secrets sign for the overlap.
		resp = s.adminCall("POST", base+ep.ID.String()+"/rotate_secret", nil)
		expectStatus(t, resp, 200, "")
		newSecret := decode[map[string]string](t, resp)["secret"]
		rc.mu.Lock()
		rc.secrets = append(rc.secrets, newSecret) // verified with the old and the new
		rc.mu.Unlock()
		expectStatus(t, s.adminCall("POST", base+ep.ID.String()+"/test", nil), 202, "")
		waitFor(t, "the message after rotation", func() bool { return len(rc.received()) == 6 })
		if sig := rc.received()[5].Signature; len(strings.Fields(sig)) != 2 {
			t.Errorf("signature after rotation %q, want two", sig)
		}
	})

	t.Run("410 disables", func(t *testing.T) {
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(410) })
		ep := s.createWebhook(r.id, rc)
		expectStatus(t, s.adminCall("POST", base+ep.ID.String()+"/test", nil), 202, "")
		waitFor(t, "the endpoint disabled", func() bool {
			got := decode[httpapi.WebhookDTO](t, s.adminCall("GET", base+ep.ID.String(), nil))
			return !got.Enabled && got.DisabledReason == webhooks.DisabledGone
		})
		if ds := s.deliveries(r.id, ep); ds[0].Status != "failed" || ds[0].Attempts != 1 || rc.hits.Load() != 1 {
			t.Errorf("delivery %+v, %d requests", ds[0], rc.hits.Load())
		}
		expectStatus(t, s.adminCall("POST", base+ep.ID.String()+"/test", nil), 400, "invalid_webhook")

		// The audit log records it, with the endpoint's id and the reason, not its URL; the tenant
		// reads it with its secret key too.
		var entries []httpapi.AuditEntry
		waitFor(t, "the audit entry", func() bool {
			entries = r.auditLog("?type=webhook_endpoint_disabled")
			return len(entries) > 0
		})
		e := entries[0]
		if len(entries) != 1 || e.Details["webhook_id"] != ep.ID.String() || e.Details["reason"] != webhooks.DisabledGone ||
			len(e.Details) != 2 || e.TenantID == nil || e.TenantID.String() != r.id {
			t.Errorf("audit entries %+v, want one with webhook_id %s and reason gone", entries, ep.ID)
		}
		if raw := mustJSON(t, entries); strings.Contains(raw, rc.srv.URL) {
			t.Errorf("the audit entry holds the endpoint's URL: %s", raw)
		}
		admin := decode[[]httpapi.AuditEntry](t, s.adminCall("GET", "/tenants/"+r.id+"/audit_logs?type=webhook_endpoint_disabled", nil))
		if len(admin) != 1 || admin[0].ID != e.ID {
			t.Errorf("admin audit log: %+v", admin)
		}
	})

	t.Run("a hanging receiver is cut at the timeout", func(t *testing.T) {
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
		})
		ep := s.createWebhook(r.id, rc)
		start := time.Now()
		expectStatus(t, s.adminCall("POST", base+ep.ID.String()+"/test", nil), 202, "")
		waitFor(t, "the retry", func() bool {
			ds := s.deliveries(r.id, ep)
			return len(ds) == 1 && ds[0].Status == "succeeded"
		})
		if ds := s.deliveries(r.id, ep); ds[0].Attempts != 2 {
			t.Errorf("delivery %+v, want a second attempt after the timeout", ds[0])
		}
		if e := time.Since(start); e > 5*time.Second {
			t.Errorf("took %v", e)
		}
	})
}

// nextLink returns the path and query of a response's Link rel="next", or "" when it has none.
func nextLink(t testing.TB, resp *http.Response) string {
	t.Helper()
	link := resp.Header.Get("Link")
	if link == "" {
		return ""
	}
	m := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("Link %q, want one next link", link)
	}
	return m[1]
}

// TestWebhookDeliveriesPaging: GET …/deliveries pages by cursor through the Link header, newest first,
// without repeats or gaps while deliveries are added, filters by status, and refuses bad parameters
// with 400 invalid_request.
func TestWebhookDeliveriesPaging(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t), fastWebhooks)
		r := newRP(t, s, "example.com")
		ep := s.createWebhook(r.id, newReceiver(t, nil))
		path := "/tenants/" + r.id + "/webhooks/" + ep.ID.String() + "/deliveries"
		// 23 test messages, delivered; then their statuses are set (the store's own UPDATE of an
		// attempt, with no job left to change them again).
		send := func() string {
			resp := s.adminCall("POST", "/tenants/"+r.id+"/webhooks/"+ep.ID.String()+"/test", nil)
			expectStatus(t, resp, 202, "")
			return decode[httpapi.WebhookDeliveryDTO](t, resp).ID.String()
		}
		delivered := func(n int) {
			waitFor(t, "the deliveries", func() bool {
				ds := decode[[]httpapi.WebhookDeliveryDTO](t, s.adminCall("GET", path+"?status=succeeded", nil))
				return len(ds) == n
			})
		}
		cycle := []webhooks.Status{webhooks.StatusSucceeded, webhooks.StatusFailed, webhooks.StatusSucceeded, webhooks.StatusPending}
		var sent, want []string // oldest first, newest first
		byStatus := map[string][]string{}
		for i := range 23 {
			id := send()
			sent = append(sent, id)
			want = append([]string{id}, want...)
			st := cycle[i%len(cycle)]
			byStatus[string(st)] = append([]string{id}, byStatus[string(st)]...)
		}
		delivered(23)
		for i, id := range sent {
			if st := cycle[i%len(cycle)]; st != webhooks.StatusSucceeded {
				if err := s.svc.webhookStore.RecordAttempt(context.Background(), uuidOf(t, r.id), uuid.MustParse(id),
					webhooks.Attempt{Status: st, Attempts: 1, StatusCode: 500, Error: "HTTP 500", At: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
		}
		ids := func(ds []httpapi.WebhookDeliveryDTO) []string {
			out := make([]string, len(ds))
			for i, dl := range ds {
				out[i] = dl.ID.String()
			}
			return out
		}
		// walk follows the Link rel="next" from query and returns the ids of every page and how many
		// pages there were; between the first and the second page a newer delivery arrives.
		walk := func(query string, arrive func()) ([]string, int) {
			t.Helper()
			var got []string
			pages := 0
			for next := path + query; next != ""; pages++ {
				if pages > 50 {
					t.Fatal("no last page")
				}
				resp := s.adminCall("GET", next, nil)
				expectStatus(t, resp, 200, "")
				next = nextLink(t, resp)
				if next != "" && !strings.HasPrefix(next, path+"?") {
					t.Fatalf("next link %q is not this listing's path", next)
				}
				got = append(got, ids(decode[[]httpapi.WebhookDeliveryDTO](t, resp))...)
				if pages == 0 && arrive != nil {
					arrive()
				}
			}
			return got, pages
		}

		var arrived string
		got, pages := walk("?per_page=5", func() { arrived = send() })
		if !slices.Equal(got, want) || pages != 5 {
			t.Errorf("pages of 5: %d pages %v, want 5 pages %v", pages, got, want)
		}
		// The new delivery is first now; one page of everything (default size) has no next link.
		delivered(len(byStatus["succeeded"]) + 1)
		want = append([]string{arrived}, want...)
		byStatus["succeeded"] = append([]string{arrived}, byStatus["succeeded"]...)
		resp := s.adminCall("GET", path, nil)
		expectStatus(t, resp, 200, "")
		if all := ids(decode[[]httpapi.WebhookDeliveryDTO](t, resp)); !slices.Equal(all, want) || nextLink(t, resp) != "" {
			t.Errorf("default page: %v, Link %q; want %v", all, resp.Header.Get("Link"), want)
		}

		// The status filter, on one page and across pages, repeated or comma-separated; the next link
		// keeps it.
		if got, pages := walk("?status=failed&per_page=2", nil); !slices.Equal(got, byStatus["failed"]) || pages != 3 {
			t.Errorf("failed, pages of 2: %d pages %v, want %v", pages, got, byStatus["failed"])
		}
		for _, q := range []string{"?status=failed,succeeded&per_page=4", "?status=failed&status=succeeded&per_page=4", "?status=succeeded,+failed,failed&per_page=4"} {
			var w []string
			for _, id := range want {
				if slices.Contains(byStatus["failed"], id) || slices.Contains(byStatus["succeeded"], id) {
					w = append(w, id)
				}
			}
			if got, _ := walk(q, nil); !slices.Equal(got, w) {
				t.Errorf("%s: %v, want %v", q, got, w)
			}
		}
		resp = s.adminCall("GET", path+"?status=pending&per_page=3", nil)
		for _, dl := range decode[[]httpapi.WebhookDeliveryDTO](t, resp) {
			if dl.Status != "pending" {
				t.Errorf("status=pending listed %+v", dl)
			}
		}
		if link := nextLink(t, resp); !strings.Contains(link, "status=pending") || !strings.Contains(link, "per_page=3") || !strings.Contains(link, "cursor=") {
			t.Errorf("next link %q does not keep the query", link)
		}

		// Bad parameters: 400 invalid_request, saying which.
		cursor := webhooks.DeliveryCursor{CreatedAt: time.Now(), ID: uuid.New()}.String()
		for _, tc := range []struct{ query, details string }{
			{"?per_page=ten", "per_page must be a number"},
			{"?per_page=101", "per_page cannot be more than 100"},
			{"?per_page=1e3", "per_page must be a number"},
			{"?status=bogus", `status "bogus" is not one of pending, succeeded, failed`},
			{"?status=failed,Failed", `status "Failed"`},
			{"?cursor=not-a-cursor", "cursor must be"},
			{"?cursor=" + cursor[:len(cursor)-4], "cursor must be"},
			{"?cursor=" + cursor + "AAAA", "cursor must be"},
			{"?page=2", "page is not supported here"},
			{"?per_page=x&status=y&cursor=z", "per_page must be a number"}, // every problem at once
		} {
			t.Run(tc.query, func(t *testing.T) {
				e := expectStatus(t, s.adminCall("GET", path+tc.query, nil), 400, "invalid_request")
				if !strings.Contains(e.Details, tc.details) {
					t.Errorf("details %q, want %q", e.Details, tc.details)
				}
			})
		}
		if e := expectStatus(t, s.adminCall("GET", path+"?per_page=x&status=y&cursor=z", nil), 400, "invalid_request"); !strings.Contains(e.Details, "status") || !strings.Contains(e.Details, "cursor") {
			t.Errorf("details %q, want every problem", e.Details)
		}
		// A valid cursor of nothing is an empty page; zero or below is the default size, as on the
		// other lists.
		if got := decode[[]httpapi.WebhookDeliveryDTO](t, s.adminCall("GET", path+"?cursor="+webhooks.DeliveryCursor{CreatedAt: time.Now().Add(-time.Hour)}.String(), nil)); len(got) != 0 {
			t.Errorf("after the oldest: %v", ids(got))
		}
		if got := decode[[]httpapi.WebhookDeliveryDTO](t, s.adminCall("GET", path+"?per_page=0", nil)); len(got) != 24 {
			t.Errorf("per_page=0: %d deliveries", len(got))
		}
		// Another tenant's endpoint, or none: 404, parameters valid or not.
		other := newRP(t, s, "example.org")
		expectStatus(t, s.adminCall("GET", "/tenants/"+other.id+"/webhooks/"+ep.ID.String()+"/deliveries?status=failed", nil), 404, "webhook_not_found")
		expectStatus(t, s.adminCall("GET", "/tenants/"+r.id+"/webhooks/"+uuid.NewString()+"/deliveries", nil), 404, "webhook_not_found")
	})
}

// TestWebhooksBadInput: refused endpoints get 400 invalid_webhook and nothing is stored.
func TestWebhooksBadInput(t *testing.T) {
	s := newTestServer(t, dbtest.SQLite(t), newTestSealer(t)) // production settings: https, public hosts only
	r := newRP(t, s, "example.com")
	path := "/tenants/" + r.id + "/webhooks"
	for _, tc := range []struct {
		name string
		body any
		code string
	}{
		{"http", map[string]any{"url": "http://example.com/hook", "events": []string{"login.failed"}}, "invalid_webhook"},
		{"loopback", map[string]any{"url": "https://127.0.0.1/hook", "events": []string{"login.failed"}}, "invalid_webhook"},
		{"localhost", map[string]any{"url": "https://localhost:8443/hook", "events": []string{"login.failed"}}, "invalid_webhook"},
		{"private", map[string]any{"url": "https://10.1.2.3/hook", "events": []string{"login.failed"}}, "invalid_webhook"},
		{"link-local", map[string]any{"url": "https://[fe80::1]/hook", "events": []string{"login.failed"}}, "invalid_webhook"},
		{"metadata", map[string]any{"url": "https://169.254.169.254/latest", "events": []string{"login.failed"}}, "invalid_webhook"},
		{"credentials in URL", map[string]any{"url": "https://u:p@example.com/hook", "events": []string{"login.failed"}}, "invalid_webhook"},
		{"unknown event", map[string]any{"url": "https://example.com/hook", "events": []string{"login.failed", "user.exploded"}}, "invalid_webhook"},
		{"no events", map[string]any{"url": "https://example.com/hook", "events": []string{}}, "invalid_webhook"},
		{"description too long", map[string]any{"url": "https://example.com/hook", "events": []string{"login.failed"}, "description": strings.Repeat("é", 257)}, "invalid_webhook"},
		{"no url", map[string]any{"events": []string{"login.failed"}}, "invalid_webhook"},
		{"unknown field", map[string]any{"url": "https://example.com/hook", "events": []string{"login.failed"}, "secret": "x"}, "invalid_body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := expectStatus(t, s.adminCall("POST", path, tc.body), 400, tc.code)
			if strings.Contains(e.Details, "sql") {
				t.Errorf("details %q", e.Details)
			}
		})
	}
	if list := decode[[]httpapi.WebhookDTO](t, s.adminCall("GET", path, nil)); len(list) != 0 {
		t.Fatalf("stored %v", list)
	}
	// A valid one is stored; a bad PATCH changes nothing.
	resp := s.adminCall("POST", path, map[string]any{"url": "https://example.com/hook", "events": []string{"login.failed"}})
	expectStatus(t, resp, 201, "")
	ep := decode[httpapi.WebhookDTO](t, resp)
	expectStatus(t, s.adminCall("PATCH", path+"/"+ep.ID.String(), map[string]any{"url": "https://192.168.0.1/"}), 400, "invalid_webhook")
	if got := decode[httpapi.WebhookDTO](t, s.adminCall("GET", path+"/"+ep.ID.String(), nil)); got.URL != "https://example.com/hook" || got.Secret != "" {
		t.Fatalf("after a refused PATCH: %+v", got)
	}
	// Another tenant reaches none of it.
	other := newRP(t, s, "example.org")
	expectStatus(t, s.adminCall("GET", "/tenants/"+other.id+"/webhooks/"+ep.ID.String(), nil), 404, "webhook_not_found")
	expectStatus(t, s.adminCall("DELETE", "/tenants/"+other.id+"/webhooks/"+ep.ID.String(), nil), 404, "webhook_not_found")
}

// TestWebhooksTwoInstances: two instances on one PostgreSQL deliver each event exactly once, and
// each sees the other's endpoint changes within the refresh interval.
func TestWebhooksTwoInstances(t *testing.T) {
	d := dbtest.Postgres(t)
	sealer := newTestSealer(t)
	s1 := newTestServer(t, d, sealer, fastWebhooks, func(o *testOptions) { o.Webhooks.InstanceID = "one" })
	s2 := newTestServer(t, d, sealer, fastWebhooks, func(o *testOptions) { o.Webhooks.InstanceID = "two" })
	r := newRP(t, s1, "example.com")
	rc := newReceiver(t, nil)
	s1.createWebhook(r.id, rc, webhooks.APIKeyCreated)
	waitFor(t, "the second instance's index", func() bool {
		return len(s2.svc.webhookIndex.Endpoints(uuidOf(t, r.id), webhooks.APIKeyCreated)) == 1
	})
	const n = 10
	for i := range n {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		expectStatus(t, s.adminCall("POST", "/tenants/"+r.id+"/secrets/api", map[string]any{"name": fmt.Sprint("k", i)}), 201, "")
	}
	waitFor(t, "every event", func() bool { return len(rc.received()) >= n })
	time.Sleep(300 * time.Millisecond) // several poll intervals: no second delivery comes
	seen := map[string]int{}
	for _, m := range rc.received() {
		seen[m.ID]++
	}
	if len(seen) != n || len(rc.received()) != n {
		t.Fatalf("%d requests of %d messages, want %d of %d", len(rc.received()), len(seen), n, n)
	}
}

// TestWebhooksRestart: deliveries queued by an instance that never worked its queue (killed right
// after the change committed) are delivered by the next instance to start.
func TestWebhooksRestart(t *testing.T) {
	d := dbtest.Postgres(t)
	sealer := newTestSealer(t)
	var o testOptions
	fastWebhooks(&o)
	sessions, _, _ := testRedisSessions(t)
	dead := newServices(serviceInput{DB: d, Sessions: sessions, Sealer: sealer, Logger: discardLog(), Webhooks: o.Webhooks})
	var cfg tenant.Config
	if err := json.Unmarshal([]byte(mustJSON(t, validConfig("example.com"))), &cfg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	snap, _, err := dead.tenants.Create(ctx, tenant.CreateInput{DisplayName: "restart", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, nil)
	url := rc.srv.URL + "/hook"
	events := []string{webhooks.TenantConfigChanged}
	_, secret, err := dead.webhooks.Create(ctx, snap.ID, webhooks.Input{URL: &url, Events: &events})
	if err != nil {
		t.Fatal(err)
	}
	rc.secrets = []string{secret}
	dead.bus.Emit(ctx, passkey.Event{Type: passkey.TenantConfigChanged, TenantID: snap.ID})
	if dead.webhookIndex.Enqueued() != 1 {
		t.Fatalf("enqueued %d", dead.webhookIndex.Enqueued())
	}
	time.Sleep(100 * time.Millisecond)
	if rc.hits.Load() != 0 {
		t.Fatal("delivered without a running queue")
	}
	newTestServer(t, d, sealer, fastWebhooks) // the restart
	waitFor(t, "the delivery after the restart", func() bool { return len(rc.received()) == 1 })
	if got := rc.received()[0].Payload; got.Type != webhooks.TenantConfigChanged || got.Data["tenant_id"] != snap.ID.String() {
		t.Errorf("got %+v", got)
	}
}

// failingOutbox is an outbox subscriber that, while on, fails to record the events of the types it
// wants, as a database that fails in the middle of a change would: the change must roll back with the
// deliveries the webhook outbox recorded before it in the same transaction.
type failingOutbox struct {
	on    atomic.Bool
	types []passkey.EventType
	calls atomic.Int32
}

func (f *failingOutbox) Emit(context.Context, passkey.Event) {}

func (f *failingOutbox) Wants(e passkey.Event) bool {
	return f.on.Load() && slices.Contains(f.types, e.Type)
}

func (f *failingOutbox) Record(context.Context, passkey.Event) error {
	f.calls.Add(1)
	return fmt.Errorf("test outbox: %w", passkey.ErrUnavailable)
}

// TestWebhooksRolledBackChange: a change that rolls back after the webhook outbox recorded its
// deliveries sends nothing and stores nothing (the credential, the API key, the delivery); the API
// answers 503. The same changes commit with their deliveries once nothing fails.
func TestWebhooksRolledBackChange(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fail := &failingOutbox{types: []passkey.EventType{passkey.CeremonySucceeded, passkey.APIKeyCreated}}
		s := newTestServer(t, d, newTestSealer(t), fastWebhooks, func(o *testOptions) {
			o.Subscribers = append(o.Subscribers, fail)
		})
		r := newRP(t, s, "example.com")
		rc := newReceiver(t, nil)
		ep := s.createWebhook(r.id, rc, webhooks.PasskeyRegistered, webhooks.APIKeyCreated)
		fail.on.Store(true)

		a := authenticatortest.New(authenticatortest.Options{})
		att, err := a.Create(r.registrationOptions("alice"), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, r.registrationFinalize(att), 503, "service_unavailable")
		expectStatus(t, s.adminCall("POST", "/tenants/"+r.id+"/secrets/api", map[string]any{"name": "rolled back"}), 503, "service_unavailable")
		if fail.calls.Load() != 2 {
			t.Fatalf("the failing outbox saw %d changes, want 2", fail.calls.Load())
		}
		if got := decode[[]map[string]any](t, r.get(r.path("/credentials?user_id=alice", "/credentials?user_id=alice"))); len(got) != 0 {
			t.Errorf("credentials after the rolled-back registration: %v", got)
		}
		for _, k := range decode[[]httpapi.APIKeyDTO](t, s.adminCall("GET", "/tenants/"+r.id+"/secrets/api", nil)) {
			if k.Name == "rolled back" {
				t.Errorf("the rolled-back API key is stored: %+v", k)
			}
		}
		if got := s.deliveries(r.id, ep); len(got) != 0 {
			t.Errorf("deliveries of rolled-back changes: %+v", got)
		}

		// Nothing fails now: both changes commit, each with its one delivery, and only those arrive.
		fail.on.Store(false)
		r.register(a, "alice")
		expectStatus(t, s.adminCall("POST", "/tenants/"+r.id+"/secrets/api", map[string]any{"name": "committed"}), 201, "")
		waitFor(t, "the two committed changes' deliveries", func() bool { return len(rc.received()) >= 2 })
		var types []string
		for _, m := range rc.received() {
			types = append(types, m.Payload.Type)
		}
		slices.Sort(types)
		if want := []string{webhooks.APIKeyCreated, webhooks.PasskeyRegistered}; !slices.Equal(types, want) {
			t.Errorf("received %v, want %v", types, want)
		}
		if got := s.deliveries(r.id, ep); len(got) != 2 {
			t.Errorf("%d deliveries, want 2: %+v", len(got), got)
		}
	})
}

// TestWebhookRescueSettings: an attempt whose instance died holds its delivery the attempt timeout +
// 75 s by default, and a rescue threshold within the job timeout (the attempt timeout + 15 s), where a
// live instance's slow attempt would be sent again, is refused.
func TestWebhookRescueSettings(t *testing.T) {
	c, err := loadConfig(map[string]string{})
	if w := c.webhookSettings(); err != nil || w.Timeout != webhooks.DefaultTimeout || w.RescueAfter != 0 {
		t.Fatalf("defaults %+v, %v", w, err)
	}
	if got := db.DefaultWebhookRescueAfter(webhooks.DefaultTimeout); got != 85*time.Second {
		t.Errorf("default rescue after %s, want 85s", got)
	}
	for _, tc := range []struct {
		timeout, rescue string
		ok              bool
	}{
		{"10s", "25s", false}, {"10s", "26s", true}, {"1s", "16s", false}, {"1s", "17s", true},
		{"10s", "-1s", false}, {"500ms", "", false}, {"6m", "", false},
	} {
		_, err := loadConfig(map[string]string{"PASSKEY_WEBHOOK_TIMEOUT": tc.timeout, "PASSKEY_WEBHOOK_RESCUE_AFTER": tc.rescue})
		if tc.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "PASSKEY_WEBHOOK_") {
			t.Errorf("timeout %s, rescue after %s: %v", tc.timeout, tc.rescue, err)
		}
	}
	d := dbtest.SQLite(t)
	if _, err := db.NewWebhookStore(d, db.WebhookOptions{AttemptTimeout: time.Second, RescueAfter: 16 * time.Second}); err == nil {
		t.Error("the store takes a rescue threshold equal to the job timeout")
	}
	if _, err := db.NewWebhookStore(d, db.WebhookOptions{AttemptTimeout: time.Second, RescueAfter: 17 * time.Second}); err != nil {
		t.Error(err)
	}
}
