package db_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
)

// BenchmarkAuditInsert measures what one audit event costs PostgreSQL when the Recorder writes it:
// AuditStore.Insert of a batch of 1 (a quiet instance, each event on its own) and of 64 (under load).
// It reports ns/event (wall time) and, when the server runs on this machine, pg-cpu-ns/event: the
// CPU time of the database's server processes, which the noise of a shared machine and the commit's
// fsync hardly touch. Commits do not wait for the WAL flush (synchronous_commit off for these
// connections only), so that the statement's own cost is measured, not the disk.
//
//	go test -run '^$' -bench AuditInsert -count 5 ./db/
func BenchmarkAuditInsert(b *testing.B) {
	ctx := context.Background()
	url := dbtest.PostgresURL(b)
	d, err := db.Open(ctx, url+"&options=-c%20synchronous_commit%3Doff")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close() })
	if err := d.MigrateUp(ctx); err != nil {
		b.Fatal(err)
	}
	s := db.NewAuditStore(d)
	tenants := make([]uuid.UUID, 4)
	for i := range tenants {
		tenants[i] = credTenant(b, d, fmt.Sprintf("T%d", i))
	}
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			batch := make([]audit.Event, size)
			for i := range batch {
				batch[i] = auditEvent(&tenants[i%len(tenants)], "webauthn_authentication_final_succeeded", "alice", "192.0.2.1", time.Now())
			}
			cpu0, cpuOK := serverCPU(ctx, d)
			for b.Loop() {
				for i := range batch {
					batch[i].ID = uuid.New() // new events: a stored id would be skipped
				}
				if err := s.Insert(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			events := float64(b.N * size)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
			if cpu1, ok := serverCPU(ctx, d); ok && cpuOK {
				b.ReportMetric(float64(cpu1-cpu0)/events, "pg-cpu-ns/event")
			}
		})
	}
}

// serverCPU returns the CPU time, in ns, that the server processes of d's connections have used,
// read from /proc/<pid>/schedstat; false when the server does not run on this machine.
func serverCPU(ctx context.Context, d *db.DB) (int64, bool) {
	var pids []int
	err := d.Bun().NewSelect().TableExpr("pg_stat_activity").Column("pid").
		Where("datname = current_database()").Scan(ctx, &pids)
	if err != nil || len(pids) == 0 {
		return 0, false
	}
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
		if err != nil {
			return 0, false
		}
		ns, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
		if err != nil {
			return 0, false
		}
		total += ns
	}
	return total, true
}
