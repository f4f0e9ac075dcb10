package tenant

import (
	"strings"
	"unicode"
	"unicode/utf8"
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
	// patterns are the allowed-origin entries without trailing slashes, matched by matchOrigin. They
	// are kept as the strings of the config, not compiled: a compiled regular expression costs about
	// 4 KiB, and every cached tenant holds its policy (README "Many tenants").
	patterns []string
}

// NewCORSPolicy compiles c. Entries that are not valid UTF-8 are left out (Config.Validate refuses
// them).
func NewCORSPolicy(c CORSConfig) CORSPolicy {
	var p CORSPolicy
	for _, o := range c.AllowedOrigins {
		if o == "*" || wildcardHost(o) {
			return CORSPolicy{AnyOrigin: true}
		}
		if utf8.ValidString(o) {
			p.patterns = append(p.patterns, strings.TrimRight(o, "/"))
		}
	}
	return p
}

// Allows reports whether a request from origin may read the response.
func (p CORSPolicy) Allows(origin string) bool {
	if p.AnyOrigin {
		return true
	}
	for _, pattern := range p.patterns {
		if matchOrigin(pattern, origin) {
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

// matchOrigin reports whether origin matches an allowed-origin pattern as a whole, ignoring letter
// case: "*" matches any run of characters and "?" any one character, neither a line break (the
// meaning these entries had as anchored, case-insensitive regular expressions). It backtracks only to
// the last "*", so it takes at most len(pattern)·len(origin) steps and allocates nothing.
func matchOrigin(pattern, origin string) bool {
	p, o := 0, 0
	star, mark := -1, 0 // after the last "*" seen: where the pattern resumes, and the origin's position
	for o < len(origin) {
		or, osize := utf8.DecodeRuneInString(origin[o:])
		if p < len(pattern) {
			pr, psize := utf8.DecodeRuneInString(pattern[p:])
			switch {
			case pr == '*':
				star, mark = p+psize, o
				p += psize
				continue
			case pr == '?' && or != '\n', pr != '?' && equalFold(pr, or):
				p += psize
				o += osize
				continue
			}
		}
		if star < 0 || origin[mark] == '\n' {
			return false
		}
		// Let the last "*" take one more character and try again after it.
		_, msize := utf8.DecodeRuneInString(origin[mark:])
		mark += msize
		p, o = star, mark
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// equalFold reports whether a and b are equal under simple Unicode case folding, as (?i) matched them.
func equalFold(a, b rune) bool {
	if a == b {
		return true
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}
