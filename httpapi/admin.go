package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// adminRoute is one operation of the admin API; all but the health checks need an admin token.
type adminRoute struct {
	method, path string
	handle       handler
}

// adminRoutes is the routes table of the admin API (docs/hanko-compatibility.md#tenants-api-keys-and-signing-keys
// and #admin-users; authenticated, with secrets shown only at creation).
var adminRoutes = []adminRoute{
	{"GET", "/tenants", (*server).listTenants},
	{"POST", "/tenants", (*server).createTenant},
	{"GET", "/tenants/:tenant_id", (*server).getTenant},
	{"PUT", "/tenants/:tenant_id", (*server).renameTenant},
	{"DELETE", "/tenants/:tenant_id", (*server).deleteTenant},
	{"PUT", "/tenants/:tenant_id/config", (*server).putConfig},
	{"GET", "/tenants/:tenant_id/secrets/api", (*server).listAPIKeys},
	{"POST", "/tenants/:tenant_id/secrets/api", (*server).createAPIKey},
	{"DELETE", "/tenants/:tenant_id/secrets/api/:secret_id", (*server).deleteAPIKey},
	{"GET", "/tenants/:tenant_id/signing_keys", (*server).listSigningKeys},
	{"POST", "/tenants/:tenant_id/signing_keys", (*server).rotateSigningKey},
	{"GET", "/tenants/:tenant_id/users", (*server).listUsers},
	{"GET", "/tenants/:tenant_id/users/:user_id", (*server).getUser},
	{"DELETE", "/tenants/:tenant_id/users/:user_id", (*server).deleteUser},
	{"GET", "/tenants/:tenant_id/audit_logs", (*server).adminAuditLogs},
	{"GET", "/tenants/:tenant_id/export", (*server).exportTenant},
	{"POST", "/tenants/:tenant_id/import", (*server).importTenant},
	{"GET", "/audit_logs", (*server).deploymentAuditLogs},
	// Webhooks (httpapi/webhooks.go).
	{"GET", "/tenants/:tenant_id/webhooks", (*server).listWebhooks},
	{"POST", "/tenants/:tenant_id/webhooks", (*server).createWebhook},
	{"GET", "/tenants/:tenant_id/webhooks/:webhook_id", (*server).getWebhook},
	{"PATCH", "/tenants/:tenant_id/webhooks/:webhook_id", (*server).updateWebhook},
	{"DELETE", "/tenants/:tenant_id/webhooks/:webhook_id", (*server).deleteWebhook},
	{"POST", "/tenants/:tenant_id/webhooks/:webhook_id/rotate_secret", (*server).rotateWebhookSecret},
	{"POST", "/tenants/:tenant_id/webhooks/:webhook_id/test", (*server).testWebhook},
	{"GET", "/tenants/:tenant_id/webhooks/:webhook_id/deliveries", (*server).listWebhookDeliveries},
	{"POST", "/tenants/:tenant_id/webhooks/:webhook_id/deliveries/:delivery_id/redeliver", (*server).redeliverWebhook},
	{"GET", "/metadata", (*server).getMetadata},
	{"GET", "/metadata/:aaguid", (*server).getMetadataEntry},
}

func (s *server) registerAdmin(app *fiber.App) {
	app.Get("/health/alive", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"alive": true}) })
	app.Get("/health/ready", s.notDraining, s.readiness())
	s.registerConsole(app) // its own sign-in: before the token check below
	admin := app.Group("/", requireAdminToken(s.AdminTokens))
	if s.Metrics != nil {
		admin.Get("/metrics", adaptor.HTTPHandler(s.Metrics.Handler()))
	}
	for _, r := range adminRoutes {
		handle := r.handle
		add(admin, r.method, r.path, func(c *fiber.Ctx) error { return handle(s, c) })
	}
}

// notDraining answers /health/ready 503 {"ready":false,"draining":true,"failed":{}} once the instance
// drains before shutdown, so that load balancers stop sending it requests.
func (s *server) notDraining(c *fiber.Ctx) error {
	if s.Drain.Draining() {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"ready": false, "draining": true, "failed": fiber.Map{}})
	}
	return c.Next()
}

// readiness is Readiness with the FIDO metadata's state as details when metadata is configured: a
// failed refresh shows there but does not fail readiness, since the previous blob stays in use and
// tenants without an enforced attestation policy do not need one at all.
func (s *server) readiness() fiber.Handler {
	ready := Readiness(s.Ready)
	if !s.Metadata.Configured() {
		return ready
	}
	return func(c *fiber.Ctx) error {
		c.Locals(readinessDetailsKey{}, fiber.Map{"metadata": metadataState(s.Metadata, time.Now())})
		return ready(c)
	}
}

// readinessDetailsKey holds the details readiness adds to its answer.
type readinessDetailsKey struct{}

// ReadinessTimeout is how long readiness waits for each dependency.
const ReadinessTimeout = 2 * time.Second

// Readiness answers 200 when every dependency answers within ReadinessTimeout, else 503 naming those
// that did not. The dependencies are asked at once, each with its own deadline, so a slow one neither
// delays nor blames another.
func Readiness(deps map[string]Pinger) fiber.Handler {
	return func(c *fiber.Ctx) error {
		type result struct {
			name string
			err  error
		}
		parent := c.UserContext() // once, here: the Fiber context is not safe for the probes' goroutines
		results := make(chan result, len(deps))
		for name, p := range deps {
			go func() {
				ctx, cancel := context.WithTimeout(parent, ReadinessTimeout)
				defer cancel()
				results <- result{name, p.Ping(ctx)}
			}()
		}
		pending := make(map[string]bool, len(deps))
		for name := range deps {
			pending[name] = true
		}
		// A probe that ignores its context still does not hold the answer up.
		timer := time.NewTimer(ReadinessTimeout + 100*time.Millisecond)
		defer timer.Stop()
		failed := map[string]string{}
		for len(pending) > 0 {
			select {
			case r := <-results:
				delete(pending, r.name)
				if r.err != nil {
					failed[r.name] = "not answering"
				}
			case <-timer.C:
				for name := range pending {
					failed[name] = "not answering"
				}
				clear(pending)
			}
		}
		answer := fiber.Map{"ready": true}
		if len(failed) > 0 {
			answer = fiber.Map{"ready": false, "failed": failed}
			c.Status(fiber.StatusServiceUnavailable)
		}
		if details, ok := c.Locals(readinessDetailsKey{}).(fiber.Map); ok {
			answer["details"] = details
		}
		return c.JSON(answer)
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

// TenantSummary is one entry of GET /tenants.
type TenantSummary struct {
	ID          uuid.UUID `json:"id"`
	DisplayName string    `json:"display_name"`
}

// TenantDetail is the body of GET /tenants/{id}.
type TenantDetail struct {
	ID          uuid.UUID     `json:"id"`
	DisplayName string        `json:"display_name"`
	Config      tenant.Config `json:"config"`
	CreatedAt   time.Time     `json:"created_at"`
	UpdatedAt   time.Time     `json:"updated_at"`
}

// CreateTenantRequest is the body of POST /tenants.
type CreateTenantRequest struct {
	DisplayName  string         `json:"display_name"`
	Config       *tenant.Config `json:"config"`
	CreateAPIKey bool           `json:"create_api_key"`
}

// CreateTenantResponse is the answer to POST /tenants. APIKey is present only when one was asked for.
type CreateTenantResponse struct {
	ID     uuid.UUID  `json:"id"`
	APIKey *APIKeyDTO `json:"api_key,omitempty"`
}

// APIKeyDTO is an API key on the wire. Secret is set only in the answer that creates the key.
type APIKeyDTO struct {
	ID         uuid.UUID      `json:"id"`
	Name       string         `json:"name"`
	Kind       tenant.KeyKind `json:"kind"`
	Secret     string         `json:"secret,omitempty"`
	Hint       string         `json:"hint"`
	CreatedAt  time.Time      `json:"created_at"`
	LastUsedAt *time.Time     `json:"last_used_at"`
	ExpiresAt  *time.Time     `json:"expires_at"`
}

// CreateAPIKeyRequest is the body of POST /tenants/{id}/secrets/api.
type CreateAPIKeyRequest struct {
	Name      string         `json:"name"`
	Kind      tenant.KeyKind `json:"kind"`
	ExpiresAt *time.Time     `json:"expires_at"`
}

// SigningKeyDTO is a signing key on the wire: its public half and its life cycle, never the private key.
type SigningKeyDTO struct {
	KID       string            `json:"kid"`
	Algorithm signing.Algorithm `json:"algorithm"`
	// Active reports whether the key signs new tokens now.
	Active    bool            `json:"active"`
	PublicJWK json.RawMessage `json:"public_jwk"`
	// CreatedAt is when the key was made and published in the JWKS; ActivatesAt when it starts (or
	// started) signing.
	CreatedAt   time.Time  `json:"created_at"`
	ActivatesAt time.Time  `json:"activates_at"`
	RetiredAt   *time.Time `json:"retired_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
}

// RotateSigningKeyRequest is the optional body of POST /tenants/{id}/signing_keys.
type RotateSigningKeyRequest struct {
	// OverlapSeconds is how long the previous key stays in the JWKS after it stops signing; the
	// deployment default when 0.
	OverlapSeconds int64 `json:"overlap_seconds"`
	// RevokePrevious is the emergency rotation: the new key signs at once and every previous key
	// leaves the JWKS at once.
	RevokePrevious bool `json:"revoke_previous"`
}

func apiKeyDTO(k tenant.APIKey, secret string) APIKeyDTO {
	return APIKeyDTO{ID: k.ID, Name: k.Name, Kind: k.Kind, Secret: secret, Hint: k.Hint,
		CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, ExpiresAt: k.ExpiresAt}
}

func (s *server) listTenants(c *fiber.Ctx) error {
	ts, err := s.Tenants.List(c.UserContext())
	if err != nil {
		return err
	}
	out := make([]TenantSummary, 0, len(ts))
	for _, t := range ts {
		out = append(out, TenantSummary{ID: t.ID, DisplayName: t.DisplayName})
	}
	return c.JSON(out)
}

func (s *server) createTenant(c *fiber.Ctx) error {
	refused := func(err error) error { return &retitled{err, "unable to create tenant"} }
	var req CreateTenantRequest
	if err := decodeStrictJSON(c, &req); err != nil {
		return refused(err)
	}
	if req.Config == nil {
		return refused(passkey.Invalid("config is a required field"))
	}
	t, key, err := s.Tenants.Create(c.UserContext(), tenant.CreateInput{DisplayName: req.DisplayName, Config: *req.Config, CreateAPIKey: req.CreateAPIKey})
	if err != nil {
		return refused(err)
	}
	resp := CreateTenantResponse{ID: t.ID}
	if key != nil {
		dto := apiKeyDTO(key.Key, key.Secret)
		resp.APIKey = &dto
	}
	return c.Status(fiber.StatusCreated).JSON(resp)
}

func (s *server) getTenant(c *fiber.Ctx) error {
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	t, err := s.Tenants.Load(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(TenantDetail{ID: t.ID, DisplayName: t.DisplayName, Config: t.Config, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt})
}

func (s *server) renameTenant(c *fiber.Ctx) error {
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	var req struct {
		DisplayName string `json:"display_name"`
	}
	if err := decodeStrictJSON(c, &req); err != nil {
		return err
	}
	if err := s.Tenants.Rename(c.UserContext(), id, req.DisplayName); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) deleteTenant(c *fiber.Ctx) error {
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	if err := s.Tenants.Delete(c.UserContext(), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) putConfig(c *fiber.Ctx) error {
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	var cfg tenant.Config
	if err := decodeStrictJSON(c, &cfg); err != nil {
		return err
	}
	if err := s.Tenants.SetConfig(c.UserContext(), id, cfg); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) listAPIKeys(c *fiber.Ctx) error {
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	keys, err := s.Tenants.ListAPIKeys(c.UserContext(), id)
	if err != nil {
		return err
	}
	out := make([]APIKeyDTO, 0, len(keys))
	for _, k := range keys {
		out = append(out, apiKeyDTO(k, ""))
	}
	return c.JSON(out)
}

func (s *server) createAPIKey(c *fiber.Ctx) error {
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	var req CreateAPIKeyRequest
	if err := decodeStrictJSON(c, &req); err != nil {
		return err
	}
	secret, k, err := s.Tenants.CreateAPIKey(c.UserContext(), id, req.Name, req.Kind, req.ExpiresAt)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(apiKeyDTO(k, secret))
}

func (s *server) deleteAPIKey(c *fiber.Ctx) error {
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	keyID, err := uuid.Parse(c.Params("secret_id"))
	if err != nil {
		return passkey.Invalid("secret_id must be a valid uuid")
	}
	if err := s.Tenants.DeleteAPIKey(c.UserContext(), id, keyID); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// signingKeyDTOs returns keys on the wire, as of now.
func signingKeyDTOs(keys []signing.Key, now time.Time) []SigningKeyDTO {
	current, _ := signing.Current(keys, now)
	out := make([]SigningKeyDTO, 0, len(keys))
	for _, k := range keys {
		out = append(out, SigningKeyDTO{KID: k.ID, Algorithm: k.Algorithm, Active: k.ID == current.ID, PublicJWK: k.PublicJWK,
			CreatedAt: k.CreatedAt, ActivatesAt: signing.ActivatesAt(keys, k), RetiredAt: k.RetiredAt, ExpiresAt: k.ExpiresAt})
	}
	return out
}

func (s *server) listSigningKeys(c *fiber.Ctx) error {
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	keys, err := s.Tenants.SigningKeys(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(signingKeyDTOs(keys, s.Tenants.Now()))
}

func (s *server) rotateSigningKey(c *fiber.Ctx) error {
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	var req RotateSigningKeyRequest
	if err := decodeStrictJSON(c, &req); err != nil {
		return err
	}
	overlap := time.Duration(req.OverlapSeconds) * time.Second
	if req.OverlapSeconds < 0 || req.OverlapSeconds > int64(tenant.MaxRotationOverlap/time.Second) {
		overlap = -1 // out of range, and it would overflow: the service refuses it
	}
	k, err := s.Tenants.RotateSigningKey(c.UserContext(), id, tenant.Rotation{Overlap: overlap, RevokePrevious: req.RevokePrevious})
	if err != nil {
		return err
	}
	// The answer shows the new key among the tenant's keys: when it activates depends on them.
	keys, err := s.Tenants.SigningKeys(c.UserContext(), id)
	if err != nil {
		return err
	}
	for _, dto := range signingKeyDTOs(keys, s.Tenants.Now()) {
		if dto.KID == k.ID {
			return c.Status(fiber.StatusCreated).JSON(dto)
		}
	}
	return fmt.Errorf("rotated signing key %s is not listed", k.ID)
}
