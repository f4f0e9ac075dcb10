package transactions

import (
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/api"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/tenant"
)

// Handlers serve the transaction routes of both route families.
type Handlers struct {
	svc     *Service
	tenants *tenant.Service
}

// NewHandlers returns the transaction handlers.
func NewHandlers(svc *Service, tenants *tenant.Service) *Handlers {
	return &Handlers{svc: svc, tenants: tenants}
}

// Routes registers POST /initialize, POST /finalize and GET /{user_id} (contract §1.1 P7-P9) on r, for
// either family: r is /{tenant_id}/transaction or the key-scoped /transaction. All need a secret key.
func (h *Handlers) Routes(r fiber.Router) {
	secret := h.tenants.RequireKey(false)
	r.Post("/initialize", secret, h.initialize)
	r.Post("/finalize", secret, h.finalize)
	r.Get("/:user_id", secret, h.list)
}

// Response is a transaction on the wire: Hanko's shape (data as a JSON text) plus its status, the
// credential that confirmed it and the times.
type Response struct {
	ID           uuid.UUID  `json:"id"`
	Identifier   string     `json:"identifier"`
	Data         string     `json:"data"`
	Status       Status     `json:"status"`
	UserID       string     `json:"user_id"`
	CredentialID *string    `json:"credential_id"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	ConfirmedAt  *time.Time `json:"confirmed_at"`
	ExpiresAt    time.Time  `json:"expires_at"`
}

func (h *Handlers) initialize(c *fiber.Ctx) error {
	var req InitRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	assertion, err := h.svc.Begin(c.UserContext(), tenant.FromContext(c), req)
	if err != nil {
		return err
	}
	return c.JSON(assertion)
}

func (h *Handlers) finalize(c *fiber.Ctx) error {
	token, err := h.svc.Finish(c.UserContext(), tenant.FromContext(c), c.Body())
	if err != nil {
		return err
	}
	return c.JSON(credentials.TokenResponse{Token: token})
}

func (h *Handlers) list(c *fiber.Ctx) error {
	page, perPage, err := api.Page(c)
	if err != nil {
		return err
	}
	txs, total, err := h.svc.List(c.UserContext(), tenant.FromContext(c), c.Params("user_id"), page, perPage)
	if err != nil {
		return err
	}
	now := h.svc.Now()
	out := make([]Response, 0, len(txs))
	for _, t := range txs {
		out = append(out, Response{ID: t.ID, Identifier: t.Identifier, Data: t.Data, Status: t.EffectiveStatus(now),
			UserID: t.AppUserID, CredentialID: t.CredentialID, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
			ConfirmedAt: t.ConfirmedAt, ExpiresAt: t.ExpiresAt})
	}
	api.SetPaginationHeaders(c, page, perPage, total)
	return c.JSON(out)
}
