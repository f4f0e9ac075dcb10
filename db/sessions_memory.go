package db

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/credentials"
)

// memSessionMinSweep is the smallest number of stored sessions at which Put sweeps because the map grew.
const memSessionMinSweep = 1024

// memSessionSweepInterval is the longest time between two sweeps while Put is being called, so that the
// sessions of a past burst do not linger until the map doubles again.
const memSessionSweepInterval = time.Minute

// MemorySessions is an in-process implementation of credentials.SessionStore, the embedded default when no
// Redis is configured.
//
// It is for one process only: a session put by one process cannot be consumed by another, so several
// replicas behind a load balancer need RedisSessions instead.
//
// Expired sessions are unusable at once and are removed lazily, without a background goroutine: by
// Consume, and by a sweep that Put runs whenever the number of stored sessions has doubled since the last
// sweep or a minute has passed since it. The map therefore holds at most about twice the live sessions.
type MemorySessions struct {
	now func() time.Time

	mu       sync.Mutex
	sessions map[memSessionKey]credentials.Session
	// sweepAt is the number of stored sessions at which the next Put sweeps expired ones.
	sweepAt int
	// sweptAt is when the last sweep ran; the next Put after sweptAt+memSessionSweepInterval sweeps.
	sweptAt time.Time
}

var _ credentials.SessionStore = (*MemorySessions)(nil)

// memSessionKey identifies a session: the tenant, the ceremony and the challenge.
type memSessionKey struct {
	tenantID  uuid.UUID
	ceremony  string
	challenge string
}

// NewMemorySessions returns an empty in-process session store that uses now as its clock (time.Now if now
// is nil) to decide when sessions expire.
func NewMemorySessions(now func() time.Time) *MemorySessions {
	if now == nil {
		now = time.Now
	}
	return &MemorySessions{
		now:      now,
		sessions: make(map[memSessionKey]credentials.Session),
		sweepAt:  memSessionMinSweep,
		sweptAt:  now(),
	}
}

// Put stores a copy of s until s.ExpiresAt. Like RedisSessions.Put, it fails if s is invalid, if it expires
// in less than a millisecond, or if a live session already holds the same tenant, ceremony and challenge.
func (m *MemorySessions) Put(ctx context.Context, s credentials.Session) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	now := m.now()
	if _, err := sessionCheckPut(s, now); err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	// The caller may reuse its buffer (Fiber does); keep a copy.
	s.Data = bytes.Clone(s.Data)
	k := memSessionKey{tenantID: s.TenantID, ceremony: s.Ceremony, challenge: s.Challenge}

	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.sessions[k]; ok && now.Before(old.ExpiresAt) {
		return errors.New("put session: a live session already uses this challenge")
	}
	if len(m.sessions) >= m.sweepAt || now.Sub(m.sweptAt) >= memSessionSweepInterval {
		m.sweepLocked(now)
	}
	m.sessions[k] = s
	return nil
}

// Consume returns the session stored under tenantID, ceremony and challenge and deletes it, atomically:
// of any number of concurrent calls, exactly one gets the session. It returns
// credentials.ErrSessionNotFound if there is no such session or if it has expired.
func (m *MemorySessions) Consume(ctx context.Context, tenantID uuid.UUID, ceremony string, challenge string) (credentials.Session, error) {
	if err := ctx.Err(); err != nil {
		return credentials.Session{}, fmt.Errorf("consume session: %w", err)
	}
	k := memSessionKey{tenantID: tenantID, ceremony: ceremony, challenge: challenge}

	m.mu.Lock()
	s, ok := m.sessions[k]
	if ok {
		delete(m.sessions, k)
	}
	m.mu.Unlock()

	if !ok || !m.now().Before(s.ExpiresAt) {
		return credentials.Session{}, credentials.ErrSessionNotFound
	}
	// The entry is deleted, so s.Data is no longer shared with the store.
	return s, nil
}

// DeleteTenant deletes every session of the tenant. It scans the store under the lock: deleting a
// tenant is rare, and one process holds few sessions.
func (m *MemorySessions) DeleteTenant(ctx context.Context, tenantID uuid.UUID) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete tenant sessions: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.sessions {
		if k.tenantID == tenantID {
			delete(m.sessions, k)
		}
	}
	return nil
}

// sweepLocked deletes the sessions expired at now and schedules the next sweep for when the map has
// doubled. m.mu must be held.
func (m *MemorySessions) sweepLocked(now time.Time) {
	before := len(m.sessions)
	for k, s := range m.sessions {
		if !now.Before(s.ExpiresAt) {
			delete(m.sessions, k)
		}
	}
	// A Go map never gives back the memory of deleted entries: after a burst has expired, copy the few
	// survivors into a fresh map so the burst's memory can be collected.
	if len(m.sessions) < before/4 {
		fresh := make(map[memSessionKey]credentials.Session, len(m.sessions))
		for k, s := range m.sessions {
			fresh[k] = s
		}
		m.sessions = fresh
	}
	m.sweepAt = max(2*len(m.sessions), memSessionMinSweep)
	m.sweptAt = now
}
