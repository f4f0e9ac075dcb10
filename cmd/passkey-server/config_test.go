package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/passkey-server/passkey-server/ratelimit"
)

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicAddress != ":8000" || c.AdminAddress != "127.0.0.1:8001" || c.PublicURL != "http://localhost:8000" || c.DataDir != "./data" || !c.Embedded() || c.DatabaseURL != "sqlite://./data/passkey.db" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.AuditRetention != 90*24*time.Hour {
		t.Fatalf("audit retention %v, want 90 days by default", c.AuditRetention)
	}
	if c, err := loadConfig(map[string]string{"PASSKEY_AUDIT_RETENTION": "0"}); err != nil || c.AuditRetention != 0 {
		t.Fatalf("PASSKEY_AUDIT_RETENTION=0: %v, %v", c.AuditRetention, err)
	}
	if _, err := loadConfig(map[string]string{"PASSKEY_AUDIT_RETENTION": "-1h"}); err == nil || !strings.Contains(err.Error(), "PASSKEY_AUDIT_RETENTION must not be negative") {
		t.Fatalf("negative retention: %v", err)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	_, err := loadConfig(map[string]string{
		"PASSKEY_DATABASE_URL":  "postgres://x@127.0.0.1/db",
		"PASSKEY_REDIS_URL":     "http://redis",
		"PASSKEY_LOG_LEVEL":     "loud",
		"PASSKEY_LOG_FORMAT":    "xml",
		"PASSKEY_ADMIN_ADDRESS": ":8000",
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"PASSKEY_MASTER_KEY is required", "PASSKEY_ADMIN_TOKENS is required", "PASSKEY_REDIS_URL", "PASSKEY_LOG_LEVEL", "PASSKEY_LOG_FORMAT", "must differ"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	_, err = loadConfig(map[string]string{"PASSKEY_MASTER_KEY": "c2hvcnQ=", "PASSKEY_ADMIN_TOKENS": "short"})
	if err == nil || !strings.Contains(err.Error(), "32 bytes") || !strings.Contains(err.Error(), "shorter than 16") {
		t.Fatalf("err = %v", err)
	}
}

// TestConfigRedisURL checks that the three forms of PASSKEY_REDIS_URL are accepted, that a malformed one
// is reported at config time without its password, and that the key prefix carries no hash tag.
func TestConfigRedisURL(t *testing.T) {
	for _, u := range []string{"redis://127.0.0.1:6379/0", "rediss://:pw@redis:6380", "unix:///run/redis.sock?db=1",
		"redis+cluster://10.0.0.1:6379,10.0.0.2:6379", "rediss+cluster://:pw@redis-0:6379/",
		"redis+sentinel://s1:26379,s2:26379/mymaster/0", "redis+sentinel://:pw@s1:26379/mymaster?sentinel_password=x"} {
		if _, err := loadConfig(map[string]string{"PASSKEY_REDIS_URL": u}); err != nil {
			t.Errorf("PASSKEY_REDIS_URL=%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://:s3cr3t@redis", "redis+cluster://:s3cr3t@a:1/3", "redis+sentinel://:s3cr3t@s1:26379"} {
		_, err := loadConfig(map[string]string{"PASSKEY_REDIS_URL": u})
		if err == nil || !strings.Contains(err.Error(), "PASSKEY_REDIS_URL") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("PASSKEY_REDIS_URL=%s: %v; want a PASSKEY_REDIS_URL error without the password", u, err)
		}
	}
	_, err := loadConfig(map[string]string{"PASSKEY_REDIS_PREFIX": "{passkey}:"})
	if err == nil || !strings.Contains(err.Error(), "PASSKEY_REDIS_PREFIX") {
		t.Errorf("PASSKEY_REDIS_PREFIX with a hash tag: %v, want an error", err)
	}
}

// TestRateLimitOverrides checks that per-tenant overrides are keyed by the canonical tenant id whatever
// case the operator wrote, that an omitted dimension keeps the default and "off" switches one off, and
// that a key that is no tenant id is reported.
func TestRateLimitOverrides(t *testing.T) {
	const id = "6F1C2E3A-0B4D-4E5F-8A9B-0C1D2E3F4A5B"
	c, err := loadConfig(map[string]string{"PASSKEY_RATE_LIMIT_OVERRIDES": `{"` + id + `": {"tenant": "10/s", "tenant_public": "20/s", "ip": "off"}}`})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.rateRules()
	if err != nil {
		t.Fatal(err)
	}
	o, ok := rules.Overrides[strings.ToLower(id)]
	if !ok {
		t.Fatalf("override not under the lowercase id: %v", rules.Overrides)
	}
	if o.PerTenantSecret == nil || o.PerTenantSecret.Rate != 10 || o.PerTenantSecret.Period != time.Second {
		t.Errorf("tenant limit %+v, want 10/s", o.PerTenantSecret)
	}
	if o.PerTenantPublic == nil || o.PerTenantPublic.Rate != 20 || o.PerTenantPublic.Period != time.Second {
		t.Errorf("tenant_public limit %+v, want 20/s", o.PerTenantPublic)
	}
	if o.PerIP == nil || !o.PerIP.IsZero() {
		t.Errorf("ip limit %+v, want off (zero)", o.PerIP)
	}
	if o.PerKey != nil {
		t.Errorf("key limit %+v, want the default (nil)", o.PerKey)
	}
	_, err = loadConfig(map[string]string{"PASSKEY_RATE_LIMIT_OVERRIDES": `{"not-a-tenant": {"tenant": "10/s"}, "` + id + `": {"key": "often"}}`})
	if err == nil || !strings.Contains(err.Error(), `"not-a-tenant" is not a tenant id`) || !strings.Contains(err.Error(), "often") {
		t.Fatalf("err = %v", err)
	}
	// A misspelt dimension is refused, not silently left at its default.
	_, err = loadConfig(map[string]string{"PASSKEY_RATE_LIMIT_OVERRIDES": `{"` + id + `": {"tenant-public": "10/s"}}`})
	if err == nil || !strings.Contains(err.Error(), "PASSKEY_RATE_LIMIT_OVERRIDES") {
		t.Fatalf("misspelt dimension: err = %v", err)
	}
}

// TestRateLimitDefaults checks the two tenant buckets and the IPv6 grouping: both buckets default to
// 6000/m, each has its own variable, and the IPv6 prefix defaults to 64 and must be 16..128.
func TestRateLimitDefaults(t *testing.T) {
	c, err := loadConfig(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.rateRules()
	if err != nil {
		t.Fatal(err)
	}
	if rules.PerTenantSecret != ratelimit.PerMinute(6000) || rules.PerTenantPublic != ratelimit.PerMinute(6000) || rules.IPv6Prefix != 64 {
		t.Errorf("defaults %+v", rules)
	}
	c, err = loadConfig(map[string]string{"PASSKEY_RATE_LIMIT_TENANT": "off", "PASSKEY_RATE_LIMIT_TENANT_PUBLIC": "5/s", "PASSKEY_RATE_LIMIT_IPV6_PREFIX": "48"})
	if err != nil {
		t.Fatal(err)
	}
	if rules, _ = c.rateRules(); !rules.PerTenantSecret.IsZero() || rules.PerTenantPublic != ratelimit.PerSecond(5) || rules.IPv6Prefix != 48 {
		t.Errorf("set %+v", rules)
	}
	for value, ok := range map[string]bool{"16": true, "128": true, "15": false, "129": false, "0": false} {
		_, err := loadConfig(map[string]string{"PASSKEY_RATE_LIMIT_IPV6_PREFIX": value})
		if ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "PASSKEY_RATE_LIMIT_IPV6_PREFIX") {
			t.Errorf("prefix %s: err = %v", value, err)
		}
	}
	if _, err := loadConfig(map[string]string{"PASSKEY_RATE_LIMIT_TENANT_PUBLIC": "often"}); err == nil || !strings.Contains(err.Error(), "PASSKEY_RATE_LIMIT_TENANT_PUBLIC") {
		t.Errorf("bad public limit: err = %v", err)
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--help"}, &out, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, v := range []string{"PASSKEY_PUBLIC_ADDRESS", "PASSKEY_ADMIN_ADDRESS", "PASSKEY_DATA_DIR", "PASSKEY_DATABASE_URL", "PASSKEY_REDIS_URL",
		"PASSKEY_MASTER_KEY", "PASSKEY_ADMIN_TOKENS", "PASSKEY_PUBLIC_URL", "PASSKEY_LOG_LEVEL", "PASSKEY_LOG_FORMAT",
		"PASSKEY_RATE_LIMIT_TENANT_PUBLIC", "PASSKEY_RATE_LIMIT_IPV6_PREFIX", "migrate"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("help lacks %s", v)
		}
	}
}

// TestReadmeListsEveryVariable keeps the README's configuration table in step with Config.
func TestReadmeListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var help bytes.Buffer
	writeConfigHelp(&help)
	for _, line := range strings.Split(help.String(), "\n")[1:] {
		name, _, _ := strings.Cut(line, " ")
		if name != "" && !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("README.md does not document %s", name)
		}
	}
}

// TestSigningKeyActivation: the activation delay defaults to 2 minutes, may be 0 (sign at once), and
// is refused when it does not exceed the JWKS cache age plus the cache refresh (a key would sign before
// some cache knows it).
func TestSigningKeyActivation(t *testing.T) {
	c, err := loadConfig(map[string]string{})
	if err != nil || c.KeyActivation != 2*time.Minute {
		t.Fatalf("default activation %v, %v", c.KeyActivation, err)
	}
	for value, ok := range map[string]bool{"0": true, "63s": true, "62s": false, "30s": false, "-1s": false, "25h": false} {
		_, err := loadConfig(map[string]string{"PASSKEY_SIGNING_KEY_ACTIVATION": value})
		if ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "PASSKEY_SIGNING_KEY_ACTIVATION") {
			t.Errorf("PASSKEY_SIGNING_KEY_ACTIVATION=%s: %v", value, err)
		}
	}
}

// TestTenantCacheSize: the tenant cache holds 10,000 tenants by default, and a size that would make
// every tenant a reload, or no bound at all, is refused.
func TestTenantCacheSize(t *testing.T) {
	c, err := loadConfig(map[string]string{})
	if err != nil || c.TenantCache != 10_000 {
		t.Fatalf("default tenant cache size %d, %v", c.TenantCache, err)
	}
	for value, ok := range map[string]bool{"100": true, "100000": true, "99": false, "0": false, "-1": false, "10000001": false} {
		_, err := loadConfig(map[string]string{"PASSKEY_TENANT_CACHE_SIZE": value})
		if ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "PASSKEY_TENANT_CACHE_SIZE") {
			t.Errorf("PASSKEY_TENANT_CACHE_SIZE=%s: %v", value, err)
		}
	}
}
