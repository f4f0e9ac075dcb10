// Package ratelimit limits request rates per tenant, per client IP and per API key. The shared limiter
// keeps its counters in Redis through go-redis/redis_rate (GCRA, one Lua script per check), so every
// instance behind a load balancer enforces the same budget; NewMemory is an in-process limiter for the
// embedded mode without Redis.
//
// The limiter is a protection against overload and abuse, not a security boundary: when Redis fails,
// requests go through (see Limiter.Middleware).
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	passkey "github.com/passkey-server/passkey-server"
)

// ErrRateLimited means a rate limit is exhausted. The error handler maps it to 429; Middleware has set
// Retry-After on the response before returning it.
var ErrRateLimited = passkey.NewError("rate_limited", "rate limit exceeded")

// HeaderRemaining is the response header that tells how many more requests the tightest applicable
// limit allows right now.
const HeaderRemaining = "X-RateLimit-Remaining"

// DefaultTimeout bounds one request's rate limit checks; past it the request goes through.
const DefaultTimeout = 250 * time.Millisecond

// Limit allows Rate requests per Period, with bursts of up to Burst requests (New and NewMemory give
// a Limit with no burst a burst of Rate). The zero Limit is no limit: it disables its dimension.
type Limit struct {
	Rate   int
	Burst  int
	Period time.Duration
}

// IsZero reports whether l is the zero Limit, which disables its dimension.
func (l Limit) IsZero() bool { return l == Limit{} }

// PerSecond returns a Limit of rate requests per second, with a burst of rate.
func PerSecond(rate int) Limit { return Limit{Rate: rate, Burst: rate, Period: time.Second} }

// PerMinute returns a Limit of rate requests per minute, with a burst of rate.
func PerMinute(rate int) Limit { return Limit{Rate: rate, Burst: rate, Period: time.Minute} }

// PerHour returns a Limit of rate requests per hour, with a burst of rate.
func PerHour(rate int) Limit { return Limit{Rate: rate, Burst: rate, Period: time.Hour} }

// Limits are the limits of each dimension. A zero Limit disables its dimension.
type Limits struct {
	// PerTenant limits the requests of one tenant, all clients together.
	PerTenant Limit
	// PerIP limits the requests of one client IP address to one tenant.
	PerIP Limit
	// PerKey limits the requests made with one API key.
	PerKey Limit
}

// Rules are a deployment's limits: defaults for every tenant, and overrides for some.
type Rules struct {
	// Limits are the defaults.
	Limits
	// Overrides holds per-tenant limits, keyed by tenant id as Keys.Tenant gives it (the lowercase,
	// hyphenated UUID).
	Overrides map[string]Override
}

// Override is one tenant's own limits. A set field replaces the default of its dimension (a zero Limit
// switches the dimension off for the tenant); a nil field keeps the default.
type Override struct {
	PerTenant, PerIP, PerKey *Limit
}

// limitsFor returns the limits that apply to tenant.
func (r Rules) limitsFor(tenant string) Limits {
	l := r.Limits
	o, ok := r.Overrides[tenant]
	if !ok {
		return l
	}
	for _, f := range []struct {
		dst *Limit
		o   *Limit
	}{{&l.PerTenant, o.PerTenant}, {&l.PerIP, o.PerIP}, {&l.PerKey, o.PerKey}} {
		if f.o != nil {
			*f.dst = *f.o
		}
	}
	return l
}

// Keys identify the client of one request in each dimension. An empty field skips its dimension.
type Keys struct {
	// Tenant is the tenant id.
	Tenant string
	// IP is the client IP address, as the caller determined it (behind a proxy, from a trusted
	// X-Forwarded-For).
	IP string
	// APIKey identifies the API key: its id, or the secret itself (it is hashed before it is used in
	// a Redis key, so no secret is stored).
	APIKey string
}

// result is the outcome of one check in one dimension.
type result struct {
	allowed    bool
	remaining  int
	retryAfter time.Duration
}

// store checks and counts one request against one limit.
type store interface {
	allow(ctx context.Context, key string, limit Limit) (result, error)
	// exhausted reports whether key has no request left under limit, without counting one.
	exhausted(ctx context.Context, key string, limit Limit) (bool, error)
}

// Limiter checks requests against Rules.
type Limiter struct {
	store  store
	prefix string
	rules  Rules

	// OnError, when set, is called with every error of the store (Redis): count or log it there.
	// Set it before the limiter is used.
	OnError func(error)
	// Timeout bounds the checks of one request (DefaultTimeout). Set it before the limiter is used.
	// go-redis honours it only with Options.ContextTimeoutEnabled, which db.OpenRedis sets.
	Timeout time.Duration
}

// New returns a Limiter keeping its counters in Redis under keys "rate:" + prefix + ... (redis_rate
// adds "rate:"). Limits with a rate but no burst get a burst equal to their rate.
func New(client redis.UniversalClient, prefix string, rules Rules) *Limiter {
	return newLimiter(redisStore{redis_rate.NewLimiter(client)}, prefix, rules)
}

func newLimiter(s store, prefix string, rules Rules) *Limiter {
	norm := func(l Limits) Limits {
		l.PerTenant, l.PerIP, l.PerKey = withBurst(l.PerTenant), withBurst(l.PerIP), withBurst(l.PerKey)
		return l
	}
	r := Rules{Limits: norm(rules.Limits), Overrides: make(map[string]Override, len(rules.Overrides))}
	for id, o := range rules.Overrides {
		var n Override
		for _, f := range []struct{ dst, src **Limit }{{&n.PerTenant, &o.PerTenant}, {&n.PerIP, &o.PerIP}, {&n.PerKey, &o.PerKey}} {
			if *f.src != nil {
				l := withBurst(**f.src)
				*f.dst = &l
			}
		}
		r.Overrides[id] = n
	}
	return &Limiter{store: s, prefix: prefix, rules: r, Timeout: DefaultTimeout}
}

func withBurst(l Limit) Limit {
	if l.Burst == 0 {
		l.Burst = l.Rate
	}
	return l
}

// check is one dimension to check: its store key and limit.
type check struct {
	key   string
	limit Limit
}

// checks lists the dimensions that apply to keys, most specific first: a client that exhausted its own
// budget is stopped before it consumes its tenant's.
func (l *Limiter) checks(k Keys) []check {
	lim := l.rules.limitsFor(k.Tenant)
	cs := make([]check, 0, 3)
	if k.IP != "" && !lim.PerIP.IsZero() {
		cs = append(cs, check{l.prefix + "ip:" + k.Tenant + ":" + k.IP, lim.PerIP})
	}
	if k.APIKey != "" && !lim.PerKey.IsZero() {
		sum := sha256.Sum256([]byte(k.APIKey))
		cs = append(cs, check{l.prefix + "key:" + hex.EncodeToString(sum[:16]), lim.PerKey})
	}
	if k.Tenant != "" && !lim.PerTenant.IsZero() {
		cs = append(cs, check{l.prefix + "tenant:" + k.Tenant, lim.PerTenant})
	}
	return cs
}

// Middleware checks every dimension keyOf gives against its limit and lets the request through while
// all allow it. It sets X-RateLimit-Remaining to what the tightest dimension still allows. When a
// dimension is exhausted it sets Retry-After (whole seconds, rounded up) and returns an error wrapping
// ErrRateLimited, for the app's error handler to answer 429.
//
// When the store fails (Redis down, slow or erroring), the request goes through and OnError is told:
// the limiter fails open. Logins and ceremonies staying available matters more than strict limits,
// and the limiter only protects against overload and abuse; authentication does not depend on it.
func (l *Limiter) Middleware(keyOf func(c *fiber.Ctx) Keys) fiber.Handler {
	return func(c *fiber.Ctx) error {
		cs := l.checks(keyOf(c))
		if len(cs) == 0 {
			return c.Next()
		}
		ctx := c.UserContext()
		if l.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, l.Timeout)
			defer cancel()
		}
		remaining := math.MaxInt
		for _, ch := range cs {
			res, err := l.store.allow(ctx, ch.key, ch.limit)
			if err != nil {
				if l.OnError != nil {
					l.OnError(fmt.Errorf("rate limit check: %w", err))
				}
				return c.Next() // fail open; see the doc comment
			}
			remaining = min(remaining, res.remaining)
			if !res.allowed {
				secs := max(1, int(math.Ceil(res.retryAfter.Seconds())))
				c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
				c.Set(HeaderRemaining, "0")
				return passkey.WithDetails(ErrRateLimited, fmt.Sprintf("too many requests, retry after %d seconds", secs))
			}
		}
		c.Set(HeaderRemaining, strconv.Itoa(max(0, remaining)))
		return c.Next()
	}
}

// Refusals limits, per client IP, the requests that a lookup refused: an unknown tenant id or API key,
// each of which cost a database query, from a client that has no tenant whose limits could apply. The
// budget is the default per-IP limit (no per-IP limit, no guard). A client that has used it up gets 429
// before anything is looked up; requests the lookup accepts cost nothing here. refused tells which
// errors of the rest of the chain count; ip gives the client address.
func (l *Limiter) Refusals(ip func(*fiber.Ctx) string, refused func(error) bool) fiber.Handler {
	if l == nil || l.rules.PerIP.IsZero() {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	limit := l.rules.PerIP
	bound := func(c *fiber.Ctx) (context.Context, context.CancelFunc) {
		if l.Timeout > 0 {
			return context.WithTimeout(c.UserContext(), l.Timeout)
		}
		return c.UserContext(), func() {}
	}
	return func(c *fiber.Ctx) error {
		key := l.prefix + "refused:" + ip(c)
		ctx, cancel := bound(c)
		over, err := l.store.exhausted(ctx, key, limit)
		cancel()
		switch {
		case err != nil:
			if l.OnError != nil {
				l.OnError(fmt.Errorf("rate limit check: %w", err))
			}
		case over:
			secs := max(1, int(math.Ceil((limit.Period / time.Duration(limit.Rate)).Seconds())))
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
			c.Set(HeaderRemaining, "0")
			return passkey.WithDetails(ErrRateLimited, fmt.Sprintf("too many refused requests, retry after %d seconds", secs))
		}
		err = c.Next()
		if err != nil && refused(err) {
			ctx, cancel := bound(c)
			if _, serr := l.store.allow(ctx, key, limit); serr != nil && l.OnError != nil {
				l.OnError(fmt.Errorf("rate limit count: %w", serr))
			}
			cancel()
		}
		return err
	}
}

// redisStore checks limits with redis_rate.
type redisStore struct{ rl *redis_rate.Limiter }

// redisLimit converts l to redis_rate's Limit, which has the same fields.
func redisLimit(l Limit) redis_rate.Limit {
	return redis_rate.Limit{Rate: l.Rate, Burst: l.Burst, Period: l.Period}
}

func (s redisStore) allow(ctx context.Context, key string, limit Limit) (result, error) {
	res, err := s.rl.Allow(ctx, key, redisLimit(limit))
	if err != nil {
		return result{}, err
	}
	return result{allowed: res.Allowed > 0, remaining: res.Remaining, retryAfter: res.RetryAfter}, nil
}

// exhausted asks redis_rate for zero requests: it counts nothing and reports what remains.
func (s redisStore) exhausted(ctx context.Context, key string, limit Limit) (bool, error) {
	res, err := s.rl.AllowN(ctx, key, redisLimit(limit), 0)
	if err != nil {
		return false, err
	}
	return res.Remaining < 1, nil
}

// ParseLimit parses a limit written "N/period": "600/m", "10/s", "5000/h", or with any Go duration as
// period, "100/10m". The burst equals N. "", "0" and "off" give the zero Limit, which disables a
// dimension.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || strings.EqualFold(s, "off") {
		return Limit{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, fmt.Errorf("rate limit %q: want N/period, e.g. 600/m", s)
	}
	rate, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || rate <= 0 {
		return Limit{}, fmt.Errorf("rate limit %q: N must be a positive integer", s)
	}
	var period time.Duration
	switch per = strings.TrimSpace(strings.ToLower(per)); per {
	case "s", "sec", "second":
		period = time.Second
	case "m", "min", "minute":
		period = time.Minute
	case "h", "hour":
		period = time.Hour
	default:
		period, err = time.ParseDuration(per)
		if err != nil || period < time.Second {
			return Limit{}, fmt.Errorf("rate limit %q: period must be s, m, h or a duration of at least 1s", s)
		}
	}
	return Limit{Rate: rate, Burst: rate, Period: period}, nil
}
