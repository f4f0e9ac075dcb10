// Package webhooks sends a tenant's domain events to the HTTPS endpoints its application registered,
// signed the Standard Webhooks way (https://www.standardwebhooks.com): endpoints and their event
// selection, the payloads, the signatures, and the delivery policy (retry schedule, Retry-After, 410
// disables, timeout, response cap, the guard against private addresses).
//
// Deliveries are durable: a Store keeps each one with a job of a database-backed queue (River, in
// db/) that calls Sender.Attempt until the endpoint accepts it, the schedule runs out, or the endpoint
// goes away. The package itself imports no queue and no database.
package webhooks

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
)

// The webhook event types: what an endpoint subscribes to, and the "type" of a payload.
const (
	PasskeyRegistered            = "passkey.registered"
	PasskeyDeleted               = "passkey.deleted"
	PasskeyRenamed               = "passkey.renamed"
	LoginSucceeded               = "login.succeeded"
	LoginFailed                  = "login.failed"
	MFARegistered                = "mfa.registered"
	MFASucceeded                 = "mfa.succeeded"
	TransactionSigned            = "transaction.signed"
	TransactionFailed            = "transaction.failed"
	CredentialCloneWarning       = "credential.clone_warning"
	CredentialBackupStateChanged = "credential.backup_state_changed"
	UserDeleted                  = "user.deleted"
	APIKeyCreated                = "api_key.created"
	APIKeyRevoked                = "api_key.revoked"
	SigningKeyRotated            = "signing_key.rotated"
	TenantConfigChanged          = "tenant.config_changed"
	// Test is the type of the message POST …/webhooks/{id}/test sends; nobody subscribes to it.
	Test = "webhook.test"
)

// EventTypes lists every type an endpoint may subscribe to.
var EventTypes = []string{
	PasskeyRegistered, PasskeyDeleted, PasskeyRenamed, LoginSucceeded, LoginFailed, MFARegistered,
	MFASucceeded, TransactionSigned, TransactionFailed, CredentialCloneWarning,
	CredentialBackupStateChanged, UserDeleted, APIKeyCreated, APIKeyRevoked, SigningKeyRotated,
	TenantConfigChanged,
}

// Why an endpoint was disabled (Endpoint.DisabledReason).
const (
	// DisabledByAdmin: an admin set enabled to false.
	DisabledByAdmin = "admin"
	// DisabledGone: the endpoint answered 410 Gone.
	DisabledGone = "gone"
	// DisabledFailing: a delivery failed every attempt of the retry schedule (about three days).
	DisabledFailing = "failing"
)

// Errors of the webhook API.
var (
	ErrNotFound         = passkey.NewError("webhook_not_found", "webhook endpoint not found")
	ErrDeliveryNotFound = passkey.NewError("webhook_delivery_not_found", "webhook delivery not found")
	ErrInvalidEndpoint  = passkey.NewError("invalid_webhook", "the webhook endpoint is not valid")
	// ErrBlockedAddress means a delivery's URL resolved to an address deliveries may not reach
	// (private, loopback, link-local) while PASSKEY_WEBHOOK_ALLOW_PRIVATE is off.
	ErrBlockedAddress = passkey.NewError("webhook_address_blocked", "the webhook URL resolves to a private address")
)

// Endpoint is one URL of a tenant that receives the events it subscribes to.
type Endpoint struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	URL      string
	// Events are the event types it receives, from EventTypes, without repeats.
	Events      []string
	Description string
	Enabled     bool
	// DisabledReason says why it is disabled ("" when enabled): DisabledByAdmin, DisabledGone or
	// DisabledFailing.
	DisabledReason string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Secrets are an endpoint's signing secrets, sealed with the master key. During a rotation the
// previous secret signs too, until PreviousUntil.
type Secrets struct {
	Current       []byte
	Previous      []byte
	PreviousUntil time.Time
}

// Status is the state of a delivery.
type Status string

// The statuses of a delivery.
const (
	// StatusPending: queued, or waiting for its next attempt.
	StatusPending Status = "pending"
	// StatusSucceeded: the endpoint answered 2xx.
	StatusSucceeded Status = "succeeded"
	// StatusFailed: every attempt failed, the endpoint answered 410, or it was disabled or deleted.
	StatusFailed Status = "failed"
)

// Delivery is one message to one endpoint and what became of it.
type Delivery struct {
	ID         uuid.UUID
	TenantID   uuid.UUID
	EndpointID uuid.UUID
	EventType  string
	// Payload is the JSON body sent: {"type","timestamp","data"}.
	Payload        []byte
	Status         Status
	Attempts       int
	LastStatusCode int
	LastError      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Statuses lists every status of a delivery.
var Statuses = []Status{StatusPending, StatusSucceeded, StatusFailed}

// DeliveryFilter selects one page of an endpoint's deliveries, which are listed newest first.
type DeliveryFilter struct {
	// Statuses keeps the deliveries in one of these statuses; empty keeps every status.
	Statuses []Status
	// After continues a listing after the delivery it names (DeliveryPage.Next); nil starts at the
	// newest.
	After *DeliveryCursor
	// Limit is the page size: DefaultDeliveryLimit when zero or below, at most DefaultDeliveryLimit.
	Limit int
}

// Validate checks the filter's rules: known statuses, a page size of at most DefaultDeliveryLimit.
// The problems name the query parameters of the listing (status, per_page).
func (f DeliveryFilter) Validate() error {
	var p passkey.Problems
	for _, st := range f.Statuses {
		if !slices.Contains(Statuses, st) {
			if passkey.StorableText(string(st)) && len(st) <= 32 {
				p.Add("status %q is not one of pending, succeeded, failed", st)
			} else {
				p.Add("status must be one of pending, succeeded, failed")
			}
		}
	}
	if f.Limit > DefaultDeliveryLimit {
		p.Add("per_page cannot be more than %d", DefaultDeliveryLimit)
	}
	return p.Err(passkey.ErrInvalidRequest)
}

// DeliveryCursor is a position in an endpoint's deliveries, newest first: the delivery created at
// CreatedAt with ID. A listing from it returns the deliveries created before CreatedAt, and those
// created at CreatedAt with a smaller ID. Deliveries never change their creation time, so a page
// neither repeats nor skips a delivery when new ones arrive or old ones are deleted meanwhile.
type DeliveryCursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// cursorLen is the size of an encoded cursor: the creation time in Unix microseconds (the precision
// the stores keep), 8 bytes big-endian, then the 16 bytes of the id.
const cursorLen = 8 + 16

// String returns the cursor as an opaque URL-safe token (unpadded base64url), which
// ParseDeliveryCursor reads back.
func (c DeliveryCursor) String() string {
	var b [cursorLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.CreatedAt.UnixMicro()))
	copy(b[8:], c.ID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// errCursor means a cursor is not one that DeliveryCursor.String returned.
var errCursor = errors.New("not a delivery cursor")

// ParseDeliveryCursor reads a cursor that DeliveryCursor.String returned. Anything else is an error,
// and so is a time outside the years 1 to 9999, which the stores cannot compare.
func ParseDeliveryCursor(s string) (DeliveryCursor, error) {
	if len(s) != base64.RawURLEncoding.EncodedLen(cursorLen) { // also refuses the newlines the decoder skips
		return DeliveryCursor{}, errCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != cursorLen {
		return DeliveryCursor{}, errCursor
	}
	at := time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))).UTC()
	if y := at.Year(); y < 1 || y > 9999 {
		return DeliveryCursor{}, errCursor
	}
	c := DeliveryCursor{CreatedAt: at}
	copy(c.ID[:], b[8:])
	return c, nil
}

// DeliveryPage is one page of an endpoint's deliveries, newest first.
type DeliveryPage struct {
	Deliveries []Delivery
	// Next is where the next page starts; nil when this page is the last.
	Next *DeliveryCursor
}

// Subscription is an enabled endpoint and the event types it receives, for the in-memory index that
// keeps the request path free of queries for tenants that have no endpoint.
type Subscription struct {
	TenantID   uuid.UUID
	EndpointID uuid.UUID
	Events     []string
}

// Attempt is the result of one delivery attempt, as the Store records it.
type Attempt struct {
	Status     Status
	Attempts   int
	StatusCode int
	Error      string
	At         time.Time
}

// QueueStats describes the deliveries not done yet, for metrics.
type QueueStats struct {
	Pending int
	// OldestPending is the creation time of the oldest pending delivery (zero when none).
	OldestPending time.Time
}

// Store keeps endpoints and deliveries. Enqueue and Redeliver insert the delivery and its queue job in
// one transaction. Every method is scoped to a tenant.
type Store interface {
	CreateEndpoint(ctx context.Context, ep Endpoint, secrets Secrets) error
	ListEndpoints(ctx context.Context, tenantID uuid.UUID) ([]Endpoint, error)
	// GetEndpoint returns ErrNotFound when the tenant has no such endpoint.
	GetEndpoint(ctx context.Context, tenantID, id uuid.UUID) (Endpoint, error)
	UpdateEndpoint(ctx context.Context, ep Endpoint) error
	DeleteEndpoint(ctx context.Context, tenantID, id uuid.UUID) error
	EndpointSecrets(ctx context.Context, tenantID, id uuid.UUID) (Secrets, error)
	// RotateSecret makes current the signing secret of the endpoint and keeps the one it replaces as
	// the previous secret until previousUntil, in one write: of two rotations at once, each replaces
	// the secret the other left, and no secret is lost without its overlap.
	RotateSecret(ctx context.Context, tenantID, id uuid.UUID, current []byte, previousUntil time.Time) error
	// DeleteFinishedBefore deletes the deliveries of every tenant that are no longer pending and whose
	// last attempt was before before, and returns how many.
	DeleteFinishedBefore(ctx context.Context, before time.Time) (int64, error)
	// Subscriptions returns every enabled endpoint of every tenant.
	Subscriptions(ctx context.Context) ([]Subscription, error)
	// SubscriptionsRevision returns a number that changes, in the same transaction, with every change
	// of what Subscriptions returns.
	SubscriptionsRevision(ctx context.Context) (int64, error)
	// Enqueue stores one pending delivery of payload for each of endpointIDs that is still an
	// enabled endpoint of the tenant, and its job, in one transaction; it returns the deliveries made.
	Enqueue(ctx context.Context, tenantID uuid.UUID, endpointIDs []uuid.UUID, eventType string, payload []byte) ([]Delivery, error)
	// ListDeliveries returns at most f.Limit (which is positive) of an endpoint's deliveries whose
	// status is one of f.Statuses (every status when empty, never repeated), newest first (created_at,
	// then id, descending), starting after f.After (at the newest when nil).
	ListDeliveries(ctx context.Context, tenantID, endpointID uuid.UUID, f DeliveryFilter) ([]Delivery, error)
	// GetDelivery returns ErrDeliveryNotFound when the tenant has no such delivery.
	GetDelivery(ctx context.Context, tenantID, id uuid.UUID) (Delivery, error)
	// Redeliver makes a delivery pending again with a new job, in one transaction.
	Redeliver(ctx context.Context, tenantID, id uuid.UUID) (Delivery, error)
	RecordAttempt(ctx context.Context, tenantID, id uuid.UUID, a Attempt) error
	// DisableEndpoint disables an enabled endpoint, reporting whether it was enabled.
	DisableEndpoint(ctx context.Context, tenantID, id uuid.UUID, reason string) (bool, error)
	// SucceededSince reports whether a delivery to the endpoint succeeded after since.
	SucceededSince(ctx context.Context, tenantID, endpointID uuid.UUID, since time.Time) (bool, error)
	QueueStats(ctx context.Context) (QueueStats, error)
}

// Sealer seals and opens secrets with the master key (signing.Sealer).
type Sealer interface {
	Seal(plaintext, additionalData []byte) ([]byte, error)
	Open(ciphertext, additionalData []byte) ([]byte, error)
}

// Tenants tells whether a tenant exists (tenant.Service).
type Tenants interface {
	Exists(ctx context.Context, id uuid.UUID) error
}
