package tenant

import (
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
)

// corsMethods and corsExposed are the same for every tenant. Exposing the pagination headers lets a
// browser read X-Total-Count and Link (Hanko exposes none).
const (
	corsMethods = "GET,HEAD,PUT,PATCH,POST,DELETE"
	corsExposed = "X-Total-Count,Link,X-Request-Id,Retry-After"
	corsMaxAge  = 7200
)

// newCORS builds the tenant's CORS middleware (Fiber's) from its config, once per tenant revision.
//
// "*" without allow_unsafe_wildcard answers with a literal "*" and no Allow-Credentials, so a browser
// never sends cookies or other credentials cross-origin on the strength of a wildcard. Every other
// entry is matched exactly or as a wildcard pattern, and the request's origin is reflected with
// Allow-Credentials: true (contract §5.8).
func newCORS(c CORSConfig) fiber.Handler {
	var patterns []*regexp.Regexp
	wildcard := false
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			wildcard = true
			continue
		}
		if re, err := compileOriginPattern(o); err == nil {
			patterns = append(patterns, re)
		}
	}
	cfg := cors.Config{
		AllowMethods:  corsMethods,
		ExposeHeaders: corsExposed,
		MaxAge:        corsMaxAge,
	}
	switch {
	case wildcard && !c.AllowUnsafeWildcard:
		cfg.AllowOrigins = "*"
	case wildcard:
		cfg.AllowCredentials = true
		cfg.AllowOriginsFunc = func(string) bool { return true }
	default:
		cfg.AllowCredentials = true
		cfg.AllowOriginsFunc = func(origin string) bool {
			for _, re := range patterns {
				if re.MatchString(origin) {
					return true
				}
			}
			return false
		}
	}
	return cors.New(cfg)
}

// preflightCORS answers CORS preflights of the key-scoped routes. A preflight carries no API key, so
// its tenant is unknown: it is answered permissively, and the real request that follows gets CORS
// headers only when its key's tenant allows the origin, so a browser still cannot read a response the
// tenant did not allow.
var preflightCORS = cors.New(cors.Config{
	AllowOriginsFunc: func(string) bool { return true },
	AllowMethods:     corsMethods,
	ExposeHeaders:    corsExposed,
	MaxAge:           corsMaxAge,
})

// compileOriginPattern turns an allowed-origin entry into an anchored, case-insensitive regular
// expression in which * matches any run of characters and ? any one character.
func compileOriginPattern(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("(?i)^")
	for _, r := range strings.TrimRight(pattern, "/") {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}
