package tenant

import (
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

type localKey int

const (
	snapshotLocal localKey = iota
	apiKeyLocal
)

// FromContext returns the tenant snapshot that PathTenant or KeyTenant resolved for this request, or nil.
func FromContext(c *fiber.Ctx) *Snapshot {
	snap, _ := c.Locals(snapshotLocal).(*Snapshot)
	return snap
}

// PathTenant resolves the tenant from the route parameter "tenant_id" (Hanko's /{tenant_id}/...
// routes) and applies its CORS policy. Preflights are answered here, before any API key check.
func (s *Service) PathTenant() fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := uuid.Parse(c.Params("tenant_id"))
		if err != nil {
			return ErrInvalidID
		}
		snap, err := s.Resolve(c.UserContext(), id)
		if err != nil {
			return err
		}
		c.Locals(snapshotLocal, snap)
		return snap.cors(c)
	}
}

// KeyTenant resolves the tenant from the API key alone (the key-scoped routes) and applies its CORS
// policy. Preflights, which carry no key, are answered permissively (see preflightCORS).
func (s *Service) KeyTenant() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if c.Method() == fiber.MethodOptions {
			return preflightCORS(c)
		}
		snap, key, err := s.Authenticate(c.UserContext(), RequestSecret(c))
		if err != nil {
			return err
		}
		c.Locals(snapshotLocal, snap)
		c.Locals(apiKeyLocal, key)
		return snap.cors(c)
	}
}

// RequireKey lets a request through only with a valid API key of its tenant. Publishable keys pass
// only when allowPublishable is set.
func (s *Service) RequireKey(allowPublishable bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		k, err := s.RequestKey(c)
		if err != nil {
			return err
		}
		if k.Kind == KindPublishable && !allowPublishable {
			return ErrForbiddenKey
		}
		return c.Next()
	}
}

// RequestKey returns the request's API key after checking that it belongs to the request's tenant. It is
// for routes where the need for a key depends on the body (Hanko's login/initialize with a user_id).
func (s *Service) RequestKey(c *fiber.Ctx) (APIKey, error) {
	if k, ok := c.Locals(apiKeyLocal).(APIKey); ok {
		return k, nil
	}
	snap := FromContext(c)
	if snap == nil {
		return APIKey{}, ErrInvalidAPIKey
	}
	secret := RequestSecret(c)
	if secret == "" {
		return APIKey{}, ErrAPIKeyMissing
	}
	k, err := s.CheckAPIKey(snap, secret)
	if err != nil {
		return APIKey{}, err
	}
	c.Locals(apiKeyLocal, k)
	return k, nil
}

// RequestSecret reads the API key from, in order, the "apiKey" header in any letter case (what Hanko's
// clients send), "X-API-KEY", and "Authorization: Bearer".
func RequestSecret(c *fiber.Ctx) string {
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

// JWKS serves the tenant's public signing keys (GET /{tenant_id}/.well-known/jwks.json). The body is
// serialized once per tenant revision.
func JWKS(c *fiber.Ctx) error {
	snap := FromContext(c)
	c.Set(fiber.HeaderCacheControl, "public, max-age=600")
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(snap.Signer.JWKS())
}
