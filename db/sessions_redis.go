package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/passkey-server/passkey-server/credentials"
)

// sessionMaxChallengeLen bounds the challenge accepted by the session stores. go-webauthn issues 32-byte
// challenges (43 base64url characters); the bound only stops a client-supplied challenge from becoming an
// arbitrarily large Redis key or map key.
const sessionMaxChallengeLen = 256

// sessionRecordVersion is the version of the encoding of a session value in Redis. A reader rejects any
// other version rather than guessing, so a future format change cannot be misread during a rolling upgrade.
const sessionRecordVersion = 1

// RedisSessions is the Redis implementation of credentials.SessionStore. Any number of instances may share
// one Redis: a session put by one instance can be consumed by another, and exactly once.
//
// Each session is one key, <prefix>session:{<tenant ID>}:<ceremony>:<challenge>, whose value encodes the
// session and whose TTL ends at the session's ExpiresAt: a ceremony costs Redis one command at initialize
// (SET NX PX) and one at finalize (GETDEL), whoever the ceremony is for. Nothing lists a user's
// sessions: a deleted user's sessions are left to fail at finalize, which checks the user in the
// database, and to expire (see credentials.SessionStore).
type RedisSessions struct {
	client redis.UniversalClient
	prefix string
	// timeout bounds each call (DefaultRedisCallTimeout unless SetCallTimeout changed it).
	timeout time.Duration
	// now is the clock that decides whether a session has expired; time.Now outside tests.
	now func() time.Time
}

var _ credentials.SessionStore = (*RedisSessions)(nil)

// NewRedisSessions returns a session store that keeps sessions in client (one server, a Redis Cluster or
// a Sentinel-managed master) under keys starting with prefix (for example "passkey:"; it may be empty,
// and must hold no '{' or '}', which would change the keys' hash tag). The caller keeps ownership of
// client.
func NewRedisSessions(client redis.UniversalClient, prefix string) *RedisSessions {
	return &RedisSessions{client: client, prefix: prefix, timeout: DefaultRedisCallTimeout, now: time.Now}
}

// DefaultRedisCallTimeout bounds each call of a RedisSessions unless SetCallTimeout changes it. A
// session command is one round trip of a few hundred microseconds; a Redis that takes a second is
// unavailable for this purpose.
const DefaultRedisCallTimeout = time.Second

// SetCallTimeout sets how long each call may take (d > 0), waiting for a pool connection included; a
// call also ends at its context's deadline. Call it before the store is used.
func (r *RedisSessions) SetCallTimeout(d time.Duration) {
	if d > 0 {
		r.timeout = d
	}
}

// call returns ctx bounded by the call timeout, and the function to defer: it releases the deadline and
// marks *err as passkey.ErrUnavailable when it means that Redis cannot answer.
func (r *RedisSessions) call(ctx context.Context, err *error) (context.Context, func()) {
	ctx, cancel := withCallTimeout(ctx, r.timeout)
	return ctx, func() {
		cancel()
		*err = unavailable(kindSessions, *err)
	}
}

// redisSessionRecord is the value stored for a session. The tenant, ceremony and challenge are in the key
// and are not repeated.
//
// Records written before the per-user session sets were dropped also hold the session's user, "u"; it
// is ignored (the ceremony keeps its user in Data), so during a rolling upgrade either version reads
// the other's records, and the version stays 1.
type redisSessionRecord struct {
	Version int `json:"v"`
	// Data is encoded as base64 by encoding/json, so any bytes round-trip.
	Data []byte `json:"d,omitempty"`
	// ExpiresAt is in Unix nanoseconds.
	ExpiresAt int64 `json:"x"`
}

// Put stores s until s.ExpiresAt. It fails if s is invalid, if it expires in less than a millisecond (the
// resolution of Redis TTLs), or if a live session already holds the same tenant, ceremony and challenge:
// a challenge is never silently replaced.
func (r *RedisSessions) Put(ctx context.Context, s credentials.Session) (err error) {
	ctx, done := r.call(ctx, &err)
	defer done()
	ttl, err := sessionCheckPut(s, r.now())
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	value, err := json.Marshal(redisSessionRecord{Version: sessionRecordVersion, Data: s.Data, ExpiresAt: s.ExpiresAt.UnixNano()})
	if err != nil {
		return fmt.Errorf("put session: encode: %w", err)
	}
	// PX is relative, so a wall-clock difference between this instance and Redis does not shift the
	// expiry; truncating to whole milliseconds can only make the key expire earlier, never later.
	err = r.client.Do(ctx, "set", r.key(s.TenantID, s.Ceremony, s.Challenge), value, "px", int64(ttl/time.Millisecond), "nx").Err()
	// SET NX answers nil when a live session holds the key.
	if errors.Is(err, redis.Nil) {
		return errors.New("put session: a live session already uses this challenge")
	}
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	return nil
}

// DeleteTenant deletes every session of the tenant. It SCANs for their keys (a tenant's keys share a
// prefix) and UNLINKs them in batches, so Redis is never blocked for long; on a Redis Cluster it scans
// every master. A walk over the whole keyspace takes time (about a second with a million keys, in
// BenchmarkAdminTenantDelete in cmd/passkey-server), so credentials.SessionSweeper runs it after the
// admin request has answered, not inside it: keeping a per-tenant index instead would cost every Put a
// second command. It is bounded by ctx alone, not by the call timeout.
//
// The per-user session sets of earlier versions (<prefix>user-sessions:{<tenant ID>}:<user ID>) are
// not looked for: they hold no session data and expire by themselves within the longest ceremony
// timeout after the upgrade.
func (r *RedisSessions) DeleteTenant(ctx context.Context, tenantID uuid.UUID) (err error) {
	// Many round trips: bounded by the caller's deadline, not by the call timeout of one command.
	defer func() { err = unavailable(kindSessions, err) }()
	if cluster, ok := r.client.(*redis.ClusterClient); ok {
		// SCAN sees the keys of one node only. The tenant's keys share a slot, so one master holds
		// them, but scanning all of them needs no slot map and survives a failover.
		err = cluster.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return r.deleteTenantOn(ctx, node, tenantID)
		})
	} else {
		err = r.deleteTenantOn(ctx, r.client, tenantID)
	}
	if err != nil {
		return fmt.Errorf("delete tenant sessions: %w", err)
	}
	return nil
}

// deleteTenantOn deletes the tenant's keys that SCAN finds on node (the client itself, or one master of a
// cluster).
func (r *RedisSessions) deleteTenantOn(ctx context.Context, node redis.Cmdable, tenantID uuid.UUID) error {
	iter := node.Scan(ctx, 0, globEscaper.Replace(r.prefix+"session:{"+tenantID.String()+"}:")+"*", 1000).Iterator()
	batch := make([]string, 0, 1000)
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
			if err := node.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return node.Unlink(ctx, batch...).Err()
	}
	return nil
}

// globEscaper escapes the characters SCAN MATCH patterns treat specially, so that a key prefix is
// matched literally.
var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

// Consume returns the session stored under tenantID, ceremony and challenge and deletes it, in one GETDEL:
// of any number of concurrent calls, on any number of instances, exactly one gets the session. It returns
// credentials.ErrSessionNotFound if there is no such session or if the session has expired by this store's
// clock, even when Redis has not evicted the key yet.
func (r *RedisSessions) Consume(ctx context.Context, tenantID uuid.UUID, ceremony string, challenge string) (_ credentials.Session, err error) {
	ctx, done := r.call(ctx, &err)
	defer done()
	if sessionCheckKey(tenantID, ceremony, challenge) != nil {
		// No session can have been stored under this key; do not ask Redis.
		return credentials.Session{}, credentials.ErrSessionNotFound
	}
	value, err := r.client.GetDel(ctx, r.key(tenantID, ceremony, challenge)).Bytes()
	if errors.Is(err, redis.Nil) {
		return credentials.Session{}, credentials.ErrSessionNotFound
	}
	if err != nil {
		return credentials.Session{}, fmt.Errorf("consume session: %w", err)
	}
	var rec redisSessionRecord
	if err := json.Unmarshal(value, &rec); err != nil {
		return credentials.Session{}, fmt.Errorf("consume session: decode: %w", err)
	}
	if rec.Version != sessionRecordVersion {
		return credentials.Session{}, fmt.Errorf("consume session: decode: unknown record version %d", rec.Version)
	}
	s := credentials.Session{
		TenantID:  tenantID,
		Ceremony:  ceremony,
		Challenge: challenge,
		Data:      rec.Data,
		ExpiresAt: time.Unix(0, rec.ExpiresAt),
	}
	if !r.now().Before(s.ExpiresAt) {
		return credentials.Session{}, credentials.ErrSessionNotFound
	}
	return s, nil
}

// Ping reports whether Redis answers; the readiness check calls it.
func (r *RedisSessions) Ping(ctx context.Context) (err error) {
	ctx, done := r.call(ctx, &err)
	defer done()
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// key returns the Redis key of a session, <prefix>session:{<tenant ID>}:<ceremony>:<challenge>.
// sessionCheckKey keeps ':' out of the ceremony, and a UUID has a fixed form, so two different sessions
// never share a key.
//
// {<tenant ID>} is a Redis Cluster hash tag: only it decides the key's slot, so one tenant's sessions
// live on one master (see README, "Redis Cluster and Sentinel"). Every command is on one key, so no
// command needs the tag any more (it also put a user's session set, now gone, in the same slot); it
// stays because the layout must not change: during a rolling upgrade a session put by an instance of
// the previous version is consumed by one of this version under the same key.
func (r *RedisSessions) key(tenantID uuid.UUID, ceremony string, challenge string) string {
	var b strings.Builder
	b.Grow(len(r.prefix) + len("session:{}") + 36 + 1 + len(ceremony) + 1 + len(challenge))
	b.WriteString(r.prefix)
	b.WriteString("session:{")
	b.WriteString(tenantID.String())
	b.WriteString("}:")
	b.WriteString(string(ceremony))
	b.WriteByte(':')
	b.WriteString(challenge)
	return b.String()
}

// sessionCheckKey reports whether a session may be stored under tenantID, ceremony and challenge. Both
// stores apply it, so they accept and refuse the same sessions.
func sessionCheckKey(tenantID uuid.UUID, ceremony string, challenge string) error {
	switch {
	case tenantID == uuid.Nil:
		return errors.New("tenant ID is nil")
	case ceremony == "":
		return errors.New("ceremony is empty")
	case strings.ContainsRune(string(ceremony), ':'):
		return fmt.Errorf("ceremony %q contains ':'", ceremony)
	case challenge == "":
		return errors.New("challenge is empty")
	case len(challenge) > sessionMaxChallengeLen:
		return fmt.Errorf("challenge is longer than %d bytes", sessionMaxChallengeLen)
	}
	return nil
}

// sessionCheckPut validates s for Put at time now and returns how long it has left to live.
func sessionCheckPut(s credentials.Session, now time.Time) (time.Duration, error) {
	if err := sessionCheckKey(s.TenantID, s.Ceremony, s.Challenge); err != nil {
		return 0, err
	}
	ttl := s.ExpiresAt.Sub(now)
	if ttl < time.Millisecond {
		return 0, fmt.Errorf("session expires at %s, less than 1ms from now", s.ExpiresAt.Format(time.RFC3339Nano))
	}
	return ttl, nil
}
