package db_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/transactions"
)

// The transaction store conformance suite: every test runs against PostgreSQL and SQLite
// (dbtest.Each), and every store method has a cross-tenant test (TestTransactionStoreCrossTenant).
// Tenants and users come from the credential store helpers credTenant and credUser.

// txNew returns a pending transaction of user u with every field a new transaction has, created at.
func txNew(u credentials.User, identifier string, at time.Time) transactions.Transaction {
	data := `{"amount":"10.00","currency":"EUR","transaction_id":"` + identifier + `"}`
	hash := sha256.Sum256([]byte(data))
	return transactions.Transaction{
		ID:         uuid.New(),
		TenantID:   u.TenantID,
		UserKey:    u.Key,
		AppUserID:  u.AppUserID,
		Identifier: identifier,
		Data:       data,
		DataHash:   hash[:],
		Challenge:  "challenge-" + uuid.NewString(),
		Status:     transactions.StatusPending,
		CreatedAt:  at,
		UpdatedAt:  at,
		ExpiresAt:  at.Add(5 * time.Minute),
	}
}

// txCreate stores tx and fails the test on an error.
func txCreate(tb testing.TB, s *db.TransactionStore, tx transactions.Transaction) transactions.Transaction {
	tb.Helper()
	if err := s.Create(context.Background(), tx); err != nil {
		tb.Fatalf("Create: %v", err)
	}
	return tx
}

// txGet reads a transaction by its challenge and fails the test on an error.
func txGet(tb testing.TB, s *db.TransactionStore, tenantID uuid.UUID, challenge string) transactions.Transaction {
	tb.Helper()
	tx, err := s.ByChallenge(context.Background(), tenantID, challenge)
	if err != nil {
		tb.Fatalf("ByChallenge: %v", err)
	}
	return tx
}

// txList lists a page and fails the test on an error.
func txList(tb testing.TB, s *db.TransactionStore, tenantID uuid.UUID, f transactions.ListFilter) ([]transactions.Transaction, int) {
	tb.Helper()
	list, total, err := s.List(context.Background(), tenantID, f)
	if err != nil {
		tb.Fatalf("List: %v", err)
	}
	if list == nil {
		tb.Fatal("List returned a nil list")
	}
	return list, total
}

// txIdentifiers returns the identifiers of list, in order.
func txIdentifiers(list []transactions.Transaction) []string {
	ids := make([]string, 0, len(list))
	for _, tx := range list {
		ids = append(ids, tx.Identifier)
	}
	return ids
}

func TestTransactionStoreCreateAndByChallenge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		cs := db.NewCredentialStore(d)
		s := db.NewTransactionStore(d)
		tenantID := credTenant(t, d, "A")
		alice := credUser(t, cs, tenantID, "alice")
		bob := credUser(t, cs, tenantID, "bob")

		tx := txCreate(t, s, txNew(alice, "tx-1", t0))
		mustEqual(t, "ByChallenge", txGet(t, s, tenantID, tx.Challenge), tx)
		other := txCreate(t, s, txNew(bob, "tx-2", t0))
		mustEqual(t, "ByChallenge of bob's", txGet(t, s, tenantID, other.Challenge), other)

		// AppUserID comes from the user, not from the input.
		wrongApp := txNew(alice, "tx-3", t0)
		wrongApp.AppUserID = "mallory"
		txCreate(t, s, wrongApp)
		if got := txGet(t, s, tenantID, wrongApp.Challenge).AppUserID; got != "alice" {
			t.Errorf("AppUserID = %q, want alice", got)
		}

		// Defaults: status pending, created_at now, updated_at = created_at.
		bare := txNew(alice, "tx-4", t0)
		bare.Status, bare.CreatedAt, bare.UpdatedAt = "", time.Time{}, time.Time{}
		before := time.Now().Add(-time.Second)
		txCreate(t, s, bare)
		got := txGet(t, s, tenantID, bare.Challenge)
		if got.Status != transactions.StatusPending || got.CreatedAt.Before(before) || !got.UpdatedAt.Equal(got.CreatedAt) {
			t.Errorf("defaults: status %q, created %v, updated %v", got.Status, got.CreatedAt, got.UpdatedAt)
		}

		_, err := s.ByChallenge(ctx, tenantID, "missing")
		mustBe(t, "ByChallenge of a missing challenge", err, transactions.ErrNotFound)
		_, err = s.ByChallenge(ctx, tenantID, strings.ToUpper(tx.Challenge))
		mustBe(t, "ByChallenge is case-sensitive", err, transactions.ErrNotFound)

		// Duplicates and unknown users.
		dup := txNew(bob, "tx-1", t0.Add(time.Hour))
		mustBe(t, "Create with a taken identifier", s.Create(ctx, dup), transactions.ErrExists)
		noUser := txNew(alice, "tx-5", t0)
		noUser.UserKey = uuid.New()
		mustBe(t, "Create for a missing user", s.Create(ctx, noUser), credentials.ErrUserNotFound)
		noTenant := txNew(alice, "tx-6", t0)
		noTenant.TenantID = uuid.New()
		mustBe(t, "Create in a missing tenant", s.Create(ctx, noTenant), credentials.ErrUserNotFound)
		noID := txNew(alice, "tx-7", t0)
		noID.ID = uuid.Nil
		if err := s.Create(ctx, noID); err == nil {
			t.Error("Create of a transaction without an id succeeded")
		}
		_, err = s.ByChallenge(ctx, tenantID, noID.Challenge)
		mustBe(t, "ByChallenge of a transaction that was refused", err, transactions.ErrNotFound)
		mustEqual(t, "the first tx-1 after the duplicate", txGet(t, s, tenantID, tx.Challenge), tx)
	})
}

// TestTransactionStoreIdentifierUniqueForever checks that an identifier stays taken once its
// transaction is finished, failed or confirmed, and whichever user asks.
func TestTransactionStoreIdentifierUniqueForever(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		cs := db.NewCredentialStore(d)
		s := db.NewTransactionStore(d)
		tenantID := credTenant(t, d, "A")
		alice := credUser(t, cs, tenantID, "alice")
		bob := credUser(t, cs, tenantID, "bob")

		failed := txCreate(t, s, txNew(alice, "pay-1", t0))
		if err := s.Finish(ctx, tenantID, failed.ID, transactions.StatusFailed, nil, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		mustBe(t, "Create after the first one failed", s.Create(ctx, txNew(alice, "pay-1", t0.Add(time.Minute))), transactions.ErrExists)
		mustBe(t, "Create by another user after it failed", s.Create(ctx, txNew(bob, "pay-1", t0.Add(time.Minute))), transactions.ErrExists)

		confirmed := txCreate(t, s, txNew(alice, "pay-2", t0))
		credID := "cred"
		if err := s.Finish(ctx, tenantID, confirmed.ID, transactions.StatusConfirmed, &credID, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		mustBe(t, "Create after the first one was confirmed", s.Create(ctx, txNew(alice, "pay-2", t0.Add(time.Minute))), transactions.ErrExists)

		// Pending but expired: still taken.
		expired := txNew(alice, "pay-3", t0.Add(-time.Hour))
		expired.ExpiresAt = t0.Add(-time.Minute)
		txCreate(t, s, expired)
		mustBe(t, "Create after the first one expired", s.Create(ctx, txNew(alice, "pay-3", t0)), transactions.ErrExists)

		// Identifiers are compared exactly.
		txCreate(t, s, txNew(alice, "PAY-1", t0))
		txCreate(t, s, txNew(alice, "pay-1 ", t0))

		_, total := txList(t, s, tenantID, transactions.ListFilter{UserKey: alice.Key})
		mustEqual(t, "alice's transactions", total, 5)
	})
}

func TestTransactionStoreFinish(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		cs := db.NewCredentialStore(d)
		s := db.NewTransactionStore(d)
		tenantID := credTenant(t, d, "A")
		alice := credUser(t, cs, tenantID, "alice")

		// Confirmed: status, credential, confirmed_at and updated_at change; nothing else.
		tx := txCreate(t, s, txNew(alice, "tx-1", t0))
		at := t0.Add(90 * time.Second)
		credID := "credential-id"
		if err := s.Finish(ctx, tenantID, tx.ID, transactions.StatusConfirmed, &credID, at.In(time.FixedZone("X", 3600))); err != nil {
			t.Fatalf("Finish confirmed: %v", err)
		}
		want := tx
		want.Status, want.CredentialID, want.ConfirmedAt, want.UpdatedAt = transactions.StatusConfirmed, &credID, &at, at
		mustEqual(t, "confirmed transaction", txGet(t, s, tenantID, tx.Challenge), want)

		// A finished transaction cannot be finished again, in either direction.
		mustBe(t, "second Finish", s.Finish(ctx, tenantID, tx.ID, transactions.StatusConfirmed, &credID, at.Add(time.Second)), transactions.ErrNotFound)
		mustBe(t, "Finish failed after confirmed", s.Finish(ctx, tenantID, tx.ID, transactions.StatusFailed, nil, at.Add(time.Second)), transactions.ErrNotFound)
		mustEqual(t, "confirmed transaction after more Finish calls", txGet(t, s, tenantID, tx.Challenge), want)

		// Failed: no confirmed_at; the credential is stored when given.
		failed := txCreate(t, s, txNew(alice, "tx-2", t0))
		if err := s.Finish(ctx, tenantID, failed.ID, transactions.StatusFailed, &credID, at); err != nil {
			t.Fatalf("Finish failed: %v", err)
		}
		want = failed
		want.Status, want.CredentialID, want.UpdatedAt = transactions.StatusFailed, &credID, at
		mustEqual(t, "failed transaction", txGet(t, s, tenantID, failed.Challenge), want)
		mustBe(t, "Finish confirmed after failed", s.Finish(ctx, tenantID, failed.ID, transactions.StatusConfirmed, &credID, at), transactions.ErrNotFound)

		failedNoCred := txCreate(t, s, txNew(alice, "tx-3", t0))
		if err := s.Finish(ctx, tenantID, failedNoCred.ID, transactions.StatusFailed, nil, at); err != nil {
			t.Fatal(err)
		}
		want = failedNoCred
		want.Status, want.UpdatedAt = transactions.StatusFailed, at
		mustEqual(t, "failed transaction without credential", txGet(t, s, tenantID, failedNoCred.Challenge), want)

		// Only confirmed and failed are outcomes; anything else changes nothing and is not ErrNotFound.
		pending := txCreate(t, s, txNew(alice, "tx-4", t0))
		for _, status := range []transactions.Status{transactions.StatusPending, transactions.StatusExpired, "", "bogus"} {
			err := s.Finish(ctx, tenantID, pending.ID, status, nil, at)
			if err == nil || errors.Is(err, transactions.ErrNotFound) {
				t.Errorf("Finish with status %q: got %v, want an error other than ErrNotFound", status, err)
			}
		}
		mustEqual(t, "pending transaction after refused Finish calls", txGet(t, s, tenantID, pending.Challenge), pending)

		mustBe(t, "Finish of a missing transaction", s.Finish(ctx, tenantID, uuid.New(), transactions.StatusConfirmed, &credID, at), transactions.ErrNotFound)
	})
}

// TestTransactionStoreFinishConcurrent races 20 Finish calls on one transaction (run it with -race):
// exactly one wins, the others get ErrNotFound, and the stored outcome is the winner's.
func TestTransactionStoreFinishConcurrent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		cs := db.NewCredentialStore(d)
		s := db.NewTransactionStore(d)
		tenantID := credTenant(t, d, "A")
		alice := credUser(t, cs, tenantID, "alice")

		for round := range 3 {
			tx := txCreate(t, s, txNew(alice, fmt.Sprintf("race-%d", round), t0))
			const callers = 20
			errs := make([]error, callers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() {
					status := transactions.StatusConfirmed
					if i%2 == 1 {
						status = transactions.StatusFailed
					}
					credID := fmt.Sprintf("cred-%d", i)
					<-start
					errs[i] = s.Finish(ctx, tenantID, tx.ID, status, &credID, t0.Add(time.Duration(i+1)*time.Second))
				})
			}
			close(start)
			wg.Wait()

			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Errorf("round %d: Finish calls %d and %d both succeeded", round, winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, transactions.ErrNotFound):
					t.Errorf("round %d: Finish call %d: %v", round, i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: no Finish call succeeded", round)
			}
			got := txGet(t, s, tenantID, tx.Challenge)
			wantCred := fmt.Sprintf("cred-%d", winner)
			wantAt := t0.Add(time.Duration(winner+1) * time.Second)
			if got.CredentialID == nil || *got.CredentialID != wantCred || !got.UpdatedAt.Equal(wantAt) {
				t.Errorf("round %d: stored credential %v, updated %v; want the winner's %s, %v", round, got.CredentialID, got.UpdatedAt, wantCred, wantAt)
			}
			if winner%2 == 0 {
				if got.Status != transactions.StatusConfirmed || got.ConfirmedAt == nil || !got.ConfirmedAt.Equal(wantAt) {
					t.Errorf("round %d: winner confirmed, stored status %q confirmed at %v", round, got.Status, got.ConfirmedAt)
				}
			} else if got.Status != transactions.StatusFailed || got.ConfirmedAt != nil {
				t.Errorf("round %d: winner failed, stored status %q confirmed at %v", round, got.Status, got.ConfirmedAt)
			}
		}
	})
}

func TestTransactionStoreList(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		cs := db.NewCredentialStore(d)
		s := db.NewTransactionStore(d)
		tenantID := credTenant(t, d, "A")
		alice := credUser(t, cs, tenantID, "alice")
		bob := credUser(t, cs, tenantID, "bob")
		carol := credUser(t, cs, tenantID, "carol")

		// 25 transactions of alice a second apart, plus 3 created at one instant (ordered by id), and
		// some of bob that alice's list never shows.
		var all []transactions.Transaction
		for i := range 25 {
			all = append(all, txCreate(t, s, txNew(alice, fmt.Sprintf("a-%02d", i), t0.Add(time.Duration(i)*time.Second))))
		}
		tie := t0.Add(time.Hour)
		for i := range 3 {
			all = append(all, txCreate(t, s, txNew(alice, fmt.Sprintf("tie-%d", i), tie)))
		}
		for i := range 4 {
			txCreate(t, s, txNew(bob, fmt.Sprintf("b-%d", i), t0.Add(time.Duration(100+i)*time.Second)))
		}
		// A finished transaction is listed with its outcome.
		credID := "cred"
		if err := s.Finish(ctx, tenantID, all[3].ID, transactions.StatusConfirmed, &credID, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		all[3].Status, all[3].CredentialID, all[3].UpdatedAt = transactions.StatusConfirmed, &credID, t0.Add(time.Minute)
		confirmedAt := t0.Add(time.Minute)
		all[3].ConfirmedAt = &confirmedAt

		// Newest first: the ties by id descending, then a-24 … a-00.
		ties := all[25:]
		for i := range ties {
			for j := i + 1; j < len(ties); j++ {
				if ties[j].ID.String() > ties[i].ID.String() {
					ties[i], ties[j] = ties[j], ties[i]
				}
			}
		}
		var want []transactions.Transaction
		want = append(want, ties...)
		for i := 24; i >= 0; i-- {
			want = append(want, all[i])
		}

		// The default page is the first, of 20.
		list, total := txList(t, s, tenantID, transactions.ListFilter{UserKey: alice.Key})
		mustEqual(t, "total", total, 28)
		mustEqual(t, "default page", list, want[:20])
		list, _ = txList(t, s, tenantID, transactions.ListFilter{UserKey: alice.Key, Page: passkey.Page{Number: -1, Size: -5}})
		mustEqual(t, "page and size below 1", list, want[:20])
		list, _ = txList(t, s, tenantID, transactions.ListFilter{UserKey: alice.Key, Page: passkey.Page{Number: 2}})
		mustEqual(t, "second default page", list, want[20:])

		// Walking pages of 3 gives every transaction once, in order.
		var walked []transactions.Transaction
		for page := 1; ; page++ {
			list, total := txList(t, s, tenantID, transactions.ListFilter{UserKey: alice.Key, Page: passkey.Page{Number: page, Size: 3}})
			mustEqual(t, "total on every page", total, 28)
			if len(list) == 0 {
				break
			}
			walked = append(walked, list...)
		}
		mustEqual(t, "walked pages", txIdentifiers(walked), txIdentifiers(want))

		// Beyond the end, even far beyond: empty and non-nil, with the total.
		for _, f := range []transactions.ListFilter{
			{UserKey: alice.Key, Page: passkey.Page{Number: 100, Size: 20}},
			{UserKey: alice.Key, Page: passkey.Page{Number: 1 << 62, Size: 1 << 30}},
			{UserKey: alice.Key, Page: passkey.Page{Number: int(^uint(0) >> 1), Size: int(^uint(0) >> 1)}},
		} {
			list, total := txList(t, s, tenantID, f)
			mustEqual(t, fmt.Sprintf("page %d of %d", f.Page.Number, f.Page.Size), len(list), 0)
			mustEqual(t, "total beyond the end", total, 28)
		}

		// Bob sees his own only; carol and a missing user have none.
		list, total = txList(t, s, tenantID, transactions.ListFilter{UserKey: bob.Key})
		mustEqual(t, "bob's list", txIdentifiers(list), []string{"b-3", "b-2", "b-1", "b-0"})
		mustEqual(t, "bob's total", total, 4)
		for _, tx := range list {
			mustEqual(t, "bob's AppUserID", tx.AppUserID, "bob")
		}
		list, total = txList(t, s, tenantID, transactions.ListFilter{UserKey: carol.Key})
		mustEqual(t, "carol's list", list, []transactions.Transaction{})
		mustEqual(t, "carol's total", total, 0)
		list, total = txList(t, s, tenantID, transactions.ListFilter{UserKey: uuid.New()})
		mustEqual(t, "a missing user's list", list, []transactions.Transaction{})
		mustEqual(t, "a missing user's total", total, 0)
	})
}

// TestTransactionStoreCrossTenant checks every method: tenant B can neither see nor finish tenant A's
// transactions, even where B has a transaction with the same identifier and a user with the same
// application id.
func TestTransactionStoreCrossTenant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		cs := db.NewCredentialStore(d)
		s := db.NewTransactionStore(d)
		a := credTenant(t, d, "A")
		b := credTenant(t, d, "B")
		aliceA := credUser(t, cs, a, "alice")
		aliceB := credUser(t, cs, b, "alice")

		onlyA := txCreate(t, s, txNew(aliceA, "only-in-a", t0))
		sharedA := txCreate(t, s, txNew(aliceA, "shared", t0))

		// Create: B cannot create a transaction for A's user, and the same identifier may exist in
		// both tenants independently.
		stolen := txNew(aliceA, "stolen", t0)
		stolen.TenantID = b
		mustBe(t, "B's Create for A's user", s.Create(ctx, stolen), credentials.ErrUserNotFound)
		sharedB := txCreate(t, s, txNew(aliceB, "shared", t0.Add(time.Hour)))
		mustBe(t, "B's second shared", s.Create(ctx, txNew(aliceB, "shared", t0)), transactions.ErrExists)

		// ByChallenge: B does not see A's transactions, even with the same challenge in B.
		_, err := s.ByChallenge(ctx, b, onlyA.Challenge)
		mustBe(t, "B's ByChallenge of A's transaction", err, transactions.ErrNotFound)
		sameChallenge := txNew(aliceB, "same-challenge", t0)
		sameChallenge.Challenge = sharedA.Challenge
		txCreate(t, s, sameChallenge)
		mustEqual(t, "A's shared by challenge", txGet(t, s, a, sharedA.Challenge), sharedA)
		mustEqual(t, "B's transaction with A's challenge", txGet(t, s, b, sharedA.Challenge), sameChallenge)
		mustEqual(t, "B's shared", txGet(t, s, b, sharedB.Challenge), sharedB)

		// Finish: B cannot finish A's transaction, by either status.
		credID := "cred"
		mustBe(t, "B's Finish confirmed of A's transaction", s.Finish(ctx, b, onlyA.ID, transactions.StatusConfirmed, &credID, t0), transactions.ErrNotFound)
		mustBe(t, "B's Finish failed of A's transaction", s.Finish(ctx, b, sharedA.ID, transactions.StatusFailed, nil, t0), transactions.ErrNotFound)
		mustEqual(t, "A's transaction after B's Finish", txGet(t, s, a, onlyA.Challenge), onlyA)
		mustEqual(t, "A's shared after B's Finish", txGet(t, s, a, sharedA.Challenge), sharedA)
		// ... and A's Finish of A's id in B's name does not touch B's rows either.
		mustBe(t, "A's Finish of B's transaction", s.Finish(ctx, a, sharedB.ID, transactions.StatusConfirmed, &credID, t0), transactions.ErrNotFound)
		if err := s.Finish(ctx, b, sharedB.ID, transactions.StatusConfirmed, &credID, t0.Add(2*time.Hour)); err != nil {
			t.Fatalf("B's Finish of its own: %v", err)
		}
		mustEqual(t, "A's shared after B finished its shared", txGet(t, s, a, sharedA.Challenge), sharedA)

		// List: A's user asked in B gives nothing, and B's alice has only B's.
		list, total := txList(t, s, b, transactions.ListFilter{UserKey: aliceA.Key})
		mustEqual(t, "B's List of A's user", list, []transactions.Transaction{})
		mustEqual(t, "B's total of A's user", total, 0)
		list, total = txList(t, s, b, transactions.ListFilter{UserKey: aliceB.Key})
		mustEqual(t, "B's alice's list", txIdentifiers(list), []string{"shared", "same-challenge"})
		mustEqual(t, "B's alice's total", total, 2)
		list, total = txList(t, s, a, transactions.ListFilter{UserKey: aliceB.Key})
		mustEqual(t, "A's List of B's user", list, []transactions.Transaction{})
		mustEqual(t, "A's total of B's user", total, 0)
		list, total = txList(t, s, a, transactions.ListFilter{UserKey: aliceA.Key})
		wantA := []transactions.Transaction{onlyA, sharedA} // one created_at: newest first is id descending
		if sharedA.ID.String() > onlyA.ID.String() {
			wantA = []transactions.Transaction{sharedA, onlyA}
		}
		mustEqual(t, "A's list", list, wantA)
		mustEqual(t, "A's total", total, 2)
	})
}

// TestTransactionStoreBigData checks that transaction data is stored as text, byte for byte: 200 KB
// of canonical JSON with numbers no float can hold, non-ASCII text, escapes and quotes.
func TestTransactionStoreBigData(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		cs := db.NewCredentialStore(d)
		s := db.NewTransactionStore(d)
		tenantID := credTenant(t, d, "A")
		alice := credUser(t, cs, tenantID, "alice")

		var b strings.Builder
		b.WriteString(`{"amount":12345678901234567890.123456789,"big":1e400,"small":-0.000000000000000000001,` +
			`"note":"Überweisung an Ærøskøbing 🔑 例え \"quoted\" \\ \u0000 \n; DROP TABLE transactions; --","items":[`)
		for i := 0; b.Len() < 200*1024; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"n":%d,"v":12345678901234567890.123456789,"t":"Zahlung №%d — ✓ ünïcødé 💶"}`, i, i)
		}
		b.WriteString(`]}`)
		data := b.String()
		if len(data) < 200*1024 {
			t.Fatalf("data is %d bytes", len(data))
		}

		tx := txNew(alice, strings.Repeat("ü", 100), t0)
		tx.Data = data
		hash := sha256.Sum256([]byte(data))
		tx.DataHash = hash[:]
		txCreate(t, s, tx)

		got := txGet(t, s, tenantID, tx.Challenge)
		if got.Data != data {
			t.Fatalf("data changed in a round trip: %d bytes in, %d out", len(data), len(got.Data))
		}
		if sha256.Sum256([]byte(got.Data)) != hash {
			t.Error("the hash of the read data differs")
		}
		mustEqual(t, "big transaction", got, tx)
		list, _ := txList(t, s, tenantID, transactions.ListFilter{UserKey: alice.Key})
		if len(list) != 1 || list[0].Data != data {
			t.Error("List changed the data")
		}
		credID := "cred"
		if err := s.Finish(ctx, tenantID, tx.ID, transactions.StatusConfirmed, &credID, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := txGet(t, s, tenantID, tx.Challenge); got.Data != data {
			t.Error("Finish changed the data")
		}
	})
}

// TestTransactionStoreExpiresAt checks that expires_at round-trips, that a zero ExpiresAt is stored
// as NULL, and that a NULL expires_at (the column is nullable) reads as the zero time, that is, as
// expired.
func TestTransactionStoreExpiresAt(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		cs := db.NewCredentialStore(d)
		s := db.NewTransactionStore(d)
		tenantID := credTenant(t, d, "A")
		alice := credUser(t, cs, tenantID, "alice")

		tx := txNew(alice, "tx-1", t0)
		tx.ExpiresAt = t0.Add(5 * time.Minute).In(time.FixedZone("Y", -5*3600))
		txCreate(t, s, tx)
		got := txGet(t, s, tenantID, tx.Challenge)
		if !got.ExpiresAt.Equal(tx.ExpiresAt) || got.ExpiresAt.Location() != time.UTC {
			t.Errorf("ExpiresAt = %v, want %v in UTC", got.ExpiresAt, tx.ExpiresAt)
		}
		mustEqual(t, "status just before expiry", got.EffectiveStatus(tx.ExpiresAt.Add(-time.Microsecond)), transactions.StatusPending)
		mustEqual(t, "status at expiry", got.EffectiveStatus(tx.ExpiresAt), transactions.StatusExpired)

		zero := txNew(alice, "tx-2", t0)
		zero.ExpiresAt = time.Time{}
		txCreate(t, s, zero)
		n, err := d.Bun().NewSelect().TableExpr("transactions").
			Where("tenant_id = ? AND identifier = ? AND expires_at IS NULL", tenantID, "tx-2").Count(ctx)
		if err != nil || n != 1 {
			t.Errorf("zero ExpiresAt stored as NULL: %d rows, %v", n, err)
		}

		// A row written with no expires_at at all.
		id := uuid.New()
		_, err = d.Bun().ExecContext(ctx,
			"INSERT INTO transactions (id, tenant_id, user_id, identifier, data, data_hash, challenge, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			id, tenantID, alice.Key, "tx-3", `{}`, []byte{1}, "null-expiry", "pending", t0, t0)
		if err != nil {
			t.Fatal(err)
		}
		for _, challenge := range []string{zero.Challenge, "null-expiry"} {
			got := txGet(t, s, tenantID, challenge)
			if !got.ExpiresAt.IsZero() {
				t.Errorf("NULL expires_at read as %v, want the zero time", got.ExpiresAt)
			}
			mustEqual(t, "status of a transaction without expiry", got.EffectiveStatus(t0), transactions.StatusExpired)
		}
		list, _ := txList(t, s, tenantID, transactions.ListFilter{UserKey: alice.Key})
		mustEqual(t, "listed", len(list), 3)
	})
}

// TestTransactionStoreCascades checks that deleting a user deletes its transactions, and deleting a
// tenant deletes all of the tenant's, and nothing of another user or tenant.
func TestTransactionStoreCascades(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		cs := db.NewCredentialStore(d)
		s := db.NewTransactionStore(d)
		a := credTenant(t, d, "A")
		b := credTenant(t, d, "B")
		aliceA := credUser(t, cs, a, "alice")
		bobA := credUser(t, cs, a, "bob")
		aliceB := credUser(t, cs, b, "alice")
		aliceTx := txCreate(t, s, txNew(aliceA, "tx-1", t0))
		bobTx := txCreate(t, s, txNew(bobA, "tx-2", t0))
		otherTx := txCreate(t, s, txNew(aliceB, "tx-1", t0))

		// Deleting a user.
		if _, err := d.Bun().ExecContext(ctx, "DELETE FROM users WHERE tenant_id = ? AND id = ?", a, aliceA.Key); err != nil {
			t.Fatal(err)
		}
		_, err := s.ByChallenge(ctx, a, aliceTx.Challenge)
		mustBe(t, "ByChallenge of a deleted user's transaction", err, transactions.ErrNotFound)
		list, total := txList(t, s, a, transactions.ListFilter{UserKey: aliceA.Key})
		mustEqual(t, "List of a deleted user", list, []transactions.Transaction{})
		mustEqual(t, "total of a deleted user", total, 0)
		mustEqual(t, "the other user's transaction", txGet(t, s, a, bobTx.Challenge), bobTx)
		mustBe(t, "Finish of a deleted user's transaction", s.Finish(ctx, a, aliceTx.ID, transactions.StatusFailed, nil, t0), transactions.ErrNotFound)
		// The identifier of a deleted transaction is free again: the row is gone.
		txCreate(t, s, txNew(bobA, "tx-1", t0))

		// Deleting a tenant.
		if err := db.NewTenantStore(d).DeleteTenant(ctx, a); err != nil {
			t.Fatalf("DeleteTenant: %v", err)
		}
		if n := count(t, d, "transactions", a); n != 0 {
			t.Errorf("transactions of the deleted tenant: %d, want 0", n)
		}
		_, err = s.ByChallenge(ctx, a, bobTx.Challenge)
		mustBe(t, "ByChallenge in a deleted tenant", err, transactions.ErrNotFound)
		mustEqual(t, "B's transaction", txGet(t, s, b, otherTx.Challenge), otherTx)
		mustBe(t, "Create in a deleted tenant", s.Create(ctx, txNew(bobA, "tx-3", t0)), credentials.ErrUserNotFound)
	})
}

// TestTransactionStoreErrorsWrap checks that not found is an error wrapped with context, never a
// bare sentinel or a zero value without one.
func TestTransactionStoreErrorsWrap(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTransactionStore(d)
		tenantID := credTenant(t, d, "A")
		tx, err := s.ByChallenge(ctx, tenantID, "missing")
		if err == nil || err == transactions.ErrNotFound || !errors.Is(err, transactions.ErrNotFound) {
			t.Errorf("ByChallenge error = %v, want transactions.ErrNotFound wrapped with context", err)
		}
		if !strings.Contains(err.Error(), tenantID.String()) {
			t.Errorf("ByChallenge error %q does not name the tenant", err)
		}
		mustEqual(t, "transaction returned with the error", tx, transactions.Transaction{})
		err = s.Finish(ctx, tenantID, uuid.New(), transactions.StatusFailed, nil, t0)
		if err == transactions.ErrNotFound || !strings.Contains(err.Error(), tenantID.String()) {
			t.Errorf("Finish error = %v, want transactions.ErrNotFound wrapped with the tenant", err)
		}
	})
}
