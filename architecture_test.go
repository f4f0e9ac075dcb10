package passkey_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDomainKnowsNoHTTP keeps the layout of README.md's "Architecture": the domain packages hold rules
// and services and serve no HTTP (no Fiber, no fasthttp; an outbound client is fine), nor do they know
// the transport or the stores: only httpapi serves HTTP and only db talks to the databases. The
// libraries the transport uses (metrics, rate limits) know no HTTP framework either.
func TestDomainKnowsNoHTTP(t *testing.T) {
	const module = "github.com/passkey-server/passkey-server"
	http := []string{"github.com/gofiber/", "github.com/valyala/fasthttp", module + "/httpapi"}
	stores := []string{module + "/db", "github.com/uptrace/bun", "github.com/redis/go-redis"}
	rules := map[string][]string{
		// The domain: neither HTTP nor a store.
		"": append(http, stores...), "/tenant": append(http, stores...), "/signing": append(http, stores...),
		"/credentials": append(http, stores...), "/mfa": append(http, stores...),
		"/transactions": append(http, stores...), "/audit": append(http, stores...),
		"/attestation": append(http, stores...), "/archive": append(http, stores...),
		// Libraries the transport uses: no HTTP framework (the rate limiter keeps its counters in Redis).
		"/metrics": http, "/ratelimit": http,
	}
	for pkg, forbidden := range rules {
		out, err := exec.Command("go", "list", "-deps", module+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", module+pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f) && (strings.HasSuffix(f, "/") || strings.HasPrefix(dep, f+"/")) {
					t.Errorf("%s depends on %s", module+pkg, dep)
				}
			}
		}
	}
}
