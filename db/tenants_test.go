package db_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// The tenant store conformance suite: every test runs against PostgreSQL and SQLite (dbtest.Each),
// and every store method has a cross-tenant test.

// t0 has a fractional second, so tests see whether microseconds survive a round trip.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)

// fixture is a tenant as a test creates it, with the records it was created with.
type fixture struct {
	tenant  tenant.Tenant
	keys    []tenant.APIKey
	signing signing.Key
}

func testConfig(rpID string) tenant.Config {
	attachment := "platform"
	return tenant.Config{
		CORS: tenant.CORSConfig{AllowedOrigins: []string{"https://" + rpID}},
		WebAuthn: tenant.WebAuthnConfig{
			RelyingParty: tenant.RelyingParty{
				ID: rpID, DisplayName: "Relying party of " + rpID, Origins: []string{"https://" + rpID},
			},
			Timeout:                60000,
			UserVerification:       "preferred",
			Attachment:             &attachment,
			AttestationPreference:  "none",
			ResidentKeyRequirement: "required",
		},
		MFA: &tenant.MFAConfig{
			Timeout: 60000, UserVerification: "discouraged", Attachment: "cross-platform",
			AttestationPreference: "none", ResidentKeyRequirement: "discouraged",
		},
		SigningAlgorithm: signing.ES256,
	}
}

func newAPIKey(t *testing.T, tenantID uuid.UUID, name string, kind tenant.KeyKind, at time.Time) tenant.APIKey {
	t.Helper()
	_, k, err := tenant.NewAPIKey(tenantID, name, kind, at, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSigningKey(tenantID uuid.UUID, at time.Time) signing.Key {
	id := uuid.NewString()
	return signing.Key{
		ID:                  id,
		TenantID:            tenantID,
		Algorithm:           signing.ES256,
		EncryptedPrivateKey: []byte("sealed " + id),
		PublicJWK:           []byte(`{"kty":"EC","kid":"` + id + `"}`),
		CreatedAt:           at,
	}
}

// createTenant stores a tenant created at at, with a secret and a publishable key.
func createTenant(t *testing.T, s *db.TenantStore, name string, at time.Time) fixture {
	t.Helper()
	tn := tenant.Tenant{
		ID: uuid.New(), DisplayName: name, Config: testConfig(strings.ToLower(name) + ".example.com"),
		Revision: 1, CreatedAt: at, UpdatedAt: at,
	}
	f := fixture{
		tenant: tn,
		keys: []tenant.APIKey{
			newAPIKey(t, tn.ID, "server", tenant.KindSecret, at),
			newAPIKey(t, tn.ID, "browser", tenant.KindPublishable, at.Add(time.Second)),
		},
		signing: newSigningKey(tn.ID, at),
	}
	if err := s.CreateTenant(context.Background(), f.tenant, f.keys, f.signing); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	return f
}

func revision(t *testing.T, s *db.TenantStore, id uuid.UUID) int64 {
	t.Helper()
	return revisions(t, s, id)[id]
}

// revisions returns the revisions of those of the tenants that exist.
func revisions(t *testing.T, s *db.TenantStore, ids ...uuid.UUID) map[uuid.UUID]int64 {
	t.Helper()
	revs := map[uuid.UUID]int64{}
	for _, id := range ids {
		got, err := s.GetTenant(context.Background(), id)
		if errors.Is(err, tenant.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("GetTenant: %v", err)
		}
		revs[id] = got.Revision
	}
	return revs
}

func mustEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func mustBe(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func TestTenantStoreCreateAndGet(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		f := createTenant(t, s, "Acme", t0)

		got, err := s.GetTenant(ctx, f.tenant.ID)
		if err != nil {
			t.Fatalf("GetTenant: %v", err)
		}
		mustEqual(t, "tenant", got, f.tenant)

		keys, err := s.ListAPIKeys(ctx, f.tenant.ID)
		if err != nil {
			t.Fatalf("ListAPIKeys: %v", err)
		}
		mustEqual(t, "api keys", keys, f.keys)

		signingKeys, err := s.ListSigningKeys(ctx, f.tenant.ID)
		if err != nil {
			t.Fatalf("ListSigningKeys: %v", err)
		}
		mustEqual(t, "signing keys", signingKeys, []signing.Key{f.signing})

		if _, err := s.GetTenant(ctx, uuid.New()); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("GetTenant of a missing tenant: got %v, want tenant.ErrNotFound", err)
		}
	})
}

func TestTenantStoreCreateTenantAllOrNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		a := createTenant(t, s, "A", t0)

		id := uuid.New()
		tn := tenant.Tenant{ID: id, DisplayName: "B", Config: testConfig("b.example"), Revision: 1, CreatedAt: t0, UpdatedAt: t0}

		// Two keys of one name.
		dup := []tenant.APIKey{newAPIKey(t, id, "same", tenant.KindSecret, t0), newAPIKey(t, id, "same", tenant.KindSecret, t0)}
		mustBe(t, "duplicate key names", s.CreateTenant(ctx, tn, dup, newSigningKey(id, t0)), tenant.ErrAPIKeyNameTaken)

		// A key whose hash is A's: the insert fails after the tenant row was written.
		clash := newAPIKey(t, id, "clash", tenant.KindSecret, t0)
		clash.Hash = a.keys[0].Hash
		if err := s.CreateTenant(ctx, tn, []tenant.APIKey{clash}, newSigningKey(id, t0)); err == nil {
			t.Fatal("CreateTenant with another tenant's key hash succeeded")
		}
		// The nil UUID names deployment-wide audit events, never a tenant.
		nilTenant := tn
		nilTenant.ID = uuid.Nil
		if err := s.CreateTenant(ctx, nilTenant, nil, newSigningKey(uuid.Nil, t0)); err == nil {
			t.Fatal("CreateTenant with the nil UUID succeeded")
		}
		// Keys of another tenant are refused before anything is written.
		if err := s.CreateTenant(ctx, tn, []tenant.APIKey{newAPIKey(t, a.tenant.ID, "x", tenant.KindSecret, t0)}, newSigningKey(id, t0)); err == nil {
			t.Fatal("CreateTenant with an API key of another tenant succeeded")
		}
		if err := s.CreateTenant(ctx, tn, nil, newSigningKey(a.tenant.ID, t0)); err == nil {
			t.Fatal("CreateTenant with a signing key of another tenant succeeded")
		}

		_, err := s.GetTenant(ctx, id)
		mustBe(t, "GetTenant after failed creations", err, tenant.ErrNotFound)
		keys, err := s.ListAPIKeys(ctx, id)
		if err != nil || len(keys) != 0 {
			t.Fatalf("ListAPIKeys after failed creations = %v, %v; want none", keys, err)
		}

		// The same id twice.
		if err := s.CreateTenant(ctx, a.tenant, nil, newSigningKey(a.tenant.ID, t0)); err == nil {
			t.Fatal("CreateTenant with an existing id succeeded")
		}
		keys, err = s.ListAPIKeys(ctx, a.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "A's keys", keys, a.keys)
	})
}

func TestTenantStoreListTenants(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		got, err := s.ListTenants(ctx)
		if err != nil || len(got) != 0 {
			t.Fatalf("ListTenants of an empty store = %v, %v", got, err)
		}
		c := createTenant(t, s, "C", t0.Add(2*time.Hour))
		a := createTenant(t, s, "A", t0)
		b := createTenant(t, s, "B", t0.Add(time.Hour))
		got, err = s.ListTenants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "tenants", got, []tenant.Tenant{a.tenant, b.tenant, c.tenant})
	})
}

func TestTenantStoreUpdateTenant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		a := createTenant(t, s, "A", t0)
		b := createTenant(t, s, "B", t0)

		changed := a.tenant
		changed.DisplayName = "A, renamed"
		changed.Config = testConfig("renamed.example")
		changed.UpdatedAt = t0.Add(time.Minute)
		changed.Revision = 42 // ignored: the stored revision is incremented
		if err := s.UpdateTenant(ctx, changed); err != nil {
			t.Fatalf("UpdateTenant: %v", err)
		}
		got, err := s.GetTenant(ctx, a.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := changed
		want.Revision = 2
		mustEqual(t, "updated tenant", got, want)

		// Cross-tenant: B is untouched.
		gotB, err := s.GetTenant(ctx, b.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "other tenant", gotB, b.tenant)

		missing := changed
		missing.ID = uuid.New()
		mustBe(t, "UpdateTenant of a missing tenant", s.UpdateTenant(ctx, missing), tenant.ErrNotFound)
	})
}

func TestTenantStoreDeleteTenant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		a := createTenant(t, s, "A", t0)
		b := createTenant(t, s, "B", t0)
		next := newSigningKey(a.tenant.ID, t0.Add(time.Hour))
		if err := s.RotateSigningKey(ctx, next, retireAt(next, t0.Add(2*time.Hour))); err != nil {
			t.Fatal(err)
		}

		if err := s.DeleteTenant(ctx, a.tenant.ID); err != nil {
			t.Fatalf("DeleteTenant: %v", err)
		}
		_, err := s.GetTenant(ctx, a.tenant.ID)
		mustBe(t, "GetTenant after delete", err, tenant.ErrNotFound)
		mustBe(t, "second DeleteTenant", s.DeleteTenant(ctx, a.tenant.ID), tenant.ErrNotFound)
		mustBe(t, "DeleteTenant of a never-seen id", s.DeleteTenant(ctx, uuid.New()), tenant.ErrNotFound)

		// The cascade removed A's keys and signing keys, and nothing of B's.
		for _, k := range a.keys {
			_, err := s.APIKeyByHash(ctx, k.Hash)
			mustBe(t, "APIKeyByHash of a deleted tenant's key", err, tenant.ErrAPIKeyNotFound)
		}
		for table, want := range map[string]int64{"api_keys": 0, "signing_keys": 0} {
			n, err := d.Bun().NewSelect().TableExpr(table).Where("tenant_id = ?", a.tenant.ID).Count(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != want {
				t.Errorf("%s rows of the deleted tenant: %d, want %d", table, n, want)
			}
		}
		keys, err := s.ListAPIKeys(ctx, b.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "B's keys", keys, b.keys)
		signingKeys, err := s.ListSigningKeys(ctx, b.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "B's signing keys", signingKeys, []signing.Key{b.signing})
		mustEqual(t, "revisions", revisions(t, s, a.tenant.ID, b.tenant.ID), map[uuid.UUID]int64{b.tenant.ID: 1})
	})
}

// TestTenantStoreRevisions checks that every mutating method increments the revision of its tenant
// and of no other, that failed mutations and TouchAPIKeys increment nothing, and that updated_at
// follows.
func TestTenantStoreRevisions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		a := createTenant(t, s, "A", t0)
		b := createTenant(t, s, "B", t0)

		mustEqual(t, "initial revisions", revisions(t, s, a.tenant.ID, b.tenant.ID), map[uuid.UUID]int64{a.tenant.ID: 1, b.tenant.ID: 1})
		_, cursor, err := s.TenantChanges(ctx, tenant.ChangeCursor{})
		if err != nil {
			t.Fatal(err)
		}

		extra := newAPIKey(t, a.tenant.ID, "extra", tenant.KindSecret, t0.Add(time.Hour))
		steps := []struct {
			name    string
			do      func() error
			bump    bool
			updated time.Time // A's updated_at afterwards, when not zero
		}{
			{"CreateAPIKey", func() error { return s.CreateAPIKey(ctx, extra) }, true, extra.CreatedAt},
			{"CreateAPIKey, name taken", func() error {
				return s.CreateAPIKey(ctx, newAPIKey(t, a.tenant.ID, "extra", tenant.KindSecret, t0.Add(5*time.Hour)))
			}, false, extra.CreatedAt},
			{"TouchAPIKeys", func() error {
				return s.TouchAPIKeys(ctx, map[tenant.APIKeyRef]time.Time{extra.Ref(): t0.Add(6 * time.Hour)})
			}, false, extra.CreatedAt},
			{"DeleteAPIKey", func() error { return s.DeleteAPIKey(ctx, a.tenant.ID, extra.ID) }, true, time.Time{}},
			{"DeleteAPIKey, missing", func() error { return s.DeleteAPIKey(ctx, a.tenant.ID, extra.ID) }, false, time.Time{}},
			{"RotateSigningKey", func() error {
				next := newSigningKey(a.tenant.ID, t0.Add(2*time.Hour))
				return s.RotateSigningKey(ctx, next, retireAt(next, t0.Add(3*time.Hour)))
			}, true, t0.Add(2 * time.Hour)},
			{"UpdateTenant", func() error {
				u := a.tenant
				u.UpdatedAt = t0.Add(4 * time.Hour)
				return s.UpdateTenant(ctx, u)
			}, true, t0.Add(4 * time.Hour)},
		}
		want := int64(1)
		for _, step := range steps {
			_ = step.do() // errors of the failing steps are checked elsewhere
			if step.bump {
				want++
			}
			mustEqual(t, "revisions after "+step.name, revisions(t, s, a.tenant.ID, b.tenant.ID), map[uuid.UUID]int64{a.tenant.ID: want, b.tenant.ID: 1})
			// A change is recorded exactly when the revision moves, with the new revision.
			var changes []tenant.Change
			changes, cursor = newChanges(t, s, cursor)
			var wantChanges []tenant.Change
			if step.bump {
				wantChanges = []tenant.Change{{TenantID: a.tenant.ID, Revision: want}}
			}
			mustEqual(t, "changes after "+step.name, changes, wantChanges)
			got, err := s.GetTenant(ctx, a.tenant.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Revision != want {
				t.Errorf("GetTenant revision after %s = %d, want %d", step.name, got.Revision, want)
			}
			if !step.updated.IsZero() && !got.UpdatedAt.Equal(step.updated) {
				t.Errorf("updated_at after %s = %v, want %v", step.name, got.UpdatedAt, step.updated)
			}
		}
		gotB, err := s.GetTenant(ctx, b.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "other tenant", gotB, b.tenant)
	})
}

func TestTenantStoreCreateAPIKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		a := createTenant(t, s, "A", t0)
		b := createTenant(t, s, "B", t0)

		expires := t0.Add(24 * time.Hour)
		k := newAPIKey(t, a.tenant.ID, "rotation", tenant.KindSecret, t0.Add(time.Hour))
		k.ExpiresAt = &expires
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatalf("CreateAPIKey: %v", err)
		}
		got, err := s.APIKeyByHash(ctx, k.Hash)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "stored key", got, k)

		mustBe(t, "name taken", s.CreateAPIKey(ctx, newAPIKey(t, a.tenant.ID, "rotation", tenant.KindPublishable, t0)), tenant.ErrAPIKeyNameTaken)
		mustBe(t, "missing tenant", s.CreateAPIKey(ctx, newAPIKey(t, uuid.New(), "x", tenant.KindSecret, t0)), tenant.ErrNotFound)

		// Cross-tenant: names are per tenant, and B's list does not see A's new key.
		if err := s.CreateAPIKey(ctx, newAPIKey(t, b.tenant.ID, "rotation", tenant.KindSecret, t0)); err != nil {
			t.Fatalf("CreateAPIKey of a name another tenant uses: %v", err)
		}
		// A hash is unique across tenants.
		dup := newAPIKey(t, b.tenant.ID, "copy", tenant.KindSecret, t0)
		dup.Hash = k.Hash
		if err := s.CreateAPIKey(ctx, dup); err == nil || errors.Is(err, tenant.ErrAPIKeyNameTaken) {
			t.Fatalf("CreateAPIKey with a used hash: got %v, want a non-name error", err)
		}
		keysA, err := s.ListAPIKeys(ctx, a.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "A's keys", keysA, append(append([]tenant.APIKey{}, a.keys...), k))
		keysB, err := s.ListAPIKeys(ctx, b.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(keysB) != 3 {
			t.Errorf("B has %d keys, want 3", len(keysB))
		}
		for _, key := range keysB {
			if key.TenantID != b.tenant.ID {
				t.Errorf("ListAPIKeys(B) returned a key of tenant %s", key.TenantID)
			}
		}
	})
}

func TestTenantStoreListAPIKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		a := createTenant(t, s, "A", t0)
		createTenant(t, s, "B", t0)
		// Created earlier than A's keys: listed first.
		early := newAPIKey(t, a.tenant.ID, "early", tenant.KindSecret, t0.Add(-time.Hour))
		if err := s.CreateAPIKey(ctx, early); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListAPIKeys(ctx, a.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "keys, oldest first", got, []tenant.APIKey{early, a.keys[0], a.keys[1]})

		none, err := s.ListAPIKeys(ctx, uuid.New())
		if err != nil || len(none) != 0 {
			t.Errorf("ListAPIKeys of a missing tenant = %v, %v; want none", none, err)
		}
	})
}

func TestTenantStoreDeleteAPIKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		a := createTenant(t, s, "A", t0)
		b := createTenant(t, s, "B", t0)

		// Cross-tenant: A cannot delete B's key, and B's revision does not move.
		mustBe(t, "delete B's key through A", s.DeleteAPIKey(ctx, a.tenant.ID, b.keys[0].ID), tenant.ErrAPIKeyNotFound)
		if _, err := s.APIKeyByHash(ctx, b.keys[0].Hash); err != nil {
			t.Fatalf("B's key after a cross-tenant delete: %v", err)
		}
		if rev := revision(t, s, b.tenant.ID); rev != 1 {
			t.Errorf("B's revision after a cross-tenant delete = %d, want 1", rev)
		}
		if rev := revision(t, s, a.tenant.ID); rev != 1 {
			t.Errorf("A's revision after a failed delete = %d, want 1", rev)
		}

		if err := s.DeleteAPIKey(ctx, a.tenant.ID, a.keys[0].ID); err != nil {
			t.Fatalf("DeleteAPIKey: %v", err)
		}
		_, err := s.APIKeyByHash(ctx, a.keys[0].Hash)
		mustBe(t, "APIKeyByHash of a deleted key", err, tenant.ErrAPIKeyNotFound)
		mustBe(t, "second DeleteAPIKey", s.DeleteAPIKey(ctx, a.tenant.ID, a.keys[0].ID), tenant.ErrAPIKeyNotFound)
		mustBe(t, "DeleteAPIKey of a missing tenant", s.DeleteAPIKey(ctx, uuid.New(), a.keys[1].ID), tenant.ErrAPIKeyNotFound)

		keys, err := s.ListAPIKeys(ctx, a.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "A's keys", keys, a.keys[1:])
		keys, err = s.ListAPIKeys(ctx, b.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "B's keys", keys, b.keys)
	})
}

func TestTenantStoreAPIKeyByHash(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		a := createTenant(t, s, "A", t0)
		b := createTenant(t, s, "B", t0)
		// Across tenants: each hash finds its own tenant's key.
		for _, k := range append(append([]tenant.APIKey{}, a.keys...), b.keys...) {
			got, err := s.APIKeyByHash(ctx, k.Hash)
			if err != nil {
				t.Fatalf("APIKeyByHash: %v", err)
			}
			mustEqual(t, "key", got, k)
		}
		_, err := s.APIKeyByHash(ctx, tenant.HashAPIKey("sk_unknown"))
		mustBe(t, "unknown hash", err, tenant.ErrAPIKeyNotFound)
		_, err = s.APIKeyByHash(ctx, nil)
		mustBe(t, "nil hash", err, tenant.ErrAPIKeyNotFound)
	})
}

func TestTenantStoreTouchAPIKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		a := createTenant(t, s, "A", t0)
		b := createTenant(t, s, "B", t0)

		if err := s.TouchAPIKeys(ctx, nil); err != nil {
			t.Fatalf("TouchAPIKeys(nil): %v", err)
		}
		used := t0.Add(time.Hour)
		err := s.TouchAPIKeys(ctx, map[tenant.APIKeyRef]time.Time{
			a.keys[0].Ref():                         used,
			{TenantID: a.tenant.ID, ID: uuid.New()}: used, // no such key: ignored
			// A's key named with B's tenant is no key of B: ignored.
			{TenantID: b.tenant.ID, ID: a.keys[1].ID}: used,
		})
		if err != nil {
			t.Fatalf("TouchAPIKeys: %v", err)
		}
		got, err := s.APIKeyByHash(ctx, a.keys[0].Hash)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(used) {
			t.Fatalf("LastUsedAt = %v, want %v", got.LastUsedAt, used)
		}

		// An older time does not move the last use backwards; a newer one does.
		if err := s.TouchAPIKeys(ctx, map[tenant.APIKeyRef]time.Time{a.keys[0].Ref(): used.Add(-time.Minute)}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.APIKeyByHash(ctx, a.keys[0].Hash)
		if !got.LastUsedAt.Equal(used) {
			t.Errorf("LastUsedAt after an older touch = %v, want %v", got.LastUsedAt, used)
		}
		later := used.Add(1500 * time.Microsecond)
		if err := s.TouchAPIKeys(ctx, map[tenant.APIKeyRef]time.Time{a.keys[0].Ref(): later}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.APIKeyByHash(ctx, a.keys[0].Hash)
		if !got.LastUsedAt.Equal(later) {
			t.Errorf("LastUsedAt after a newer touch = %v, want %v", got.LastUsedAt, later)
		}

		// Cross-tenant: nothing else changed, and no revision moved.
		for _, k := range append([]tenant.APIKey{a.keys[1]}, b.keys...) {
			got, err := s.APIKeyByHash(ctx, k.Hash)
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, "untouched key", got, k)
		}
		mustEqual(t, "revisions", revisions(t, s, a.tenant.ID, b.tenant.ID), map[uuid.UUID]int64{a.tenant.ID: 1, b.tenant.ID: 1})
	})
}

func TestTenantStoreSigningKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		a := createTenant(t, s, "A", t0)
		b := createTenant(t, s, "B", t0)

		second := newSigningKey(a.tenant.ID, t0.Add(time.Hour))
		second.Algorithm = signing.RS256
		expires1 := t0.Add(2 * time.Hour)
		if err := s.RotateSigningKey(ctx, second, retireAt(second, expires1)); err != nil {
			t.Fatalf("RotateSigningKey: %v", err)
		}
		third := newSigningKey(a.tenant.ID, t0.Add(3*time.Hour))
		expires2 := t0.Add(4 * time.Hour)
		if err := s.RotateSigningKey(ctx, third, retireAt(third, expires2)); err != nil {
			t.Fatalf("second RotateSigningKey: %v", err)
		}

		// The first key keeps the retirement of the first rotation; the second is retired by the
		// second rotation; the third is active. Newest first.
		first := a.signing
		retired1, retired2 := second.CreatedAt, third.CreatedAt
		first.RetiredAt, first.ExpiresAt = &retired1, &expires1
		second.RetiredAt, second.ExpiresAt = &retired2, &expires2
		got, err := s.ListSigningKeys(ctx, a.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "A's signing keys", got, []signing.Key{third, second, first})

		// Cross-tenant: B's active key was not retired.
		gotB, err := s.ListSigningKeys(ctx, b.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "B's signing keys", gotB, []signing.Key{b.signing})

		// A missing tenant: ErrNotFound, nothing stored.
		orphan := newSigningKey(uuid.New(), t0)
		mustBe(t, "RotateSigningKey of a missing tenant", s.RotateSigningKey(ctx, orphan, retireAt(orphan, t0)), tenant.ErrNotFound)
		none, err := s.ListSigningKeys(ctx, orphan.TenantID)
		if err != nil || len(none) != 0 {
			t.Errorf("ListSigningKeys of a missing tenant = %v, %v; want none", none, err)
		}

		// A kid A already uses fails, and A's keys stay as they were. (Kids are unique per tenant: a
		// token names its tenant in iss and is checked against that tenant's JWKS.)
		reused := newSigningKey(a.tenant.ID, t0.Add(5*time.Hour))
		reused.ID = first.ID
		if err := s.RotateSigningKey(ctx, reused, retireAt(reused, t0.Add(6*time.Hour))); err == nil {
			t.Fatal("RotateSigningKey with a used kid succeeded")
		}
		got, err = s.ListSigningKeys(ctx, a.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "A's signing keys after a failed rotation", got, []signing.Key{third, second, first})

		// A rotation with an activation delay: the active key retires in the future; a key already
		// due to retire keeps its time.
		fourth := newSigningKey(a.tenant.ID, t0.Add(5*time.Hour))
		activates, expires4 := t0.Add(6*time.Hour), t0.Add(7*time.Hour)
		if err := s.RotateSigningKey(ctx, fourth, tenant.Retirement{At: activates, ExpiresAt: expires4}); err != nil {
			t.Fatal(err)
		}
		third.RetiredAt, third.ExpiresAt = &activates, &expires4
		got, err = s.ListSigningKeys(ctx, a.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "A's signing keys after a delayed rotation", got, []signing.Key{fourth, third, second, first})

		// Revoke: every earlier key ends at once (none keeps a later retirement or expiry; one that
		// ended earlier keeps its times), and B's keys are untouched.
		fifth := newSigningKey(a.tenant.ID, t0.Add(5*time.Hour+time.Minute))
		now := fifth.CreatedAt
		if err := s.RotateSigningKey(ctx, fifth, tenant.Retirement{At: now, ExpiresAt: now, Revoke: true}); err != nil {
			t.Fatal(err)
		}
		fourth.RetiredAt, fourth.ExpiresAt = &now, &now
		third.RetiredAt, third.ExpiresAt = &now, &now
		got, err = s.ListSigningKeys(ctx, a.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "A's signing keys after a revocation", got, []signing.Key{fifth, fourth, third, second, first})
		gotB, err = s.ListSigningKeys(ctx, b.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "B's signing keys after A's revocation", gotB, []signing.Key{b.signing})
	})
}

// retireAt is the retirement of a rotation without activation delay: the previous key retires when
// next is made and stays published until expires.
func retireAt(next signing.Key, expires time.Time) tenant.Retirement {
	return tenant.Retirement{At: next.CreatedAt, ExpiresAt: expires}
}

// TestTenantStoreLongAndUnicodeStrings checks that text is text: long and non-ASCII values round-trip
// unchanged in every column the store writes.
func TestTenantStoreLongAndUnicodeStrings(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		long := string([]rune(strings.Repeat("Ünïcødé 🔑 ", 200))[:2000]) // 2,000 characters
		quote := `it's "quoted" \ back\slash; DROP TABLE tenants; --`

		id := uuid.New()
		cfg := testConfig("bücher.example")
		cfg.WebAuthn.RelyingParty.DisplayName = long
		cfg.CORS.AllowedOrigins = []string{"https://bücher.example", "https://*.例え.jp"}
		tn := tenant.Tenant{ID: id, DisplayName: long + quote, Config: cfg, Revision: 1, CreatedAt: t0, UpdatedAt: t0}
		key := newAPIKey(t, id, long, tenant.KindSecret, t0)
		key.Hint = quote
		signingKey := newSigningKey(id, t0)
		signingKey.ID = strings.Repeat("k", 1023)
		signingKey.PublicJWK = []byte(`{"kid":"` + long + `"}`)
		if err := s.CreateTenant(ctx, tn, []tenant.APIKey{key}, signingKey); err != nil {
			t.Fatalf("CreateTenant: %v", err)
		}
		got, err := s.GetTenant(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "tenant", got, tn)
		keys, err := s.ListAPIKeys(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "keys", keys, []tenant.APIKey{key})
		signings, err := s.ListSigningKeys(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "signing keys", signings, []signing.Key{signingKey})
	})
}

// newChanges reads the change feed from cursor and returns the changes it had not returned before
// (the feed returns recent changes again), with the next cursor.
func newChanges(t *testing.T, s *db.TenantStore, cursor tenant.ChangeCursor) ([]tenant.Change, tenant.ChangeCursor) {
	t.Helper()
	changes, next, err := s.TenantChanges(context.Background(), cursor)
	if err != nil {
		t.Fatalf("TenantChanges: %v", err)
	}
	if next.ID < cursor.ID || next.At.Before(cursor.At) {
		t.Fatalf("the cursor went back from %+v to %+v", cursor, next)
	}
	var fresh []tenant.Change
	for _, c := range changes {
		if c.ID > cursor.ID {
			fresh = append(fresh, tenant.Change{TenantID: c.TenantID, Revision: c.Revision})
		}
	}
	return fresh, next
}

// TestTenantStoreChanges checks the change feed: every change of a tenant once with its new revision,
// in order and for that tenant only, deletions as revision 0, recent changes read again, and old
// ones pruned.
func TestTenantStoreChanges(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := db.NewTenantStore(d)
		changes, cursor := newChanges(t, s, tenant.ChangeCursor{})
		if len(changes) != 0 || cursor.ID != 0 || cursor.At.IsZero() {
			t.Fatalf("empty feed: %v, cursor %+v; want nothing and the time of the read", changes, cursor)
		}

		a := createTenant(t, s, "A", t0)
		b := createTenant(t, s, "B", t0)
		changes, cursor = newChanges(t, s, cursor)
		mustEqual(t, "changes after two creations", changes, []tenant.Change{{TenantID: a.tenant.ID, Revision: 1}, {TenantID: b.tenant.ID, Revision: 1}})
		if again, _ := newChanges(t, s, cursor); len(again) != 0 {
			t.Fatalf("no change made, but new changes %v", again)
		}
		// Read again, with the same IDs: they were made within the last ChangeReplay.
		replayed, _, err := s.TenantChanges(ctx, cursor)
		if err != nil || len(replayed) != 2 || replayed[1].ID != cursor.ID {
			t.Fatalf("changes read again: %+v, %v; want both creations, the last with id %d", replayed, err, cursor.ID)
		}
		// A read made ChangeReplay later reads nothing again.
		if later, _, err := s.TenantChanges(ctx, tenant.ChangeCursor{ID: cursor.ID, At: cursor.At.Add(tenant.ChangeReplay + time.Second)}); err != nil || len(later) != 0 {
			t.Fatalf("changes read a minute later: %+v, %v; want none", later, err)
		}

		// Cross-tenant: B's changes are B's; A's deletion is A's, as revision 0.
		u := b.tenant
		u.DisplayName = "B2"
		if err := s.UpdateTenant(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTenant(ctx, a.tenant.ID); err != nil {
			t.Fatal(err)
		}
		mustBe(t, "delete A again", s.DeleteTenant(ctx, a.tenant.ID), tenant.ErrNotFound)
		mustBe(t, "update A after its deletion", s.UpdateTenant(ctx, a.tenant), tenant.ErrNotFound)
		changes, cursor = newChanges(t, s, cursor)
		mustEqual(t, "changes after an update of B and the deletion of A", changes,
			[]tenant.Change{{TenantID: b.tenant.ID, Revision: 2}, {TenantID: a.tenant.ID, Revision: 0}})

		// Changes older than the retention and the replay are deleted by the next change; newer ones stay.
		old := func(age time.Duration) {
			_, err := d.Bun().NewRaw("INSERT INTO tenant_changes (tenant_id, revision, changed_at) VALUES (?, 9, ?)",
				uuid.New(), time.Now().UTC().Add(-age)).Exec(ctx)
			if err != nil {
				t.Fatal(err)
			}
		}
		old(tenant.ChangeRetention + tenant.ChangeReplay + time.Minute)
		old(tenant.ChangeRetention)
		count := func() int64 {
			n, err := d.Bun().NewSelect().TableExpr("tenant_changes").Count(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := count()
		if err := s.UpdateTenant(ctx, u); err != nil {
			t.Fatal(err)
		}
		if after := count(); after != before {
			t.Fatalf("%d changes after an update with one too old to keep, want %d (one deleted, one added)", after, before)
		}
	})
}

// TestTenantStoreChangesCommittedLate: PostgreSQL numbers a change when it is written and shows it
// when its transaction commits, so a change can become visible after a read that returned a higher
// id. The next read still returns it. (SQLite writes one transaction at a time.)
func TestTenantStoreChangesCommittedLate(t *testing.T) {
	d := dbtest.Postgres(t)
	ctx := context.Background()
	s := db.NewTenantStore(d)
	a := createTenant(t, s, "A", t0)
	b := createTenant(t, s, "B", t0)
	_, cursor := newChanges(t, s, tenant.ChangeCursor{})

	late, err := d.Bun().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = late.Rollback() }()
	if _, err := late.NewRaw("INSERT INTO tenant_changes (tenant_id, revision, changed_at) VALUES (?, 5, clock_timestamp())", a.tenant.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	u := b.tenant
	u.DisplayName = "B2"
	if err := s.UpdateTenant(ctx, u); err != nil {
		t.Fatal(err)
	}
	changes, cursor := newChanges(t, s, cursor)
	mustEqual(t, "changes before the late commit", changes, []tenant.Change{{TenantID: b.tenant.ID, Revision: 2}})
	if err := late.Commit(); err != nil {
		t.Fatal(err)
	}
	all, _, err := s.TenantChanges(ctx, cursor)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range all {
		found = found || c.TenantID == a.tenant.ID && c.Revision == 5
	}
	if !found {
		t.Fatalf("the change committed after a read of a higher id is not read: %+v", all)
	}
}
