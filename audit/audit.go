// Package audit records what happens to a tenant: every ceremony initialize and finalize, success and
// failure, credential changes and admin changes, and answers queries over those events.
package audit

import (
	"context"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
)

// ErrInvalidFilter means an audit log query has a filter that is not valid; details say which.
var ErrInvalidFilter = passkey.NewError("invalid_filter", "unable to list audit logs")

// Event is one audit log entry (docs/hanko-compatibility.md#audit-log-entry, plus tenant, ceremony and
// details).
type Event struct {
	ID uuid.UUID
	// TenantID is nil for deployment-wide events (and for the deletion of a tenant, whose id is then
	// in Details, since deleting a tenant deletes its events).
	TenantID *uuid.UUID
	// Type is one of Hanko's types (webauthn_registration_init_succeeded, ...) or one of ours for admin
	// changes (tenant_created, api_key_created, signing_key_rotated, user_deleted, ...).
	Type string
	// Ceremony is the ceremony of a ceremony event (registration, login, mfa_registration, mfa_login,
	// transaction).
	Ceremony string
	// Error is the stable error code and details of a failed request, never internal error text.
	Error         string
	RequestID     string
	SourceIP      string
	UserAgent     string
	ActorUserID   string
	TransactionID string
	Details       map[string]any
	CreatedAt     time.Time
}

// Filter selects audit events (docs/hanko-compatibility.md#audit-log-filters). Every value is passed to
// the database as a parameter.
type Filter struct {
	// TenantID restricts to one tenant; nil means deployment-wide events only.
	TenantID *uuid.UUID
	// Types is a set of exact types (the query parameter "type", repeated or comma-separated).
	Types []string
	// Start and End bound created_at exclusively when not zero.
	Start, End time.Time
	// ActorUserID, SourceIP and Q match substrings (Q: the source IP or the actor).
	ActorUserID string
	SourceIP    string
	Q           string
	// Page is the page to return (passkey.Page.Normalized applies the defaults).
	Page passkey.Page
}

// Store persists audit events.
type Store interface {
	// Insert stores events in one statement (one commit for a whole batch). Events of tenants that no
	// longer exist are left out (their tenant's other events were deleted with it), and so are events
	// whose ID is already stored: the Recorder writes a batch again when the store's reply was lost,
	// though the batch may have been committed. Insert must not keep events after it returns: the
	// Recorder reuses the slice.
	Insert(ctx context.Context, events []Event) error
	// List returns one page of matching events, newest first, and the total count.
	List(ctx context.Context, f Filter) ([]Event, int, error)
	// DeleteBefore removes events created before t and returns how many.
	DeleteBefore(ctx context.Context, t time.Time) (int, error)
}
