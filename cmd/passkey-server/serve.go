package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/attestation"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/metrics"
	"github.com/passkey-server/passkey-server/ratelimit"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// openDatabase opens the configured database. In embedded mode the data dir and the SQLite files are
// private first (see privateSQLite).
func openDatabase(ctx context.Context, cfg Config) (*db.DB, error) {
	if cfg.Embedded() {
		if err := privateDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
		if err := privateSQLite(cfg.DatabaseURL); err != nil {
			return nil, err
		}
	}
	return db.OpenWith(ctx, cfg.DatabaseURL, db.Options{ConnectTimeout: cfg.DBConnectTimeout,
		StatementTimeout: cfg.DBStatement, CallTimeout: cfg.DBCallTimeout})
}

// Backoff between the attempts of retryStartup: it starts short, since a database started beside the
// service answers within a second or two, and doubles up to a few seconds.
const (
	startupBackoffMin = 100 * time.Millisecond
	startupBackoffMax = 3 * time.Second
)

// retryStartup calls connect until it succeeds and returns what it returned, or until it fails with an error that is not
// passkey.ErrUnavailable (a wrong URL or password is not worth retrying), or timeout has passed since
// the first attempt (one attempt only when timeout is 0). It waits between attempts with exponential
// backoff and logs each failed attempt, so that an operator sees what the start waits for.
func retryStartup[T any](ctx context.Context, log *slog.Logger, timeout time.Duration, what string, connect func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(timeout)
	wait := startupBackoffMin
	for attempt := 1; ; attempt++ {
		v, err := connect(ctx)
		if err == nil {
			if attempt > 1 {
				log.Info("the "+what+" answers", "attempt", attempt)
			}
			return v, nil
		}
		if !errors.Is(err, passkey.ErrUnavailable) {
			return v, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return v, fmt.Errorf("the %s did not answer within %s (PASSKEY_STARTUP_TIMEOUT), %d attempts: %w", what, timeout, attempt, err)
		}
		wait = min(wait, left)
		log.Warn("the "+what+" does not answer yet; retrying", "attempt", attempt, "retry_in", wait.String(), "error", err)
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("the %s did not answer before the start was cancelled: %w", what, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, startupBackoffMax)
	}
}

// privateDataDir creates the data dir with mode 0700, or makes an existing one 0700: it holds the
// master key, the admin token and the database, which are nobody else's to list or read.
func privateDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return nil
}

// privateSQLite makes the SQLite database at url readable by this user only: the process's umask
// becomes 077 for good, because SQLite creates the -wal and -shm files lazily (at the first write,
// and again after a checkpoint removed them), not while the database is opened; the database file is
// created with mode 0600 when it does not exist (SQLite gives its -wal and -shm files the database
// file's mode); and existing database, -wal and -shm files are set to 0600, since a data dir made by
// an earlier version kept them 0644.
func privateSQLite(url string) error {
	restrictUmask()
	path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//")
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?#") {
		return nil // in memory, or refused by db.Open
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create sqlite database: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create sqlite database: %w", err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(name, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sqlite database file: %w", err)
		}
	}
	return nil
}

// serve runs both APIs until ctx ends, then shuts down gracefully: drain (readiness answers 503 for
// PASSKEY_SHUTDOWN_DRAIN while requests are still served, each response asking its client to close the
// connection), stop accepting, let in-flight requests finish (up to PASSKEY_SHUTDOWN_TIMEOUT; kept-alive
// connections get "Connection: close"), stop background work, close the pools.
func serve(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer) error {
	// Both ports are bound first: a port in use is the commonest failure of a first start, and its
	// error must come before any "listening" line, generated secret or development tenant.
	publicLn, adminLn, err := bindListeners(cfg)
	if err != nil {
		return err
	}
	defer publicLn.Close() // closed already once Fiber served on it; these close them on an early return
	defer adminLn.Close()
	if cfg.Embedded() {
		if err := ensureEmbeddedSecrets(&cfg, stdout); err != nil {
			return err
		}
	}
	sealer, err := newSealer(cfg)
	if err != nil {
		return err
	}
	aaguids, err := loadAAGUIDs(cfg)
	if err != nil {
		return err
	}
	db.SetRedisLogger(log)
	m := metrics.New()
	st, err := openStores(ctx, cfg, log, m)
	if err != nil {
		return err
	}
	defer st.close()

	mds := loadMetadata(ctx, cfg, log)
	svc := newServices(serviceInput{DB: st.db, Sessions: st.sessions, Sealer: sealer, AAGUIDs: aaguids, Metadata: mds, PublicURL: cfg.PublicURL,
		KeyOverlap: cfg.KeyOverlap, KeyActivation: cfg.KeyActivation, CacheRefresh: cfg.CacheRefresh, TenantCache: cfg.TenantCache, Metrics: m, Logger: log,
		Webhooks: cfg.webhookSettings()})
	if cfg.Embedded() {
		if err := ensureDevTenant(ctx, cfg, svc.tenants, stdout); err != nil {
			return err
		}
	}
	if err := registerCounters(m, svc.audit, &st.limiterErrors, mds); err != nil {
		return err
	}
	proxies, _ := httpapi.ParseTrustedProxies(cfg.TrustedProxies) // validated with the config
	opts := httpapi.Options{Logger: log, AdminTokens: cfg.AdminTokens, BodyLimit: cfg.BodyLimit, Metrics: m,
		Limiter: st.limiter, Proxies: proxies, Ready: st.ready, RequestTimeout: cfg.RequestTimeout, PublicURL: cfg.PublicURL,
		ReadTimeout: cfg.ReadTimeout, Drain: &httpapi.Drain{}}
	opts.PlaygroundTenant = announcePages(ctx, cfg, svc.tenants, stdout)
	public, admin := httpapi.NewPublic(svc.http(), opts), httpapi.NewAdmin(svc.http(), opts)

	bg, stopBackground := context.WithCancel(context.Background())
	done := svc.run(bg)
	go svc.audit.RunRetention(bg, cfg.AuditRetention, time.Hour)
	go svc.webhooks.RunRetention(bg, cfg.WebhookRetention, time.Hour)

	errs := make(chan error, 2)
	go func() { errs <- listen(public, publicLn, cfg.MaxConnsPerIP) }()
	go func() { errs <- listen(admin, adminLn, cfg.MaxConnsPerIP) }()
	log.Info("passkey-server listening", "public", cfg.PublicAddress, "admin", cfg.AdminAddress, "database", st.db.Dialect(), "redis", cfg.RedisURL != "")

	var runErr error
	select {
	case <-ctx.Done():
		runErr = drain(opts.Drain, cfg.ShutdownDrain, errs, log)
		log.Info("shutting down")
	case runErr = <-errs:
	}
	shutdown(log, cfg.ShutdownGrace, public, admin)
	stopBackground()
	<-done
	return runErr
}

// drain starts d and waits for period, while the listeners still accept: readiness answers 503, so
// that load balancers take the instance out before its listeners close, and requests that still come
// are served. It returns early with the error of a listener that fails meanwhile.
func drain(d *httpapi.Drain, period time.Duration, errs <-chan error, log *slog.Logger) error {
	d.Start()
	if period <= 0 {
		return nil
	}
	log.Info("draining: readiness answers 503, requests are still served", "drain", period.String())
	select {
	case <-time.After(period):
		return nil
	case err := <-errs:
		return err
	}
}

// shutdown closes the listeners of apps and waits up to grace, for all apps at once, for their
// in-flight requests to finish; kept-alive connections get "Connection: close" (CloseOnShutdown).
func shutdown(log *slog.Logger, grace time.Duration, apps ...*fiber.App) {
	var wg sync.WaitGroup
	for _, app := range apps {
		wg.Go(func() {
			if err := app.ShutdownWithTimeout(grace); err != nil {
				log.Warn("shutdown", "error", err)
			}
		})
	}
	wg.Wait()
}

// newSealer returns the sealer of signing keys under the configured master key.
func newSealer(cfg Config) (*signing.Sealer, error) {
	masterKey, err := base64.StdEncoding.DecodeString(cfg.MasterKey)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return signing.NewSealer(masterKey)
}

// loadMetadata builds the FIDO metadata source and loads its first blob. A blob that cannot be loaded
// is reported (an error log line, the readiness details, GET /metadata and the failure counter) but
// does not stop the start: tenants without an enforced attestation policy do not need it, and
// enforcing tenants get 503 metadata_unavailable for registrations until a refresh succeeds.
func loadMetadata(ctx context.Context, cfg Config, log *slog.Logger) *attestation.Source {
	src := attestation.NewSource(attestation.SourceOptions{File: cfg.MDSFile, URL: cfg.MDSURL, Root: cfg.MDSRoot,
		MaxAge: cfg.MDSMaxAge, RetryInterval: cfg.MDSRetry, Logger: log})
	if !src.Configured() {
		return src
	}
	if err := src.Refresh(ctx); err != nil {
		log.Error("FIDO metadata could not be loaded at start; registrations of tenants that enforce an attestation policy are refused until a refresh succeeds",
			"error", err, "retry_in", cfg.MDSRetry.String())
	}
	return src
}

// loadAAGUIDs returns the table of authenticator names: PASSKEY_AAGUID_FILE, or the embedded one.
func loadAAGUIDs(cfg Config) (*credentials.AAGUIDTable, error) {
	if cfg.AAGUIDFile == "" {
		return credentials.DefaultAAGUIDTable(), nil
	}
	return loadAAGUIDFile(cfg.AAGUIDFile)
}

// stores are the open connections of one instance: the migrated database, the ceremony sessions
// (Redis, or in-process), the rate limiter on the same Redis, and what readiness checks.
type stores struct {
	db            *db.DB
	sessions      credentials.SessionStore
	limiter       *ratelimit.Limiter
	limiterErrors storeErrors
	ready         map[string]httpapi.Pinger
	close         func()
}

// openStores opens and migrates the database and connects to Redis when one is configured, and
// registers their pool statistics with m.
//
// A database or Redis that does not answer yet is retried for PASSKEY_STARTUP_TIMEOUT (retryStartup).
func openStores(ctx context.Context, cfg Config, log *slog.Logger, m *metrics.Metrics) (*stores, error) {
	database, err := retryStartup(ctx, log, cfg.StartupTimeout, "database", func(ctx context.Context) (*db.DB, error) {
		return openDatabase(ctx, cfg)
	})
	if err != nil {
		return nil, err
	}
	st := &stores{db: database, ready: map[string]httpapi.Pinger{"database": database}, close: func() { database.Close() }}
	fail := func(err error) (*stores, error) {
		st.close()
		return nil, err
	}
	if err := database.MigrateUp(ctx); err != nil {
		return fail(err)
	}
	if err := m.RegisterDB(database.Dialect(), database.SQL()); err != nil {
		return fail(err)
	}
	rules, _ := cfg.rateRules() // validated with the config
	if cfg.RedisURL == "" {
		if !cfg.Embedded() {
			log.Warn("PASSKEY_REDIS_URL is empty: ceremony sessions live in this process, so run a single instance only")
		}
		st.sessions = db.NewMemorySessions(time.Now)
		st.limiter = ratelimit.NewMemory(rules, 0)
		st.limiter.OnError = st.limiterErrors.record(log, "rate limiter: the in-process table is full; new clients are limited by their tenant's buckets only")
		return st, nil
	}
	client, err := retryStartup(ctx, log, cfg.StartupTimeout, "session store (Redis)",
		within(3*cfg.RedisTimeout, db.OpenRedis, cfg.RedisURL)) // a dial and a PING
	if err != nil {
		return fail(err)
	}
	st.close = func() { client.Close(); database.Close() }
	// The two snapshot types have the same fields, so one converts to the other; db knows no metrics
	// and metrics no go-redis.
	redisPool := func() metrics.RedisPoolStats { return metrics.RedisPoolStats(db.ReadRedisPoolStats(client)) }
	if err := m.RegisterRedisPool("sessions", redisPool); err != nil {
		return fail(err)
	}
	st.limiter = ratelimit.New(client, cfg.RedisPrefix, rules)
	st.limiter.OnError = st.limiterErrors.record(log, "rate limiter: Redis failed, requests are let through")
	rs := db.NewRedisSessions(client, cfg.RedisPrefix)
	rs.SetCallTimeout(cfg.RedisTimeout)
	st.sessions, st.ready["redis"] = rs, rs
	return st, nil
}

// within returns connect applied to url, each call bounded by d.
func within[T any](d time.Duration, connect func(context.Context, string) (T, error), url string) func(context.Context) (T, error) {
	return func(ctx context.Context) (T, error) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return connect(ctx, url)
	}
}

// registerCounters exports the counters other packages keep.
func registerCounters(m *metrics.Metrics, rec *audit.Recorder, limiterErrors *storeErrors, mds *attestation.Source) error {
	for _, c := range []struct {
		name, help string
		value      func() uint64
	}{
		{"passkey_mds_refreshes_total", "Refreshes of the FIDO metadata that loaded or confirmed a verified blob.", mds.Refreshes},
		{"passkey_mds_refresh_failures_total", "Refreshes of the FIDO metadata that failed (unreadable, bad signature, stale or older blob); the previous blob stayed in use.", mds.Failures},
		{"passkey_audit_events_dropped_total", "Audit events dropped because the database fell too far behind.", rec.Dropped},
		{"passkey_audit_events_failed_total", "Audit events lost because the database refused to store them.", rec.Failed},
		{"passkey_ratelimit_errors_total", "Rate limit checks that failed (Redis down or slow, or the in-process table full); the requests were let through, or limited by their tenant only.", limiterErrors.count.Load},
	} {
		if err := m.RegisterCounter(c.name, c.help, c.value); err != nil {
			return err
		}
	}
	return nil
}

// storeErrors counts the failures of a store that the service works around (the rate limiter's Redis)
// and logs them at most every storeErrorLogInterval, so that an outage is one warning every few
// seconds, not one per request.
type storeErrors struct {
	count   atomic.Uint64
	lastLog atomic.Int64 // Unix nanoseconds
}

const storeErrorLogInterval = 10 * time.Second

// record returns the limiter's OnError: it counts every failure and logs msg with the error at most
// every storeErrorLogInterval.
func (s *storeErrors) record(log *slog.Logger, msg string) func(error) {
	return func(err error) {
		n := s.count.Add(1)
		now, last := time.Now().UnixNano(), s.lastLog.Load()
		if now-last >= int64(storeErrorLogInterval) && s.lastLog.CompareAndSwap(last, now) {
			log.Warn(msg+" (logged at most every 10 s)", "error", err, "failures_total", n)
		}
	}
}

// bindListeners binds the public and the admin address. Its error names the variable to change.
func bindListeners(cfg Config) (public, admin net.Listener, err error) {
	public, err = net.Listen("tcp", cfg.PublicAddress)
	if err != nil {
		return nil, nil, bindError("PASSKEY_PUBLIC_ADDRESS", cfg.PublicAddress, err)
	}
	admin, err = net.Listen("tcp", cfg.AdminAddress)
	if err != nil {
		public.Close()
		return nil, nil, bindError("PASSKEY_ADMIN_ADDRESS", cfg.AdminAddress, err)
	}
	return public, admin, nil
}

func bindError(variable, addr string, err error) error {
	return fmt.Errorf("cannot listen on %s: set %s to a free host:port: %w", addr, variable, err)
}

func listen(app *fiber.App, ln net.Listener, maxConnsPerIP int) error {
	if err := app.Listener(httpapi.LimitConnsPerIP(ln, maxConnsPerIP)); err != nil {
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Files the embedded mode keeps in the data dir. They hold secrets and are created with mode 0600.
const (
	masterKeyFile  = "master.key"
	adminTokenFile = "admin-token"
	devTenantFile  = "dev-tenant.json"
)

// ensureEmbeddedSecrets fills a missing master key and admin token from the data dir, generating them on
// first start.
func ensureEmbeddedSecrets(cfg *Config, stdout io.Writer) error {
	if err := privateDataDir(cfg.DataDir); err != nil {
		return err
	}
	if cfg.MasterKey == "" {
		v, err := readOrCreateSecret(filepath.Join(cfg.DataDir, masterKeyFile), func(b []byte) string {
			return base64.StdEncoding.EncodeToString(b)
		})
		if err != nil {
			return err
		}
		cfg.MasterKey = v
	}
	if len(cfg.AdminTokens) == 0 {
		v, err := readOrCreateSecret(filepath.Join(cfg.DataDir, adminTokenFile), func(b []byte) string {
			return "adm_" + base64.RawURLEncoding.EncodeToString(b)
		})
		if err != nil {
			return err
		}
		cfg.AdminTokens = []string{v}
	}
	return cfg.Validate()
}

// readOrCreateSecret returns the content of path, or writes 32 fresh random bytes encoded by encode
// there and returns them.
func readOrCreateSecret(path string, encode func([]byte) string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		// A secret written by hand or by an earlier version may be readable by others.
		if err := os.Chmod(path, 0o600); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	v := encode(buf)
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return v, nil
}

// devCredentials is what the embedded mode remembers about its development tenant.
type devCredentials struct {
	TenantID       string `json:"tenant_id"`
	SecretKey      string `json:"secret_api_key"`
	PublishableKey string `json:"publishable_api_key"`
}

// ensureDevTenant makes the development tenant on first start (RP ID localhost) and prints its id, keys
// and the admin token; on later starts it prints only the tenant id and where the secrets are kept.
func ensureDevTenant(ctx context.Context, cfg Config, tenants *tenant.Service, stdout io.Writer) error {
	path := filepath.Join(cfg.DataDir, devTenantFile)
	if b, err := os.ReadFile(path); err == nil {
		// It holds API keys: private, also when an earlier version left it readable by others.
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		var dc devCredentials
		if err := json.Unmarshal(b, &dc); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		id, _ := uuid.Parse(dc.TenantID)
		t, err := tenants.Load(ctx, id)
		if errors.Is(err, tenant.ErrNotFound) {
			// The database was replaced: make a new development tenant below.
			fmt.Fprintf(stdout, "The development tenant in %s no longer exists; making a new one.\n", path)
			return createDevTenant(ctx, cfg, tenants, stdout, path)
		}
		if err != nil {
			return fmt.Errorf("load development tenant: %w", err)
		}
		if err := followPublicURL(ctx, cfg, tenants, t, stdout); err != nil {
			return err
		}
		tokenAt := filepath.Join(cfg.DataDir, adminTokenFile)
		if generatedAdminToken(cfg) == "" {
			tokenAt = "PASSKEY_ADMIN_TOKENS"
		}
		fmt.Fprintf(stdout, "Development tenant %s (keys in %s, admin token in %s; print them with: passkey-server dev-credentials)\n",
			dc.TenantID, path, tokenAt)
		return nil
	}
	return createDevTenant(ctx, cfg, tenants, stdout, path)
}

// createDevTenant makes the development tenant, keeps its credentials at path and prints them.
func createDevTenant(ctx context.Context, cfg Config, tenants *tenant.Service, stdout io.Writer, path string) error {
	rpID, origins := devRelyingParty(cfg.PublicURL)
	cfgT := tenant.Config{
		CORS: tenant.CORSConfig{AllowedOrigins: origins},
		WebAuthn: tenant.WebAuthnConfig{
			RelyingParty: tenant.RelyingParty{ID: rpID, DisplayName: "Development", Origins: origins},
			Timeout:      tenant.DefaultTimeout,
		},
		Playground: true,
	}
	t, key, err := tenants.Create(ctx, tenant.CreateInput{DisplayName: "Development", Config: cfgT, CreateAPIKey: true})
	if err != nil {
		return fmt.Errorf("create development tenant: %w", err)
	}
	pk, _, err := tenants.CreateAPIKey(ctx, t.ID, "Development publishable key", tenant.KindPublishable, nil)
	if err != nil {
		return fmt.Errorf("create development publishable key: %w", err)
	}
	dc := devCredentials{TenantID: t.ID.String(), SecretKey: key.Secret, PublishableKey: pk}
	b, _ := json.MarshalIndent(dc, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(stdout, "Created a development tenant (RP ID %s, origins %s).\n", rpID, strings.Join(origins, " and "))
	writeDevCredentials(stdout, dc, generatedAdminToken(cfg))
	fmt.Fprintf(stdout, "These are kept in %s; they are not printed again (passkey-server dev-credentials prints them).\n", cfg.DataDir)
	return nil
}

// devRelyingParty is the relying party of the development tenant for the public URL in use: its host
// (localhost when the URL names an IP address, which cannot be an RP ID), with the public URL's origin
// and http://localhost:3000 (the usual port of a front-end dev server) when the RP ID is localhost.
func devRelyingParty(publicURL string) (rpID string, origins []string) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Hostname() == "" || net.ParseIP(u.Hostname()) != nil {
		return "localhost", []string{"http://localhost:8000", "http://localhost:3000"}
	}
	rpID = u.Hostname()
	origins = []string{u.Scheme + "://" + u.Host}
	if rpID == "localhost" && u.Host != "localhost:3000" {
		origins = append(origins, "http://localhost:3000")
	}
	return rpID, origins
}

// followPublicURL adds the public URL's origin to the development tenant's when a later start uses
// another PASSKEY_PUBLIC_ADDRESS or PASSKEY_PUBLIC_URL on the same RP ID, so that the page this server
// serves there may run ceremonies without editing the tenant by hand.
func followPublicURL(ctx context.Context, cfg Config, tenants *tenant.Service, t tenant.Tenant, stdout io.Writer) error {
	rpID, origins := devRelyingParty(cfg.PublicURL)
	c := t.Config
	if rpID != c.WebAuthn.RelyingParty.ID || slices.Contains(c.WebAuthn.RelyingParty.Origins, origins[0]) {
		return nil
	}
	c.WebAuthn.RelyingParty.Origins = append(slices.Clone(c.WebAuthn.RelyingParty.Origins), origins[0])
	if !slices.Contains(c.CORS.AllowedOrigins, "*") {
		c.CORS.AllowedOrigins = append(slices.Clone(c.CORS.AllowedOrigins), origins[0])
	}
	if err := tenants.SetConfig(ctx, t.ID, c); err != nil {
		return fmt.Errorf("add %s to the development tenant's origins: %w", origins[0], err)
	}
	fmt.Fprintf(stdout, "Added %s to the development tenant's origins.\n", origins[0])
	return nil
}

// writeDevCredentials prints the development tenant's credentials; adminToken "" means the operator set
// the tokens (PASSKEY_ADMIN_TOKENS), which are theirs and never echoed.
func writeDevCredentials(w io.Writer, dc devCredentials, adminToken string) {
	if adminToken == "" {
		adminToken = "(yours, from PASSKEY_ADMIN_TOKENS; not printed)"
	}
	fmt.Fprintf(w, "  tenant id:            %s\n", dc.TenantID)
	fmt.Fprintf(w, "  secret API key:       %s\n", dc.SecretKey)
	fmt.Fprintf(w, "  publishable API key:  %s\n", dc.PublishableKey)
	fmt.Fprintf(w, "  admin token:          %s\n", adminToken)
}

// generatedAdminToken returns the admin token the embedded mode generated into the data dir, or "" when
// there is none or the operator's PASSKEY_ADMIN_TOKENS replace it.
func generatedAdminToken(cfg Config) string {
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, adminTokenFile))
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(b))
	if len(cfg.AdminTokens) > 0 && !slices.Contains(cfg.AdminTokens, v) {
		return ""
	}
	return v
}

// printDevCredentials prints the development tenant's credentials kept in the data dir.
func printDevCredentials(cfg Config, stdout io.Writer) error {
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, devTenantFile))
	if err != nil {
		return fmt.Errorf("no development tenant in %s (it is made by the first start in embedded mode): %w", cfg.DataDir, err)
	}
	var dc devCredentials
	if err := json.Unmarshal(b, &dc); err != nil {
		return err
	}
	writeDevCredentials(stdout, dc, generatedAdminToken(cfg))
	return nil
}

func loadAAGUIDFile(path string) (*credentials.AAGUIDTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("PASSKEY_AAGUID_FILE: %w", err)
	}
	defer f.Close()
	t, err := credentials.LoadAAGUIDTable(f)
	if err != nil {
		return nil, fmt.Errorf("PASSKEY_AAGUID_FILE %s: %w", path, err)
	}
	return t, nil
}
