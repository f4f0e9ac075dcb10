package db_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/transactions"
)

// The user list and delete part of the credential store conformance suite (dbtest.Each: PostgreSQL
// and SQLite), with the cross-tenant test of both methods (TestCredentialStoreUsersCrossTenant).

// userAt upserts the application user appUserID of a tenant, created at, and returns the stored user.
func userAt(tb testing.TB, s *db.CredentialStore, tenantID uuid.UUID, appUserID string, at time.Time) credentials.User {
	tb.Helper()
	u, err := s.UpsertUser(context.Background(), credentials.User{
		TenantID: tenantID, AppUserID: appUserID, Name: appUserID + "@example.com", DisplayName: "User " + appUserID,
		CreatedAt: at, UpdatedAt: at,
	})
	if err != nil {
		tb.Fatalf("UpsertUser: %v", err)
	}
	return u
}

// listUsers lists a page and fails the test on an error or a nil list.
func listUsers(tb testing.TB, s *db.CredentialStore, tenantID uuid.UUID, f credentials.UserFilter) ([]credentials.User, int) {
	tb.Helper()
	list, total, err := s.ListUsers(context.Background(), tenantID, f)
	if err != nil {
		tb.Fatalf("ListUsers(%+v): %v", f, err)
	}
	if list == nil {
		tb.Fatal("ListUsers returned a nil list")
	}
	return list, total
}

// appUserIDs returns the application user ids of list, in order.
func appUserIDs(list []credentials.User) []string {
	ids := make([]string, 0, len(list))
	for _, u := range list {
		ids = append(ids, u.AppUserID)
	}
	return ids
}

func TestCredentialStoreListUsers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := db.NewCredentialStore(d)
		tenantID := credTenant(t, d, "A")

		list, total := listUsers(t, s, tenantID, credentials.UserFilter{})
		mustEqual(t, "empty tenant", list, []credentials.User{})
		mustEqual(t, "empty tenant total", total, 0)

		// Bob and dave are created at the same time: the internal id breaks the tie. "Bob" sorts before
		// "alice" byte by byte, whatever the database's locale says.
		alice := userAt(t, s, tenantID, "alice", t0)
		bob := userAt(t, s, tenantID, "Bob", t0.Add(time.Hour))
		dave := userAt(t, s, tenantID, "dave", t0.Add(time.Hour))
		carol := userAt(t, s, tenantID, "carol", t0.Add(2*time.Hour))
		tied := []string{bob.AppUserID, dave.AppUserID}
		if dave.Key.String() > bob.Key.String() {
			tied = []string{dave.AppUserID, bob.AppUserID}
		}
		newest := append(append([]string{"carol"}, tied...), "alice")

		list, total = listUsers(t, s, tenantID, credentials.UserFilter{})
		mustEqual(t, "default order (newest first)", appUserIDs(list), newest)
		mustEqual(t, "total", total, 4)
		mustEqual(t, "listed users are whole", list[0], carol)
		list, _ = listUsers(t, s, tenantID, credentials.UserFilter{SortBy: credentials.UserSortCreatedAt})
		mustEqual(t, "created_at descending", appUserIDs(list), newest)
		list, _ = listUsers(t, s, tenantID, credentials.UserFilter{Ascending: true})
		mustEqual(t, "created_at ascending", appUserIDs(list), []string{"alice", newest[2], newest[1], "carol"})
		mustEqual(t, "ascending, first user", list[0], alice)

		list, _ = listUsers(t, s, tenantID, credentials.UserFilter{SortBy: credentials.UserSortUserID})
		mustEqual(t, "user_id descending", appUserIDs(list), []string{"dave", "carol", "alice", "Bob"})
		list, _ = listUsers(t, s, tenantID, credentials.UserFilter{SortBy: credentials.UserSortUserID, Ascending: true})
		mustEqual(t, "user_id ascending", appUserIDs(list), []string{"Bob", "alice", "carol", "dave"})

		// Paging: every page has the total of all pages; a page past the end is empty.
		var paged []string
		for page := 1; page <= 3; page++ {
			list, total = listUsers(t, s, tenantID, credentials.UserFilter{Page: passkey.Page{Number: page, Size: 2}, SortBy: credentials.UserSortUserID, Ascending: true})
			mustEqual(t, "total on every page", total, 4)
			paged = append(paged, appUserIDs(list)...)
		}
		mustEqual(t, "pages 1-3 of 2", paged, []string{"Bob", "alice", "carol", "dave"})
		list, total = listUsers(t, s, tenantID, credentials.UserFilter{Page: passkey.Page{Number: 3, Size: 2}})
		mustEqual(t, "page past the end", list, []credentials.User{})
		mustEqual(t, "total past the end", total, 4)
		list, _ = listUsers(t, s, tenantID, credentials.UserFilter{Page: passkey.Page{Number: 1 << 62, Size: 1000}})
		mustEqual(t, "an offset beyond int64", list, []credentials.User{})
		list, _ = listUsers(t, s, tenantID, credentials.UserFilter{Page: passkey.Page{Number: -1, Size: 0}})
		mustEqual(t, "page below 1 and no page size", appUserIDs(list), newest)

		// An upsert (a new registration of a known user) keeps the user's place in the list.
		userAt(t, s, tenantID, "alice", t0.Add(5*time.Hour))
		list, _ = listUsers(t, s, tenantID, credentials.UserFilter{})
		mustEqual(t, "order after an upsert", appUserIDs(list), newest)

		// The store validates nothing: the service refuses an unknown order before it gets here.
		list, _ = listUsers(t, s, tenantID, credentials.UserFilter{SortBy: "name"})
		mustEqual(t, "unknown order falls back to the default", appUserIDs(list), newest)
		list, total = listUsers(t, s, uuid.New(), credentials.UserFilter{})
		mustEqual(t, "missing tenant", list, []credentials.User{})
		mustEqual(t, "missing tenant total", total, 0)
	})
}

// TestCredentialStoreDeleteUser checks that deleting a user deletes its credentials and transactions
// through the foreign keys, and nothing of another user or tenant.
func TestCredentialStoreDeleteUser(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		txs := db.NewTransactionStore(d)
		a := credTenant(t, d, "A")
		b := credTenant(t, d, "B")
		alice := credUser(t, s, a, "alice")
		bob := credUser(t, s, a, "bob")
		aliceB := credUser(t, s, b, "alice")
		credCreate(t, s, credNew(alice, "alice-1", t0))
		credCreate(t, s, credNew(alice, "shared-id", t0))
		bobCred := credCreate(t, s, credNew(bob, "bob-1", t0))
		otherCred := credCreate(t, s, credNew(aliceB, "shared-id", t0))
		aliceTx := txCreate(t, txs, txNew(alice, "tx-1", t0))
		txCreate(t, txs, txNew(alice, "tx-2", t0))
		bobTx := txCreate(t, txs, txNew(bob, "tx-3", t0))
		otherTx := txCreate(t, txs, txNew(aliceB, "tx-1", t0))

		if err := s.DeleteUser(ctx, a, alice.Key); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}

		// The user, its credentials and its transactions are gone.
		_, err := s.UserByKey(ctx, a, alice.Key)
		mustBe(t, "UserByID of the deleted user", err, credentials.ErrUserNotFound)
		_, err = s.UserByAppID(ctx, a, "alice")
		mustBe(t, "UserByAppID of the deleted user", err, credentials.ErrUserNotFound)
		_, err = s.Credential(ctx, a, "alice-1")
		mustBe(t, "a credential of the deleted user", err, credentials.ErrCredentialNotFound)
		_, err = s.Credential(ctx, a, "shared-id")
		mustBe(t, "another credential of the deleted user", err, credentials.ErrCredentialNotFound)
		creds, err := s.CredentialsOfUser(ctx, a, alice.Key)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "credentials of the deleted user", creds, []credentials.Credential{})
		_, err = txs.ByChallenge(ctx, a, aliceTx.Challenge)
		mustBe(t, "a transaction of the deleted user", err, transactions.ErrNotFound)
		list, total := txList(t, txs, a, transactions.ListFilter{UserKey: alice.Key})
		mustEqual(t, "transactions of the deleted user", list, []transactions.Transaction{})
		mustEqual(t, "transaction total of the deleted user", total, 0)
		mustEqual(t, "users left in A", count(t, d, "users", a), int64(1))
		mustEqual(t, "credentials left in A", count(t, d, "credentials", a), int64(1))
		mustEqual(t, "transactions left in A", count(t, d, "transactions", a), int64(1))

		// The other user of the tenant and the other tenant's user of the same name are untouched.
		got, err := s.UserByKey(ctx, a, bob.Key)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "bob", got, bob)
		mustEqual(t, "bob's credential", credGet(t, s, a, "bob-1"), bobCred)
		mustEqual(t, "bob's transaction", txGet(t, txs, a, bobTx.Challenge), bobTx)
		got, err = s.UserByKey(ctx, b, aliceB.Key)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "B's alice", got, aliceB)
		mustEqual(t, "B's credential", credGet(t, s, b, "shared-id"), otherCred)
		mustEqual(t, "B's transaction", txGet(t, txs, b, otherTx.Challenge), otherTx)
		users, total := listUsers(t, s, a, credentials.UserFilter{})
		mustEqual(t, "A's list", appUserIDs(users), []string{"bob"})
		mustEqual(t, "A's total", total, 1)

		// Deleting again, or a user that never was, is not found, with context.
		err = s.DeleteUser(ctx, a, alice.Key)
		mustBe(t, "DeleteUser of a deleted user", err, credentials.ErrUserNotFound)
		if err == credentials.ErrUserNotFound || !strings.Contains(err.Error(), a.String()) {
			t.Errorf("DeleteUser error %q is not wrapped with the tenant", err)
		}
		mustBe(t, "DeleteUser of a missing user", s.DeleteUser(ctx, a, uuid.New()), credentials.ErrUserNotFound)
		mustBe(t, "DeleteUser in a missing tenant", s.DeleteUser(ctx, uuid.New(), bob.Key), credentials.ErrUserNotFound)

		// The application user id is free: registering it again makes a new user with nothing.
		again := credUser(t, s, a, "alice")
		if again.Key == alice.Key {
			t.Error("the re-created user has the deleted user's internal id")
		}
		creds, err = s.CredentialsOfUser(ctx, a, again.Key)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "credentials of the re-created user", creds, []credentials.Credential{})
		// The deleted user's credential and transaction ids are free again too: the rows are gone.
		credCreate(t, s, credNew(again, "alice-1", t0))
		txCreate(t, txs, txNew(again, "tx-2", t0))
	})
}

// TestCredentialStoreUsersCrossTenant checks ListUsers and DeleteUser: tenant B can neither list nor
// delete tenant A's users, even by their internal ids, and the other way round.
func TestCredentialStoreUsersCrossTenant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		txs := db.NewTransactionStore(d)
		a := credTenant(t, d, "A")
		b := credTenant(t, d, "B")
		aliceA := credUser(t, s, a, "alice")
		bobA := userAt(t, s, a, "bob", t0.Add(time.Hour))
		aliceB := credUser(t, s, b, "alice")
		credA := credCreate(t, s, credNew(aliceA, "shared-id", t0))
		credB := credCreate(t, s, credNew(aliceB, "shared-id", t0))
		txA := txCreate(t, txs, txNew(aliceA, "tx-1", t0))

		// ListUsers: each tenant sees its own users only.
		list, total := listUsers(t, s, b, credentials.UserFilter{})
		mustEqual(t, "B's users", list, []credentials.User{aliceB})
		mustEqual(t, "B's total", total, 1)
		list, total = listUsers(t, s, a, credentials.UserFilter{})
		mustEqual(t, "A's users", list, []credentials.User{bobA, aliceA})
		mustEqual(t, "A's total", total, 2)

		// DeleteUser: B cannot delete A's users by their internal ids, nor A B's.
		mustBe(t, "B's DeleteUser of A's alice", s.DeleteUser(ctx, b, aliceA.Key), credentials.ErrUserNotFound)
		mustBe(t, "B's DeleteUser of A's bob", s.DeleteUser(ctx, b, bobA.Key), credentials.ErrUserNotFound)
		mustBe(t, "A's DeleteUser of B's alice", s.DeleteUser(ctx, a, aliceB.Key), credentials.ErrUserNotFound)
		got, err := s.UserByKey(ctx, a, aliceA.Key)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "A's alice after B's attempt", got, aliceA)
		mustEqual(t, "A's credential after B's attempt", credGet(t, s, a, "shared-id"), credA)
		mustEqual(t, "A's transaction after B's attempt", txGet(t, txs, a, txA.Challenge), txA)

		// Deleting B's alice leaves A's alice, her credential of the same id and her transaction.
		if err := s.DeleteUser(ctx, b, aliceB.Key); err != nil {
			t.Fatal(err)
		}
		_, err = s.Credential(ctx, b, credB.ID)
		mustBe(t, "B's credential after the delete", err, credentials.ErrCredentialNotFound)
		mustEqual(t, "A's credential after B's delete", credGet(t, s, a, "shared-id"), credA)
		mustEqual(t, "A's transaction after B's delete", txGet(t, txs, a, txA.Challenge), txA)
		list, total = listUsers(t, s, a, credentials.UserFilter{})
		mustEqual(t, "A's users after B's delete", list, []credentials.User{bobA, aliceA})
		mustEqual(t, "A's total after B's delete", total, 2)
		if err := s.DeleteUser(ctx, a, aliceA.Key); err != nil {
			t.Fatalf("A's DeleteUser of its own user: %v", err)
		}
	})
}
