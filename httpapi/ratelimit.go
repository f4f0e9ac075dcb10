package httpapi

import (
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/ratelimit"
)

// headerRateLimitRemaining is the response header that tells how many more requests the tightest
// applicable rate limit allows right now.
const headerRateLimitRemaining = "X-RateLimit-Remaining"

// limitRequests checks every request against l's limits in the dimensions keyOf gives
// (ratelimit.Limiter.Allow) and lets it through while all allow it, with X-RateLimit-Remaining set to
// what the tightest dimension still allows. A refused request gets Retry-After (whole seconds) and
// X-RateLimit-Remaining: 0, and the chain returns ratelimit.ErrRateLimited for the error handler to
// answer 429. When no limit was checked (no dimension applies, or the store failed and the limiter
// failed open) the request goes through without the header. A nil l lets everything through.
func limitRequests(l *ratelimit.Limiter, keyOf func(c *fiber.Ctx) ratelimit.Keys) fiber.Handler {
	if l == nil {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	return func(c *fiber.Ctx) error {
		d := l.Allow(c.UserContext(), keyOf(c))
		if !d.Checked {
			return c.Next()
		}
		if !d.Allowed {
			secs := retryAfterSeconds(d.RetryAfter)
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
			c.Set(headerRateLimitRemaining, "0")
			return passkey.WithDetails(ratelimit.ErrRateLimited, fmt.Sprintf("too many requests, retry after %d seconds", secs))
		}
		c.Set(headerRateLimitRemaining, strconv.Itoa(d.Remaining))
		return c.Next()
	}
}

// limitRefusals limits, per client address (ip), the requests that a lookup refused: refused tells
// which errors of the rest of the chain count (ratelimit.Limiter.CountRefusal). A client that has used
// up its budget gets 429 before anything is looked up, with Retry-After and X-RateLimit-Remaining: 0;
// requests the lookup accepts cost nothing. Without a limiter, or without a per-IP limit, there is no
// budget and every request goes through.
func limitRefusals(l *ratelimit.Limiter, ip func(*fiber.Ctx) string, refused func(error) bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		addr := ip(c)
		if wait, over := l.RefusalExhausted(c.UserContext(), addr); over {
			secs := retryAfterSeconds(wait)
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
			c.Set(headerRateLimitRemaining, "0")
			return passkey.WithDetails(ratelimit.ErrRateLimited, fmt.Sprintf("too many refused requests, retry after %d seconds", secs))
		}
		err := c.Next()
		if err != nil && refused(err) {
			l.CountRefusal(c.UserContext(), addr)
		}
		return err
	}
}

// retryAfterSeconds is d as the whole seconds of a Retry-After header: rounded up, at least one.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}
