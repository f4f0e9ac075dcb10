package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
)

// TestAdminUsers covers the admin user routes (docs/hanko-compatibility.md#admin-users): the list with
// Hanko's paging headers, the detail by application and by internal id, the tenant scope (Hanko's get
// and delete ignore it, docs/hanko-compatibility.md#admin-users-ignore-the-tenant), and that a deleted
// user can no longer log in.
func TestAdminUsers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		a, b := newRP(t, s, "example.com"), newRP(t, s, "example.com")
		aliceKey := authenticatortest.New(authenticatortest.Options{})
		_, aliceCred := a.register(aliceKey, "alice")
		a.register(authenticatortest.New(authenticatortest.Options{}), "bob")
		a.register(authenticatortest.New(authenticatortest.Options{}), "carol x")
		a.txInit("alice", "tx-1", `{"amount":"10.00"}`)
		b.register(authenticatortest.New(authenticatortest.Options{}), "alice")
		users := "/tenants/" + a.id + "/users"

		// The list: newest first, paged with Hanko's headers; asc in any case; sorted by user_id.
		resp := s.adminCall("GET", users+"?per_page=2", nil)
		expectStatus(t, resp, 200, "")
		page := decode[[]httpapi.UserResponse](t, resp)
		if len(page) != 2 || page[0].UserID != "carol x" || page[1].UserID != "bob" {
			t.Fatalf("page 1: %+v", page)
		}
		if got := resp.Header.Get("X-Total-Count"); got != "3" {
			t.Fatalf("X-Total-Count %q", got)
		}
		if link := resp.Header.Get("Link"); !strings.Contains(link, `rel="next"`) || !strings.Contains(link, "page=2&per_page=2") || strings.Contains(link, `rel="prev"`) {
			t.Fatalf("Link %q", link)
		}
		resp = s.adminCall("GET", users+"?per_page=2&page=2", nil)
		if page = decode[[]httpapi.UserResponse](t, resp); len(page) != 1 || page[0].UserID != "alice" || !strings.Contains(resp.Header.Get("Link"), `rel="prev"`) {
			t.Fatalf("page 2: %+v, Link %q", page, resp.Header.Get("Link"))
		}
		if page = decode[[]httpapi.UserResponse](t, s.adminCall("GET", users+"?sort_direction=ASC", nil)); len(page) != 3 || page[0].UserID != "alice" {
			t.Fatalf("ascending: %+v", page)
		}
		if page = decode[[]httpapi.UserResponse](t, s.adminCall("GET", users+"?sort_by=user_id&sort_direction=desc", nil)); len(page) != 3 || page[0].UserID != "carol x" || page[2].UserID != "alice" {
			t.Fatalf("by user_id: %+v", page)
		}
		expectStatus(t, s.adminCall("GET", users+"?sort_direction=sideways", nil), 400, "invalid_request")
		e := expectStatus(t, s.adminCall("GET", users+"?sort_by=name&page=x", nil), 400, "invalid_request")
		if !strings.Contains(e.Details, "sort_by") || !strings.Contains(e.Details, "page") {
			t.Fatalf("every problem at once: %q", e.Details)
		}
		expectStatus(t, s.adminCall("GET", "/tenants/not-a-uuid/users", nil), 400, "invalid_tenant_id")
		expectStatus(t, s.adminCall("GET", "/tenants/00000000-0000-0000-0000-000000000000/users", nil), 404, "tenant_not_found")
		if page = decode[[]httpapi.UserResponse](t, s.adminCall("GET", "/tenants/"+b.id+"/users", nil)); len(page) != 1 {
			t.Fatalf("B lists %d users", len(page))
		}

		// The detail, by application id (percent-encoded or not) and by internal id.
		resp = s.adminCall("GET", users+"/alice", nil)
		expectStatus(t, resp, 200, "")
		detail := decode[adminUserDetail](t, resp)
		if detail.UserID != "alice" || detail.Name != "alice@example.com" || len(detail.Credentials) != 1 || detail.Credentials[0].ID != aliceCred ||
			detail.Credentials[0].UserID != "alice" || len(detail.Transactions) != 1 || detail.Transactions[0].Identifier != "tx-1" {
			t.Fatalf("detail %+v", detail)
		}
		byID := decode[adminUserDetail](t, s.adminCall("GET", users+"/"+detail.ID.String(), nil))
		if byID.UserID != "alice" || byID.ID != detail.ID {
			t.Fatalf("detail by internal id %+v", byID)
		}
		carol := decode[httpapi.UserResponse](t, s.adminCall("GET", users+"/"+url.PathEscape("carol x"), nil))
		if carol.UserID != "carol x" {
			t.Fatalf("percent-encoded user id: %+v", carol)
		}
		bob := decode[adminUserDetail](t, s.adminCall("GET", users+"/bob", nil))
		if bob.Transactions == nil || len(bob.Transactions) != 0 {
			t.Fatalf("a user without transactions: %+v", bob.Transactions)
		}
		expectStatus(t, s.adminCall("GET", users+"/nobody", nil), 404, "user_not_found")

		// Tenant B reaches none of A's users, by either id; A's alice is unchanged afterwards.
		other := "/tenants/" + b.id + "/users/"
		bAlice := decode[httpapi.UserResponse](t, s.adminCall("GET", other+"alice", nil))
		if bAlice.ID == detail.ID {
			t.Fatal("B's alice is A's alice")
		}
		expectStatus(t, s.adminCall("GET", other+detail.ID.String(), nil), 404, "user_not_found")
		expectStatus(t, s.adminCall("DELETE", other+detail.ID.String(), nil), 404, "user_not_found")
		expectStatus(t, s.adminCall("GET", users+"/"+bAlice.ID.String(), nil), 404, "user_not_found")
		expectStatus(t, s.adminCall("DELETE", users+"/"+bAlice.ID.String(), nil), 404, "user_not_found")
		expectStatus(t, s.adminCall("GET", users+"/alice", nil), 200, "")

		// Deleting A's alice: her passkey no longer logs in, her credential and transactions are gone,
		// and B's alice (with her pending session) stays. Her pending ceremony sessions are left in
		// Redis to expire (no per-user index costs each initialize a command): they fail at finalize,
		// which checks her in the database (credentials.SessionStore).
		a.login(aliceKey, "")
		before, bBefore := sessionKeys(t, s, a.id), sessionKeys(t, s, b.id)
		pending, err := authenticatortest.New(authenticatortest.Options{}).Create(a.registrationOptions("alice"), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		a.loginOptions("alice")
		a.loginOptions("") // discoverable: nobody's session, it stays
		b.loginOptions("alice")
		if n := sessionKeys(t, s, a.id); n != before+3 {
			t.Fatalf("%d sessions after three initializes, %d before", n, before)
		}
		expectStatus(t, s.adminCall("DELETE", users+"/alice", nil), 204, "")
		if n, nb := sessionKeys(t, s, a.id), sessionKeys(t, s, b.id); before == 0 || n != before+3 || nb != bBefore+1 {
			t.Fatalf("sessions after the delete: A %d (want %d), B %d (want %d)", n, before+3, nb, bBefore+1)
		}
		expectStatus(t, a.registrationFinalize(pending), 404, "user_not_found")
		expectStatus(t, s.adminCall("DELETE", users+"/alice", nil), 404, "user_not_found")
		expectStatus(t, s.adminCall("GET", users+"/"+detail.ID.String(), nil), 404, "user_not_found")
		expectStatus(t, a.get("/"+a.id+"/credentials/"+aliceCred), 404, "credential_not_found")
		if list := a.txList("alice"); len(list) != 0 {
			t.Fatalf("transactions of the deleted user: %+v", list)
		}
		assertion, err := aliceKey.Get(a.loginOptions(""), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, a.loginFinalize(assertion), 401, "assertion_failed")
		expectStatus(t, a.post("/"+a.id+"/login/initialize", map[string]any{"user_id": "alice"}, true), 404, "user_not_found")
		expectStatus(t, s.adminCall("GET", other+"alice", nil), 200, "")
		if n := decode[[]httpapi.UserResponse](t, s.adminCall("GET", users, nil)); len(n) != 2 {
			t.Fatalf("A lists %d users after the delete", len(n))
		}
	})
}

// sessionKeys counts the tenant's live ceremony sessions in Redis.
func sessionKeys(t *testing.T, s *testServer, tenantID string) int {
	t.Helper()
	keys, err := s.redis.Keys(t.Context(), s.redisPrefix+"session:{"+tenantID+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// adminUserDetail decodes httpapi.UserDetailResponse with its transactions.
type adminUserDetail struct {
	httpapi.UserResponse
	Credentials  []httpapi.CredentialResponse  `json:"credentials"`
	Transactions []httpapi.TransactionResponse `json:"transactions"`
}
