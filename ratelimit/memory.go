package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultMemoryKeys is how many client counters NewMemory keeps at most when given no size.
const DefaultMemoryKeys = 100_000

// errUntracked is a store's answer for a new client key it has no room for: the dimension is skipped
// for the request (see NewMemory).
var errUntracked = errors.New("in-process rate limit table full: client limit skipped, tenant limits still apply")

// sweepEvery is how often the memory store drops the counters whose window has passed, and how often
// at most a full table is swept again before a new client key is refused.
const sweepEvery = time.Second

// NewMemory returns a Limiter that keeps its counters in this process, for the embedded mode without
// Redis. With several instances each enforces the limits on its own share of the traffic, so
// multi-instance deployments need New.
//
// It runs the same algorithm as the Redis limiter (GCRA, as redis_rate): a counter is one time, the
// theoretical arrival time of the next request, and it is dropped only once that time has passed, when
// its bucket is full again and it holds nothing a new counter would not. Nothing is ever evicted to make
// room: a client creating many keys cannot flush another client's or a tenant's live counter (an LRU of
// bounded size could be flushed so). A counter lives at most one period, and a single request keeps it
// for only period/rate (100 ms at 600/m), so holding many counters at once takes as many requests.
//
// Memory is still bounded: at most maxKeys client counters (per address, per API key, refused
// requests; maxKeys <= 0 means DefaultMemoryKeys, about 12 MB). When the table is full, a request
// whose client has no counter yet is not counted in that dimension, OnError is told, and the tenant's
// bucket, which is always kept (two per tenant that exists), still limits it. Failing closed instead
// would let whoever fills the table lock out every new client; degrading to the tenant's budget keeps
// the service and the tenants' secret-key traffic protected.
func NewMemory(rules Rules, maxKeys int) *Limiter {
	return newLimiter(newMemoryStore(maxKeys, time.Now), "", rules)
}

func newMemoryStore(maxKeys int, now func() time.Time) *memoryStore {
	if maxKeys <= 0 {
		maxKeys = DefaultMemoryKeys
	}
	return &memoryStore{max: maxKeys, now: now, clients: map[string]time.Time{}, tenants: map[string]time.Time{}}
}

// memoryStore keeps GCRA counters in maps, clients and tenants apart: each maps a key to its
// theoretical arrival time (tat).
type memoryStore struct {
	mu        sync.Mutex
	max       int
	now       func() time.Time
	clients   map[string]time.Time
	tenants   map[string]time.Time
	lastSweep time.Time
}

// gcra computes one request against a counter whose theoretical arrival time is tat: whether it is
// allowed, the counter's new tat, the requests left and the time to wait (the same arithmetic as
// redis_rate's script).
func gcra(now, tat time.Time, limit Limit) (res result, newTAT time.Time) {
	interval := limit.Period / time.Duration(limit.Rate)
	tolerance := interval * time.Duration(limit.Burst)
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval)
	diff := next.Sub(now)
	if diff > tolerance {
		return result{retryAfter: diff - tolerance}, tat
	}
	return result{allowed: true, remaining: int((tolerance - diff) / interval)}, next
}

func (s *memoryStore) allow(_ context.Context, key string, limit Limit, tenant bool) (result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.lastSweep) >= sweepEvery {
		s.sweep(now)
	}
	m := s.clients
	if tenant {
		m = s.tenants
	}
	tat, ok := m[key]
	if !ok && !tenant && len(m) >= s.max {
		return result{}, errUntracked
	}
	res, next := gcra(now, tat, limit)
	if next.After(now) {
		m[key] = next
	}
	return res, nil
}

func (s *memoryStore) exhausted(_ context.Context, key string, limit Limit) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tat, ok := s.clients[key]
	if !ok {
		return false, nil
	}
	res, _ := gcra(s.now(), tat, limit)
	return !res.allowed, nil
}

// sweep drops the counters whose theoretical arrival time has passed: their buckets are full, as a new
// counter's would be.
func (s *memoryStore) sweep(now time.Time) {
	s.lastSweep = now
	for _, m := range []map[string]time.Time{s.clients, s.tenants} {
		for k, tat := range m {
			if !tat.After(now) {
				delete(m, k)
			}
		}
	}
}
