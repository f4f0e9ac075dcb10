package tenant

import (
	"regexp"
	"strings"
)

// CORSPolicy is a tenant's CORS policy, compiled once per tenant revision from its CORSConfig. It is a
// value: the transport layer applies it to requests.
//
// The policy never allows credentials (cookies, TLS client certificates, HTTP authentication): the
// API uses none, since browsers call it with no key at all and servers with an API key in a header,
// so a credentialed cross-origin request could only ever carry what an attacker's page wants to ride
// on. "*" allows every origin, answered with a literal "*". An entry whose host is nothing but
// wildcards ("https://*", "*://*", "http://*:*", "https://*.*") matches every origin too, and is
// treated as "*" rather than reflecting each caller's origin. Every other entry is matched exactly or
// as a wildcard pattern, and a matching origin is reflected (docs/hanko-compatibility.md#cors).
// allow_unsafe_wildcard, which in Hanko makes "*" reflect the origin with credentials, changes nothing.
type CORSPolicy struct {
	// AnyOrigin allows every origin, answered with "*".
	AnyOrigin bool
	patterns  []*regexp.Regexp
}

// NewCORSPolicy compiles c. Entries that do not compile are left out (Config.Validate refuses them).
func NewCORSPolicy(c CORSConfig) CORSPolicy {
	var p CORSPolicy
	for _, o := range c.AllowedOrigins {
		if o == "*" || wildcardHost(o) {
			p.AnyOrigin = true
			continue
		}
		if re, err := compileOriginPattern(o); err == nil {
			p.patterns = append(p.patterns, re)
		}
	}
	if p.AnyOrigin {
		p.patterns = nil
	}
	return p
}

// Allows reports whether a request from origin may read the response.
func (p CORSPolicy) Allows(origin string) bool {
	if p.AnyOrigin {
		return true
	}
	for _, re := range p.patterns {
		if re.MatchString(origin) {
			return true
		}
	}
	return false
}

// wildcardHost reports whether an allowed-origin entry's host (between "://" and an optional port)
// holds a "*" and nothing but wildcards and dots, so that it matches any host.
func wildcardHost(pattern string) bool {
	_, host, ok := strings.Cut(pattern, "://")
	if !ok {
		return false
	}
	host = strings.TrimRight(host, "/")
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Contains(host, "*") && strings.Trim(host, "*?.") == ""
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
