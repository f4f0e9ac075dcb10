package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/tenant"
)

// announcePages prints where the admin console is and, in the embedded mode, the development
// tenant's playground, and returns that tenant's id when its playground is on (GET /playground
// redirects there), else uuid.Nil.
func announcePages(ctx context.Context, cfg Config, tenants *tenant.Service, stdout io.Writer) uuid.UUID {
	var playground uuid.UUID
	if cfg.Embedded() {
		if b, err := os.ReadFile(filepath.Join(cfg.DataDir, devTenantFile)); err == nil {
			var dc devCredentials
			if json.Unmarshal(b, &dc) == nil {
				id, _ := uuid.Parse(dc.TenantID)
				if t, err := tenants.Get(ctx, id); err == nil && t.Config.Playground {
					playground = id
					fmt.Fprintf(stdout, "Passkey playground:  %s/%s/playground\n", strings.TrimRight(cfg.PublicURL, "/"), id)
				}
			}
		}
	}
	fmt.Fprintf(stdout, "Admin console:       %s/console (sign in with an admin token)\n", adminBaseURL(cfg.AdminAddress))
	return playground
}

// adminBaseURL is the URL of the admin port as a browser on this machine reaches it.
func adminBaseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
