package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
)

// TestDefaultsFollowPublicAddress: changing PASSKEY_PUBLIC_ADDRESS alone moves the public URL (tokens'
// iss) and the embedded admin port stays on loopback unless set.
func TestDefaultsFollowPublicAddress(t *testing.T) {
	for _, c := range []struct{ addr, url string }{
		{":8000", "http://localhost:8000"},
		{":9100", "http://localhost:9100"},
		{"127.0.0.1:9100", "http://localhost:9100"},
		{"[::]:9100", "http://localhost:9100"},
		{"passkeys.test:9100", "http://passkeys.test:9100"},
		{"192.0.2.7:9100", "http://192.0.2.7:9100"},
	} {
		cfg, err := loadConfig(map[string]string{"PASSKEY_PUBLIC_ADDRESS": c.addr})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.PublicURL != c.url {
			t.Errorf("PASSKEY_PUBLIC_ADDRESS=%s: public URL %s, want %s", c.addr, cfg.PublicURL, c.url)
		}
	}
	cfg, _ := loadConfig(map[string]string{"PASSKEY_PUBLIC_ADDRESS": ":9100", "PASSKEY_PUBLIC_URL": "https://id.example.com"})
	if cfg.PublicURL != "https://id.example.com" {
		t.Errorf("an explicit PASSKEY_PUBLIC_URL was replaced: %s", cfg.PublicURL)
	}
	if cfg.AdminAddress != "127.0.0.1:8001" {
		t.Errorf("embedded admin address %q, want loopback", cfg.AdminAddress)
	}
	pg := map[string]string{"PASSKEY_DATABASE_URL": "postgres://x@127.0.0.1/db", "PASSKEY_MASTER_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"PASSKEY_ADMIN_TOKENS": "0123456789abcdef0"}
	if cfg, err := loadConfig(pg); err != nil || cfg.AdminAddress != ":8001" {
		t.Errorf("production admin address %q (%v), want :8001", cfg.AdminAddress, err)
	}
	rpID, origins := devRelyingParty("http://192.0.2.7:9100")
	if rpID != "localhost" || len(origins) != 2 {
		t.Errorf("an IP public URL gave RP ID %s, origins %v", rpID, origins)
	}
}

// TestFirstRunOnAnotherPort is a newcomer whose port 8000 is taken: they set PASSKEY_PUBLIC_ADDRESS
// only, and the development tenant's origins and the tokens' iss follow it.
func TestFirstRunOnAnotherPort(t *testing.T) {
	dir := t.TempDir()
	cfg, out, stop := startServer(t, map[string]string{"PASSKEY_DATA_DIR": dir})
	defer stop()
	_, port, _ := net.SplitHostPort(cfg.PublicAddress)
	origin := "http://localhost:" + port
	if !strings.Contains(out.String(), "origins "+origin+" and http://localhost:3000") {
		t.Fatalf("first start printed:\n%s", out.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, devTenantFile))
	if err != nil {
		t.Fatal(err)
	}
	var dc devCredentials
	if err := json.Unmarshal(b, &dc); err != nil {
		t.Fatal(err)
	}
	public := "http://" + cfg.PublicAddress + "/" + dc.TenantID
	a := authenticatortest.New(authenticatortest.Options{})
	st, options := httpDoKey(t, "POST", public+"/registration/initialize", dc.SecretKey, `{"user_id":"user-1","username":"alice@example.com"}`)
	if st != 200 {
		t.Fatalf("registration initialize: %d %s", st, options)
	}
	att, err := a.Create([]byte(options), origin)
	if err != nil {
		t.Fatal(err)
	}
	st, body := httpDoKey(t, "POST", public+"/registration/finalize", dc.PublishableKey, string(att))
	if st != 200 {
		t.Fatalf("registration finalize from %s: %d %s", origin, st, body)
	}
	var tok struct{ Token string }
	_ = json.Unmarshal([]byte(body), &tok)
	parts := strings.Split(tok.Token, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if want := `"iss":"` + origin + "/" + dc.TenantID + `"`; !bytes.Contains(claims, []byte(want)) {
		t.Fatalf("token claims %s lack %s", claims, want)
	}
}

// TestBindErrorComesFirst: a taken port fails the start with the variable to change, before anything
// is printed or a development tenant is made.
func TestBindErrorComesFirst(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	cfg, err := loadConfig(map[string]string{"PASSKEY_DATA_DIR": dir, "PASSKEY_PUBLIC_ADDRESS": taken.Addr().String(), "PASSKEY_ADMIN_ADDRESS": freeAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	var out, logs bytes.Buffer
	err = serve(context.Background(), cfg, newTextLogger(&logs), &out)
	if err == nil || !strings.Contains(err.Error(), "PASSKEY_PUBLIC_ADDRESS") {
		t.Fatalf("serve on a taken port: %v", err)
	}
	if out.Len() > 0 || strings.Contains(logs.String(), "listening") {
		t.Fatalf("printed before the bind error:\n%s%s", out.String(), logs.String())
	}
	if _, err := os.Stat(filepath.Join(dir, devTenantFile)); err == nil {
		t.Fatal("a development tenant was made before the bind error")
	}
}

// httpDoKey is httpDo with an API key in Hanko's apiKey header.
func httpDoKey(t *testing.T, method, url, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("apiKey", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
