package credentials

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/api"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/tenant"
)

// Handlers serve the passkey routes of both route families from one set of handler functions.
type Handlers struct {
	svc     *Service
	tenants *tenant.Service
}

// NewHandlers returns the HTTP handlers of the ceremony service.
func NewHandlers(svc *Service, tenants *tenant.Service) *Handlers {
	return &Handlers{svc: svc, tenants: tenants}
}

// Service returns the ceremony service behind the handlers.
func (h *Handlers) Service() *Service { return h.svc }

// TenantRoutes registers Hanko's routes (contract §1.1 P3-P6, P14-P17) on a router whose tenant comes
// from the path (tenant.PathTenant).
func (h *Handlers) TenantRoutes(r fiber.Router) {
	secret := h.tenants.RequireKey(false)
	r.Post("/registration/initialize", secret, h.RegistrationInitialize(CeremonyRegistration))
	r.Post("/registration/finalize", h.RegistrationFinalize(CeremonyRegistration))
	r.Post("/login/initialize", h.loginInitialize(CeremonyLogin))
	r.Post("/login/finalize", h.LoginFinalize(CeremonyLogin))
	h.managementRoutes(r.Group("/credentials", secret))
}

// KeyRoutes registers the key-scoped routes (DESIGN.md) on a router whose tenant comes from the API key
// (tenant.KeyTenant). Publishable keys may call registration finalize and the login routes
// (discoverable login only); everything else needs a secret key.
func (h *Handlers) KeyRoutes(r fiber.Router) {
	secret, publishable := h.tenants.RequireKey(false), h.tenants.RequireKey(true)
	r.Post("/register/initialize", secret, h.RegistrationInitialize(CeremonyRegistration))
	r.Post("/register/finalize", publishable, h.RegistrationFinalize(CeremonyRegistration))
	r.Post("/login/initialize", publishable, h.loginInitialize(CeremonyLogin))
	r.Post("/login/finalize", publishable, h.LoginFinalize(CeremonyLogin))
	h.managementRoutes(r.Group("/", secret))
}

func (h *Handlers) managementRoutes(r fiber.Router) {
	r.Get("/", h.list)
	r.Get("/:credential_id", h.get)
	r.Patch("/:credential_id", h.rename)
	r.Delete("/:credential_id", h.remove)
}

// TokenResponse is the answer of every finalize call.
type TokenResponse struct {
	Token string `json:"token"`
}

// LoginRequest is the optional body of login/initialize.
type LoginRequest struct {
	UserID *string `json:"user_id"`
}

// CredentialResponse is a credential on the wire: Hanko's shape (contract §1.4) plus the authenticator's
// name and icons from the AAGUID table, the user verification flag and the clone warning.
type CredentialResponse struct {
	ID                      string     `json:"id"`
	Name                    *string    `json:"name,omitempty"`
	PublicKey               string     `json:"public_key"`
	AttestationType         string     `json:"attestation_type"`
	AAGUID                  uuid.UUID  `json:"aaguid"`
	LastUsedAt              *time.Time `json:"last_used_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	Transports              []string   `json:"transports"`
	BackupEligible          bool       `json:"backup_eligible"`
	BackupState             bool       `json:"backup_state"`
	IsMFA                   bool       `json:"is_mfa"`
	UserID                  string     `json:"user_id"`
	UserVerified            bool       `json:"user_verified"`
	CloneWarning            bool       `json:"clone_warning"`
	AuthenticatorAttachment string     `json:"authenticator_attachment,omitempty"`
	AuthenticatorName       string     `json:"authenticator_name,omitempty"`
	IconLight               string     `json:"icon_light,omitempty"`
	IconDark                string     `json:"icon_dark,omitempty"`
}

func (h *Handlers) response(c Credential) CredentialResponse {
	r := CredentialResponse{
		ID: c.ID, Name: c.Name, PublicKey: base64.RawURLEncoding.EncodeToString(c.PublicKey),
		AttestationType: c.AttestationType, AAGUID: c.AAGUID, LastUsedAt: c.LastUsedAt, CreatedAt: c.CreatedAt,
		Transports: c.Transports, BackupEligible: c.BackupEligible, BackupState: c.BackupState, IsMFA: c.IsMFA,
		UserID: c.AppUserID, UserVerified: c.UserVerified, CloneWarning: c.CloneWarning,
		AuthenticatorAttachment: c.AuthenticatorAttachment,
	}
	if r.Transports == nil {
		r.Transports = []string{}
	}
	if a, ok := h.svc.Authenticator(c); ok {
		r.AuthenticatorName, r.IconLight, r.IconDark = a.Name, a.IconLight, a.IconDark
	}
	return r
}

// RegistrationInitialize answers a registration initialize of the ceremony (RegistrationRequest body).
func (h *Handlers) RegistrationInitialize(ceremony Ceremony) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req RegistrationRequest
		if err := api.DecodeJSON(c, &req); err != nil {
			return err
		}
		audit.SetActor(c, req.UserID)
		creation, err := h.svc.BeginRegistration(c.UserContext(), tenant.FromContext(c), ceremony, req)
		if err != nil {
			return err
		}
		return c.JSON(creation)
	}
}

// RegistrationFinalize answers a registration finalize of the ceremony with a token.
func (h *Handlers) RegistrationFinalize(ceremony Ceremony) fiber.Handler {
	return func(c *fiber.Ctx) error {
		res, err := h.svc.FinishRegistration(c.UserContext(), tenant.FromContext(c), ceremony, c.Body())
		if err != nil {
			return err
		}
		audit.SetActor(c, res.User.UserID)
		return c.JSON(TokenResponse{Token: res.Token})
	}
}

// loginInitialize starts a login. Without user_id it is discoverable and public; with user_id it
// reveals which credentials a user has, so it needs a secret API key (Hanko: any API key).
func (h *Handlers) loginInitialize(ceremony Ceremony) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req LoginRequest
		if err := api.DecodeJSON(c, &req); err != nil {
			return err
		}
		userID := ""
		if req.UserID != nil {
			if *req.UserID == "" {
				return api.Problems{"user_id must at least have 1 entry"}.Err(api.ErrInvalidRequest)
			}
			k, err := h.tenants.RequestKey(c)
			if err != nil {
				return err
			}
			if k.Kind != tenant.KindSecret {
				return tenant.ErrForbiddenKey
			}
			userID = *req.UserID
			audit.SetActor(c, userID)
		}
		assertion, err := h.svc.BeginLogin(c.UserContext(), tenant.FromContext(c), ceremony, userID)
		if err != nil {
			return err
		}
		return c.JSON(assertion)
	}
}

// LoginFinalize answers a login finalize of the ceremony with a token.
func (h *Handlers) LoginFinalize(ceremony Ceremony) fiber.Handler {
	return func(c *fiber.Ctx) error {
		res, err := h.svc.FinishLogin(c.UserContext(), tenant.FromContext(c), ceremony, c.Body())
		if err != nil {
			return err
		}
		audit.SetActor(c, res.User.UserID)
		return c.JSON(TokenResponse{Token: res.Token})
	}
}

func (h *Handlers) list(c *fiber.Ctx) error {
	page, perPage, err := api.Page(c)
	if err != nil {
		return err
	}
	f := ListFilter{AppUserID: c.Query("user_id"), Page: passkey.Page{Number: page, Size: perPage}}
	switch strings.ToLower(c.Query("order", "desc")) {
	case "desc":
	case "asc":
		f.Ascending = true
	default:
		return api.Problems{"order must be one of 'desc asc'"}.Err(api.ErrInvalidRequest)
	}
	creds, total, err := h.svc.List(c.UserContext(), tenant.FromContext(c), f)
	if err != nil {
		return err
	}
	out := make([]CredentialResponse, 0, len(creds))
	for _, cr := range creds {
		out = append(out, h.response(cr))
	}
	api.SetPaginationHeaders(c, page, perPage, total)
	return c.JSON(out)
}

func (h *Handlers) get(c *fiber.Ctx) error {
	id, err := api.PathParam(c, "credential_id")
	if err != nil {
		return err
	}
	cred, err := h.svc.Get(c.UserContext(), tenant.FromContext(c), id)
	if err != nil {
		return err
	}
	return c.JSON(h.response(cred))
}

func (h *Handlers) rename(c *fiber.Ctx) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	id, err := h.setOwner(c)
	if err != nil {
		return err
	}
	if err := h.svc.Rename(c.UserContext(), tenant.FromContext(c), id, req.Name); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *Handlers) remove(c *fiber.Ctx) error {
	id, err := h.setOwner(c)
	if err != nil {
		return err
	}
	if err := h.svc.Delete(c.UserContext(), tenant.FromContext(c), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// setOwner makes the owner of the credential in the path the actor of the request's audit event, so
// that a user's audit trail (actor_user_id) shows the renaming and deletion of their passkeys. It
// returns the decoded credential id.
func (h *Handlers) setOwner(c *fiber.Ctx) (string, error) {
	id, err := api.PathParam(c, "credential_id")
	if err != nil {
		return "", err
	}
	cred, err := h.svc.Get(c.UserContext(), tenant.FromContext(c), id)
	if err != nil {
		return "", err
	}
	audit.SetActor(c, cred.AppUserID)
	return id, nil
}
