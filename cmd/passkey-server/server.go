package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"

	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/metrics"
	"github.com/passkey-server/passkey-server/mfa"
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
	// Ready lists what /health/ready checks, by name.
	Ready map[string]Pinger
}

// withFeatures builds the ceremony services on database and sessions and adds their handlers to d. main
// and the tests wire the features through this one function.
func (d deps) withFeatures(database *db.DB, sessions credentials.SessionStore, aaguids *credentials.AAGUIDTable) deps {
	ceremonies := credentials.NewService(db.NewCredentialStore(database), sessions, aaguids, time.Now, d.Log)
	d.Credentials = credentials.NewHandlers(ceremonies, d.Tenants)
	d.MFA = mfa.NewHandlers(d.Credentials, d.Tenants)
	d.Transactions = transactions.NewHandlers(transactions.NewService(db.NewTransactionStore(database), ceremonies, time.Now), d.Tenants)
	return d
}

// newFiberApp builds an app with the middleware every app shares, in this order: request id, metrics
// (so that what it records is the status the client gets, panics included), panic recovery.
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
	keyed := app.Group("/credentials", d.Tenants.KeyTenant())
	d.MFA.KeyRoutes(keyed)
	d.Credentials.KeyRoutes(keyed)
	keyed.All("/*", notFound)
	keyedTx := app.Group("/transaction", d.Tenants.KeyTenant())
	d.Transactions.Routes(keyedTx)
	keyedTx.All("/*", notFound)

	// Hanko-compatible routes. The tenant middleware runs for every path under /{tenant_id}, so CORS
	// preflights of any sub-path are answered and unknown sub-paths get a JSON 404 with CORS headers.
	t := app.Group("/:tenant_id", d.Tenants.PathTenant())
	t.Get("/.well-known/jwks.json", tenant.JWKS)
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
