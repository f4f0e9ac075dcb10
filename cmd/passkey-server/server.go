package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"

	"github.com/passkey-server/passkey-server/api"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/metrics"
	"github.com/passkey-server/passkey-server/mfa"
	"github.com/passkey-server/passkey-server/ratelimit"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
)

// Pinger is something readiness depends on (the database, Redis).
type Pinger interface {
	Ping(ctx context.Context) error
}

// deps is everything the HTTP apps are built from. Tests build apps from the same constructors with
// their own deps.
type deps struct {
	Log          *slog.Logger
	Tenants      *tenant.Service
	Credentials  *credentials.Handlers
	MFA          *mfa.Handlers
	Transactions *transactions.Handlers
	AdminTokens  []string
	BodyLimit    int
	Metrics      *metrics.Metrics
	// Audit records audit events; nil records none. AuditLogs answers the audit log queries.
	Audit     *audit.Recorder
	AuditLogs *audit.Handlers
	// Limiter limits the public routes per tenant, client IP and API key; nil means no limits.
	Limiter *ratelimit.Limiter
	// Proxies are the trusted proxies whose X-Forwarded-For names the client.
	Proxies api.TrustedProxies
	// Ready lists what /health/ready checks, by name.
	Ready map[string]Pinger
}

// withFeatures builds the ceremony services on database and sessions and adds their handlers to d. main
// and the tests wire the features through this one function.
func (d deps) withFeatures(database *db.DB, sessions credentials.SessionStore, aaguids *credentials.AAGUIDTable) deps {
	ceremonies := credentials.NewService(db.NewCredentialStore(database), sessions, aaguids, time.Now, d.Log)
	d.Tenants.OnDelete(sessions.DeleteTenant)
	d.Credentials = credentials.NewHandlers(ceremonies, d.Tenants)
	d.MFA = mfa.NewHandlers(d.Credentials, d.Tenants)
	auditStore := db.NewAuditStore(database)
	if d.Audit == nil {
		d.Audit = audit.NewRecorder(auditStore, d.Log)
	}
	d.AuditLogs = audit.NewHandlers(auditStore, d.Tenants, audit.Types(auditRoutes))
	d.Transactions = transactions.NewHandlers(transactions.NewService(db.NewTransactionStore(database), ceremonies, time.Now), d.Tenants)
	return d
}

// newFiberApp builds an app with the middleware every app shares, in this order: request id, metrics
// (so that what it records is the status the client gets, panics included), the client address, the
// access log, the audit log (it sees the handler's error), panic recovery.
func newFiberApp(d deps, name string) *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "passkey-server " + name,
		BodyLimit:             d.BodyLimit,
		DisableStartupMessage: true,
		ErrorHandler:          newErrorHandler(d.Log),
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,
	})
	app.Use(requestid.New())
	if d.Metrics != nil {
		app.Use(d.Metrics.Middleware(name))
	}
	app.Use(d.Proxies.Middleware())
	app.Use(accessLog(d.Log, name, d.Metrics))
	app.Use(audit.Middleware(d.Audit, auditTable, describeError))
	app.Use(recover.New())
	return app
}

// newPublicApp builds the public API: Hanko's /{tenant_id}/... routes and the key-scoped routes.
func newPublicApp(d deps) *fiber.App {
	app := newFiberApp(d, "public")
	app.Get("/", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"name": "passkey-server", "status": "ok"})
	})

	// Key-scoped routes come first: their first path segment would otherwise be taken for a tenant id.
	limit := rateLimit(d.Limiter, d.Tenants)
	// A client whose requests name no tenant or key that exists is limited before the lookup (each
	// costs a database query, and no tenant's limits apply to it).
	refusals := d.Limiter.Refusals(api.ClientIP, func(err error) bool {
		return errors.Is(err, tenant.ErrNotFound) || errors.Is(err, tenant.ErrInvalidAPIKey)
	})
	keyed := app.Group("/credentials", refusals, d.Tenants.KeyTenant(), limit)
	d.MFA.KeyRoutes(keyed)
	d.Credentials.KeyRoutes(keyed)
	keyed.All("/*", notFound)
	keyedTx := app.Group("/transaction", refusals, d.Tenants.KeyTenant(), limit)
	d.Transactions.Routes(keyedTx)
	keyedTx.All("/*", notFound)

	// Hanko-compatible routes. The tenant middleware runs for every path under /{tenant_id}, so CORS
	// preflights of any sub-path are answered and unknown sub-paths get a JSON 404 with CORS headers.
	t := app.Group("/:tenant_id", refusals, d.Tenants.PathTenant(), limit)
	t.Get("/.well-known/jwks.json", tenant.JWKS)
	t.Get("/audit_logs", d.Tenants.RequireKey(false), d.AuditLogs.PublicList)
	d.Credentials.TenantRoutes(t)
	d.MFA.TenantRoutes(t)
	d.Transactions.Routes(t.Group("/transaction"))
	return app
}

// notFound answers routes that do not exist inside a route family with the JSON 404.
func notFound(*fiber.Ctx) error { return fiber.ErrNotFound }

// newAdminApp builds the admin API. Everything but the health checks needs an admin token.
func newAdminApp(d deps) *fiber.App {
	app := newFiberApp(d, "admin")
	app.Get("/health/alive", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"alive": true}) })
	app.Get("/health/ready", readiness(d.Ready))
	admin := app.Group("/", requireAdminToken(d.AdminTokens))
	if d.Metrics != nil {
		admin.Get("/metrics", d.Metrics.Handler())
	}
	d.Tenants.AdminRoutes(admin)
	d.Credentials.AdminUserRoutes(admin, d.Transactions.UserTransactions)
	admin.Get("/tenants/:tenant_id/audit_logs", d.AuditLogs.AdminList)
	admin.Get("/audit_logs", d.AuditLogs.DeploymentList)
	return app
}

// readiness answers 200 when every dependency answers within two seconds, else 503 with the reasons.
func readiness(deps map[string]Pinger) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
		defer cancel()
		failed := map[string]string{}
		for name, p := range deps {
			if err := p.Ping(ctx); err != nil {
				failed[name] = "not answering"
			}
		}
		if len(failed) > 0 {
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"ready": false, "failed": failed})
		}
		return c.JSON(fiber.Map{"ready": true})
	}
}

// requireAdminToken checks "Authorization: Bearer <token>" against the configured admin tokens. Tokens
// are compared as SHA-256 hashes in constant time, so neither their content nor their length leaks
// through timing.
func requireAdminToken(tokens []string) fiber.Handler {
	hashes := make([][32]byte, len(tokens))
	for i, t := range tokens {
		hashes[i] = sha256.Sum256([]byte(t))
	}
	return func(c *fiber.Ctx) error {
		h := c.Get(fiber.HeaderAuthorization)
		if len(h) < 8 || !strings.EqualFold(h[:7], "bearer ") {
			return errAdminUnauthorized
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(h[7:])))
		ok := 0
		for _, want := range hashes {
			ok |= subtle.ConstantTimeCompare(got[:], want[:])
		}
		if ok != 1 {
			return errAdminUnauthorized
		}
		return c.Next()
	}
}

// rateLimit limits requests per tenant, client IP and API key once the tenant is known (so after the
// tenant middleware; CORS preflights were answered before). Requests with a valid secret key come from
// the application's servers, which call for all their users from a few addresses: they are limited per
// key, not per IP. Everything else (browsers, publishable keys, wrong keys) is limited per client IP.
// Without a limiter it lets everything pass.
func rateLimit(l *ratelimit.Limiter, tenants *tenant.Service) fiber.Handler {
	if l == nil {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	return l.Middleware(func(c *fiber.Ctx) ratelimit.Keys {
		var k ratelimit.Keys
		if snap := tenant.FromContext(c); snap != nil {
			k.Tenant = snap.ID.String()
		}
		key, err := tenants.RequestKey(c)
		if err == nil {
			k.APIKey = key.ID.String()
		}
		if err != nil || key.Kind != tenant.KindSecret {
			k.IP = api.ClientIP(c)
		}
		return k
	})
}

// accessLog writes one line per request (request id, tenant, route, status, latency, client address)
// and counts ceremonies by tenant, kind and outcome in m. Errors are answered here through the app's
// error handler, so the line has the final status; the error handler logs the cause of a 500 once. No
// header or body is logged, so no key or credential is.
func accessLog(log *slog.Logger, app string, m *metrics.Metrics) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		if err != nil {
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				return herr
			}
		}
		snap := tenant.FromContext(c)
		if r, ok := auditTable.Match(c); ok && r.Ceremony != "" && m != nil && snap != nil {
			outcome := "succeeded"
			if c.Response().StatusCode() >= 400 {
				outcome = "failed"
			}
			m.Ceremony(snap.ID.String(), strings.TrimSuffix(strings.TrimPrefix(r.Type, "webauthn_"), "_"), outcome)
		}
		if !log.Enabled(c.UserContext(), slog.LevelInfo) {
			return nil
		}
		attrs := []slog.Attr{
			slog.String("app", app),
			slog.String("method", c.Method()),
			slog.String("route", c.Route().Path),
			slog.Int("status", c.Response().StatusCode()),
			slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("ip", api.ClientIP(c)),
		}
		if id, ok := c.Locals("requestid").(string); ok {
			attrs = append(attrs, slog.String("request_id", id))
		}
		if snap != nil {
			attrs = append(attrs, slog.String("tenant", snap.ID.String()))
		}
		log.LogAttrs(c.UserContext(), slog.LevelInfo, "request", attrs...)
		return nil
	}
}
