package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestAdminCLI drives the tenant CLI against a real server on loopback, as an operator would: the admin
// token found in the embedded data dir, tables by default, the API's JSON with --json.
func TestAdminCLI(t *testing.T) {
	dir := t.TempDir()
	cfg, _, stop := startServer(t, map[string]string{"PASSKEY_DATA_DIR": dir})
	defer stop()
	// The admin URL from the server's own listen address, as beside a server started with it.
	environ := map[string]string{"PASSKEY_ADMIN_ADDRESS": cfg.AdminAddress, "PASSKEY_DATA_DIR": dir}
	cli := func(wantCode int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := runCLI(context.Background(), args, environ, &out, &errOut); code != wantCode {
			t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, wantCode, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}

	out := cli(0, "tenants", "create", "--name", "Shop", "--rp-id", "shop.example.com", "--origin", "https://shop.example.com", "--api-key")
	id := uuidRe.FindString(out)
	if id == "" || !regexp.MustCompile(`secret API key \(shown once\): sk_\S+`).MatchString(out) {
		t.Fatalf("create printed:\n%s", out)
	}
	if out := cli(0, "tenants", "list"); !strings.HasPrefix(out, "ID") || !strings.Contains(out, id+"  Shop") || !strings.Contains(out, "Development") {
		t.Fatalf("list printed:\n%s", out)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(cli(0, "tenants", "list", "--json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("list --json: %v %v", list, err)
	}
	if out := cli(0, "tenants", "show", id); !strings.Contains(out, "name:     Shop") || !strings.Contains(out, `"timeout": 300000`) {
		t.Fatalf("show printed:\n%s", out)
	}

	out = cli(0, "keys", "create", id, "--name", "browser", "--publishable", "--expires", "2099-01-01T00:00:00Z")
	keyID := uuidRe.FindString(out)
	if !strings.Contains(out, "created publishable API key") || !strings.Contains(out, "pk_") {
		t.Fatalf("keys create printed:\n%s", out)
	}
	out = cli(0, "keys", "list", id)
	if !strings.Contains(out, keyID) || !strings.Contains(out, "2099-01-01T00:00:00Z") {
		t.Fatalf("keys list printed:\n%s", out)
	}
	if out := cli(0, "keys", "revoke", id, keyID); !strings.Contains(out, "revoked API key "+keyID) {
		t.Fatalf("keys revoke printed:\n%s", out)
	}
	if out := cli(0, "keys", "list", id, "--json"); strings.Contains(out, keyID) {
		t.Fatalf("revoked key still listed:\n%s", out)
	}

	out = cli(0, "signing-keys", "rotate", id, "--overlap", "1h")
	if !strings.HasPrefix(out, "KID") || strings.Count(out, "\n") != 2 {
		t.Fatalf("rotate printed:\n%s", out)
	}
	if out := cli(0, "signing-keys", "list", "--json", id); strings.Count(out, `"active"`) != 2 {
		t.Fatalf("signing-keys list --json printed:\n%s", out)
	}

	// Refusals: the API's title, code and details; usage errors exit 2.
	if out := cli(1, "tenants", "create", "--name", "Bad", "--rp-id", "https://bad", "--origin", "https://bad"); !strings.Contains(out, "unable to create tenant (400 invalid_config)") {
		t.Fatalf("refused create printed:\n%s", out)
	}
	cli(2, "tenants", "show")
	cli(2, "tenants", "frob")
	cli(0, "tenants", "delete", id)
	if out := cli(1, "tenants", "show", id); !strings.Contains(out, "tenant_not_found") {
		t.Fatalf("show after delete printed:\n%s", out)
	}
	environ["PASSKEY_ADMIN_TOKEN"] = "wrong-token-0123456789"
	if out := cli(1, "tenants", "list"); !strings.Contains(out, "401 admin_unauthorized") {
		t.Fatalf("wrong token printed:\n%s", out)
	}
}
