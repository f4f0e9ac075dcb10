package tenant_test

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// slowStore is the real tenant store with a slow, counted GetTenant: the moment a burst of requests
// finds a tenant that is not cached.
type slowStore struct {
	tenant.Store
	gets    atomic.Int32
	release chan struct{} // GetTenant waits for it while not nil
}

func (s *slowStore) GetTenant(ctx context.Context, id uuid.UUID) (tenant.Tenant, error) {
	s.gets.Add(1)
	if s.release != nil {
		<-s.release
	}
	return s.Store.GetTenant(ctx, id)
}

// TestDirectorySharesLoads checks that concurrent requests for a tenant that is not cached share one
// load from the store, and that a request that gives up (its client went away) does not fail the
// others waiting on the same load.
func TestDirectorySharesLoads(t *testing.T) {
	d := dbtest.SQLite(t)
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	sealer, err := signing.NewSealer(master)
	if err != nil {
		t.Fatal(err)
	}
	store := &slowStore{Store: db.NewTenantStore(d)}
	dir := tenant.NewDirectory(tenant.DirectoryOptions{Store: store, Sealer: sealer})
	svc := tenant.NewService(tenant.Options{Store: db.NewTenantStore(d), Sealer: sealer, Directory: dir})
	cfg := tenant.Config{
		CORS: tenant.CORSConfig{AllowedOrigins: []string{dbtest.Origin}},
		WebAuthn: tenant.WebAuthnConfig{
			RelyingParty: tenant.RelyingParty{ID: "example.com", DisplayName: "T", Origins: []string{dbtest.Origin}},
			Timeout:      60000,
		},
	}
	tn, _, err := svc.Create(context.Background(), tenant.CreateInput{DisplayName: "T", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}

	store.release = make(chan struct{})
	gone, cancel := context.WithCancel(context.Background())
	cancel() // the first caller's client went away
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = dir.Resolve(gone, tn.ID)
	}()
	time.Sleep(10 * time.Millisecond) // the gone request leads the load
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snap, err := dir.Resolve(context.Background(), tn.ID)
			if err == nil && snap.ID != tn.ID {
				t.Errorf("resolved %s, want %s", snap.ID, tn.ID)
			}
			errs <- err
		}()
	}
	time.Sleep(300 * time.Millisecond) // every request is waiting by now (on a loaded machine, nearly)
	close(store.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a request waiting on the shared load failed: %v", err)
		}
	}
	// One load, or two when the machine was so slow that a request arrived after the first ended;
	// without sharing, each of the 21 requests loads.
	if n := store.gets.Load(); n > 2 {
		t.Fatalf("%d loads from the store for 21 concurrent requests, want them shared", n)
	}
}
