package ratelimit

import (
	"context"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// DefaultMemoryKeys is how many keys NewMemory tracks when given no size.
const DefaultMemoryKeys = 100_000

// NewMemory returns a Limiter that keeps its counters in this process, for the embedded mode without
// Redis: one golang.org/x/time/rate token bucket per key, the most recently used maxKeys of them kept in
// an LRU (maxKeys <= 0 means DefaultMemoryKeys). With several instances each enforces the limits on its
// own share of the traffic, so multiply-instance deployments need New. An evicted key starts again with
// a full bucket, which only errs on the side of letting requests through.
func NewMemory(rules Rules, maxKeys int) *Limiter {
	if maxKeys <= 0 {
		maxKeys = DefaultMemoryKeys
	}
	cache, err := lru.New[memoryKey, *rate.Limiter](maxKeys)
	if err != nil {
		panic(err) // only for a non-positive size, excluded above
	}
	return newLimiter(&memoryStore{buckets: cache, now: time.Now}, "", rules)
}

// memoryKey is a bucket's key with its limit, so that a changed limit starts a new bucket.
type memoryKey struct {
	key   string
	limit Limit
}

// memoryStore checks limits with in-process token buckets.
type memoryStore struct {
	mu      sync.Mutex // makes get-or-create atomic; the buckets have their own locks
	buckets *lru.Cache[memoryKey, *rate.Limiter]
	now     func() time.Time
}

func (s *memoryStore) exhausted(_ context.Context, key string, limit Limit) (bool, error) {
	s.mu.Lock()
	b, ok := s.buckets.Get(memoryKey{key, limit})
	s.mu.Unlock()
	return ok && b.TokensAt(s.now()) < 1, nil
}

func (s *memoryStore) allow(_ context.Context, key string, limit Limit) (result, error) {
	k := memoryKey{key, limit}
	s.mu.Lock()
	b, ok := s.buckets.Get(k)
	if !ok {
		b = rate.NewLimiter(rate.Every(limit.Period/time.Duration(limit.Rate)), limit.Burst)
		s.buckets.Add(k, b)
	}
	s.mu.Unlock()

	now := s.now()
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return result{retryAfter: limit.Period}, nil
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return result{retryAfter: d}, nil
	}
	return result{allowed: true, remaining: int(b.TokensAt(now))}, nil
}
