package httpapi

import (
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/tenant"
)

type localKey int

const (
	snapshotLocal localKey = iota
	apiKeyLocal
)

// snapshotOf returns the tenant that pathTenant or keyTenant resolved for this request, or nil.
func snapshotOf(c *fiber.Ctx) *tenant.Snapshot {
	snap, _ := c.Locals(snapshotLocal).(*tenant.Snapshot)
	return snap
}

// pathTenant resolves the tenant from the route parameter "tenant_id" (Hanko's /{tenant_id}/...
// routes) and applies its CORS policy. Preflights are answered here, before any API key check.
func (s *server) pathTenant(c *fiber.Ctx) error {
	id, err := uuid.Parse(c.Params("tenant_id"))
	if err != nil {
		return tenant.ErrInvalidID
	}
	snap, err := s.Directory.Resolve(c.UserContext(), id)
	if err != nil {
		return err
	}
	c.Locals(snapshotLocal, snap)
	return applyCORS(c, snap)
}

// keyTenant resolves the tenant from the API key alone (the key-scoped routes) and applies its CORS
// policy. Preflights, which carry no key, are answered permissively (see preflightCORS).
func (s *server) keyTenant(c *fiber.Ctx) error {
	if c.Method() == fiber.MethodOptions {
		return preflightCORS(c)
	}
	snap, key, err := s.Keys.Authenticate(c.UserContext(), requestSecret(c))
	if err != nil {
		return err
	}
	c.Locals(snapshotLocal, snap)
	c.Locals(apiKeyLocal, key)
	return applyCORS(c, snap)
}

// requireSecret lets a request through only with a valid secret API key of its tenant.
func (s *server) requireSecret(c *fiber.Ctx) error {
	k, err := s.requestKey(c)
	if err != nil {
		return err
	}
	if k.Kind != tenant.KindSecret {
		return tenant.ErrForbiddenKey
	}
	return c.Next()
}

// requestKey returns the request's API key after checking that it belongs to the request's tenant. It is
// for routes where the need for a key depends on the body (Hanko's login/initialize with a user_id).
func (s *server) requestKey(c *fiber.Ctx) (tenant.APIKey, error) {
	if k, ok := c.Locals(apiKeyLocal).(tenant.APIKey); ok {
		return k, nil
	}
	snap := snapshotOf(c)
	if snap == nil {
		return tenant.APIKey{}, tenant.ErrInvalidAPIKey
	}
	secret := requestSecret(c)
	if secret == "" {
		return tenant.APIKey{}, tenant.ErrAPIKeyMissing
	}
	k, err := s.Keys.Check(snap, secret)
	if err != nil {
		return tenant.APIKey{}, err
	}
	c.Locals(apiKeyLocal, k)
	return k, nil
}

// requestSecret reads the API key from, in order, the "apiKey" header in any letter case (what Hanko's
// clients send, docs/hanko-compatibility.md#public-routes), "X-API-KEY", and "Authorization: Bearer".
func requestSecret(c *fiber.Ctx) string {
	if v := c.Get("apiKey"); v != "" {
		return strings.TrimSpace(v)
	}
	if v := c.Get("X-API-KEY"); v != "" {
		return strings.TrimSpace(v)
	}
	if v := c.Get(fiber.HeaderAuthorization); len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// corsMethods and corsExposed are the same for every tenant. Exposing the pagination headers lets a
// browser read X-Total-Count and Link (Hanko exposes none).
const (
	corsMethods = "GET,HEAD,PUT,PATCH,POST,DELETE"
	corsExposed = "X-Total-Count,Link,X-Request-Id,Retry-After"
	corsMaxAge  = 7200
)

// corsKey identifies a tenant's CORS middleware among the values derived from its snapshot.
type corsKey struct{}

// applyCORS runs the tenant's CORS policy as Fiber's CORS middleware, built once per tenant revision
// (tenant.Derived).
func applyCORS(c *fiber.Ctx, snap *tenant.Snapshot) error {
	h, _ := tenant.Derived(snap, corsKey{}, func(snap *tenant.Snapshot) (fiber.Handler, error) {
		return newCORS(snap.CORS), nil
	})
	return h(c)
}

// newCORS builds Fiber's CORS middleware for a policy (docs/hanko-compatibility.md#cors). It never
// sends Access-Control-Allow-Credentials: the API uses no cookies (see tenant.CORSPolicy).
func newCORS(p tenant.CORSPolicy) fiber.Handler {
	cfg := cors.Config{
		AllowMethods:  corsMethods,
		ExposeHeaders: corsExposed,
		MaxAge:        corsMaxAge,
	}
	if p.AnyOrigin {
		cfg.AllowOrigins = "*"
	} else {
		cfg.AllowOriginsFunc = p.Allows
	}
	return cors.New(cfg)
}

// preflightCORS answers CORS preflights of the key-scoped routes. A preflight carries no API key, so
// its tenant is unknown: it is answered permissively, and the real request that follows gets CORS
// headers only when its key's tenant allows the origin, so a browser still cannot read a response the
// tenant did not allow.
var preflightCORS = cors.New(cors.Config{
	AllowOriginsFunc: func(string) bool { return true },
	AllowMethods:     corsMethods,
	ExposeHeaders:    corsExposed,
	MaxAge:           corsMaxAge,
})

// JWKSMaxAge is how long clients may cache a tenant's JWKS (Cache-Control max-age). A rotated-in
// signing key signs only after it has been published for longer than this plus the directory's refresh
// interval (PASSKEY_SIGNING_KEY_ACTIVATION), and a revoked key is gone from every cache this long after
// every instance dropped it: short, so both happen soon. Hanko sends 600 s.
const JWKSMaxAge = 60 * time.Second

// jwksCacheControl is the Cache-Control header of the JWKS.
var jwksCacheControl = fmt.Sprintf("public, max-age=%d", int(JWKSMaxAge/time.Second))

// jwks serves the tenant's public signing keys (GET /{tenant_id}/.well-known/jwks.json). The body is
// serialized once per tenant snapshot.
func (s *server) jwks(c *fiber.Ctx) error {
	snap := snapshotOf(c)
	c.Set(fiber.HeaderCacheControl, jwksCacheControl)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(snap.Signer.JWKS())
}
