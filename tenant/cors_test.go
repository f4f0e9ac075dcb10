package tenant

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCORSPolicy(t *testing.T) {
	for _, tc := range []struct {
		origins []string
		any     bool
		allowed []string
		refused []string
	}{
		{[]string{"*"}, true, []string{"https://evil.example"}, nil},
		{[]string{"https://*"}, true, []string{"https://evil.example", "http://evil.example:8080"}, nil},
		{[]string{"*://*"}, true, nil, nil},
		{[]string{"http://*:*"}, true, nil, nil},
		{[]string{"https://*:443/"}, true, nil, nil},
		{[]string{"https://*.*"}, true, nil, nil},
		{[]string{"https://app.example.com", "https://??*"}, true, nil, nil},
		{[]string{"https://*.example.com"}, false, []string{"https://shop.example.com", "HTTPS://A.EXAMPLE.COM"},
			[]string{"https://example.com.evil.org", "https://evil.example"}},
		{[]string{"*://app.example.com:*"}, false, []string{"http://app.example.com:3000"}, []string{"https://evil.example"}},
		{[]string{"https://app.example.com"}, false, []string{"https://app.example.com"}, []string{"https://app.example.com.evil.org"}},
	} {
		p := NewCORSPolicy(CORSConfig{AllowedOrigins: tc.origins, AllowUnsafeWildcard: true})
		if p.AnyOrigin != tc.any {
			t.Errorf("%q: AnyOrigin %v, want %v", tc.origins, p.AnyOrigin, tc.any)
		}
		for _, o := range tc.allowed {
			if !p.Allows(o) {
				t.Errorf("%q refuses %s", tc.origins, o)
			}
		}
		for _, o := range tc.refused {
			if p.Allows(o) {
				t.Errorf("%q allows %s", tc.origins, o)
			}
		}
	}
}

// originRegexp is how allowed-origin entries were matched before matchOrigin: an anchored,
// case-insensitive regular expression. It is the oracle of the tests below.
func originRegexp(pattern string) (*regexp.Regexp, error) {
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

var originSeeds = []struct{ pattern, origin string }{
	{"https://*.example.com", "https://shop.example.com"},
	{"https://*.example.com", "https://example.com"},
	{"https://*.example.com", "https://a.b.example.com"},
	{"https://*.example.com", "https://example.com.evil.org"},
	{"https://app.example.com/", "https://APP.example.com"},
	{"https://app.example.com", "https://app.example.com/"},
	{"https://a?c.example.com", "https://abc.example.com"},
	{"https://a?c.example.com", "https://ac.example.com"},
	{"https://a?c.example.com", "https://aéc.example.com"},
	{"*://app.example.com:*", "http://app.example.com:3000"},
	{"https://*a*b*", "https://xaybzb"},
	{"https://*a*b", "https://xaybz"},
	{"https://k.example.com", "https://\u212a.example.com"},
	{"https://*.example.com", "https://a\n.example.com"},
	{"https://??", "https://a"},
	{"https://**", "https://"},
}

// TestMatchOrigin checks matchOrigin against the regular expressions it replaced.
func TestMatchOrigin(t *testing.T) {
	for _, s := range originSeeds {
		re, err := originRegexp(s.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := matchOrigin(strings.TrimRight(s.pattern, "/"), s.origin), re.MatchString(s.origin); got != want {
			t.Errorf("matchOrigin(%q, %q) = %v, want %v", s.pattern, s.origin, got, want)
		}
	}
}

func FuzzMatchOrigin(f *testing.F) {
	for _, s := range originSeeds {
		f.Add(s.pattern, s.origin)
	}
	f.Fuzz(func(t *testing.T, pattern, origin string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(origin) || len(pattern) > 64 || len(origin) > 128 {
			return
		}
		re, err := originRegexp(pattern)
		if err != nil {
			return
		}
		if got, want := matchOrigin(strings.TrimRight(pattern, "/"), origin), re.MatchString(origin); got != want {
			t.Errorf("matchOrigin(%q, %q) = %v, want %v", pattern, origin, got, want)
		}
	})
}
