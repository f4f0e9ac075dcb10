package httpapi

import (
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/transactions"
)

// TransactionResponse is a transaction on the wire: Hanko's shape (data as a JSON text,
// docs/hanko-compatibility.md#transactions) plus its status, the credential that confirmed it and the
// times.
type TransactionResponse struct {
	ID           uuid.UUID           `json:"id"`
	Identifier   string              `json:"identifier"`
	Data         string              `json:"data"`
	Status       transactions.Status `json:"status"`
	UserID       string              `json:"user_id"`
	CredentialID *string             `json:"credential_id"`
	CreatedAt    time.Time           `json:"created_at"`
	UpdatedAt    time.Time           `json:"updated_at"`
	ConfirmedAt  *time.Time          `json:"confirmed_at"`
	ExpiresAt    time.Time           `json:"expires_at"`
}

func (s *server) transactionInitialize(c *fiber.Ctx) error {
	var req transactions.InitRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	assertion, err := s.Transactions.Begin(c.UserContext(), snapshotOf(c), req)
	if err != nil {
		return err
	}
	return c.JSON(assertion)
}

func (s *server) transactionFinalize(c *fiber.Ctx) error {
	token, _, err := s.Transactions.Finish(c.UserContext(), snapshotOf(c), c.Body())
	if err != nil {
		return err
	}
	return c.JSON(TokenResponse{Token: token})
}

func (s *server) listTransactions(c *fiber.Ctx) error {
	var p passkey.Problems
	page := pageOf(c, &p)
	if err := p.Err(passkey.ErrInvalidRequest); err != nil {
		return err
	}
	user, err := pathParam(c, "user_id")
	if err != nil {
		return err
	}
	txs, total, err := s.Transactions.List(c.UserContext(), snapshotOf(c), user, page)
	if err != nil {
		return err
	}
	s.setPaginationHeaders(c, page, total)
	return c.JSON(s.transactionResponses(txs))
}

// transactionResponses converts transactions to their wire shape, with their status as of now.
func (s *server) transactionResponses(txs []transactions.Transaction) []TransactionResponse {
	now := s.Transactions.Now()
	out := make([]TransactionResponse, 0, len(txs))
	for _, t := range txs {
		out = append(out, TransactionResponse{ID: t.ID, Identifier: t.Identifier, Data: t.Data, Status: t.EffectiveStatus(now),
			UserID: t.AppUserID, CredentialID: t.CredentialID, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
			ConfirmedAt: t.ConfirmedAt, ExpiresAt: t.ExpiresAt})
	}
	return out
}
