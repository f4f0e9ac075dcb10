package transactions

import (
	"context"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
)

// Sentinel errors of this package.
var (
	// ErrExists means the tenant already has a transaction with that transaction_id (in any state).
	ErrExists = passkey.NewError("transaction_exists", "transaction already exists")
	// ErrNotFound means no pending transaction matches.
	ErrNotFound = passkey.NewError("transaction_not_found", "no transaction found for this challenge")
	// ErrInvalidResponse means the body of transaction/finalize is not a credential assertion.
	ErrInvalidResponse = passkey.NewError("invalid_credential_response", "unable to finish transaction")
	// ErrDataTooLarge means transaction_data is larger than MaxDataBytes.
	ErrDataTooLarge = passkey.NewError("transaction_data_too_large", "transaction_data is too large")
)

// Status is the state of a transaction.
type Status string

// The states of a transaction. Expired is never stored: a pending transaction past ExpiresAt reads as
// expired.
const (
	StatusPending   Status = "pending"
	StatusConfirmed Status = "confirmed"
	StatusFailed    Status = "failed"
	StatusExpired   Status = "expired"
)

// Transaction is one request to confirm data (a payment, a change of address) with a passkey.
type Transaction struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	// UserKey is the internal id of the user who must confirm; AppUserID the application's id (filled on
	// reads).
	UserKey   uuid.UUID
	AppUserID string
	// Identifier is the application's transaction_id, unique in the tenant while the transaction exists (deleting its user deletes it).
	Identifier string
	// Data is the canonical JSON (RFC 8785) of the transaction data; DataHash its SHA-256.
	Data     string
	DataHash []byte
	// Challenge is the WebAuthn challenge, base64url: 32 random bytes followed by
	// SHA-256(Identifier ‖ Data).
	Challenge    string
	Status       Status
	CredentialID *string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	ConfirmedAt  *time.Time
	ExpiresAt    time.Time
}

// EffectiveStatus is the status as of now: a pending transaction past its expiry is expired.
func (t Transaction) EffectiveStatus(now time.Time) Status {
	if t.Status == StatusPending && !now.Before(t.ExpiresAt) {
		return StatusExpired
	}
	return t.Status
}

// ListFilter selects and pages a user's transactions, newest first.
type ListFilter struct {
	// UserKey is the internal id of the user.
	UserKey uuid.UUID
	// Page is the page to return (passkey.Page.Normalized applies the defaults).
	Page passkey.Page
}

// Store persists transactions. Every method is scoped to one tenant.
type Store interface {
	// Create stores a new pending transaction; ErrExists when the identifier is taken in the tenant.
	Create(ctx context.Context, t Transaction) error
	// ByChallenge returns the tenant's transaction with that challenge, or ErrNotFound.
	ByChallenge(ctx context.Context, tenantID uuid.UUID, challenge string) (Transaction, error)
	// Finish moves a pending transaction to confirmed (with the credential and confirmedAt) or failed.
	// It changes nothing and returns ErrNotFound when the transaction is not pending.
	Finish(ctx context.Context, tenantID, id uuid.UUID, status Status, credentialID *string, at time.Time) error
	// List returns one page of a user's transactions, newest first, and the total count.
	List(ctx context.Context, tenantID uuid.UUID, f ListFilter) ([]Transaction, int, error)
}
