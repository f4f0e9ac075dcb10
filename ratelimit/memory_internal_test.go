package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"
)

// TestMemoryExpiry checks that the memory store's state is bounded by expiry: a counter stays while its
// window has not passed, is dropped once it has (its bucket is full again), and a full table refuses to
// track a new client key but never drops a live one.
func TestMemoryExpiry(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := newMemoryStore(3, func() time.Time { return now })
	ctx := context.Background()
	limit := withBurst(PerMinute(2)) // one request every 30 s, burst 2

	for i := range 3 {
		if _, err := s.allow(ctx, "c"+strconv.Itoa(i), limit, false); err != nil {
			t.Fatal(err)
		}
	}
	s.allow(ctx, "c0", limit, false) // c0 owes 60 s, c1 and c2 30 s
	if _, err := s.allow(ctx, "c3", limit, false); !errors.Is(err, errUntracked) {
		t.Fatalf("new key in a full table: %v, want errUntracked", err)
	}
	if _, err := s.allow(ctx, "tenant", limit, true); err != nil {
		t.Fatalf("tenant key in a full table: %v", err)
	}
	if len(s.clients) != 3 {
		t.Fatalf("%d client counters, want 3 (none evicted)", len(s.clients))
	}

	now = now.Add(45 * time.Second) // c1 and c2 are full again; c0 still owes 15 s
	if _, err := s.allow(ctx, "c3", limit, false); err != nil {
		t.Fatalf("new key after the sweep: %v", err)
	}
	if _, ok := s.clients["c0"]; !ok || len(s.clients) != 2 {
		t.Errorf("after 45 s: %v, want c0 and c3", s.clients)
	}
	if ex, _ := s.exhausted(ctx, "c0", limit); ex {
		t.Error("c0 exhausted with a request back")
	}

	now = now.Add(2 * time.Minute)
	s.allow(ctx, "c4", limit, false)
	if len(s.clients) != 1 || len(s.tenants) != 0 {
		t.Errorf("after the windows passed: %v %v, want only c4", s.clients, s.tenants)
	}
}

// BenchmarkMemoryAllow measures one check of a new client key in a table of 100,000 live counters.
func BenchmarkMemoryAllow(b *testing.B) {
	l := NewMemory(Rules{Limits: Limits{PerIP: PerHour(10)}}, 0)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		l.Allow(ctx, Keys{Tenant: "t", IP: "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)})
	}
}
