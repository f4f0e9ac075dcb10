package db_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/attestation"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/tenant"
)

// The credential store conformance suite: every test runs against PostgreSQL and SQLite
// (dbtest.Each), and every store method has a cross-tenant test (TestCredentialStoreCrossTenant).

// credTenant stores a tenant with a signing key and no API keys, and returns its id. Unlike
// createTenant it takes a testing.TB, so benchmarks can use it too.
func credTenant(tb testing.TB, d *db.DB, name string) uuid.UUID {
	tb.Helper()
	id := uuid.New()
	tn := tenant.Tenant{
		ID: id, DisplayName: name, Config: testConfig(strings.ToLower(name) + ".example.com"),
		Revision: 1, CreatedAt: t0, UpdatedAt: t0,
	}
	if err := db.NewTenantStore(d).CreateTenant(context.Background(), tn, nil, newSigningKey(id, t0)); err != nil {
		tb.Fatalf("CreateTenant: %v", err)
	}
	return id
}

// credUser upserts the application user appUserID of a tenant and returns the stored user.
func credUser(tb testing.TB, s *db.CredentialStore, tenantID uuid.UUID, appUserID string) credentials.User {
	tb.Helper()
	u, err := s.UpsertUser(context.Background(), credentials.User{
		TenantID: tenantID, AppUserID: appUserID, Name: appUserID + "@example.com", DisplayName: "User " + appUserID,
		CreatedAt: t0, UpdatedAt: t0,
	})
	if err != nil {
		tb.Fatalf("UpsertUser: %v", err)
	}
	return u
}

// credNew returns a credential of user u with every field set, created at.
func credNew(u credentials.User, id string, at time.Time) credentials.Credential {
	name := "Key " + id[:min(len(id), 8)]
	last := at.Add(time.Minute)
	return credentials.Credential{
		ID:                      id,
		TenantID:                u.TenantID,
		UserKey:                 u.Key,
		AppUserID:               u.AppUserID,
		Name:                    &name,
		PublicKey:               []byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01},
		AttestationType:         "packed",
		AAGUID:                  uuid.MustParse("08987058-cadc-4b81-b6e1-30de50dcbe96"),
		SignCount:               7,
		BackupEligible:          true,
		BackupState:             true,
		UserPresent:             true,
		UserVerified:            true,
		Transports:              []string{"internal", "hybrid"},
		AuthenticatorAttachment: "platform",
		CreatedAt:               at,
		UpdatedAt:               at,
		LastUsedAt:              &last,
		Attestation: attestation.Record{Verdict: attestation.Verified, Root: "CN=Test Root,O=Test Alliance",
			Status: "FIDO_CERTIFIED_L2", CertificationLevel: "FIDO_CERTIFIED_L2", Violations: []string{"backup_eligible"}},
	}
}

// credCreate stores c and fails the test on an error.
func credCreate(tb testing.TB, s *db.CredentialStore, c credentials.Credential) credentials.Credential {
	tb.Helper()
	if err := s.CreateCredential(context.Background(), c); err != nil {
		tb.Fatalf("CreateCredential: %v", err)
	}
	return c
}

// credGet reads a credential and fails the test on an error.
func credGet(tb testing.TB, s *db.CredentialStore, tenantID uuid.UUID, id string) credentials.Credential {
	tb.Helper()
	c, err := s.Credential(context.Background(), tenantID, id)
	if err != nil {
		tb.Fatalf("Credential: %v", err)
	}
	return c
}

// credIDs returns the ids of list, in order.
func credIDs(list []credentials.Credential) []string {
	ids := make([]string, 0, len(list))
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestCredentialStoreUpsertUser(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		tenantID := credTenant(t, d, "A")

		in := credentials.User{TenantID: tenantID, AppUserID: "alice", Name: "alice@example.com", DisplayName: "Alice", CreatedAt: t0, UpdatedAt: t0}
		created, err := s.UpsertUser(ctx, in)
		if err != nil {
			t.Fatalf("UpsertUser: %v", err)
		}
		if created.Key == uuid.Nil {
			t.Fatal("UpsertUser gave a new user no id")
		}
		want := in
		want.Key = created.Key
		mustEqual(t, "created user", created, want)

		byApp, err := s.UserByAppID(ctx, tenantID, "alice")
		if err != nil {
			t.Fatalf("UserByAppID: %v", err)
		}
		mustEqual(t, "UserByAppID", byApp, want)
		byID, err := s.UserByKey(ctx, tenantID, created.Key)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		mustEqual(t, "UserByID", byID, want)

		// A second upsert updates the profile and updated_at, and keeps the id and created_at, even
		// when the caller proposes another id (as the registration ceremony does).
		icon := "https://example.com/alice.png"
		later := t0.Add(time.Hour)
		updated, err := s.UpsertUser(ctx, credentials.User{
			Key: uuid.New(), TenantID: tenantID, AppUserID: "alice", Name: "alice@example.org", DisplayName: "Alice B.",
			Icon: &icon, CreatedAt: later, UpdatedAt: later,
		})
		if err != nil {
			t.Fatalf("second UpsertUser: %v", err)
		}
		want.Name, want.DisplayName, want.Icon, want.UpdatedAt = "alice@example.org", "Alice B.", &icon, later
		mustEqual(t, "updated user", updated, want)
		byID, err = s.UserByKey(ctx, tenantID, created.Key)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "UserByID after update", byID, want)

		// The icon can be removed again.
		third, err := s.UpsertUser(ctx, credentials.User{TenantID: tenantID, AppUserID: "alice", Name: "a", DisplayName: "A", UpdatedAt: later})
		if err != nil {
			t.Fatal(err)
		}
		if third.Key != created.Key || third.Icon != nil {
			t.Errorf("third upsert = %+v, want id %s and no icon", third, created.Key)
		}

		// A proposed id is used for a new user.
		proposed := uuid.New()
		bob, err := s.UpsertUser(ctx, credentials.User{Key: proposed, TenantID: tenantID, AppUserID: "bob", CreatedAt: t0, UpdatedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "proposed id", bob.Key, proposed)

		_, err = s.UpsertUser(ctx, credentials.User{TenantID: uuid.New(), AppUserID: "alice", CreatedAt: t0, UpdatedAt: t0})
		mustBe(t, "UpsertUser in a missing tenant", err, tenant.ErrNotFound)
	})
}

func TestCredentialStoreUserNotFound(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		tenantID := credTenant(t, d, "A")
		credUser(t, s, tenantID, "alice")

		u, err := s.UserByAppID(ctx, tenantID, "nobody")
		mustBe(t, "UserByAppID of a missing user", err, credentials.ErrUserNotFound)
		mustEqual(t, "user returned with the error", u, credentials.User{})
		_, err = s.UserByAppID(ctx, tenantID, "ALICE")
		mustBe(t, "UserByAppID is case-sensitive", err, credentials.ErrUserNotFound)
		_, err = s.UserByKey(ctx, tenantID, uuid.New())
		mustBe(t, "UserByID of a missing user", err, credentials.ErrUserNotFound)
		_, err = s.UserByAppID(ctx, uuid.New(), "alice")
		mustBe(t, "UserByAppID in a missing tenant", err, credentials.ErrUserNotFound)
	})
}

func TestCredentialStoreCreateAndGet(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		tenantID := credTenant(t, d, "A")
		alice := credUser(t, s, tenantID, "alice")

		full := credCreate(t, s, credNew(alice, "full-credential", t0))
		mustEqual(t, "credential", credGet(t, s, tenantID, full.ID), full)

		// The minimal credential: no name, transports, attachment or last use.
		minimal := credentials.Credential{
			ID: "minimal", TenantID: tenantID, UserKey: alice.Key, PublicKey: []byte{1},
			CreatedAt: t0, UpdatedAt: t0,
		}
		credCreate(t, s, minimal)
		got := credGet(t, s, tenantID, "minimal")
		if got.Transports == nil {
			t.Error("Transports of a credential without transports is nil, want []string{}")
		}
		want := minimal
		want.AppUserID, want.Transports = "alice", []string{}
		mustEqual(t, "minimal credential", got, want)

		// Clone warning, MFA and the largest counter survive the round trip.
		flags := credNew(alice, "flags", t0)
		flags.CloneWarning, flags.IsMFA, flags.SignCount = true, true, 1<<32-1
		flags.Transports = []string{}
		credCreate(t, s, flags)
		mustEqual(t, "flagged credential", credGet(t, s, tenantID, "flags"), flags)

		dup := credNew(alice, "full-credential", t0.Add(time.Hour))
		mustBe(t, "CreateCredential with a taken id", s.CreateCredential(ctx, dup), credentials.ErrCredentialExists)
		mustEqual(t, "credential after a duplicate", credGet(t, s, tenantID, full.ID), full)

		orphan := credNew(alice, "orphan", t0)
		orphan.UserKey = uuid.New()
		mustBe(t, "CreateCredential of a missing user", s.CreateCredential(ctx, orphan), credentials.ErrUserNotFound)
		noTenant := credNew(alice, "no-tenant", t0)
		noTenant.TenantID = uuid.New()
		mustBe(t, "CreateCredential in a missing tenant", s.CreateCredential(ctx, noTenant), credentials.ErrUserNotFound)

		c, err := s.Credential(ctx, tenantID, "orphan")
		mustBe(t, "Credential of a missing id", err, credentials.ErrCredentialNotFound)
		mustEqual(t, "credential returned with the error", c.ID, "")
		_, err = s.Credential(ctx, tenantID, "FULL-CREDENTIAL")
		mustBe(t, "Credential ids are case-sensitive", err, credentials.ErrCredentialNotFound)
	})
}

func TestCredentialStoreCredentialsOfUser(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		tenantID := credTenant(t, d, "A")
		alice := credUser(t, s, tenantID, "alice")
		bob := credUser(t, s, tenantID, "bob")

		// Created out of order, and two at the same instant (ordered by id).
		c3 := credCreate(t, s, credNew(alice, "c3", t0.Add(2*time.Hour)))
		c1 := credCreate(t, s, credNew(alice, "c1", t0))
		c2b := credCreate(t, s, credNew(alice, "c2b", t0.Add(time.Hour)))
		c2a := credCreate(t, s, credNew(alice, "c2a", t0.Add(time.Hour)))
		credCreate(t, s, credNew(bob, "bob-1", t0))

		got, err := s.CredentialsOfUser(ctx, tenantID, alice.Key)
		if err != nil {
			t.Fatalf("CredentialsOfUser: %v", err)
		}
		mustEqual(t, "alice's credentials", got, []credentials.Credential{c1, c2a, c2b, c3})

		none, err := s.CredentialsOfUser(ctx, tenantID, uuid.New())
		if err != nil {
			t.Fatalf("CredentialsOfUser of a missing user: %v", err)
		}
		if none == nil || len(none) != 0 {
			t.Errorf("CredentialsOfUser of a missing user = %#v, want an empty, non-nil list", none)
		}
	})
}

func TestCredentialStoreLoginUser(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		tenantID := credTenant(t, d, "A")
		other := credTenant(t, d, "B")
		alice := credUser(t, s, tenantID, "alice")
		bob := credUser(t, s, tenantID, "bob")
		carol := credUser(t, s, tenantID, "carol")

		c3 := credCreate(t, s, credNew(alice, "c3", t0.Add(2*time.Hour)))
		c1 := credCreate(t, s, credNew(alice, "c1", t0))
		c2b := credCreate(t, s, credNew(alice, "c2b", t0.Add(time.Hour)))
		c2a := credCreate(t, s, credNew(alice, "c2a", t0.Add(time.Hour)))
		credCreate(t, s, credNew(bob, "bob-1", t0))
		otherAlice := credUser(t, s, other, "alice")
		credCreate(t, s, credNew(otherAlice, "in-b", t0))

		user, list, err := s.LoginUser(ctx, tenantID, "alice")
		if err != nil {
			t.Fatalf("LoginUser: %v", err)
		}
		mustEqual(t, "alice", user, alice)
		mustEqual(t, "alice's credentials, oldest first", list, []credentials.Credential{c1, c2a, c2b, c3})

		// A user without credentials: the user and an empty, non-nil list.
		user, list, err = s.LoginUser(ctx, tenantID, "carol")
		if err != nil {
			t.Fatalf("LoginUser of a user without credentials: %v", err)
		}
		mustEqual(t, "carol", user, carol)
		if list == nil || len(list) != 0 {
			t.Errorf("LoginUser of a user without credentials = %#v, want an empty, non-nil list", list)
		}

		_, _, err = s.LoginUser(ctx, tenantID, "nobody")
		mustBe(t, "LoginUser of a missing user", err, credentials.ErrUserNotFound)
		_, _, err = s.LoginUser(ctx, uuid.New(), "alice")
		mustBe(t, "LoginUser in a missing tenant", err, credentials.ErrUserNotFound)
	})
}

func TestCredentialStoreListCredentials(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		tenantID := credTenant(t, d, "A")
		alice := credUser(t, s, tenantID, "alice")
		bob := credUser(t, s, tenantID, "bob")
		credUser(t, s, tenantID, "carol") // a user without credentials

		// 25 credentials: alice has the even minutes, bob the odd ones. Two share an instant.
		var ascending []string
		for i := range 25 {
			owner := alice
			if i%2 == 1 {
				owner = bob
			}
			id := fmt.Sprintf("cred-%02d", i)
			at := t0.Add(time.Duration(i) * time.Minute)
			if i == 24 {
				at = t0.Add(23 * time.Minute) // the same instant as cred-23
			}
			credCreate(t, s, credNew(owner, id, at))
			ascending = append(ascending, id)
		}
		descending := make([]string, 0, len(ascending))
		for i := len(ascending) - 1; i >= 0; i-- {
			descending = append(descending, ascending[i])
		}

		tests := []struct {
			name      string
			filter    credentials.ListFilter
			wantIDs   []string
			wantTotal int
		}{
			{"defaults: page 1 of 20, newest first", credentials.ListFilter{}, descending[:20], 25},
			{"negative page and size are the defaults", credentials.ListFilter{Page: passkey.Page{Number: -3, Size: -1}}, descending[:20], 25},
			{"second page", credentials.ListFilter{Page: passkey.Page{Number: 2, Size: 10}}, descending[10:20], 25},
			{"last, partial page", credentials.ListFilter{Page: passkey.Page{Number: 3, Size: 10}}, descending[20:], 25},
			{"beyond the end", credentials.ListFilter{Page: passkey.Page{Number: 4, Size: 10}}, []string{}, 25},
			{"far beyond the end", credentials.ListFilter{Page: passkey.Page{Number: 1 << 62, Size: 1 << 40}}, []string{}, 25},
			{"ascending", credentials.ListFilter{Ascending: true, Page: passkey.Page{Size: 5}}, ascending[:5], 25},
			{"ascending, last page", credentials.ListFilter{Ascending: true, Page: passkey.Page{Number: 3, Size: 10}}, ascending[20:], 25},
			{"one user", credentials.ListFilter{AppUserID: "bob", Page: passkey.Page{Size: 3}, Ascending: true}, []string{"cred-01", "cred-03", "cred-05"}, 12},
			{"one user, newest first", credentials.ListFilter{AppUserID: "alice", Page: passkey.Page{Size: 2}}, []string{"cred-24", "cred-22"}, 13},
			{"one user, beyond the end", credentials.ListFilter{AppUserID: "alice", Page: passkey.Page{Number: 2, Size: 13}}, []string{}, 13},
			{"a user without credentials", credentials.ListFilter{AppUserID: "carol"}, []string{}, 0},
			{"an unknown user", credentials.ListFilter{AppUserID: "nobody"}, []string{}, 0},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, total, err := s.ListCredentials(ctx, tenantID, tc.filter)
				if err != nil {
					t.Fatalf("ListCredentials: %v", err)
				}
				if got == nil {
					t.Error("ListCredentials returned a nil list, want a non-nil one")
				}
				mustEqual(t, "ids", credIDs(got), tc.wantIDs)
				mustEqual(t, "total", total, tc.wantTotal)
				for _, c := range got {
					if c.AppUserID == "" || c.TenantID != tenantID {
						t.Errorf("credential %s: AppUserID %q, tenant %s", c.ID, c.AppUserID, c.TenantID)
					}
				}
			})
		}

		// Listed credentials are complete, like those Credential returns.
		page, _, err := s.ListCredentials(ctx, tenantID, credentials.ListFilter{Page: passkey.Page{Size: 1}})
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "listed credential", page[0], credGet(t, s, tenantID, page[0].ID))
	})
}

func TestCredentialStoreRecordLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		tenantID := credTenant(t, d, "A")
		alice := credUser(t, s, tenantID, "alice")
		c := credNew(alice, "cred", t0)
		c.BackupEligible, c.BackupState, c.UserVerified, c.LastUsedAt = false, false, false, nil
		credCreate(t, s, c)

		at := t0.Add(24 * time.Hour)
		login := credentials.LoginUpdate{SignCount: 8, BackupEligible: true, BackupState: true, UserVerified: true, LastUsedAt: at}
		if err := s.RecordLogin(ctx, tenantID, c.ID, login); err != nil {
			t.Fatalf("RecordLogin: %v", err)
		}
		want := c
		want.SignCount, want.BackupEligible, want.BackupState, want.UserVerified = 8, true, true, true
		want.LastUsedAt, want.UpdatedAt = &at, at
		mustEqual(t, "after a login", credGet(t, s, tenantID, c.ID), want)

		// A login with a clone warning sets it ...
		at2 := at.Add(time.Hour)
		if err := s.RecordLogin(ctx, tenantID, c.ID, credentials.LoginUpdate{SignCount: 8, CloneWarning: true, LastUsedAt: at2}); err != nil {
			t.Fatal(err)
		}
		want.CloneWarning, want.BackupEligible, want.BackupState, want.UserVerified = true, false, false, false
		want.LastUsedAt, want.UpdatedAt = &at2, at2
		mustEqual(t, "after a cloned login", credGet(t, s, tenantID, c.ID), want)

		// ... and a later login without one does not clear it.
		at3 := at2.Add(time.Hour)
		if err := s.RecordLogin(ctx, tenantID, c.ID, credentials.LoginUpdate{SignCount: 9, UserVerified: true, LastUsedAt: at3}); err != nil {
			t.Fatal(err)
		}
		want.SignCount, want.UserVerified, want.LastUsedAt, want.UpdatedAt = 9, true, &at3, at3
		mustEqual(t, "after a clean login", credGet(t, s, tenantID, c.ID), want)

		// The counter never goes back (of two concurrent logins, the higher counter wins).
		if err := s.RecordLogin(ctx, tenantID, c.ID, credentials.LoginUpdate{SignCount: 5, UserVerified: true, LastUsedAt: at3}); err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "after a login with a lower counter", credGet(t, s, tenantID, c.ID), want)

		// The largest counter fits.
		if err := s.RecordLogin(ctx, tenantID, c.ID, credentials.LoginUpdate{SignCount: 1<<32 - 1, LastUsedAt: at3}); err != nil {
			t.Fatal(err)
		}
		if got := credGet(t, s, tenantID, c.ID).SignCount; got != 1<<32-1 {
			t.Errorf("SignCount = %d, want %d", got, uint32(1<<32-1))
		}

		// A login under a monitoring attestation policy records a changed MDS status; the others keep it.
		if err := s.RecordLogin(ctx, tenantID, c.ID, credentials.LoginUpdate{SignCount: 1<<32 - 1, LastUsedAt: at3, MDSStatus: "REVOKED"}); err != nil {
			t.Fatal(err)
		}
		if got := credGet(t, s, tenantID, c.ID).Attestation; got.Status != "REVOKED" || got.Verdict != attestation.Verified {
			t.Errorf("attestation after a login that saw REVOKED = %+v", got)
		}

		mustBe(t, "RecordLogin of a missing credential",
			s.RecordLogin(ctx, tenantID, "missing", login), credentials.ErrCredentialNotFound)
	})
}

// TestCredentialStoreFlagCloneWarning checks that a refused login sets the warning and nothing else.
func TestCredentialStoreFlagCloneWarning(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		tenantID := credTenant(t, d, "A")
		c := credCreate(t, s, credNew(credUser(t, s, tenantID, "alice"), "cred", t0))
		if err := s.FlagCloneWarning(ctx, tenantID, c.ID); err != nil {
			t.Fatal(err)
		}
		got := credGet(t, s, tenantID, c.ID)
		want := c
		want.CloneWarning, want.UpdatedAt = true, got.UpdatedAt
		mustEqual(t, "after FlagCloneWarning", got, want)
		mustBe(t, "FlagCloneWarning of a missing credential", s.FlagCloneWarning(ctx, tenantID, "missing"), credentials.ErrCredentialNotFound)
	})
}

// TestCredentialStoreRecordLoginConcurrent runs logins of one credential in parallel (run it with
// -race): none fails, and a single clone warning among them is never lost.
func TestCredentialStoreRecordLoginConcurrent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		tenantID := credTenant(t, d, "A")
		alice := credUser(t, s, tenantID, "alice")
		c := credCreate(t, s, credNew(alice, "cred", t0))

		const workers, logins = 8, 20
		var wg sync.WaitGroup
		errs := make(chan error, workers*logins)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range logins {
					u := credentials.LoginUpdate{
						SignCount:    uint32(w*logins + i),
						CloneWarning: w == 3 && i == logins/2,
						LastUsedAt:   t0.Add(time.Duration(w*logins+i) * time.Second),
					}
					if err := s.RecordLogin(ctx, tenantID, c.ID, u); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent RecordLogin: %v", err)
		}
		got := credGet(t, s, tenantID, c.ID)
		if !got.CloneWarning {
			t.Error("the clone warning of one concurrent login was lost")
		}
		if got.SignCount != workers*logins-1 {
			t.Errorf("counter %d after concurrent logins, want the highest, %d", got.SignCount, workers*logins-1)
		}
		if got.SignCount >= workers*logins || got.LastUsedAt == nil {
			t.Errorf("after concurrent logins: sign count %d, last used %v", got.SignCount, got.LastUsedAt)
		}
	})
}

func TestCredentialStoreRenameAndDelete(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		tenantID := credTenant(t, d, "A")
		alice := credUser(t, s, tenantID, "alice")
		c := credCreate(t, s, credNew(alice, "cred", t0))
		other := credCreate(t, s, credNew(alice, "other", t0))

		if err := s.RenameCredential(ctx, tenantID, c.ID, "Work laptop"); err != nil {
			t.Fatalf("RenameCredential: %v", err)
		}
		got := credGet(t, s, tenantID, c.ID)
		if got.Name == nil || *got.Name != "Work laptop" {
			t.Errorf("name after rename = %v, want Work laptop", got.Name)
		}
		if got.UpdatedAt.Equal(c.UpdatedAt) {
			t.Error("RenameCredential left updated_at unchanged")
		}
		got.Name, got.UpdatedAt = c.Name, c.UpdatedAt
		mustEqual(t, "the rest of the renamed credential", got, c)
		mustBe(t, "RenameCredential of a missing credential",
			s.RenameCredential(ctx, tenantID, "missing", "x"), credentials.ErrCredentialNotFound)

		if err := s.DeleteCredential(ctx, tenantID, c.ID); err != nil {
			t.Fatalf("DeleteCredential: %v", err)
		}
		_, err := s.Credential(ctx, tenantID, c.ID)
		mustBe(t, "Credential after delete", err, credentials.ErrCredentialNotFound)
		mustBe(t, "second DeleteCredential", s.DeleteCredential(ctx, tenantID, c.ID), credentials.ErrCredentialNotFound)
		mustEqual(t, "the other credential", credGet(t, s, tenantID, other.ID), other)

		// The user stays, and its credential id can be registered again.
		if _, err := s.UserByKey(ctx, tenantID, alice.Key); err != nil {
			t.Errorf("UserByID after deleting a credential: %v", err)
		}
		credCreate(t, s, credNew(alice, c.ID, t0.Add(time.Hour)))
	})
}

// TestCredentialStoreCrossTenant checks every method: tenant B can neither see nor change tenant A's
// users and credentials, even where B has a user and a credential with the same ids.
func TestCredentialStoreCrossTenant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		a := credTenant(t, d, "A")
		b := credTenant(t, d, "B")
		aliceA := credUser(t, s, a, "alice")
		onlyA := credCreate(t, s, credNew(aliceA, "only-in-a", t0))
		sharedA := credCreate(t, s, credNew(aliceA, "shared-id", t0))

		// UserByAppID, UserByID: B does not see A's users.
		_, err := s.UserByAppID(ctx, b, "alice")
		mustBe(t, "B's UserByAppID of A's user", err, credentials.ErrUserNotFound)
		_, err = s.UserByKey(ctx, b, aliceA.Key)
		mustBe(t, "B's UserByID of A's user", err, credentials.ErrUserNotFound)
		_, _, err = s.LoginUser(ctx, b, "alice")
		mustBe(t, "B's LoginUser of A's user", err, credentials.ErrUserNotFound)

		// UpsertUser: the same application user id in B is another user, and A's is unchanged.
		aliceB, err := s.UpsertUser(ctx, credentials.User{TenantID: b, AppUserID: "alice", Name: "b-alice", DisplayName: "Alice of B", CreatedAt: t0, UpdatedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		if aliceB.Key == aliceA.Key {
			t.Fatal("the same application user id in two tenants is one user")
		}
		// An upsert into B that proposes A's internal id does not take over A's user.
		if _, err := s.UpsertUser(ctx, credentials.User{Key: aliceA.Key, TenantID: b, AppUserID: "alice", Name: "again", CreatedAt: t0, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		gotA, err := s.UserByAppID(ctx, a, "alice")
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "A's alice after B's upserts", gotA, aliceA)
		_, err = s.UserByKey(ctx, b, aliceA.Key)
		mustBe(t, "B's UserByID of A's user after upserts", err, credentials.ErrUserNotFound)

		// CreateCredential: B cannot attach a credential to A's user; the same credential id may
		// exist in both tenants independently.
		stolen := credNew(aliceA, "stolen", t0)
		stolen.TenantID = b
		mustBe(t, "B's CreateCredential for A's user", s.CreateCredential(ctx, stolen), credentials.ErrUserNotFound)
		sharedB := credCreate(t, s, credNew(aliceB, "shared-id", t0.Add(time.Hour)))
		mustEqual(t, "A's shared-id", credGet(t, s, a, "shared-id"), sharedA)
		mustEqual(t, "B's shared-id", credGet(t, s, b, "shared-id"), sharedB)

		// Credential.
		_, err = s.Credential(ctx, b, onlyA.ID)
		mustBe(t, "B's Credential of A's credential", err, credentials.ErrCredentialNotFound)

		// CredentialsOfUser: A's user id asked in B gives nothing, and B's alice has only B's.
		list, err := s.CredentialsOfUser(ctx, b, aliceA.Key)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "B's CredentialsOfUser of A's user", credIDs(list), []string{})
		list, err = s.CredentialsOfUser(ctx, b, aliceB.Key)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "B's alice's credentials", list, []credentials.Credential{sharedB})

		// ListCredentials, with and without a user filter.
		list, total, err := s.ListCredentials(ctx, b, credentials.ListFilter{})
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "B's list", credIDs(list), []string{"shared-id"})
		mustEqual(t, "B's total", total, 1)
		list, total, err = s.ListCredentials(ctx, b, credentials.ListFilter{AppUserID: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "B's alice list", list, []credentials.Credential{sharedB})
		mustEqual(t, "B's alice total", total, 1)

		// RecordLogin, RenameCredential, DeleteCredential of A's credential from B fail ...
		login := credentials.LoginUpdate{SignCount: 100, CloneWarning: true, LastUsedAt: t0.Add(48 * time.Hour)}
		mustBe(t, "B's RecordLogin of A's credential", s.RecordLogin(ctx, b, onlyA.ID, login), credentials.ErrCredentialNotFound)
		mustBe(t, "B's FlagCloneWarning of A's credential", s.FlagCloneWarning(ctx, b, onlyA.ID), credentials.ErrCredentialNotFound)
		mustBe(t, "B's RenameCredential of A's credential", s.RenameCredential(ctx, b, onlyA.ID, "pwned"), credentials.ErrCredentialNotFound)
		mustBe(t, "B's DeleteCredential of A's credential", s.DeleteCredential(ctx, b, onlyA.ID), credentials.ErrCredentialNotFound)
		mustEqual(t, "A's credential after B's attempts", credGet(t, s, a, onlyA.ID), onlyA)

		// ... and on the shared id they change only B's.
		if err := s.RecordLogin(ctx, b, "shared-id", login); err != nil {
			t.Fatal(err)
		}
		if err := s.RenameCredential(ctx, b, "shared-id", "B's key"); err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "A's shared-id after B's login and rename", credGet(t, s, a, "shared-id"), sharedA)
		if err := s.DeleteCredential(ctx, b, "shared-id"); err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "A's shared-id after B's delete", credGet(t, s, a, "shared-id"), sharedA)

		// A's view is whole.
		list, total, err = s.ListCredentials(ctx, a, credentials.ListFilter{Ascending: true})
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "A's list", list, []credentials.Credential{onlyA, sharedA})
		mustEqual(t, "A's total", total, 2)
	})
}

// TestCredentialStoreLongValues checks that the largest values the API accepts round-trip: a 64-byte
// user handle, a 1,023-byte credential id, and 2,000-character non-ASCII names.
func TestCredentialStoreLongValues(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		tenantID := credTenant(t, d, "A")
		long := string([]rune(strings.Repeat("Mozilla/5.0 (Ünïcødé 🔑) ", 100))[:2000])
		userID := strings.Repeat("ü", 32) // 64 bytes of UTF-8
		if len(userID) != 64 {
			t.Fatalf("user id is %d bytes", len(userID))
		}
		icon := "data:image/png;base64," + strings.Repeat("A", 4000)

		u, err := s.UpsertUser(ctx, credentials.User{
			TenantID: tenantID, AppUserID: userID, Name: long, DisplayName: long + `'"; DROP TABLE users; --`,
			Icon: &icon, CreatedAt: t0, UpdatedAt: t0,
		})
		if err != nil {
			t.Fatalf("UpsertUser: %v", err)
		}
		got, err := s.UserByAppID(ctx, tenantID, userID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "long user", got, u)

		rawID := make([]byte, 1023)
		for i := range rawID {
			rawID[i] = byte(i * 7)
		}
		id := base64.RawURLEncoding.EncodeToString(rawID)
		if len(id) != 1364 {
			t.Fatalf("credential id is %d characters", len(id))
		}
		c := credNew(u, id, t0)
		c.Name = &long
		c.PublicKey = make([]byte, 2048)
		c.Transports = []string{"usb", "nfc", "ble", "smart-card", "hybrid", "internal", long}
		credCreate(t, s, c)
		mustEqual(t, "long credential", credGet(t, s, tenantID, id), c)

		list, total, err := s.ListCredentials(ctx, tenantID, credentials.ListFilter{AppUserID: userID})
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "listed by a 64-byte user id", list, []credentials.Credential{c})
		mustEqual(t, "total", total, 1)

		if err := s.RecordLogin(ctx, tenantID, id, credentials.LoginUpdate{SignCount: 1, LastUsedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.RenameCredential(ctx, tenantID, id, long); err != nil {
			t.Fatal(err)
		}
		// Errors name a long credential id by a short prefix.
		err = s.RenameCredential(ctx, tenantID, id+"x", "n")
		mustBe(t, "RenameCredential of a missing long id", err, credentials.ErrCredentialNotFound)
		if len(err.Error()) > 200 {
			t.Errorf("error message of %d characters: %s", len(err.Error()), err)
		}
		if err := s.DeleteCredential(ctx, tenantID, id); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCredentialStoreTenantDeleteCascades checks that deleting a tenant deletes its users and
// credentials, and nothing of another tenant.
func TestCredentialStoreTenantDeleteCascades(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewCredentialStore(d)
		a := credTenant(t, d, "A")
		b := credTenant(t, d, "B")
		aliceA := credUser(t, s, a, "alice")
		aliceB := credUser(t, s, b, "alice")
		credCreate(t, s, credNew(aliceA, "a-1", t0))
		credCreate(t, s, credNew(aliceA, "shared", t0))
		shared := credCreate(t, s, credNew(aliceB, "shared", t0))

		if err := db.NewTenantStore(d).DeleteTenant(ctx, a); err != nil {
			t.Fatalf("DeleteTenant: %v", err)
		}
		for _, table := range []string{"users", "credentials"} {
			if n := count(t, d, table, a); n != 0 {
				t.Errorf("%s rows of the deleted tenant: %d, want 0", table, n)
			}
		}
		_, err := s.Credential(ctx, a, "a-1")
		mustBe(t, "Credential of a deleted tenant", err, credentials.ErrCredentialNotFound)
		_, err = s.UserByKey(ctx, a, aliceA.Key)
		mustBe(t, "UserByID of a deleted tenant", err, credentials.ErrUserNotFound)
		mustEqual(t, "B's credential", credGet(t, s, b, "shared"), shared)
		_, err = s.UpsertUser(ctx, credentials.User{TenantID: a, AppUserID: "alice", CreatedAt: t0, UpdatedAt: t0})
		mustBe(t, "UpsertUser in a deleted tenant", err, tenant.ErrNotFound)
	})
}

// TestCredentialStoreErrorsWrap checks that not found is an error wrapped with context, never a zero
// value without one.
func TestCredentialStoreErrorsWrap(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := db.NewCredentialStore(d)
		tenantID := credTenant(t, d, "A")
		_, err := s.Credential(context.Background(), tenantID, "missing")
		if err == nil || err == credentials.ErrCredentialNotFound || !errors.Is(err, credentials.ErrCredentialNotFound) {
			t.Errorf("Credential error = %v, want credentials.ErrCredentialNotFound wrapped with context", err)
		}
		if !strings.Contains(err.Error(), tenantID.String()) {
			t.Errorf("Credential error %q does not name the tenant", err)
		}
	})
}

// BenchmarkRecordLogin measures the login write-back on one credential among many.
func BenchmarkRecordLogin(b *testing.B) {
	for _, dialect := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{{db.DialectPostgres, dbtest.Postgres}, {db.DialectSQLite, dbtest.SQLite}} {
		b.Run(dialect.name, func(b *testing.B) {
			d := dialect.open(b)
			s := db.NewCredentialStore(d)
			ids := credBenchFixture(b, d, s)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				u := credentials.LoginUpdate{SignCount: uint32(i), UserVerified: true, LastUsedAt: t0.Add(time.Duration(i) * time.Second)}
				if err := s.RecordLogin(ctx, ids.tenant, ids.credentials[i%len(ids.credentials)], u); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkCredentialsOfUser measures reading a user's credentials (5 each) at the start of a
// login.
func BenchmarkCredentialsOfUser(b *testing.B) {
	for _, dialect := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{{db.DialectPostgres, dbtest.Postgres}, {db.DialectSQLite, dbtest.SQLite}} {
		b.Run(dialect.name, func(b *testing.B) {
			d := dialect.open(b)
			s := db.NewCredentialStore(d)
			ids := credBenchFixture(b, d, s)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				list, err := s.CredentialsOfUser(ctx, ids.tenant, ids.users[i%len(ids.users)])
				if err != nil || len(list) != credBenchPerUser {
					b.Fatalf("CredentialsOfUser = %d credentials, %v", len(list), err)
				}
				i++
			}
		})
	}
}

// Size of the benchmark fixture: credBenchUsers users with credBenchPerUser credentials each.
const (
	credBenchUsers   = 200
	credBenchPerUser = 5
)

type credBenchIDs struct {
	tenant      uuid.UUID
	users       []uuid.UUID
	credentials []string
}

// credBenchFixture fills two tenants (the second one is noise) and returns the first one's ids.
func credBenchFixture(b *testing.B, d *db.DB, s *db.CredentialStore) credBenchIDs {
	b.Helper()
	var ids credBenchIDs
	for n, name := range []string{"Bench", "Noise"} {
		tenantID := credTenant(b, d, name)
		if n == 0 {
			ids.tenant = tenantID
		}
		for u := range credBenchUsers {
			user := credUser(b, s, tenantID, fmt.Sprintf("user-%d", u))
			if n == 0 {
				ids.users = append(ids.users, user.Key)
			}
			for c := range credBenchPerUser {
				raw := []byte(fmt.Sprintf("%s-credential-%d-%d-%s", name, u, c, strings.Repeat("x", 32)))
				id := base64.RawURLEncoding.EncodeToString(raw)
				credCreate(b, s, credNew(user, id, t0.Add(time.Duration(c)*time.Minute)))
				if n == 0 {
					ids.credentials = append(ids.credentials, id)
				}
			}
		}
	}
	return ids
}
