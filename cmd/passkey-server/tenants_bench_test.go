package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// BenchmarkManyTenants measures one instance serving many tenants on PostgreSQL: the heap and RSS
// that resolved tenants hold (idle: resolved only; in use: after a ceremony built their relying
// party and CORS handler), the time of a cold tenant's first ceremony, and what one check for
// tenant changes costs. It is a measurement, run by hand, not part of the test suite:
//
//	PASSKEY_BENCH_TENANTS=100000 go test -run '^$' -bench '^BenchmarkManyTenants$' -benchtime 1x \
//	    -timeout 60m ./cmd/passkey-server/
//
// PASSKEY_BENCH_TENANTS is the number of tenants (default 2,000); PASSKEY_BENCH_HEAPPROFILE names a
// file for a heap profile taken with every tenant in use (go tool pprof -sample_index=inuse_space).
// The tenants are written straight into the tables, many rows per INSERT: creating 100,000 through
// the admin API would take far longer than what is measured.
func BenchmarkManyTenants(b *testing.B) {
	n := 2000
	if v := os.Getenv("PASSKEY_BENCH_TENANTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			b.Fatalf("PASSKEY_BENCH_TENANTS=%q: want a number of at least 10", v)
		}
	}
	if os.Getenv("PASSKEY_BENCH_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 64 // every allocation, near enough: the default samples one per 512 KiB
	}
	ctx := context.Background()
	d := dbtest.Postgres(b)
	sealer := newTestSealer(b)
	start := time.Now()
	ids := bulkTenants(b, d, sealer, n)
	b.Logf("created %d tenants in %s", n, time.Since(start).Round(time.Millisecond))
	// A tenth of the tenants (at most 1,000) stays cold for the first-ceremony timing.
	cold := min(n/10, 1000)
	warm, held := ids[:n-cold], ids[n-cold:]

	s := newTestServer(b, d, sealer, func(o *testOptions) { o.TenantCache = n })
	dir := s.svc.directory
	heap0, rss0 := memory()

	// Idle: every tenant resolved once.
	resolve := make([]time.Duration, 0, len(warm))
	for _, id := range warm {
		t := time.Now()
		if _, err := dir.Resolve(ctx, id); err != nil {
			b.Fatal(err)
		}
		resolve = append(resolve, time.Since(t))
	}
	heap1, rss1 := memory()
	b.Logf("idle: %d tenants resolved: heap in use +%.1f MiB (%.0f B/tenant), RSS +%.1f MiB; cold resolve %s",
		len(warm), mib(heap1-heap0), float64(heap1-heap0)/float64(len(warm)), mib(rss1-rss0), percentiles(resolve))
	b.ReportMetric(float64(heap1-heap0)/float64(len(warm)), "idle-B/tenant")

	// In use: a discoverable login initialize on every tenant (its relying party and CORS handler).
	for _, id := range warm {
		_, resp := send(b, s.public, "POST", "/"+id.String()+"/login/initialize", nil, "Origin", testOrigin)
		expectOK(b, resp)
	}
	heap2, rss2 := memory()
	b.Logf("in use: after a ceremony on each: heap in use +%.1f MiB (%.0f B/tenant), RSS +%.1f MiB",
		mib(heap2-heap0), float64(heap2-heap0)/float64(len(warm)), mib(rss2-rss0))
	b.ReportMetric(float64(heap2-heap0)/float64(len(warm)), "used-B/tenant")
	if path := os.Getenv("PASSKEY_BENCH_HEAPPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
	}

	// The first ceremony of a tenant no instance has resolved yet, against a warm one.
	first, again := make([]time.Duration, 0, cold), make([]time.Duration, 0, cold)
	for _, id := range held {
		for _, into := range []*[]time.Duration{&first, &again} {
			t := time.Now()
			_, resp := send(b, s.public, "POST", "/"+id.String()+"/login/initialize", nil, "Origin", testOrigin)
			*into = append(*into, time.Since(t))
			expectOK(b, resp)
		}
	}
	b.Logf("login initialize on a cold tenant %s; on the same tenant warm %s", percentiles(first), percentiles(again))

	// One check for changes made elsewhere, as the directory runs it every PASSKEY_CACHE_REFRESH,
	// after 100 changes (within the last minute, which the change feed reads again).
	store := db.NewTenantStore(d)
	for _, id := range warm[:min(100, len(warm))] {
		t, err := store.GetTenant(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if err := store.UpdateTenant(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
	polls := make([]time.Duration, 0, 20)
	for range 20 {
		t := time.Now()
		if err := dir.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
		polls = append(polls, time.Since(t))
	}
	_, cursor, err := store.TenantChanges(ctx, tenant.ChangeCursor{})
	if err != nil {
		b.Fatal(err)
	}
	reads := make([]time.Duration, 0, 20)
	var rows int
	for range 20 {
		t := time.Now()
		changes, _, err := store.TenantChanges(ctx, cursor)
		if err != nil {
			b.Fatal(err)
		}
		reads = append(reads, time.Since(t))
		rows = len(changes)
	}
	b.Logf("change check (Directory.Refresh) with %d tenants cached, 100 changed: %s; the store's read alone %s, %d rows",
		len(warm), percentiles(polls), percentiles(reads), rows)
}

// memory returns the heap in use after a collection and the process's resident set, in bytes.
func memory() (heap, rss int64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	status, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			rss = kb << 10
		}
	}
	return int64(m.HeapInuse), rss
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// percentiles describes a sample of durations by its median, 99th percentile and mean.
func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no sample"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("p50 %s p99 %s mean %s (n=%d)", at(0.5).Round(time.Microsecond), at(0.99).Round(time.Microsecond),
		(sum / time.Duration(len(s))).Round(time.Microsecond), len(s))
}

// bulkTenants writes n tenants, each with a secret API key and an ES256 signing key sealed by sealer,
// straight into the tables, 500 tenants per INSERT, and returns their ids.
func bulkTenants(b *testing.B, d *db.DB, sealer *signing.Sealer, n int) []uuid.UUID {
	b.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	ids := make([]uuid.UUID, 0, n)
	const batch = 500
	for lo := 0; lo < n; lo += batch {
		var tenants, keys, signingKeys []any
		for i := lo; i < min(n, lo+batch); i++ {
			id := uuid.New()
			ids = append(ids, id)
			rpID := fmt.Sprintf("t%d.example.com", i)
			cfg := tenant.Config{
				CORS: tenant.CORSConfig{AllowedOrigins: []string{testOrigin}},
				WebAuthn: tenant.WebAuthnConfig{
					RelyingParty: tenant.RelyingParty{ID: "example.com", DisplayName: "Tenant " + rpID, Origins: []string{testOrigin}},
					Timeout:      60000,
				},
			}
			cfg.Normalize()
			config, err := json.Marshal(cfg)
			if err != nil {
				b.Fatal(err)
			}
			_, key, err := tenant.NewAPIKey(id, "Initial API Key", tenant.KindSecret, now, nil)
			if err != nil {
				b.Fatal(err)
			}
			sk, err := signing.GenerateKey(id, signing.ES256, sealer, now)
			if err != nil {
				b.Fatal(err)
			}
			tenants = append(tenants, id, "Tenant "+rpID, string(config), 1, now, now)
			keys = append(keys, key.ID, id, key.Name, string(key.Kind), key.Hash, key.Hint, now)
			signingKeys = append(signingKeys, sk.ID, id, string(sk.Algorithm), sk.EncryptedPrivateKey, string(sk.PublicJWK), now)
		}
		tx, err := d.SQL().BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, ins := range []struct {
			table, columns string
			args           []any
		}{
			{"tenants", "id, display_name, config, revision, created_at, updated_at", tenants},
			{"api_keys", "id, tenant_id, name, kind, hash, hint, created_at", keys},
			{"signing_keys", "id, tenant_id, algorithm, private_key, public_jwk, created_at", signingKeys},
		} {
			bulkInsert(b, tx, ins.table, ins.columns, ins.args)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// bulkInsert inserts the rows of args (one value per column, row after row) in one statement.
func bulkInsert(b *testing.B, tx *sql.Tx, table, columns string, args []any) {
	b.Helper()
	cols := strings.Count(columns, ",") + 1
	var q strings.Builder
	fmt.Fprintf(&q, "INSERT INTO %s (%s) VALUES ", table, columns)
	for i := range args {
		switch {
		case i%cols == 0 && i > 0:
			q.WriteString("), (")
		case i%cols == 0:
			q.WriteString("(")
		default:
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "$%d", i+1)
	}
	q.WriteString(")")
	if _, err := tx.ExecContext(context.Background(), q.String(), args...); err != nil {
		b.Fatalf("insert into %s: %v", table, err)
	}
}
