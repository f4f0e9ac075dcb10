package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Keys authenticates API keys against the Directory and records when each key was last used, in
// batches written off the request path.
type Keys struct {
	dir   *Directory
	store Store
	now   func() time.Time
	log   *slog.Logger

	mu   sync.Mutex
	used map[APIKeyRef]time.Time // API key → last use not yet written
}

// NewKeys returns a Keys over dir and store; now is the clock (time.Now when nil). Call Run to write
// the last-use times.
func NewKeys(dir *Directory, store Store, now func() time.Time, log *slog.Logger) *Keys {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Keys{dir: dir, store: store, now: now, log: log, used: map[APIKeyRef]time.Time{}}
}

// Authenticate finds the tenant and API key of a secret. Unknown, deleted and expired keys are
// ErrInvalidAPIKey.
func (k *Keys) Authenticate(ctx context.Context, secret string) (*Snapshot, APIKey, error) {
	if strings.TrimSpace(secret) == "" {
		return nil, APIKey{}, ErrInvalidAPIKey
	}
	hash := hashAPIKey(secret)
	id, ok := k.dir.tenantOfKey(hash)
	if !ok {
		key, err := k.store.APIKeyByHash(ctx, hash[:])
		if errors.Is(err, ErrAPIKeyNotFound) {
			return nil, APIKey{}, ErrInvalidAPIKey
		}
		if err != nil {
			return nil, APIKey{}, fmt.Errorf("look up api key: %w", err)
		}
		id = key.TenantID
		k.dir.rememberKey(hash, id)
	}
	snap, err := k.dir.Resolve(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, APIKey{}, ErrInvalidAPIKey
	}
	if err != nil {
		return nil, APIKey{}, err
	}
	key, err := k.check(snap, hash)
	return snap, key, err
}

// Check checks that secret is a valid API key of the snapshot's tenant.
func (k *Keys) Check(snap *Snapshot, secret string) (APIKey, error) {
	if strings.TrimSpace(secret) == "" {
		return APIKey{}, ErrInvalidAPIKey
	}
	return k.check(snap, hashAPIKey(secret))
}

func (k *Keys) check(snap *Snapshot, hash [32]byte) (APIKey, error) {
	key, ok := snap.key(hash)
	now := k.now()
	if !ok || key.Expired(now) {
		return APIKey{}, ErrInvalidAPIKey
	}
	k.mu.Lock()
	k.used[key.Ref()] = now.UTC()
	k.mu.Unlock()
	return key, nil
}

// Run writes the keys' last-use times about every minute until ctx ends, and once more then.
func (k *Keys) Run(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			k.Flush(flushCtx)
			cancel()
			return
		case <-tick.C:
			k.Flush(ctx)
		}
	}
}

// Flush writes the pending last-used times of API keys.
func (k *Keys) Flush(ctx context.Context) {
	k.mu.Lock()
	used := k.used
	k.used = map[APIKeyRef]time.Time{}
	k.mu.Unlock()
	if len(used) == 0 {
		return
	}
	if err := k.store.TouchAPIKeys(ctx, used); err != nil {
		k.log.Warn("recording api key use failed", "error", err, "keys", len(used))
	}
}
