package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passkey-server/passkey-server/db/dbtest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs the real serve function with cfg until the returned stop is called.
func startServer(t *testing.T, environ map[string]string) (cfg Config, out *syncBuffer, stop func()) {
	t.Helper()
	environ["PASSKEY_PUBLIC_ADDRESS"] = freeAddr(t)
	environ["PASSKEY_ADMIN_ADDRESS"] = freeAddr(t)
	if _, ok := environ["PASSKEY_SHUTDOWN_DRAIN"]; !ok {
		environ["PASSKEY_SHUTDOWN_DRAIN"] = "0"
	}
	cfg, err := loadConfig(environ)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, discardLog(), out) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + cfg.AdminAddress + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("server stopped: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cfg, out, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	}
}

func httpDo(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const tenantBody = `{"display_name":"Second","create_api_key":true,"config":{"cors":{"allowed_origins":["https://shop.example.com"]},
 "webauthn":{"relying_party":{"id":"shop.example.com","display_name":"Shop","origins":["https://shop.example.com"]},"timeout":60000}}}`

var uuidRe = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// TestEmbeddedFirstAndSecondStart is what a newcomer does: start with no configuration, use the printed
// admin token, restart, and find everything as it was.
func TestEmbeddedFirstAndSecondStart(t *testing.T) {
	dir := t.TempDir()
	cfg, out, stop := startServer(t, map[string]string{"PASSKEY_DATA_DIR": dir})
	first := out.String()
	token := regexp.MustCompile(`admin token:\s+(adm_\S+)`).FindStringSubmatch(first)
	secret := regexp.MustCompile(`secret API key:\s+(sk_\S+)`).FindStringSubmatch(first)
	devID := uuidRe.FindString(first)
	if token == nil || secret == nil || devID == "" || !strings.Contains(first, "pk_") {
		t.Fatalf("first start printed:\n%s", first)
	}
	for _, f := range []string{"passkey.db", "master.key", "admin-token", "dev-tenant.json"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if f != "passkey.db" && st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", f, st.Mode().Perm())
		}
	}
	admin, public := "http://"+cfg.AdminAddress, "http://"+cfg.PublicAddress
	if st, _ := httpDo(t, "POST", admin+"/tenants", "", tenantBody); st != 401 {
		t.Fatalf("create without token: %d", st)
	}
	st, body := httpDo(t, "POST", admin+"/tenants", token[1], tenantBody)
	if st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	second := uuidRe.FindString(body)
	_, jwksBefore := httpDo(t, "GET", public+"/"+second+"/.well-known/jwks.json", "", "")
	_, devJWKSBefore := httpDo(t, "GET", public+"/"+devID+"/.well-known/jwks.json", "", "")
	stop()

	cfg, out, stop = startServer(t, map[string]string{"PASSKEY_DATA_DIR": dir})
	again := out.String()
	if strings.Contains(again, secret[1]) || strings.Contains(again, token[1]) || !strings.Contains(again, devID) || !strings.Contains(again, dir) {
		t.Fatalf("second start printed:\n%s", again)
	}
	admin, public = "http://"+cfg.AdminAddress, "http://"+cfg.PublicAddress
	st, body = httpDo(t, "GET", admin+"/tenants", token[1], "")
	if st != 200 || !strings.Contains(body, second) || !strings.Contains(body, devID) {
		t.Fatalf("tenants after restart: %d %s", st, body)
	}
	if _, after := httpDo(t, "GET", public+"/"+second+"/.well-known/jwks.json", "", ""); after != jwksBefore {
		t.Fatalf("JWKS changed across restart:\n%s\n%s", jwksBefore, after)
	}
	if _, after := httpDo(t, "GET", public+"/"+devID+"/.well-known/jwks.json", "", ""); after != devJWKSBefore {
		t.Fatal("development tenant's JWKS changed across restart")
	}
	var printed bytes.Buffer
	t.Setenv("PASSKEY_DATA_DIR", dir)
	if code := run([]string{"dev-credentials"}, &printed, &printed); code != 0 || !strings.Contains(printed.String(), secret[1]) || !strings.Contains(printed.String(), token[1]) {
		t.Fatalf("dev-credentials: exit %d\n%s", code, printed.String())
	}
	stop()

	// A replaced database: the remembered development tenant is gone, so a new one is made and printed.
	if err := os.Remove(filepath.Join(dir, "passkey.db")); err != nil {
		t.Fatal(err)
	}
	_, out, stop = startServer(t, map[string]string{"PASSKEY_DATA_DIR": dir})
	defer stop()
	third := out.String()
	if !strings.Contains(third, "no longer exists") || !strings.Contains(third, "sk_") || strings.Contains(third, secret[1]) {
		t.Fatalf("start on a new database printed:\n%s", third)
	}
}

// TestEmbeddedWithOperatorAdminToken: an admin token the operator set is theirs: the first start and
// dev-credentials never echo it, and it is the one that works.
func TestEmbeddedWithOperatorAdminToken(t *testing.T) {
	dir := t.TempDir()
	token := "operator-token-0123456789abcdef"
	cfg, out, stop := startServer(t, map[string]string{"PASSKEY_DATA_DIR": dir, "PASSKEY_ADMIN_TOKENS": token})
	defer stop()
	first := out.String()
	if strings.Contains(first, token) || !strings.Contains(first, "PASSKEY_ADMIN_TOKENS") || !strings.Contains(first, "sk_") {
		t.Fatalf("first start printed:\n%s", first)
	}
	if _, err := os.Stat(filepath.Join(dir, "admin-token")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an admin token was generated beside the operator's: %v", err)
	}
	if st, body := httpDo(t, "GET", "http://"+cfg.AdminAddress+"/tenants", token, ""); st != 200 {
		t.Fatalf("operator token: %d %s", st, body)
	}
	var printed bytes.Buffer
	if err := printDevCredentials(cfg, &printed); err != nil || strings.Contains(printed.String(), token) || !strings.Contains(printed.String(), "sk_") {
		t.Fatalf("dev-credentials: %v\n%s", err, printed.String())
	}
}

// TestProductionStart runs the server on PostgreSQL and Redis with explicit secrets, restarts it, and
// checks that tenants and kids survive.
func TestProductionStart(t *testing.T) {
	dbURL := dbtest.PostgresURL(t)
	token := "prod-admin-token-abcdefghijkl"
	environ := map[string]string{
		"PASSKEY_DATABASE_URL": dbURL,
		"PASSKEY_REDIS_URL":    dbtest.RedisURL(),
		"PASSKEY_REDIS_PREFIX": fmt.Sprintf("passkeytest:%d:", time.Now().UnixNano()),
		"PASSKEY_MASTER_KEY":   base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"PASSKEY_ADMIN_TOKENS": "other-token-0123456789," + token,
		"PASSKEY_DATA_DIR":     t.TempDir(),
	}
	copyEnv := func() map[string]string {
		m := map[string]string{}
		for k, v := range environ {
			m[k] = v
		}
		return m
	}
	cfg, out, stop := startServer(t, copyEnv())
	if strings.Contains(out.String(), "sk_") {
		t.Fatalf("production start made a development tenant:\n%s", out.String())
	}
	admin, public := "http://"+cfg.AdminAddress, "http://"+cfg.PublicAddress
	st, body := httpDo(t, "POST", admin+"/tenants", token, tenantBody)
	if st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	id := uuidRe.FindString(body)
	_, jwks := httpDo(t, "GET", public+"/"+id+"/.well-known/jwks.json", "", "")
	if st, body := httpDo(t, "GET", admin+"/health/ready", "", ""); st != 200 || !strings.Contains(body, "true") {
		t.Fatalf("ready: %d %s", st, body)
	}
	if err := healthcheck(context.Background(), cfg); err != nil {
		t.Fatalf("healthcheck subcommand: %v", err)
	}
	stop()
	if err := healthcheck(context.Background(), cfg); err == nil {
		t.Fatal("healthcheck passes with the server stopped")
	}

	cfg, _, stop = startServer(t, copyEnv())
	defer stop()
	if _, again := httpDo(t, "GET", "http://"+cfg.PublicAddress+"/"+id+"/.well-known/jwks.json", "", ""); again != jwks {
		t.Fatalf("JWKS changed across restart")
	}
}
