package transactions

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/api"
	"github.com/passkey-server/passkey-server/audit"
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
	audit.SetActor(c, req.UserID)
	audit.SetTransaction(c, req.TransactionID)
	assertion, err := h.svc.Begin(c.UserContext(), tenant.FromContext(c), req)
	if err != nil {
		return err
	}
	return c.JSON(assertion)
}

func (h *Handlers) finalize(c *fiber.Ctx) error {
	token, tx, err := h.svc.Finish(c.UserContext(), tenant.FromContext(c), c.Body())
	if tx.Identifier != "" {
		audit.SetActor(c, tx.AppUserID)
		audit.SetTransaction(c, tx.Identifier)
	}
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
	user, err := api.PathParam(c, "user_id")
	if err != nil {
		return err
	}
	txs, total, err := h.svc.List(c.UserContext(), tenant.FromContext(c), user, page, perPage)
	if err != nil {
		return err
	}
	api.SetPaginationHeaders(c, page, perPage, total)
	return c.JSON(h.responses(txs))
}

// UserTransactions lists a user's newest transactions (at most api.MaxPerPage) for the admin user
// detail; it is the credentials.UserTransactions of the admin app.
func (h *Handlers) UserTransactions(ctx context.Context, snap *tenant.Snapshot, u credentials.User) (any, error) {
	txs, err := h.svc.OfUser(ctx, snap, u)
	if err != nil {
		return nil, err
	}
	return h.responses(txs), nil
}

// responses converts transactions to their wire shape, with their status as of now.
func (h *Handlers) responses(txs []Transaction) []Response {
	now := h.svc.Now()
	out := make([]Response, 0, len(txs))
	for _, t := range txs {
		out = append(out, Response{ID: t.ID, Identifier: t.Identifier, Data: t.Data, Status: t.EffectiveStatus(now),
			UserID: t.AppUserID, CredentialID: t.CredentialID, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
			ConfirmedAt: t.ConfirmedAt, ExpiresAt: t.ExpiresAt})
	}
	return out
}
