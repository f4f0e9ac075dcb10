//go:build linux

package main

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
)

// BenchmarkAdminTenantDelete measures DELETE /tenants/{id} on the admin API with the sessions in a
// redis-server of the benchmark's own (startRedis, in faults_test.go) that holds a million keys of
// something else and tenantDeleteSessions pending sessions of the tenant: the delete of the tenant's
// sessions must not make the admin request scan the keyspace. swept-ms/op is the time from the request
// until none of the tenant's sessions is left. Not part of the test suite (filling Redis takes seconds):
//
//	go test -run '^$' -bench AdminTenantDelete -benchtime 5x ./cmd/passkey-server/
func BenchmarkAdminTenantDelete(b *testing.B) {
	const (
		otherKeys            = 1_000_000
		tenantDeleteSessions = 3_000
	)
	_, url := startRedis(b)
	ctx := context.Background()
	client, err := db.OpenRedis(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Close() })
	// The unrelated keys: another application's, 1,000 per pipeline.
	for i := 0; i < otherKeys; i += 1000 {
		if _, err := client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j := i; j < i+1000; j++ {
				p.Set(ctx, "other:"+strconv.Itoa(j), "value", 0)
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	sessions := db.NewRedisSessions(client, "passkey:")
	s := newTestServer(b, dbtest.Postgres(b), newTestSealer(b), func(o *testOptions) { o.Sessions = sessions })

	var swept time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		id, _ := s.createTenant("example.com")
		tenantID := uuidOf(b, id)
		keys := make([]string, 0, tenantDeleteSessions)
		for i := range tenantDeleteSessions {
			challenge := "challenge-" + strconv.Itoa(i)
			if err := sessions.Put(ctx, credentials.Session{TenantID: tenantID, Ceremony: "login", Challenge: challenge,
				Data: []byte(`{}`), ExpiresAt: time.Now().Add(10 * time.Minute)}); err != nil {
				b.Fatal(err)
			}
			keys = append(keys, "passkey:session:{"+id+"}:login:"+challenge)
		}
		start := time.Now()
		b.StartTimer()
		_, resp := send(b, s.admin, "DELETE", "/tenants/"+id, nil, "authorization", "Bearer "+testToken)
		b.StopTimer()
		if resp.StatusCode != 204 {
			b.Fatalf("DELETE /tenants/%s: %d %s", id, resp.StatusCode, readAll(b, resp))
		}
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
			n, err := client.Exists(ctx, keys...).Result()
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d sessions of the deleted tenant left after a minute", n)
			}
		}
		swept += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(swept.Milliseconds())/float64(b.N), "swept-ms/op")
}
