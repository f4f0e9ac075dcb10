package tenant

import (
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/api"
	"github.com/passkey-server/passkey-server/signing"
)

// AdminRoutes registers the tenant, API key and signing key routes of the admin API (contract §1.2,
// with secrets shown only at creation) on r. Authentication is the caller's job.
func (s *Service) AdminRoutes(r fiber.Router) {
	r.Get("/tenants", s.listTenants)
	r.Post("/tenants", s.createTenant)
	r.Get("/tenants/:tenant_id", s.getTenant)
	r.Put("/tenants/:tenant_id", s.renameTenant)
	r.Delete("/tenants/:tenant_id", s.deleteTenant)
	r.Put("/tenants/:tenant_id/config", s.putConfig)
	r.Get("/tenants/:tenant_id/secrets/api", s.listAPIKeys)
	r.Post("/tenants/:tenant_id/secrets/api", s.createAPIKey)
	r.Delete("/tenants/:tenant_id/secrets/api/:secret_id", s.deleteAPIKey)
	r.Get("/tenants/:tenant_id/signing_keys", s.listSigningKeys)
	r.Post("/tenants/:tenant_id/signing_keys", s.rotateSigningKey)
}

// TenantSummary is one entry of GET /tenants.
type TenantSummary struct {
	ID          uuid.UUID `json:"id"`
	DisplayName string    `json:"display_name"`
}

// TenantDetail is the body of GET /tenants/{id}.
type TenantDetail struct {
	ID          uuid.UUID `json:"id"`
	DisplayName string    `json:"display_name"`
	Config      Config    `json:"config"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// CreateTenantRequest is the body of POST /tenants.
type CreateTenantRequest struct {
	DisplayName  string  `json:"display_name"`
	Config       *Config `json:"config"`
	CreateAPIKey bool    `json:"create_api_key"`
}

// CreateTenantResponse is the answer to POST /tenants. APIKey is present only when one was asked for.
type CreateTenantResponse struct {
	ID     uuid.UUID  `json:"id"`
	APIKey *APIKeyDTO `json:"api_key,omitempty"`
}

// APIKeyDTO is an API key on the wire. Secret is set only in the answer that creates the key.
type APIKeyDTO struct {
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	Kind       KeyKind    `json:"kind"`
	Secret     string     `json:"secret,omitempty"`
	Hint       string     `json:"hint"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

// CreateAPIKeyRequest is the body of POST /tenants/{id}/secrets/api.
type CreateAPIKeyRequest struct {
	Name      string     `json:"name"`
	Kind      KeyKind    `json:"kind"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// SigningKeyDTO is a signing key on the wire: its public half and its life cycle, never the private key.
type SigningKeyDTO struct {
	KID       string            `json:"kid"`
	Algorithm signing.Algorithm `json:"algorithm"`
	Active    bool              `json:"active"`
	PublicJWK json.RawMessage   `json:"public_jwk"`
	CreatedAt time.Time         `json:"created_at"`
	RetiredAt *time.Time        `json:"retired_at"`
	ExpiresAt *time.Time        `json:"expires_at"`
}

// RotateSigningKeyRequest is the optional body of POST /tenants/{id}/signing_keys.
type RotateSigningKeyRequest struct {
	// OverlapSeconds is how long the previous key stays in the JWKS; the deployment default when 0.
	OverlapSeconds int64 `json:"overlap_seconds"`
}

func toAPIKeyDTO(k APIKey, secret string) APIKeyDTO {
	return APIKeyDTO{ID: k.ID, Name: k.Name, Kind: k.Kind, Secret: secret, Hint: k.Hint,
		CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, ExpiresAt: k.ExpiresAt}
}

func pathTenantID(c *fiber.Ctx) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Params("tenant_id"))
	if err != nil {
		return uuid.Nil, ErrInvalidID
	}
	return id, nil
}

func (s *Service) listTenants(c *fiber.Ctx) error {
	ts, err := s.List(c.UserContext())
	if err != nil {
		return err
	}
	out := make([]TenantSummary, 0, len(ts))
	for _, t := range ts {
		out = append(out, TenantSummary{ID: t.ID, DisplayName: t.DisplayName})
	}
	return c.JSON(out)
}

func (s *Service) createTenant(c *fiber.Ctx) error {
	var req CreateTenantRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.Config == nil {
		return api.Problems{"config is a required field"}.Err(api.ErrInvalidRequest)
	}
	t, key, err := s.Create(c.UserContext(), CreateInput{DisplayName: req.DisplayName, Config: *req.Config, CreateAPIKey: req.CreateAPIKey})
	if err != nil {
		return err
	}
	resp := CreateTenantResponse{ID: t.ID}
	if key != nil {
		dto := toAPIKeyDTO(key.Key, key.Secret)
		resp.APIKey = &dto
	}
	return c.Status(fiber.StatusCreated).JSON(resp)
}

func (s *Service) getTenant(c *fiber.Ctx) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	t, err := s.store.GetTenant(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(TenantDetail{ID: t.ID, DisplayName: t.DisplayName, Config: t.Config, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt})
}

func (s *Service) renameTenant(c *fiber.Ctx) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	var req struct {
		DisplayName string `json:"display_name"`
	}
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.Rename(c.UserContext(), id, req.DisplayName); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Service) deleteTenant(c *fiber.Ctx) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	if err := s.Delete(c.UserContext(), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Service) putConfig(c *fiber.Ctx) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	var cfg Config
	if err := api.DecodeJSON(c, &cfg); err != nil {
		return err
	}
	if err := s.SetConfig(c.UserContext(), id, cfg); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Service) listAPIKeys(c *fiber.Ctx) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	keys, err := s.ListAPIKeys(c.UserContext(), id)
	if err != nil {
		return err
	}
	out := make([]APIKeyDTO, 0, len(keys))
	for _, k := range keys {
		out = append(out, toAPIKeyDTO(k, ""))
	}
	return c.JSON(out)
}

func (s *Service) createAPIKey(c *fiber.Ctx) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	var req CreateAPIKeyRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	secret, k, err := s.CreateAPIKey(c.UserContext(), id, req.Name, req.Kind, req.ExpiresAt)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toAPIKeyDTO(k, secret))
}

func (s *Service) deleteAPIKey(c *fiber.Ctx) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	keyID, err := uuid.Parse(c.Params("secret_id"))
	if err != nil {
		return api.Problems{"secret_id must be a valid uuid"}.Err(api.ErrInvalidRequest)
	}
	if err := s.DeleteAPIKey(c.UserContext(), id, keyID); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func toSigningKeyDTO(k signing.Key) SigningKeyDTO {
	return SigningKeyDTO{KID: k.ID, Algorithm: k.Algorithm, Active: k.RetiredAt == nil, PublicJWK: k.PublicJWK,
		CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt, ExpiresAt: k.ExpiresAt}
}

func (s *Service) listSigningKeys(c *fiber.Ctx) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	keys, err := s.SigningKeys(c.UserContext(), id)
	if err != nil {
		return err
	}
	out := make([]SigningKeyDTO, 0, len(keys))
	for _, k := range keys {
		out = append(out, toSigningKeyDTO(k))
	}
	return c.JSON(out)
}

func (s *Service) rotateSigningKey(c *fiber.Ctx) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	var req RotateSigningKeyRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.OverlapSeconds < 0 || req.OverlapSeconds > 90*24*3600 {
		return api.Problems{"overlap_seconds must be between 0 and 7776000"}.Err(api.ErrInvalidRequest)
	}
	k, err := s.RotateSigningKey(c.UserContext(), id, time.Duration(req.OverlapSeconds)*time.Second)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toSigningKeyDTO(k))
}
