package tenant_test

import (
	"context"
	"crypto/rand"
	"errors"
	"runtime"
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

// directoryOn returns a Directory that loads through store, the tenant service of d that evicts from
// it, and a tenant created through that service.
func directoryOn(t *testing.T, d *db.DB, store tenant.Store, name string) (*tenant.Directory, *tenant.Service, tenant.Tenant) {
	t.Helper()
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	sealer, err := signing.NewSealer(master)
	if err != nil {
		t.Fatal(err)
	}
	dir := tenant.NewDirectory(tenant.DirectoryOptions{Store: store, Sealer: sealer})
	svc := tenant.NewService(tenant.Options{Store: db.NewTenantStore(d), Sealer: sealer, Directory: dir})
	cfg := tenant.Config{
		CORS: tenant.CORSConfig{AllowedOrigins: []string{dbtest.Origin}},
		WebAuthn: tenant.WebAuthnConfig{
			RelyingParty: tenant.RelyingParty{ID: "example.com", DisplayName: "T", Origins: []string{dbtest.Origin}},
			Timeout:      60000,
		},
	}
	tn, _, err := svc.Create(context.Background(), tenant.CreateInput{DisplayName: name, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return dir, svc, tn
}

// TestDirectorySharesLoads checks that concurrent requests for a tenant that is not cached share one
// load from the store, and that a request that gives up (its client went away) does not fail the
// others waiting on the same load.
func TestDirectorySharesLoads(t *testing.T) {
	d := dbtest.SQLite(t)
	store := &slowStore{Store: db.NewTenantStore(d)}
	dir, _, tn := directoryOn(t, d, store, "T")

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

// countingStore is the real tenant store counting the loads of tenants and the reads of the change
// feed.
type countingStore struct {
	tenant.Store
	gets, feeds atomic.Int32
}

func (s *countingStore) GetTenant(ctx context.Context, id uuid.UUID) (tenant.Tenant, error) {
	s.gets.Add(1)
	return s.Store.GetTenant(ctx, id)
}

func (s *countingStore) TenantChanges(ctx context.Context, since tenant.ChangeCursor) ([]tenant.Change, tenant.ChangeCursor, error) {
	s.feeds.Add(1)
	return s.Store.TenantChanges(ctx, since)
}

func newSealer(t testing.TB) *signing.Sealer {
	t.Helper()
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	sealer, err := signing.NewSealer(master)
	if err != nil {
		t.Fatal(err)
	}
	return sealer
}

func testTenantConfig() tenant.Config {
	return tenant.Config{
		CORS: tenant.CORSConfig{AllowedOrigins: []string{dbtest.Origin}},
		WebAuthn: tenant.WebAuthnConfig{
			RelyingParty: tenant.RelyingParty{ID: "example.com", DisplayName: "T", Origins: []string{dbtest.Origin}},
			Timeout:      60000,
		},
	}
}

// TestDirectoryRefresh: a second instance's directory sees changes made through the first (an
// update, a new API key, a deletion) after one Refresh, and a Refresh drops only the tenants that
// changed: the others stay cached, so their next request loads nothing.
func TestDirectoryRefresh(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		sealer := newSealer(t)
		one := tenant.NewService(tenant.Options{Store: db.NewTenantStore(d), Sealer: sealer,
			Directory: tenant.NewDirectory(tenant.DirectoryOptions{Store: db.NewTenantStore(d), Sealer: sealer})})
		store := &countingStore{Store: db.NewTenantStore(d)}
		two := tenant.NewDirectory(tenant.DirectoryOptions{Store: store, Sealer: sealer})
		if err := two.Refresh(ctx); err != nil { // the first read of the feed
			t.Fatal(err)
		}
		var ids []uuid.UUID
		for range 3 {
			tn, _, err := one.Create(ctx, tenant.CreateInput{DisplayName: "T", Config: testTenantConfig()})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, tn.ID)
		}
		cached := map[uuid.UUID]*tenant.Snapshot{}
		for _, id := range ids {
			snap, err := two.Resolve(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			cached[id] = snap
		}
		// A refresh that finds the creations only (revision 1, as cached) drops nothing.
		if err := two.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		loads := store.gets.Load()
		for _, id := range ids {
			if snap, _ := two.Resolve(ctx, id); snap != cached[id] {
				t.Fatalf("tenant %s reloaded, though it did not change", id)
			}
		}
		if store.gets.Load() != loads {
			t.Fatal("a refresh without changes made the directory load tenants")
		}

		if err := one.Rename(ctx, ids[0], "renamed"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := one.CreateAPIKey(ctx, ids[1], "second", tenant.KindSecret, nil); err != nil {
			t.Fatal(err)
		}
		if err := one.Delete(ctx, ids[2]); err != nil {
			t.Fatal(err)
		}
		if snap, _ := two.Resolve(ctx, ids[0]); snap.DisplayName != "T" {
			t.Fatalf("the second instance saw the rename before it refreshed: %q", snap.DisplayName)
		}
		if err := two.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if snap, err := two.Resolve(ctx, ids[0]); err != nil || snap.DisplayName != "renamed" || snap.Revision != 2 {
			t.Fatalf("after refresh: %+v, %v; want the renamed tenant at revision 2", snap, err)
		}
		if snap, err := two.Resolve(ctx, ids[1]); err != nil || snap.Revision != 2 {
			t.Fatalf("after refresh: revision %d, %v; want 2 after the new key", snap.Revision, err)
		}
		if _, err := two.Resolve(ctx, ids[2]); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("the deleted tenant resolves after refresh: %v", err)
		}
		// Reading the same changes again (the feed repeats the last minute) drops nothing more.
		loads = store.gets.Load()
		if err := two.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids[:2] {
			if _, err := two.Resolve(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if n := store.gets.Load() - loads; n != 0 {
			t.Fatalf("%d tenants loaded again after a refresh that found only changes already applied", n)
		}
	})
}

// TestDirectoryCacheIsBounded: a directory keeps at most CacheSize tenants, and a tenant it dropped
// is loaded again when asked for.
func TestDirectoryCacheIsBounded(t *testing.T) {
	d := dbtest.SQLite(t)
	ctx := context.Background()
	sealer := newSealer(t)
	svc := tenant.NewService(tenant.Options{Store: db.NewTenantStore(d), Sealer: sealer,
		Directory: tenant.NewDirectory(tenant.DirectoryOptions{Store: db.NewTenantStore(d), Sealer: sealer})})
	dir := tenant.NewDirectory(tenant.DirectoryOptions{Store: db.NewTenantStore(d), Sealer: sealer, CacheSize: 20})
	var ids []uuid.UUID
	for range 60 {
		tn, _, err := svc.Create(ctx, tenant.CreateInput{DisplayName: "T", Config: testTenantConfig()})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tn.ID)
		if _, err := dir.Resolve(ctx, tn.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := dir.Cached(); n > 20 {
		t.Fatalf("%d tenants cached, want at most 20", n)
	}
	for _, id := range ids {
		if snap, err := dir.Resolve(ctx, id); err != nil || snap.ID != id {
			t.Fatalf("Resolve(%s) after eviction: %v", id, err)
		}
	}
}

// TestDirectoryMemoryPerTenant: a resolved tenant that is not in use holds little memory (README
// "Many tenants"; the aim is at most 4 KiB, a ceremony's relying party and CORS handler included).
// The bound checked here, on the heap that 500 snapshots keep alive, has room for the collector's
// noise; BenchmarkManyTenants in cmd/passkey-server measures the whole instance.
func TestDirectoryMemoryPerTenant(t *testing.T) {
	d := dbtest.SQLite(t)
	ctx := context.Background()
	sealer := newSealer(t)
	svc := tenant.NewService(tenant.Options{Store: db.NewTenantStore(d), Sealer: sealer,
		Directory: tenant.NewDirectory(tenant.DirectoryOptions{Store: db.NewTenantStore(d), Sealer: sealer})})
	const n = 500
	ids := make([]uuid.UUID, 0, n)
	for range n {
		tn, _, err := svc.Create(ctx, tenant.CreateInput{DisplayName: "Tenant", Config: testTenantConfig(), CreateAPIKey: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tn.ID)
	}
	dir := tenant.NewDirectory(tenant.DirectoryOptions{Store: db.NewTenantStore(d), Sealer: sealer, PublicURL: "https://passkeys.example.com"})
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	if _, err := dir.Resolve(ctx, ids[0]); err != nil { // the first load sets up what every load shares
		t.Fatal(err)
	}
	before := heap()
	for _, id := range ids[1:] {
		if _, err := dir.Resolve(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	after := heap()
	perTenant := (int64(after) - int64(before)) / (n - 1)
	t.Logf("%d B per resolved tenant", perTenant)
	if perTenant > 3072 {
		t.Fatalf("%d B of heap per resolved tenant, want at most 3 KiB", perTenant)
	}
	runtime.KeepAlive(dir)
}

// BenchmarkResolveCached measures the hot path: a cached tenant's Resolve and the check of its API key,
// from parallel requests.
//
//	go test -run '^$' -bench ResolveCached -benchmem ./tenant/
func BenchmarkResolveCached(b *testing.B) {
	d := dbtest.SQLite(b)
	ctx := context.Background()
	sealer := newSealer(b)
	store := db.NewTenantStore(d)
	dir := tenant.NewDirectory(tenant.DirectoryOptions{Store: store, Sealer: sealer})
	svc := tenant.NewService(tenant.Options{Store: store, Sealer: sealer, Directory: dir})
	keys := tenant.NewKeys(dir, store, nil, nil)
	tn, key, err := svc.Create(ctx, tenant.CreateInput{DisplayName: "T", Config: testTenantConfig(), CreateAPIKey: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := keys.Authenticate(ctx, key.Secret); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			snap, err := dir.Resolve(ctx, tn.ID)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := keys.Check(snap, key.Secret); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// staleReadStore is the real tenant store whose GetTenant reads the tenant and then waits, while
// pause is set: a load that read the tenant just before a change committed.
type staleReadStore struct {
	tenant.Store
	pause, read chan struct{}
}

func (s *staleReadStore) GetTenant(ctx context.Context, id uuid.UUID) (tenant.Tenant, error) {
	pause := s.pause
	t, err := s.Store.GetTenant(ctx, id)
	if pause != nil {
		close(s.read)
		<-pause
	}
	return t, err
}

// TestDirectoryEvictDuringLoad: a load that read a tenant before a change made on this instance
// answers the request that waited on it, but the cache keeps the changed tenant: the next request
// sees the change at once, not after the next read of the change feed.
func TestDirectoryEvictDuringLoad(t *testing.T) {
	d := dbtest.SQLite(t)
	store := &staleReadStore{Store: db.NewTenantStore(d)}
	dir, svc, tn := directoryOn(t, d, store, "Before")
	pause := make(chan struct{})
	store.pause, store.read = pause, make(chan struct{})
	done := make(chan *tenant.Snapshot)
	go func() {
		snap, err := dir.Resolve(context.Background(), tn.ID)
		if err != nil {
			t.Error(err)
		}
		done <- snap
	}()
	<-store.read // the load has read "Before"
	if err := svc.Rename(context.Background(), tn.ID, "After"); err != nil {
		t.Fatal(err)
	}
	store.pause = nil // the next load does not wait
	close(pause)
	<-done
	snap, err := dir.Resolve(context.Background(), tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if snap.DisplayName != "After" {
		t.Fatalf("after a rename on this instance the directory serves %q, want \"After\"", snap.DisplayName)
	}
}
