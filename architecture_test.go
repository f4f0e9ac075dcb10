package passkey_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDomainKnowsNoHTTP keeps the layout of README.md's "Architecture": the domain packages hold rules
// and services and serve no HTTP (no Fiber, no fasthttp; an outbound client is fine), nor do they know
// the transport or the stores: only httpapi serves HTTP and only db talks to the databases.
func TestDomainKnowsNoHTTP(t *testing.T) {
	const module = "github.com/passkey-server/passkey-server"
	domain := []string{"", "/tenant", "/signing", "/credentials", "/mfa", "/transactions", "/audit"}
	forbidden := []string{"github.com/gofiber/", "github.com/valyala/fasthttp", module + "/httpapi", module + "/db",
		"github.com/uptrace/bun", "github.com/redis/go-redis"}
	for _, pkg := range domain {
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
