package tenant

import (
	"regexp"
	"strings"
)

// CORSPolicy is a tenant's CORS policy, compiled once per tenant revision from its CORSConfig. It is a
// value: the transport layer applies it to requests.
//
// "*" without allow_unsafe_wildcard allows every origin without credentials (a literal "*"), so a
// browser never sends cookies or other credentials cross-origin on the strength of a wildcard. Every
// other entry is matched exactly or as a wildcard pattern, and a matching origin is allowed with
// credentials (docs/hanko-compatibility.md#cors).
type CORSPolicy struct {
	// AnyOrigin allows every origin, answered with "*" and no credentials.
	AnyOrigin bool
	// Credentials allows credentials for the origins the policy allows.
	Credentials bool
	patterns    []*regexp.Regexp
	all         bool // every origin, with credentials (allow_unsafe_wildcard)
}

// NewCORSPolicy compiles c. Entries that do not compile are left out (Config.Validate refuses them).
func NewCORSPolicy(c CORSConfig) CORSPolicy {
	var p CORSPolicy
	wildcard := false
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			wildcard = true
			continue
		}
		if re, err := compileOriginPattern(o); err == nil {
			p.patterns = append(p.patterns, re)
		}
	}
	switch {
	case wildcard && !c.AllowUnsafeWildcard:
		p.AnyOrigin = true
	case wildcard:
		p.Credentials, p.all = true, true
	default:
		p.Credentials = true
	}
	return p
}

// Allows reports whether a request from origin may read the response.
func (p CORSPolicy) Allows(origin string) bool {
	if p.AnyOrigin || p.all {
		return true
	}
	for _, re := range p.patterns {
		if re.MatchString(origin) {
			return true
		}
	}
	return false
}

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
