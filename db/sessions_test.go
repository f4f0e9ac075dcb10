package db

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
)

// sessionClock is a settable clock for session tests. It starts at the real time, so that TTLs computed
// from it by RedisSessions.Put are the TTLs Redis applies.
type sessionClock struct {
	mu sync.Mutex
	t  time.Time
}

func sessionNewClock() *sessionClock { return &sessionClock{t: time.Now()} }

func (c *sessionClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *sessionClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sessionStoreFactory returns a new, empty store that uses now as its clock.
type sessionStoreFactory func(tb testing.TB, now func() time.Time) credentials.SessionStore

// sessionFactories are the implementations the conformance suite runs against.
var sessionFactories = []struct {
	name string
	new  sessionStoreFactory
}{
	{"redis", func(tb testing.TB, now func() time.Time) credentials.SessionStore {
		client := sessionTestRedis(tb)
		s := NewRedisSessions(client, sessionTestPrefix(tb, client))
		s.now = now
		return s
	}},
	{"memory", func(tb testing.TB, now func() time.Time) credentials.SessionStore {
		return NewMemorySessions(now)
	}},
}

// TestSessionStore is the conformance suite of credentials.SessionStore.
func TestSessionStore(t *testing.T) {
	for _, f := range sessionFactories {
		t.Run(f.name, func(t *testing.T) {
			sessionConformance(t, f.new)
		})
	}
}

func sessionConformance(t *testing.T, newStore sessionStoreFactory) {
	t.Run("round trip", func(t *testing.T) {
		clock := sessionNewClock()
		store := newStore(t, clock.Now)
		want := sessionTestSession(clock.Now(), time.Minute)
		want.Data = []byte(`{"challenge":"x","user_id":"dXNlcg","allowed_credentials":[]}`)
		if err := store.Put(t.Context(), want); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, err := store.Consume(t.Context(), want.TenantID, want.Ceremony, want.Challenge)
		if err != nil {
			t.Fatalf("Consume: %v", err)
		}
		sessionAssertEqual(t, got, want)
	})

	t.Run("second consume", func(t *testing.T) {
		clock := sessionNewClock()
		store := newStore(t, clock.Now)
		s := sessionTestSession(clock.Now(), time.Minute)
		sessionMustPut(t, store, s)
		if _, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge); err != nil {
			t.Fatalf("first Consume: %v", err)
		}
		_, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge)
		if !errors.Is(err, credentials.ErrSessionNotFound) {
			t.Fatalf("second Consume: got %v, want ErrSessionNotFound", err)
		}
	})

	t.Run("unknown challenge", func(t *testing.T) {
		store := newStore(t, time.Now)
		_, err := store.Consume(t.Context(), uuid.New(), "login", sessionTestChallenge())
		if !errors.Is(err, credentials.ErrSessionNotFound) {
			t.Fatalf("Consume: got %v, want ErrSessionNotFound", err)
		}
	})

	t.Run("concurrent consume", func(t *testing.T) {
		const rounds, consumers = 10, 50
		clock := sessionNewClock()
		store := newStore(t, clock.Now)
		for round := range rounds {
			s := sessionTestSession(clock.Now(), time.Minute)
			sessionMustPut(t, store, s)
			var (
				start  = make(chan struct{})
				wg     sync.WaitGroup
				wins   atomic.Int32
				errsMu sync.Mutex
				errs   []error
			)
			for range consumers {
				wg.Go(func() {
					<-start
					got, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge)
					switch {
					case err == nil:
						wins.Add(1)
						if !bytes.Equal(got.Data, s.Data) {
							errsMu.Lock()
							errs = append(errs, errors.New("winner got other data"))
							errsMu.Unlock()
						}
					case !errors.Is(err, credentials.ErrSessionNotFound):
						errsMu.Lock()
						errs = append(errs, err)
						errsMu.Unlock()
					}
				})
			}
			close(start)
			wg.Wait()
			if n := wins.Load(); n != 1 {
				t.Errorf("round %d: %d of %d concurrent Consume calls succeeded, want exactly 1", round, n, consumers)
			}
			for _, err := range errs {
				t.Errorf("round %d: %v", round, err)
			}
		}
	})

	t.Run("expired by clock", func(t *testing.T) {
		clock := sessionNewClock()
		store := newStore(t, clock.Now)
		atExpiry := sessionTestSession(clock.Now(), time.Minute)
		justBefore := sessionTestSession(clock.Now(), time.Minute)
		sessionMustPut(t, store, atExpiry)
		sessionMustPut(t, store, justBefore)

		clock.Advance(time.Minute - time.Nanosecond)
		if _, err := store.Consume(t.Context(), justBefore.TenantID, justBefore.Ceremony, justBefore.Challenge); err != nil {
			t.Fatalf("Consume 1ns before ExpiresAt: %v", err)
		}
		clock.Advance(time.Nanosecond)
		_, err := store.Consume(t.Context(), atExpiry.TenantID, atExpiry.Ceremony, atExpiry.Challenge)
		if !errors.Is(err, credentials.ErrSessionNotFound) {
			t.Fatalf("Consume at ExpiresAt: got %v, want ErrSessionNotFound", err)
		}
		// Turning the clock back does not resurrect it: the failed Consume deleted it.
		clock.Advance(-time.Minute)
		_, err = store.Consume(t.Context(), atExpiry.TenantID, atExpiry.Ceremony, atExpiry.Challenge)
		if !errors.Is(err, credentials.ErrSessionNotFound) {
			t.Fatalf("Consume after clock set back: got %v, want ErrSessionNotFound", err)
		}
	})

	t.Run("expired by real time", func(t *testing.T) {
		store := newStore(t, time.Now)
		s := sessionTestSession(time.Now(), 50*time.Millisecond)
		sessionMustPut(t, store, s)
		time.Sleep(120 * time.Millisecond)
		_, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge)
		if !errors.Is(err, credentials.ErrSessionNotFound) {
			t.Fatalf("Consume after expiry: got %v, want ErrSessionNotFound", err)
		}
	})

	t.Run("scoped to tenant and ceremony", func(t *testing.T) {
		clock := sessionNewClock()
		store := newStore(t, clock.Now)
		s := sessionTestSession(clock.Now(), time.Minute)
		sessionMustPut(t, store, s)

		for _, other := range []struct {
			name     string
			tenantID uuid.UUID
			ceremony string
		}{
			{"other tenant", uuid.New(), s.Ceremony},
			{"other ceremony", s.TenantID, "registration"},
			{"other ceremony mfa", s.TenantID, "mfa_login"},
			{"other ceremony transaction", s.TenantID, "transaction"},
			{"other tenant and ceremony", uuid.New(), "registration"},
		} {
			_, err := store.Consume(t.Context(), other.tenantID, other.ceremony, s.Challenge)
			if !errors.Is(err, credentials.ErrSessionNotFound) {
				t.Errorf("%s: got %v, want ErrSessionNotFound", other.name, err)
			}
		}
		got, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge)
		if err != nil {
			t.Fatalf("Consume of the original after foreign attempts: %v", err)
		}
		sessionAssertEqual(t, got, s)
	})

	t.Run("same challenge in two scopes", func(t *testing.T) {
		clock := sessionNewClock()
		store := newStore(t, clock.Now)
		a := sessionTestSession(clock.Now(), time.Minute)
		b := a
		b.TenantID = uuid.New()
		b.Data = []byte("b")
		c := a
		c.Ceremony = "registration"
		c.Data = []byte("c")
		for _, s := range []credentials.Session{a, b, c} {
			sessionMustPut(t, store, s)
		}
		for _, s := range []credentials.Session{c, a, b} {
			got, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge)
			if err != nil {
				t.Fatalf("Consume %s/%s: %v", s.TenantID, s.Ceremony, err)
			}
			sessionAssertEqual(t, got, s)
		}
	})

	t.Run("put rejects expired", func(t *testing.T) {
		clock := sessionNewClock()
		store := newStore(t, clock.Now)
		for _, tc := range []struct {
			name string
			ttl  time.Duration
		}{
			{"in the past", -time.Second},
			{"now", 0},
			{"under 1ms", 999 * time.Microsecond},
		} {
			s := sessionTestSession(clock.Now(), tc.ttl)
			if err := store.Put(t.Context(), s); err == nil {
				t.Errorf("%s: Put succeeded, want an error", tc.name)
			}
			_, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge)
			if !errors.Is(err, credentials.ErrSessionNotFound) {
				t.Errorf("%s: Consume after failed Put: got %v, want ErrSessionNotFound", tc.name, err)
			}
		}
		s := sessionTestSession(clock.Now(), 0)
		s.ExpiresAt = time.Time{}
		if err := store.Put(t.Context(), s); err == nil {
			t.Error("zero ExpiresAt: Put succeeded, want an error")
		}
	})

	t.Run("put rejects invalid key", func(t *testing.T) {
		clock := sessionNewClock()
		store := newStore(t, clock.Now)
		for _, tc := range []struct {
			name   string
			modify func(*credentials.Session)
		}{
			{"nil tenant", func(s *credentials.Session) { s.TenantID = uuid.Nil }},
			{"empty ceremony", func(s *credentials.Session) { s.Ceremony = "" }},
			{"colon in ceremony", func(s *credentials.Session) { s.Ceremony = "login:x" }},
			{"empty challenge", func(s *credentials.Session) { s.Challenge = "" }},
			{"huge challenge", func(s *credentials.Session) { s.Challenge = strings.Repeat("A", sessionMaxChallengeLen+1) }},
		} {
			s := sessionTestSession(clock.Now(), time.Minute)
			tc.modify(&s)
			if err := store.Put(t.Context(), s); err == nil {
				t.Errorf("%s: Put succeeded, want an error", tc.name)
			}
			_, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge)
			if !errors.Is(err, credentials.ErrSessionNotFound) {
				t.Errorf("%s: Consume: got %v, want ErrSessionNotFound", tc.name, err)
			}
		}
	})

	t.Run("put does not replace a live session", func(t *testing.T) {
		clock := sessionNewClock()
		store := newStore(t, clock.Now)
		s := sessionTestSession(clock.Now(), time.Minute)
		sessionMustPut(t, store, s)
		other := s
		other.Data = []byte("replacement")
		if err := store.Put(t.Context(), other); err == nil || !strings.Contains(err.Error(), "already uses this challenge") {
			t.Fatalf("second Put under the same challenge: %v, want the live-session error", err)
		}
		got, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge)
		if err != nil {
			t.Fatalf("Consume: %v", err)
		}
		sessionAssertEqual(t, got, s)
		// Once consumed, the key is free again.
		sessionMustPut(t, store, other)
	})

	t.Run("binary data", func(t *testing.T) {
		clock := sessionNewClock()
		store := newStore(t, clock.Now)
		all := make([]byte, 0, 512)
		for i := range 256 {
			all = append(all, byte(i))
		}
		all = append(all, 0xff, 0xfe, 0x00, 0xc3, 0x28, '"', '\\', '\n') // invalid UTF-8, quotes, escapes
		for _, data := range [][]byte{nil, {}, {0}, all, bytes.Repeat([]byte{0x80}, 64<<10)} {
			s := sessionTestSession(clock.Now(), time.Minute)
			s.Data = data
			sessionMustPut(t, store, s)
			got, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge)
			if err != nil {
				t.Fatalf("Consume (%d bytes): %v", len(data), err)
			}
			sessionAssertEqual(t, got, s)
		}
	})

	t.Run("put copies data", func(t *testing.T) {
		clock := sessionNewClock()
		store := newStore(t, clock.Now)
		s := sessionTestSession(clock.Now(), time.Minute)
		buf := []byte("original")
		s.Data = buf
		sessionMustPut(t, store, s)
		copy(buf, "XXXXXXXX") // a caller reusing its buffer, as Fiber does
		got, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge)
		if err != nil {
			t.Fatalf("Consume: %v", err)
		}
		if string(got.Data) != "original" {
			t.Fatalf("Data = %q, want %q", got.Data, "original")
		}
	})

	t.Run("delete tenant", func(t *testing.T) {
		clock := sessionNewClock()
		store := newStore(t, clock.Now)
		gone, stays := uuid.New(), uuid.New()
		var put []credentials.Session
		for _, tenantID := range []uuid.UUID{gone, stays} {
			for range 2 {
				for _, c := range []string{"login", "mfa_registration"} {
					s := sessionTestSession(clock.Now(), time.Minute)
					s.TenantID, s.Ceremony = tenantID, c
					sessionMustPut(t, store, s)
					put = append(put, s)
				}
			}
		}
		if err := store.DeleteTenant(t.Context(), gone); err != nil {
			t.Fatalf("DeleteTenant: %v", err)
		}
		if err := store.DeleteTenant(t.Context(), uuid.New()); err != nil { // a tenant without sessions
			t.Fatalf("DeleteTenant of nobody: %v", err)
		}
		for _, s := range put {
			got, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge)
			switch {
			case s.TenantID == gone && !errors.Is(err, credentials.ErrSessionNotFound):
				t.Errorf("session of the deleted tenant: got %v, want ErrSessionNotFound", err)
			case s.TenantID == stays && err != nil:
				t.Errorf("session of another tenant: %v", err)
			case s.TenantID == stays:
				sessionAssertEqual(t, got, s)
			}
		}
	})

	t.Run("canceled context", func(t *testing.T) {
		clock := sessionNewClock()
		store := newStore(t, clock.Now)
		s := sessionTestSession(clock.Now(), time.Minute)
		sessionMustPut(t, store, s)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := store.Put(ctx, sessionTestSession(clock.Now(), time.Minute)); !errors.Is(err, context.Canceled) {
			t.Errorf("Put: got %v, want context.Canceled", err)
		}
		_, err := store.Consume(ctx, s.TenantID, s.Ceremony, s.Challenge)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Consume: got %v, want context.Canceled", err)
		}
		// The canceled Consume did not take the session.
		if _, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge); err != nil {
			t.Errorf("Consume after canceled Consume: %v", err)
		}
	})
}

// TestSessionRedisKeyAndTTL checks the key layout and that Redis itself expires the key at ExpiresAt,
// independently of the store's clock check.
func TestSessionRedisKeyAndTTL(t *testing.T) {
	client := sessionTestRedis(t)
	prefix := sessionTestPrefix(t, client)
	store := NewRedisSessions(client, prefix)
	// A stopped clock: only the Redis TTL can make the session disappear.
	start := time.Now()
	store.now = func() time.Time { return start }
	s := sessionTestSession(start, 50*time.Millisecond)
	sessionMustPut(t, store, s)

	key := prefix + "session:{" + s.TenantID.String() + "}:" + string(s.Ceremony) + ":" + s.Challenge
	ttl, err := client.PTTL(t.Context(), key).Result()
	if err != nil {
		t.Fatalf("PTTL %s: %v", key, err)
	}
	if ttl <= 0 || ttl > 50*time.Millisecond {
		t.Fatalf("PTTL %s = %v, want in (0, 50ms]", key, ttl)
	}
	time.Sleep(120 * time.Millisecond)
	n, err := client.Exists(t.Context(), key).Result()
	if err != nil {
		t.Fatalf("EXISTS: %v", err)
	}
	if n != 0 {
		t.Fatalf("key %s still exists after its TTL", key)
	}
	if _, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge); !errors.Is(err, credentials.ErrSessionNotFound) {
		t.Fatalf("Consume after the TTL: got %v, want ErrSessionNotFound", err)
	}
}

// TestSessionRedisOneKey checks that a Put writes the session's key and nothing else (one SET), and that
// a record written by the previous version, which also named the session's user ("u") and listed the
// session in a per-user set, is still consumed: during a rolling upgrade, either version reads the
// other's sessions.
func TestSessionRedisOneKey(t *testing.T) {
	client := sessionTestRedis(t)
	prefix := sessionTestPrefix(t, client)
	store := NewRedisSessions(client, prefix)
	s := sessionTestSession(time.Now(), time.Minute)
	sessionMustPut(t, store, s)
	keys, err := client.Keys(t.Context(), prefix+"*").Result()
	if want := store.key(s.TenantID, s.Ceremony, s.Challenge); err != nil || len(keys) != 1 || keys[0] != want {
		t.Fatalf("keys after one Put: %v (%v), want only %s", keys, err, want)
	}
	value, err := client.Get(t.Context(), keys[0]).Result()
	if err != nil || strings.Contains(value, `"u"`) {
		t.Fatalf("record %s (%v): want no user in it", value, err)
	}

	old := sessionTestSession(time.Now(), time.Minute)
	old.Data = []byte(`{"w":{}}`)
	record := fmt.Sprintf(`{"v":1,"d":"eyJ3Ijp7fX0=","u":"%s","x":%d}`, uuid.New(), old.ExpiresAt.UnixNano())
	if err := client.Set(t.Context(), store.key(old.TenantID, old.Ceremony, old.Challenge), record, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := store.Consume(t.Context(), old.TenantID, old.Ceremony, old.Challenge)
	if err != nil {
		t.Fatalf("Consume of a record of the previous version: %v", err)
	}
	sessionAssertEqual(t, got, old)
}

// TestSessionRedisDeleteTenant checks that DeleteTenant leaves no session of the tenant behind, also when
// there are more than one SCAN batch of them, and matches its prefix literally.
func TestSessionRedisDeleteTenant(t *testing.T) {
	client := sessionTestRedis(t)
	prefix := sessionTestPrefix(t, client) + "[*?]:" // glob characters in the prefix are matched literally
	store := NewRedisSessions(client, prefix)
	other := NewRedisSessions(client, strings.TrimSuffix(prefix, "[*?]:")+"x:")
	tenantID := uuid.New()
	for i := range 1200 {
		s := sessionTestSession(time.Now(), time.Minute)
		s.TenantID = tenantID
		sessionMustPut(t, store, s)
		if i < 3 {
			sessionMustPut(t, other, s) // the same tenant id under another prefix: not ours to delete
		}
	}
	if err := store.DeleteTenant(t.Context(), tenantID); err != nil {
		t.Fatal(err)
	}
	if keys, err := client.Keys(t.Context(), strings.TrimSuffix(prefix, "[*?]:")+"*"+tenantID.String()+"*").Result(); err != nil || len(keys) != 3 {
		t.Fatalf("keys left: %d (%v), want the other prefix's 3 sessions", len(keys), err)
	}
}

// TestSessionRedisCorruptValue checks that a value this store did not write is an error, not a session.
func TestSessionRedisCorruptValue(t *testing.T) {
	client := sessionTestRedis(t)
	prefix := sessionTestPrefix(t, client)
	store := NewRedisSessions(client, prefix)
	tenantID := uuid.New()
	for _, value := range []string{"", "not json", `{"v":2,"x":9999999999999999999}`, `{"v":"1"}`} {
		challenge := sessionTestChallenge()
		key := prefix + "session:{" + tenantID.String() + "}:login:" + challenge
		if err := client.Set(t.Context(), key, value, time.Minute).Err(); err != nil {
			t.Fatalf("SET: %v", err)
		}
		_, err := store.Consume(t.Context(), tenantID, "login", challenge)
		if err == nil || errors.Is(err, credentials.ErrSessionNotFound) {
			t.Errorf("value %q: got %v, want a decode error", value, err)
		}
	}
}

// TestSessionRedisUnavailable checks that Redis failures are wrapped errors, never "not found", and
// match passkey.ErrUnavailable with details that name no address.
func TestSessionRedisUnavailable(t *testing.T) {
	// Nothing listens on port 1; fail fast instead of retrying.
	client := redis.NewClient(&redis.Options{
		Addr:               "127.0.0.1:1",
		DialTimeout:        200 * time.Millisecond,
		DialerRetries:      1,
		DialerRetryTimeout: time.Millisecond,
		MaxRetries:         -1,
	})
	t.Cleanup(func() { _ = client.Close() })
	store := NewRedisSessions(client, "passkeytest:unavailable:")

	s := sessionTestSession(time.Now(), time.Minute)
	if err := store.Put(t.Context(), s); err == nil || !strings.HasPrefix(err.Error(), "put session: ") {
		t.Errorf("Put: got %v, want an error starting with \"put session: \"", err)
	}
	_, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge)
	if err == nil || errors.Is(err, credentials.ErrSessionNotFound) || !strings.HasPrefix(err.Error(), "consume session: ") {
		t.Errorf("Consume: got %v, want a wrapped Redis error", err)
	}
	if !errors.Is(err, passkey.ErrUnavailable) || passkey.Details(err) != "the session store is unavailable" {
		t.Errorf("Consume: got %v (details %q), want passkey.ErrUnavailable naming the session store", err, passkey.Details(err))
	}
	if err := store.Ping(t.Context()); err == nil || !errors.Is(err, passkey.ErrUnavailable) {
		t.Errorf("Ping against a closed port: got %v, want passkey.ErrUnavailable", err)
	}
}

// TestSessionOpenRedis checks URL handling of OpenRedis.
func TestSessionOpenRedis(t *testing.T) {
	universal, err := OpenRedis(t.Context(), sessionTestRedisURL())
	if err != nil {
		t.Fatalf("OpenRedis(%s): %v (is Redis running? set PASSKEY_TEST_REDIS_URL)", sessionTestRedisURL(), err)
	}
	client, ok := universal.(*redis.Client)
	if !ok {
		t.Fatalf("OpenRedis(%s) returned a %T, want a *redis.Client for one server", sessionTestRedisURL(), universal)
	}
	// SET NX, GETDEL and MULTI/EXEC must run at most once: no retry after a read timeout. go-redis
	// turns the MaxRetries -1 it was given into 0 (none); left unset, it would be 3.
	if o := client.Options(); o.MaxRetries != 0 || !o.ContextTimeoutEnabled {
		t.Errorf("MaxRetries %d, ContextTimeoutEnabled %v; want 0 (no retries) and true", o.MaxRetries, o.ContextTimeoutEnabled)
	}
	if err := NewRedisSessions(client, "").Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	// Readiness and the rate limiter bound their calls with context deadlines; go-redis honours them
	// only with this option.
	if !client.Options().ContextTimeoutEnabled {
		t.Error("OpenRedis: ContextTimeoutEnabled is off, so context deadlines are ignored")
	}
	_ = client.Close()

	for _, rawURL := range []string{
		"redis://user:s3cr3t@[::1",                                            // malformed host
		"http://user:s3cr3t@localhost:6379/0",                                 // wrong scheme
		"redis://user:s3cr3t@localhost:6379/x",                                // bad database
		"redis://user:s3cr3t@127.0.0.1:1/0?dial_timeout=200ms&max_retries=-1", // nothing listens
	} {
		client, err := OpenRedis(t.Context(), rawURL)
		if err == nil {
			_ = client.Close()
			t.Errorf("OpenRedis(%q) succeeded, want an error", rawURL)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("OpenRedis(%q) error leaks the password: %v", rawURL, err)
		}
	}
}

// TestSessionMemorySweep checks that expired sessions do not accumulate in MemorySessions.
func TestSessionMemorySweep(t *testing.T) {
	clock := sessionNewClock()
	store := NewMemorySessions(clock.Now)
	stored := func() int {
		store.mu.Lock()
		defer store.mu.Unlock()
		return len(store.sessions)
	}

	// A burst that expires is gone after the next Put a sweep interval later.
	const burst = 10 * memSessionMinSweep
	for range burst {
		sessionMustPut(t, store, sessionTestSession(clock.Now(), time.Second))
	}
	clock.Advance(memSessionSweepInterval)
	sessionMustPut(t, store, sessionTestSession(clock.Now(), time.Second))
	if n := stored(); n != 1 {
		t.Fatalf("%d sessions stored after the burst expired, want 1", n)
	}

	// Under steady load, with sessions expiring as fast as new ones arrive, the map stays within about
	// twice the live sessions even before a sweep interval has passed.
	const live = 3 * memSessionMinSweep
	for i := range 20 * live {
		sessionMustPut(t, store, sessionTestSession(clock.Now(), live*time.Millisecond))
		clock.Advance(time.Millisecond)
		if i%live == 0 {
			if n := stored(); n > 2*live+1 {
				t.Fatalf("after %d puts: %d sessions stored, want at most about %d", i, n, 2*live)
			}
		}
	}
}

// BenchmarkSessionPutConsume measures one Put followed by its Consume, the store work of one ceremony,
// whoever it is for. scripts/bench-sessions.sh runs it against a Redis of its own and adds Redis's CPU
// per ceremony.
func BenchmarkSessionPutConsume(b *testing.B) {
	for _, f := range sessionFactories {
		b.Run(f.name, func(b *testing.B) {
			store := f.new(b, time.Now)
			s := sessionTestSession(time.Now(), time.Hour)
			s.Data = bytes.Repeat([]byte("x"), 300) // about the size of go-webauthn's SessionData
			base := s.Challenge
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				s.Challenge = base + strconv.Itoa(i)
				if err := store.Put(ctx, s); err != nil {
					b.Fatal(err)
				}
				if _, err := store.Consume(ctx, s.TenantID, s.Ceremony, s.Challenge); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSessionPutConsumeParallel is BenchmarkSessionPutConsume with concurrent ceremonies.
func BenchmarkSessionPutConsumeParallel(b *testing.B) {
	for _, f := range sessionFactories {
		b.Run(f.name, func(b *testing.B) {
			store := f.new(b, time.Now)
			var n atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				s := sessionTestSession(time.Now(), time.Hour)
				s.Data = bytes.Repeat([]byte("x"), 300)
				base := s.Challenge
				ctx := context.Background()
				for pb.Next() {
					s.Challenge = base + strconv.FormatInt(n.Add(1), 10)
					if err := store.Put(ctx, s); err != nil {
						b.Error(err)
						return
					}
					if _, err := store.Consume(ctx, s.TenantID, s.Ceremony, s.Challenge); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// sessionTestRedisURL is the Redis the tests use.
func sessionTestRedisURL() string {
	if u := os.Getenv("PASSKEY_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// sessionTestRedis connects to the test Redis and fails the test if it does not answer: a test that needs
// Redis never skips.
func sessionTestRedis(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := OpenRedis(ctx, sessionTestRedisURL())
	if err != nil {
		tb.Fatalf("Redis at %s (PASSKEY_TEST_REDIS_URL) does not answer: %v; start it with scripts/services.sh or point PASSKEY_TEST_REDIS_URL at one", sessionTestRedisURL(), err)
	}
	tb.Cleanup(func() { _ = client.Close() })
	return client
}

// sessionTestPrefix returns a fresh key prefix and deletes every key under it with client when the test
// ends. client must come from sessionTestRedis in the same test: cleanups run last-registered first, so the
// keys are deleted before the client is closed.
func sessionTestPrefix(tb testing.TB, client redis.UniversalClient) string {
	tb.Helper()
	prefix := "passkeytest:" + hex.EncodeToString(sessionRandom(8)) + ":"
	tb.Cleanup(func() {
		// The test's context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sessionTestDeleteKeys(ctx, client, prefix+"*"); err != nil {
			tb.Errorf("clean up %s*: %v", prefix, err)
		}
	})
	return prefix
}

// sessionTestDeleteKeys deletes the keys matching pattern, on every master of a cluster.
func sessionTestDeleteKeys(ctx context.Context, client redis.UniversalClient, pattern string) error {
	del := func(ctx context.Context, node redis.Cmdable) error {
		iter := node.Scan(ctx, 0, pattern, 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		// One DEL per key: in a cluster, the keys of one node may be in different slots.
		_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Del(ctx, k)
			}
			return nil
		})
		return err
	}
	if cluster, ok := client.(*redis.ClusterClient); ok {
		return cluster.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return del(ctx, node) })
	}
	return del(ctx, client)
}

// sessionTestSession returns a login session for a new tenant with a fresh challenge, expiring ttl after now.
func sessionTestSession(now time.Time, ttl time.Duration) credentials.Session {
	return credentials.Session{
		TenantID:  uuid.New(),
		Ceremony:  "login",
		Challenge: sessionTestChallenge(),
		Data:      []byte(`{"challenge":"test"}`),
		ExpiresAt: now.Add(ttl),
	}
}

// sessionTestChallenge returns a random challenge shaped like go-webauthn's: 32 bytes, base64url.
func sessionTestChallenge() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := sessionRandom(43)
	for i := range b {
		b[i] = alphabet[b[i]&63]
	}
	return string(b)
}

func sessionRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func sessionMustPut(tb testing.TB, store credentials.SessionStore, s credentials.Session) {
	tb.Helper()
	if err := store.Put(context.Background(), s); err != nil {
		tb.Fatalf("Put: %v", err)
	}
}

func sessionAssertEqual(tb testing.TB, got, want credentials.Session) {
	tb.Helper()
	if got.TenantID != want.TenantID || got.Ceremony != want.Ceremony || got.Challenge != want.Challenge ||
		!bytes.Equal(got.Data, want.Data) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		tb.Fatalf("session mismatch:\n got  %+v\n want %+v", got, want)
	}
}
