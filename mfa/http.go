package mfa

import (
	"github.com/gofiber/fiber/v2"

	"github.com/passkey-server/passkey-server/api"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/tenant"
)

// Handlers serve the MFA routes of both route families. The ceremonies are the credentials ceremonies
// with the tenant's MFA profile; what makes them second-factor ceremonies is recorded in the session at
// initialize (so a passkey registration session can never finish on an MFA route, or the reverse), in
// the stored credential (is_mfa), and in the token (ceremony "mfa_registration" or "mfa_login").
type Handlers struct {
	creds   *credentials.Handlers
	tenants *tenant.Service
}

// NewHandlers returns the MFA handlers.
func NewHandlers(creds *credentials.Handlers, tenants *tenant.Service) *Handlers {
	return &Handlers{creds: creds, tenants: tenants}
}

// TenantRoutes registers Hanko's MFA routes (contract §1.1 P10-P13) on a router whose tenant comes from
// the path. All four need a secret API key: MFA runs beside the application's own password check, on
// its server.
func (h *Handlers) TenantRoutes(r fiber.Router) {
	h.routes(r.Group("/mfa", h.tenants.RequireKey(false)), "/registration")
}

// KeyRoutes registers the key-scoped MFA routes (/credentials/mfa/register/..., /credentials/mfa/login/...)
// on a router whose tenant comes from the API key.
func (h *Handlers) KeyRoutes(r fiber.Router) {
	h.routes(r.Group("/mfa", h.tenants.RequireKey(false)), "/register")
}

func (h *Handlers) routes(r fiber.Router, registration string) {
	r.Post(registration+"/initialize", h.creds.RegistrationInitialize(credentials.CeremonyMFARegistration))
	r.Post(registration+"/finalize", h.creds.RegistrationFinalize(credentials.CeremonyMFARegistration))
	r.Post("/login/initialize", h.loginInitialize)
	r.Post("/login/finalize", h.creds.LoginFinalize(credentials.CeremonyMFALogin))
}

// loginInitialize starts an MFA login for the user named in the body (required): allowCredentials lists
// the user's MFA credentials and passkeys, and only this user's credentials can finish it.
func (h *Handlers) loginInitialize(c *fiber.Ctx) error {
	var req struct {
		UserID string `json:"user_id"`
	}
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.UserID == "" {
		return api.Problems{"user_id is a required field"}.Err(api.ErrInvalidRequest)
	}
	audit.SetActor(c, req.UserID)
	assertion, err := h.creds.Service().BeginLogin(c.UserContext(), tenant.FromContext(c), credentials.CeremonyMFALogin, req.UserID)
	if err != nil {
		return err
	}
	return c.JSON(assertion)
}
