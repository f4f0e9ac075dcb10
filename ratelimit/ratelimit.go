// Package ratelimit limits request rates per tenant (secret-key and anonymous traffic apart), per client
// address and per API key. The shared limiter
// keeps its counters in Redis through go-redis/redis_rate (GCRA, one Lua script per check), so every
// instance behind a load balancer enforces the same budget; NewMemory is an in-process limiter for the
// embedded mode without Redis.
//
// The limiter is a protection against overload and abuse, not a security boundary: when Redis fails,
// requests go through (see Limiter.Allow). The package knows no HTTP: the transport turns a Decision
// into response headers and ErrRateLimited into 429.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	passkey "github.com/passkey-server/passkey-server"
)

// ErrRateLimited means a rate limit is exhausted: a Decision that does not allow the request, or a
// client over its budget of refused requests. The transport returns it (with the time to wait in its
// details) and answers 429.
var ErrRateLimited = passkey.NewError("rate_limited", "rate limit exceeded")

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
//
// A tenant has two buckets: one for the requests made with a valid secret key (its application's
// servers) and one for all others (browsers, publishable keys, wrong keys). Anonymous clients, however
// many addresses they come from, can then exhaust only the public bucket: the tenant's server calls
// keep their own budget.
type Limits struct {
	// PerTenantSecret limits one tenant's requests made with a valid secret key (Keys.Secret).
	PerTenantSecret Limit
	// PerTenantPublic limits one tenant's other requests, all anonymous clients together.
	PerTenantPublic Limit
	// PerIP limits the requests of one client address to one tenant: an IPv4 address, or an IPv6
	// network of Rules.IPv6Prefix bits.
	PerIP Limit
	// PerKey limits the requests made with one API key.
	PerKey Limit
}

// DefaultIPv6Prefix is how many leading bits of an IPv6 address name one client when Rules.IPv6Prefix
// is 0: a /64 is the smallest network a site is normally given (RFC 6177), and one host may use any
// address of it (SLAAC privacy addresses), so a client changing addresses inside it stays one client.
const DefaultIPv6Prefix = 64

// Rules are a deployment's limits: defaults for every tenant, and overrides for some.
type Rules struct {
	// Limits are the defaults.
	Limits
	// Overrides holds per-tenant limits, keyed by tenant id as Keys.Tenant gives it (the lowercase,
	// hyphenated UUID).
	Overrides map[string]Override
	// IPv6Prefix is how many leading bits of an IPv6 client address the per-address limits key on
	// (1 to 128, the configuration takes 16 to 128; 0 means DefaultIPv6Prefix). IPv4 addresses, and IPv4-mapped IPv6 addresses, are
	// always keyed on the whole IPv4 address.
	IPv6Prefix int
}

// Override is one tenant's own limits. A set field replaces the default of its dimension (a zero Limit
// switches the dimension off for the tenant); a nil field keeps the default.
type Override struct {
	PerTenantSecret, PerTenantPublic, PerIP, PerKey *Limit
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
	}{{&l.PerTenantSecret, o.PerTenantSecret}, {&l.PerTenantPublic, o.PerTenantPublic}, {&l.PerIP, o.PerIP}, {&l.PerKey, o.PerKey}} {
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
	// Secret reports that the request carries a valid secret key of the tenant: it counts against the
	// tenant's secret-key bucket (Limits.PerTenantSecret). Every other request counts against its
	// public bucket (Limits.PerTenantPublic); the zero value is the anonymous side.
	Secret bool
	// IP is the client IP address, as the caller determined it (behind a proxy, from a trusted
	// X-Forwarded-For). The limiter groups IPv6 addresses by Rules.IPv6Prefix.
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
	// allow checks and counts one request. A store whose memory is bounded may refuse to track a new
	// key of a client dimension (not tenant) with errUntracked; tenant keys, one pair per tenant that
	// exists, are always tracked.
	allow(ctx context.Context, key string, limit Limit, tenant bool) (result, error)
	// exhausted reports whether key has no request left under limit, without counting one.
	exhausted(ctx context.Context, key string, limit Limit) (bool, error)
}

// Limiter checks requests against Rules.
type Limiter struct {
	store  store
	prefix string
	rules  Rules
	ipv6   int // bits of an IPv6 address that name one client

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
		l.PerTenantSecret, l.PerTenantPublic = withBurst(l.PerTenantSecret), withBurst(l.PerTenantPublic)
		l.PerIP, l.PerKey = withBurst(l.PerIP), withBurst(l.PerKey)
		return l
	}
	r := Rules{Limits: norm(rules.Limits), Overrides: make(map[string]Override, len(rules.Overrides)), IPv6Prefix: rules.IPv6Prefix}
	if r.IPv6Prefix <= 0 || r.IPv6Prefix > 128 {
		r.IPv6Prefix = DefaultIPv6Prefix
	}
	for id, o := range rules.Overrides {
		var n Override
		for _, f := range []struct{ dst, src **Limit }{
			{&n.PerTenantSecret, &o.PerTenantSecret}, {&n.PerTenantPublic, &o.PerTenantPublic}, {&n.PerIP, &o.PerIP}, {&n.PerKey, &o.PerKey},
		} {
			if *f.src != nil {
				l := withBurst(**f.src)
				*f.dst = &l
			}
		}
		r.Overrides[id] = n
	}
	return &Limiter{store: s, prefix: prefix, rules: r, ipv6: r.IPv6Prefix, Timeout: DefaultTimeout}
}

func withBurst(l Limit) Limit {
	if l.Burst == 0 {
		l.Burst = l.Rate
	}
	return l
}

// check is one dimension to check: its store key and limit, and whether it is a tenant's bucket.
type check struct {
	key    string
	limit  Limit
	tenant bool
}

// Dimensions, as the first part of a store key.
const (
	dimIP           = "ip"            // ip:<tenant>:<client>
	dimKey          = "key"           // key:<hash of the API key>
	dimTenantSecret = "tenant"        // tenant:<tenant>, the secret-key bucket
	dimTenantPublic = "tenant-public" // tenant-public:<tenant>
	dimRefused      = "refused"       // refused:<client>
)

// key is the store key of one dimension's counter: the limiter's prefix, the dimension and its parts,
// colon-separated. Every key is built here (Redis adds "rate:" in front).
func (l *Limiter) key(dimension string, parts ...string) string {
	return l.prefix + dimension + ":" + strings.Join(parts, ":")
}

// client returns the client an address stands for in the per-address limits: an IPv4 address itself
// (also when written as IPv4-mapped IPv6), an IPv6 address's network of l.ipv6 bits ("2001:db8::/64"),
// so that one host or site cannot get a fresh budget from each of its addresses. A string that is no
// IP address is used as it is.
func (l *Limiter) client(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	p, err := addr.Prefix(l.ipv6)
	if err != nil {
		return addr.String() // not reached: l.ipv6 is 1..128 and the zone is gone
	}
	return p.String()
}

// checks lists the dimensions that apply to keys, most specific first: a client that exhausted its own
// budget is stopped before it consumes its tenant's.
func (l *Limiter) checks(k Keys) []check {
	lim := l.rules.limitsFor(k.Tenant)
	cs := make([]check, 0, 3)
	if k.IP != "" && !lim.PerIP.IsZero() {
		cs = append(cs, check{key: l.key(dimIP, k.Tenant, l.client(k.IP)), limit: lim.PerIP})
	}
	if k.APIKey != "" && !lim.PerKey.IsZero() {
		sum := sha256.Sum256([]byte(k.APIKey))
		cs = append(cs, check{key: l.key(dimKey, hex.EncodeToString(sum[:16])), limit: lim.PerKey})
	}
	if k.Tenant != "" {
		dim, limit := dimTenantPublic, lim.PerTenantPublic
		if k.Secret {
			dim, limit = dimTenantSecret, lim.PerTenantSecret
		}
		if !limit.IsZero() {
			cs = append(cs, check{key: l.key(dim, k.Tenant), limit: limit, tenant: true})
		}
	}
	return cs
}

// Decision is the outcome of checking one request against its limits.
type Decision struct {
	// Allowed reports whether the request may go through.
	Allowed bool
	// Checked reports whether a limit applied and the store answered. It is false when no dimension
	// applies to the request's Keys, when the store failed (the request is allowed, see Allow) and for
	// a nil Limiter; Remaining and RetryAfter then mean nothing.
	Checked bool
	// Remaining is how many more requests the tightest applicable dimension allows right now; 0 when
	// the request is refused.
	Remaining int
	// RetryAfter is, for a refused request, how long until the exhausted dimension allows one again,
	// rounded up to whole seconds and at least one second.
	RetryAfter time.Duration
}

// Allow checks and counts one request in every dimension of k that has a limit, most specific first
// (client address, API key, then the tenant's secret-key or public bucket, as k.Secret says): a client
// that exhausted its own budget is stopped before it consumes its tenant's. The request is allowed
// while every dimension allows it; the checks stop at the first dimension that refuses it. The checks
// together take at most Timeout. A nil Limiter allows everything.
//
// An in-process limiter (NewMemory) whose table is full skips a client dimension it cannot track (see
// NewMemory) and tells OnError; the tenant's bucket still applies.
//
// When the store fails (Redis down, slow or erroring), the request is allowed and OnError is told: the
// limiter fails open. Logins and ceremonies staying available matters more than strict limits, and the
// limiter only protects against overload and abuse; authentication does not depend on it.
func (l *Limiter) Allow(ctx context.Context, k Keys) Decision {
	if l == nil {
		return Decision{Allowed: true}
	}
	cs := l.checks(k)
	if len(cs) == 0 {
		return Decision{Allowed: true}
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	remaining := math.MaxInt
	checked := false
	for _, ch := range cs {
		res, err := l.store.allow(ctx, ch.key, ch.limit, ch.tenant)
		if errors.Is(err, errUntracked) {
			l.fail(fmt.Errorf("rate limit check: %w", err))
			continue // degrade to the dimensions still tracked; see NewMemory
		}
		if err != nil {
			l.fail(fmt.Errorf("rate limit check: %w", err))
			return Decision{Allowed: true} // fail open; see the doc comment
		}
		checked = true
		remaining = min(remaining, res.remaining)
		if !res.allowed {
			return Decision{Checked: true, RetryAfter: wholeSeconds(res.retryAfter)}
		}
	}
	if !checked {
		return Decision{Allowed: true}
	}
	return Decision{Allowed: true, Checked: true, Remaining: max(0, remaining)}
}

// RefusalExhausted reports whether the client at ip (an IPv6 address grouped as in Allow) has used up its budget of refused requests, and
// if so how long it should wait (the time one request of the budget takes to come back, in whole
// seconds, at least one). Refused requests are those a lookup refused: an unknown tenant id or API key,
// each of which cost a database query, from a client that has no tenant whose limits could apply. The
// budget is the default per-IP limit; without a per-IP limit, or with a nil Limiter, there is no
// budget and the answer is always no. The check counts nothing; CountRefusal counts. Like Allow, it
// takes at most Timeout and fails open: on a store error it tells OnError and answers no.
func (l *Limiter) RefusalExhausted(ctx context.Context, ip string) (retryAfter time.Duration, over bool) {
	if l == nil || l.rules.PerIP.IsZero() {
		return 0, false
	}
	limit := l.rules.PerIP
	ctx, cancel := l.bound(ctx)
	defer cancel()
	over, err := l.store.exhausted(ctx, l.key(dimRefused, l.client(ip)), limit)
	if err != nil {
		l.fail(fmt.Errorf("rate limit check: %w", err))
		return 0, false
	}
	if !over {
		return 0, false
	}
	return wholeSeconds(limit.Period / time.Duration(limit.Rate)), true
}

// CountRefusal counts one refused request of the client at ip against its budget (see
// RefusalExhausted). Requests the lookup accepts are never counted. It takes at most Timeout; a store
// error goes to OnError. Without a per-IP limit, or with a nil Limiter, it does nothing.
func (l *Limiter) CountRefusal(ctx context.Context, ip string) {
	if l == nil || l.rules.PerIP.IsZero() {
		return
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	if _, err := l.store.allow(ctx, l.key(dimRefused, l.client(ip)), l.rules.PerIP, false); err != nil {
		l.fail(fmt.Errorf("rate limit count: %w", err))
	}
}

// bound returns ctx limited to Timeout, if one is set.
func (l *Limiter) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.Timeout > 0 {
		return context.WithTimeout(ctx, l.Timeout)
	}
	return ctx, func() {}
}

// fail hands err to OnError, if one is set.
func (l *Limiter) fail(err error) {
	if l.OnError != nil {
		l.OnError(err)
	}
}

// wholeSeconds rounds d up to whole seconds, at least one: clients are told to wait in seconds, and
// never zero.
func wholeSeconds(d time.Duration) time.Duration {
	return time.Duration(max(1, int64(math.Ceil(d.Seconds())))) * time.Second
}

// redisStore checks limits with redis_rate.
type redisStore struct{ rl *redis_rate.Limiter }

// redisLimit converts l to redis_rate's Limit, which has the same fields.
func redisLimit(l Limit) redis_rate.Limit {
	return redis_rate.Limit{Rate: l.Rate, Burst: l.Burst, Period: l.Period}
}

func (s redisStore) allow(ctx context.Context, key string, limit Limit, _ bool) (result, error) {
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
