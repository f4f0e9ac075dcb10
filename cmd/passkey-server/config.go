package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/attestation"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/ratelimit"
)

// envPrefix is the prefix of every environment variable the server reads.
const envPrefix = "PASSKEY_"

// Config is the whole configuration, read from the environment only. The help tag documents each
// variable in --help and is the source of the README's table.
type Config struct {
	PublicAddress   string        `env:"PUBLIC_ADDRESS" envDefault:":8000" help:"Listen address of the public API."`
	AdminAddress    string        `env:"ADMIN_ADDRESS" helpDefault:":8001" help:"Listen address of the admin API, /metrics and health checks. Default :8001, and 127.0.0.1:8001 in the embedded mode (SQLite), whose generated admin token is printed and kept in a file."`
	DataDir         string        `env:"DATA_DIR" envDefault:"./data" help:"Directory for the embedded SQLite database and generated secrets."`
	DatabaseURL     string        `env:"DATABASE_URL" help:"postgres://user:pass@host:5432/db?sslmode=... or sqlite://path/file.db. Default: SQLite in the data dir."`
	RedisURL        string        `env:"REDIS_URL" help:"Redis for ceremony sessions and rate limits: redis://host:6379/0, redis+cluster://host1:6379,host2:6379 (Redis Cluster) or redis+sentinel://host1:26379,host2:26379/mymaster/0 (Sentinel); rediss… for TLS. Empty: an in-process store (one instance only)."`
	RedisPrefix     string        `env:"REDIS_PREFIX" envDefault:"passkey:" help:"Prefix of every Redis key this server writes."`
	MasterKey       string        `env:"MASTER_KEY" help:"32 random bytes, base64 (openssl rand -base64 32); encrypts signing keys at rest. Required with Postgres; generated into the data dir with SQLite."`
	MasterKeyFile   string        `env:"MASTER_KEY_FILE,file" help:"Path of a file holding the master key (for mounted secrets); used when PASSKEY_MASTER_KEY is empty."`
	AdminTokens     []string      `env:"ADMIN_TOKENS" envSeparator:"," help:"Comma-separated bearer tokens of the admin API (16+ characters each). Required with Postgres; generated into the data dir with SQLite."`
	AdminTokensFile string        `env:"ADMIN_TOKENS_FILE,file" help:"Path of a file holding the admin tokens, comma- or newline-separated; used when PASSKEY_ADMIN_TOKENS is empty."`
	AAGUIDFile      string        `env:"AAGUID_FILE" help:"JSON file {aaguid: {name, icon_light, icon_dark}} replacing the embedded table of authenticator names."`
	TrustedProxies  []string      `env:"TRUSTED_PROXIES" envSeparator:"," help:"Comma-separated proxy addresses or CIDRs whose X-Forwarded-For names the client (audit logs, rate limits). Empty: the peer address is the client."`
	RateTenant      string        `env:"RATE_LIMIT_TENANT" envDefault:"6000/m" help:"Public API requests per tenant made with a valid secret key (the application's servers), as N/period (10/s, 600/m, 5000/h); off disables."`
	RatePublic      string        `env:"RATE_LIMIT_TENANT_PUBLIC" envDefault:"6000/m" help:"Public API requests per tenant without a valid secret key (browsers, publishable keys, wrong keys), all clients together; off disables. Never counts against PASSKEY_RATE_LIMIT_TENANT."`
	RateIP          string        `env:"RATE_LIMIT_IP" envDefault:"600/m" help:"Public requests per client address and tenant (without a valid secret key); off disables."`
	RateIPv6Prefix  int           `env:"RATE_LIMIT_IPV6_PREFIX" envDefault:"64" help:"Leading bits of an IPv6 client address that name one client in the per-address limits (16 to 128; 128 is the whole address). IPv4 addresses count one by one."`
	RateKey         string        `env:"RATE_LIMIT_KEY" envDefault:"6000/m" help:"Public requests per API key; off disables."`
	RateOverrides   string        `env:"RATE_LIMIT_OVERRIDES" help:"Per-tenant limits as JSON: {\"<tenant id>\": {\"tenant\": \"60000/m\", \"tenant_public\": \"60000/m\", \"ip\": \"6000/m\", \"key\": \"60000/m\"}}."`
	AuditRetention  time.Duration `env:"AUDIT_RETENTION" envDefault:"2160h" help:"How long audit events are kept (2160h = 90 days); older ones are deleted hourly. 0 keeps them forever."`
	PublicURL       string        `env:"PUBLIC_URL" helpDefault:"http://localhost:8000" help:"Public base URL of this service; tokens carry iss = PUBLIC_URL/{tenant_id}, and the public API's pagination links start with it. Default: http://localhost:<port of PASSKEY_PUBLIC_ADDRESS> (its host when that names one that is not a loopback or wildcard address)."`
	LogLevel        string        `env:"LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error."`
	LogFormat       string        `env:"LOG_FORMAT" envDefault:"json" help:"json or text."`
	BodyLimit       int           `env:"BODY_LIMIT" envDefault:"131072" help:"Largest accepted request body in bytes; larger bodies get 413."`
	KeyOverlap      time.Duration `env:"SIGNING_KEY_OVERLAP" envDefault:"24h" help:"How long a rotated-out signing key stays in the JWKS after it stops signing."`
	KeyActivation   time.Duration `env:"SIGNING_KEY_ACTIVATION" envDefault:"2m" help:"How long a rotated-in signing key is published in the JWKS before it signs: more than the JWKS cache age (60s) plus PASSKEY_CACHE_REFRESH, so every instance and cache knows it first; 0 signs at once (one instance only)."`
	CacheRefresh    time.Duration `env:"CACHE_REFRESH" envDefault:"2s" help:"How often an instance checks for tenant changes made elsewhere."`
	TenantCache     int           `env:"TENANT_CACHE_SIZE" envDefault:"10000" help:"Most tenants an instance keeps resolved in memory (about 4 KiB of heap each once used, keys decrypted); the least used beyond them are dropped and loaded again (three queries, about a millisecond) when they return."`
	ShutdownGrace   time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s" help:"How long in-flight requests may run after the listeners close on SIGTERM."`
	ShutdownDrain   time.Duration `env:"SHUTDOWN_DRAIN" envDefault:"5s" help:"How long /health/ready answers 503 after SIGTERM while requests are still served, before the listeners close (longer than the load balancer's health-check interval); 0 closes at once."`
	ReadTimeout     time.Duration `env:"READ_TIMEOUT" envDefault:"10s" help:"Longest time to receive a whole request, headers and body; a slower client is disconnected (at PASSKEY_BODY_LIMIT this asks about 13 KiB/s)."`
	MaxConnsPerIP   int           `env:"MAX_CONNS_PER_IP" envDefault:"0" help:"Most open connections from one peer address on each port; 0: no cap (behind a load balancer every connection comes from it)."`

	RequestTimeout   time.Duration `env:"REQUEST_TIMEOUT" envDefault:"5s" help:"Deadline of each request: a store call still running then ends, and the request gets 503 service_unavailable."`
	DBConnectTimeout time.Duration `env:"DATABASE_CONNECT_TIMEOUT" envDefault:"3s" help:"Longest time to open one PostgreSQL connection (connect_timeout in the URL takes precedence)."`
	DBStatement      time.Duration `env:"DATABASE_STATEMENT_TIMEOUT" envDefault:"5s" help:"PostgreSQL statement_timeout of this server's connections."`
	DBCallTimeout    time.Duration `env:"DATABASE_TIMEOUT" envDefault:"5s" help:"Longest time of one database call, waiting for a pool connection included."`
	RedisTimeout     time.Duration `env:"REDIS_TIMEOUT" envDefault:"1s" help:"Longest time of one Redis session command, waiting for a pool connection included; session commands are never retried."`
	StartupTimeout   time.Duration `env:"STARTUP_TIMEOUT" envDefault:"30s" help:"How long the start retries a database or Redis that does not answer (with backoff, each attempt logged) before it gives up."`

	// Webhooks (issue 15).
	WebhookAllowPrivate *bool         `env:"WEBHOOK_ALLOW_PRIVATE" help:"Let webhook deliveries connect to private, loopback and link-local addresses (checked on the resolved address of every connection). Default: on with SQLite (the embedded dev mode), off otherwise."`
	WebhookRetention    time.Duration `env:"WEBHOOK_RETENTION" envDefault:"720h" help:"How long finished webhook deliveries (with their payloads) are kept after their last attempt (720h = 30 days); older ones are deleted hourly. 0 keeps them forever."`
	WebhookAllowHTTP    *bool         `env:"WEBHOOK_ALLOW_HTTP" help:"Accept http:// webhook URLs (https only otherwise). Default: on with SQLite (the embedded dev mode), off otherwise."`
	WebhookTimeout      time.Duration `env:"WEBHOOK_TIMEOUT" envDefault:"10s" help:"Longest time of one webhook attempt: connecting, sending and reading the answer (1s to 5m)."`
	WebhookRescueAfter  time.Duration `env:"WEBHOOK_RESCUE_AFTER" helpDefault:"timeout + 75s" help:"How long an attempt whose instance died (killed, lost) holds its delivery before the queue's leader schedules it again for any instance (checked every 30s); more than PASSKEY_WEBHOOK_TIMEOUT + 15s, or a slow attempt of a live instance is sent twice. Default: PASSKEY_WEBHOOK_TIMEOUT + 75s (85s)."`
	MDSFile             string        `env:"MDS_FILE" help:"Path of a FIDO Metadata Service (MDS3) blob, the JWT from https://mds3.fidoalliance.org/ (for air-gapped installs: replace the file, it is read again at each refresh). Empty: none."`
	MDSURL              string        `env:"MDS_URL" help:"URL to fetch the MDS3 blob from, e.g. https://mds3.fidoalliance.org/. Empty (default): not fetched. With PASSKEY_MDS_FILE too, the newer blob wins."`
	MDSRoot             string        `env:"MDS_ROOT_FILE,file" help:"Path of the trust anchor of the blob's signing chain, PEM or base64 DER. Empty: the FIDO Alliance's root (GlobalSign Root R46)."`
	MDSMaxAge           time.Duration `env:"MDS_MAX_AGE" envDefault:"24h" help:"Longest time between two refreshes of a current blob; a refresh happens at the blob's nextUpdate or after this, whichever comes first."`
	MDSRetry            time.Duration `env:"MDS_RETRY" envDefault:"1h" help:"Wait after a failed refresh (the previous blob stays in use)."`
}

// loadConfig reads the environment (lookup is os.Getenv-like, given for tests) and validates it,
// reporting every problem at once.
func loadConfig(environ map[string]string) (Config, error) {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: envPrefix, Environment: environ}); err != nil {
		return c, err
	}
	if c.MasterKey == "" {
		c.MasterKey = strings.TrimSpace(c.MasterKeyFile)
	}
	if len(c.AdminTokens) == 0 && c.AdminTokensFile != "" {
		c.AdminTokens = strings.FieldsFunc(c.AdminTokensFile, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	}
	for i, t := range c.AdminTokens {
		c.AdminTokens[i] = strings.TrimSpace(t)
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite://" + strings.TrimRight(c.DataDir, "/") + "/passkey.db"
	}
	if c.AdminAddress == "" {
		// The embedded mode is a developer's machine: its admin API, whose token sits in a file, is not
		// for the network unless the operator says so.
		c.AdminAddress = ":8001"
		if c.Embedded() {
			c.AdminAddress = "127.0.0.1:8001"
		}
	}
	if c.PublicURL == "" {
		c.PublicURL = publicURLFor(c.PublicAddress)
	}
	return c, c.Validate()
}

// publicURLFor is the default PASSKEY_PUBLIC_URL of a listen address: what a browser on this machine
// opens, so that tokens' iss and the development tenant's origins follow PASSKEY_PUBLIC_ADDRESS. A
// loopback or wildcard host is localhost (a WebAuthn RP ID cannot be an IP address); an address that
// is not host:port is left for Validate to report.
func publicURLFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://localhost:8000"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// webhookSettings returns the webhook settings of the configuration: both allowances default to on in
// the embedded dev mode, where receivers run on the developer's machine, and off otherwise.
func (c Config) webhookSettings() webhookSettings {
	or := func(v *bool) bool {
		if v == nil {
			return c.Embedded()
		}
		return *v
	}
	return webhookSettings{AllowPrivate: or(c.WebhookAllowPrivate), AllowHTTP: or(c.WebhookAllowHTTP),
		Timeout: c.WebhookTimeout, RescueAfter: c.WebhookRescueAfter}
}

// Embedded reports whether the server runs on SQLite, where missing secrets are generated into the
// data dir and a development tenant is made.
func (c Config) Embedded() bool { return strings.HasPrefix(c.DatabaseURL, "sqlite:") }

// Validate reports every configuration problem at once.
func (c Config) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for name, addr := range map[string]string{"PASSKEY_PUBLIC_ADDRESS": c.PublicAddress, "PASSKEY_ADMIN_ADDRESS": c.AdminAddress} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			add("%s %q is not a host:port listen address", name, addr)
		}
	}
	if c.PublicAddress == c.AdminAddress {
		add("PASSKEY_PUBLIC_ADDRESS and PASSKEY_ADMIN_ADDRESS must differ")
	}
	switch u, err := url.Parse(c.DatabaseURL); {
	case err != nil:
		add("PASSKEY_DATABASE_URL is not a URL")
	case u.Scheme != "postgres" && u.Scheme != "postgresql" && u.Scheme != "sqlite":
		add("PASSKEY_DATABASE_URL must start with postgres:// or sqlite://")
	}
	if c.RedisURL != "" {
		if err := db.CheckRedisURL(c.RedisURL); err != nil {
			// The error never repeats the URL, which may hold a password.
			add("PASSKEY_REDIS_URL: %v", err)
		}
	}
	if strings.ContainsAny(c.RedisPrefix, "{}") {
		// A hash tag in the prefix would put every key in one Redis Cluster slot.
		add("PASSKEY_REDIS_PREFIX must not contain '{' or '}' (the server chooses the Redis Cluster hash tags)")
	}
	if c.MasterKey != "" {
		if k, err := base64.StdEncoding.DecodeString(c.MasterKey); err != nil || len(k) != 32 {
			add("PASSKEY_MASTER_KEY must be 32 bytes in base64 (openssl rand -base64 32)")
		}
	} else if !c.Embedded() {
		add("PASSKEY_MASTER_KEY is required with Postgres (openssl rand -base64 32)")
	}
	if len(c.AdminTokens) == 0 && !c.Embedded() {
		add("PASSKEY_ADMIN_TOKENS is required with Postgres")
	}
	for i, t := range c.AdminTokens {
		if len(t) < 16 {
			add("PASSKEY_ADMIN_TOKENS entry %d is shorter than 16 characters", i+1)
		}
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		add("PASSKEY_PUBLIC_URL must be an http(s) URL without user info, query or fragment")
	}
	if _, err := parseLogLevel(c.LogLevel); err != nil {
		add("PASSKEY_LOG_LEVEL must be one of debug, info, warn, error")
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		add("PASSKEY_LOG_FORMAT must be json or text")
	}
	if c.BodyLimit < 4096 || c.BodyLimit > 16<<20 {
		add("PASSKEY_BODY_LIMIT must be between 4096 and 16777216")
	}
	if c.AuditRetention < 0 {
		add("PASSKEY_AUDIT_RETENTION must not be negative (0 keeps events forever)")
	}
	if c.WebhookRetention < 0 {
		add("PASSKEY_WEBHOOK_RETENTION must not be negative (0 keeps deliveries forever)")
	}
	if c.WebhookTimeout < time.Second || c.WebhookTimeout > 5*time.Minute {
		add("PASSKEY_WEBHOOK_TIMEOUT must be between 1s and 5m")
	}
	if jobTimeout := c.WebhookTimeout + db.WebhookRecordMargin; c.WebhookRescueAfter != 0 && c.WebhookRescueAfter <= jobTimeout {
		add("PASSKEY_WEBHOOK_RESCUE_AFTER must be more than PASSKEY_WEBHOOK_TIMEOUT + %s (%s)", db.WebhookRecordMargin, jobTimeout)
	}
	if c.KeyOverlap < 0 {
		add("PASSKEY_SIGNING_KEY_OVERLAP must not be negative")
	}
	if minimum := httpapi.JWKSMaxAge + c.CacheRefresh; c.KeyActivation < 0 || c.KeyActivation > 0 && c.KeyActivation <= minimum || c.KeyActivation > 24*time.Hour {
		add("PASSKEY_SIGNING_KEY_ACTIVATION must be 0 or more than the JWKS cache age plus PASSKEY_CACHE_REFRESH (%s), and at most 24h", minimum)
	}
	if c.CacheRefresh < 100*time.Millisecond || c.CacheRefresh > time.Minute {
		add("PASSKEY_CACHE_REFRESH must be between 100ms and 1m")
	}
	if c.TenantCache < 100 || c.TenantCache > 10_000_000 {
		add("PASSKEY_TENANT_CACHE_SIZE must be between 100 and 10000000")
	}
	if c.ShutdownGrace <= 0 {
		add("PASSKEY_SHUTDOWN_TIMEOUT must be positive")
	}
	if c.MaxConnsPerIP < 0 {
		add("PASSKEY_MAX_CONNS_PER_IP must not be negative (0: no cap)")
	}
	for _, d := range []struct {
		name     string
		v        time.Duration
		min, max time.Duration
	}{
		{"PASSKEY_REQUEST_TIMEOUT", c.RequestTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"PASSKEY_DATABASE_CONNECT_TIMEOUT", c.DBConnectTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"PASSKEY_DATABASE_STATEMENT_TIMEOUT", c.DBStatement, 100 * time.Millisecond, 10 * time.Minute},
		{"PASSKEY_DATABASE_TIMEOUT", c.DBCallTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"PASSKEY_REDIS_TIMEOUT", c.RedisTimeout, 10 * time.Millisecond, time.Minute},
		{"PASSKEY_STARTUP_TIMEOUT", c.StartupTimeout, 0, time.Hour},
		{"PASSKEY_SHUTDOWN_DRAIN", c.ShutdownDrain, 0, 10 * time.Minute},
		{"PASSKEY_READ_TIMEOUT", c.ReadTimeout, time.Second, 10 * time.Minute},
	} {
		if d.v < d.min || d.v > d.max {
			add("%s must be between %s and %s", d.name, d.min, d.max)
		}
	}
	if c.MDSURL != "" {
		if u, err := url.Parse(c.MDSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("PASSKEY_MDS_URL must be an http(s) URL")
		}
	}
	if c.MDSRoot != "" {
		if err := attestation.CheckRoot(c.MDSRoot); err != nil {
			add("PASSKEY_MDS_ROOT_FILE: %v", err)
		}
	}
	if c.MDSMaxAge < time.Minute || c.MDSMaxAge > 30*24*time.Hour {
		add("PASSKEY_MDS_MAX_AGE must be between 1m and 720h")
	}
	if c.MDSRetry < time.Second || c.MDSRetry > 24*time.Hour {
		add("PASSKEY_MDS_RETRY must be between 1s and 24h")
	}
	if _, err := httpapi.ParseTrustedProxies(c.TrustedProxies); err != nil {
		add("PASSKEY_TRUSTED_PROXIES: %v", err)
	}
	if _, err := c.rateRules(); err != nil {
		add("%v", err)
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("invalid configuration:\n  - " + strings.Join(problems, "\n  - "))
}

// writeConfigHelp prints the table of environment variables, from the struct tags of Config.
func writeConfigHelp(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		def := f.Tag.Get("envDefault")
		if def == "" {
			def = f.Tag.Get("helpDefault") // derived from other variables; the help text says how
		}
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\n", envPrefix, name, def, f.Tag.Get("help"))
	}
	tw.Flush()
}

// rateRules parses the rate limit settings.
func (c Config) rateRules() (ratelimit.Rules, error) {
	r := ratelimit.Rules{IPv6Prefix: c.RateIPv6Prefix}
	var errs []string
	if c.RateIPv6Prefix < 16 || c.RateIPv6Prefix > 128 {
		errs = append(errs, "PASSKEY_RATE_LIMIT_IPV6_PREFIX must be between 16 and 128")
	}
	parse := func(name, v string, dst *ratelimit.Limit) {
		l, err := ratelimit.ParseLimit(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, err))
		}
		*dst = l
	}
	parse("PASSKEY_RATE_LIMIT_TENANT", c.RateTenant, &r.PerTenantSecret)
	parse("PASSKEY_RATE_LIMIT_TENANT_PUBLIC", c.RatePublic, &r.PerTenantPublic)
	parse("PASSKEY_RATE_LIMIT_IP", c.RateIP, &r.PerIP)
	parse("PASSKEY_RATE_LIMIT_KEY", c.RateKey, &r.PerKey)
	if c.RateOverrides != "" {
		var raw map[string]struct {
			Tenant       *string `json:"tenant"`
			TenantPublic *string `json:"tenant_public"`
			IP           *string `json:"ip"`
			Key          *string `json:"key"`
		}
		// An unknown field (a misspelt dimension) is an error, not a limit silently left at its default.
		dec := json.NewDecoder(strings.NewReader(c.RateOverrides))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&raw); err != nil || dec.More() {
			errs = append(errs, "PASSKEY_RATE_LIMIT_OVERRIDES is not a JSON object of tenant id to {tenant, tenant_public, ip, key}")
		}
		r.Overrides = map[string]ratelimit.Override{}
		for id, o := range raw {
			tenantID, err := uuid.Parse(id)
			if err != nil {
				errs = append(errs, fmt.Sprintf("PASSKEY_RATE_LIMIT_OVERRIDES: %q is not a tenant id (a UUID)", id))
				continue
			}
			// An omitted dimension keeps the default; "off" switches it off for this tenant.
			override := func(name string, v *string) *ratelimit.Limit {
				if v == nil {
					return nil
				}
				var l ratelimit.Limit
				parse("PASSKEY_RATE_LIMIT_OVERRIDES "+id+"."+name, *v, &l)
				return &l
			}
			// Keys.Tenant is the canonical (lowercase) form, whatever case the operator wrote.
			r.Overrides[tenantID.String()] = ratelimit.Override{
				PerTenantSecret: override("tenant", o.Tenant), PerTenantPublic: override("tenant_public", o.TenantPublic),
				PerIP: override("ip", o.IP), PerKey: override("key", o.Key),
			}
		}
	}
	if len(errs) > 0 {
		return r, errors.New(strings.Join(errs, "; "))
	}
	return r, nil
}
