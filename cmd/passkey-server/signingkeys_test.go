package main

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/signing"
)

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// keyInstances are two instances on one database with one clock, signing keys activated after
// activation.
func keyInstances(t *testing.T, d *db.DB, activation time.Duration) (one, two *testServer, clock *testClock) {
	clock = &testClock{now: time.Now().UTC().Truncate(time.Second)}
	sealer := newTestSealer(t)
	opts := func(o *testOptions) { o.Now, o.KeyActivation = clock.Now, activation }
	return newTestServer(t, d, sealer, opts), newTestServer(t, d, sealer, opts), clock
}

// jwksOf fetches the tenant's JWKS from s.
func jwksOf(t *testing.T, s *testServer, id string) jwk.Set {
	t.Helper()
	resp := call(t, s.public, "GET", "/"+id+"/.well-known/jwks.json", nil)
	expectStatus(t, resp, 200, "")
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=60" {
		t.Fatalf("JWKS Cache-Control %q", cc)
	}
	b, _ := io.ReadAll(resp.Body)
	set, err := jwk.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func kidsOf(set jwk.Set) []string {
	var kids []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		kids = append(kids, k.KeyID())
	}
	return kids
}

// signWith signs a token with the tenant's current signer on s.
func signWith(t *testing.T, s *testServer, id string) (token, kid string) {
	t.Helper()
	snap, err := s.svc.directory.Resolve(context.Background(), uuidOf(t, id))
	if err != nil {
		t.Fatal(err)
	}
	token, err = snap.Signer.Sign(signing.Claims{Subject: "user-1", Audience: []string{"example.com"}, IssuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return token, snap.Signer.KeyID()
}

// activeKIDs lists the kids the admin API marks active.
func activeKIDs(t *testing.T, s *testServer, id string) []string {
	t.Helper()
	var kids []string
	for _, k := range decode[[]httpapi.SigningKeyDTO](t, s.adminCall("GET", "/tenants/"+id+"/signing_keys", nil)) {
		if k.Active {
			kids = append(kids, k.KID)
		}
	}
	return kids
}

// TestRotatedKeyIsPublishedBeforeItSigns: a rotation publishes the next key at once and signs with it
// only after the activation delay, so the first token it signs verifies with the JWKS that the other
// instance served, and a client cached, before the switch (issue 12, point 9). The switch happens by
// the clock alone, on both instances, with no further change or refresh.
func TestRotatedKeyIsPublishedBeforeItSigns(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		const activation = 2 * time.Minute
		one, two, clock := keyInstances(t, d, activation)
		id, _ := one.createTenant("example.com")
		_, old := signWith(t, two, id)
		clock.Add(time.Second)

		resp := one.adminCall("POST", "/tenants/"+id+"/signing_keys", nil)
		expectStatus(t, resp, 201, "")
		next := decode[httpapi.SigningKeyDTO](t, resp)
		if next.Active || !next.ActivatesAt.Equal(clock.Now().Add(activation)) {
			t.Fatalf("rotated key %+v: want inactive until %v", next, clock.Now().Add(activation))
		}
		if err := two.svc.directory.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Both instances publish both keys and still sign with the previous one.
		cached := jwksOf(t, two, id)
		for _, s := range []*testServer{one, two} {
			if kids := kidsOf(jwksOf(t, s, id)); len(kids) != 2 || kids[0] != old || kids[1] != next.KID {
				t.Fatalf("JWKS during the activation delay %v, want [%s %s]", kids, old, next.KID)
			}
			if _, kid := signWith(t, s, id); kid != old {
				t.Fatalf("signs with %s during the activation delay, want the previous key %s", kid, old)
			}
		}
		if active := activeKIDs(t, one, id); len(active) != 1 || active[0] != old {
			t.Fatalf("active keys during the delay %v, want [%s]", active, old)
		}

		clock.Add(activation)
		for _, s := range []*testServer{one, two} {
			token, kid := signWith(t, s, id)
			if kid != next.KID {
				t.Fatalf("signs with %s after the activation delay, want %s", kid, next.KID)
			}
			// The first tokens of the new key verify with the JWKS cached before the switch.
			if _, err := jwt.Parse([]byte(token), jwt.WithKeySet(cached), jwt.WithAudience("example.com")); err != nil {
				t.Fatalf("a token of the new key does not verify with the JWKS cached before: %v", err)
			}
		}
		if active := activeKIDs(t, one, id); len(active) != 1 || active[0] != next.KID {
			t.Fatalf("active keys after the delay %v, want [%s]", active, next.KID)
		}
	})
}

// TestExpiredAndRevokedKeysLeaveTheJWKS: a rotated-out key leaves the JWKS when it expires, on an
// instance that saw no other change; revoke_previous is the emergency rotation: the new key signs at
// once and no previous key stays published (issue 12, point 13).
func TestExpiredAndRevokedKeysLeaveTheJWKS(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		const activation = 2 * time.Minute
		one, two, clock := keyInstances(t, d, activation)
		id, _ := one.createTenant("example.com")
		_, first := signWith(t, one, id)
		next := decode[httpapi.SigningKeyDTO](t, one.adminCall("POST", "/tenants/"+id+"/signing_keys", map[string]any{"overlap_seconds": 3600}))
		if err := two.svc.directory.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if kids := kidsOf(jwksOf(t, two, id)); len(kids) != 2 {
			t.Fatalf("JWKS after rotation %v", kids)
		}
		clock.Add(activation + time.Hour)
		for _, s := range []*testServer{one, two} {
			if kids := kidsOf(jwksOf(t, s, id)); len(kids) != 1 || kids[0] != next.KID {
				t.Fatalf("JWKS after the previous key %s expired: %v, want [%s]", first, kids, next.KID)
			}
		}

		// revoke_previous refuses an overlap: nothing of the previous key may stay.
		expectStatus(t, one.adminCall("POST", "/tenants/"+id+"/signing_keys", map[string]any{"revoke_previous": true, "overlap_seconds": 60}), 400, "invalid_request")

		// A normal rotation leaves next signing for the delay; revoking right after ends both
		// previous keys at once.
		pending := decode[httpapi.SigningKeyDTO](t, one.adminCall("POST", "/tenants/"+id+"/signing_keys", nil))
		resp := one.adminCall("POST", "/tenants/"+id+"/signing_keys", map[string]any{"revoke_previous": true})
		expectStatus(t, resp, 201, "")
		revoking := decode[httpapi.SigningKeyDTO](t, resp)
		if !revoking.Active || !revoking.ActivatesAt.Equal(clock.Now()) {
			t.Fatalf("revoking rotation's key %+v: want active now", revoking)
		}
		if err := two.svc.directory.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*testServer{one, two} {
			if kids := kidsOf(jwksOf(t, s, id)); len(kids) != 1 || kids[0] != revoking.KID {
				t.Fatalf("JWKS after revoke_previous %v, want only %s (not %s or %s)", kids, revoking.KID, next.KID, pending.KID)
			}
			if _, kid := signWith(t, s, id); kid != revoking.KID {
				t.Fatalf("signs with %s after revoke_previous, want %s", kid, revoking.KID)
			}
		}
	})
}
