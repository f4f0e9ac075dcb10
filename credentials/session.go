// Package credentials holds passkeys: the credential record, the go-webauthn user adapter, the
// registration and login ceremonies and credential management.
package credentials

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Ceremony names one kind of WebAuthn ceremony. A session is bound to exactly one: a challenge issued for
// a registration can never finish a login, an MFA login or a transaction, and so on.
type Ceremony string

// The ceremonies of the service.
const (
	CeremonyRegistration    Ceremony = "registration"
	CeremonyLogin           Ceremony = "login"
	CeremonyMFARegistration Ceremony = "mfa_registration"
	CeremonyMFALogin        Ceremony = "mfa_login"
	CeremonyTransaction     Ceremony = "transaction"
)

// ErrSessionNotFound means no live session matches the tenant, ceremony and challenge: it never existed,
// was already consumed, or expired.
var ErrSessionNotFound = errors.New("received challenge does not match with any stored one")

// Session is the server-side state of one ceremony between initialize and finalize.
type Session struct {
	TenantID uuid.UUID
	Ceremony Ceremony
	// Challenge is the base64url (unpadded) challenge sent to the browser; it is the session's key.
	Challenge string
	// UserID is the internal id of the user the ceremony is for, so that deleting the user deletes its
	// sessions; uuid.Nil for a discoverable login, which is for nobody yet.
	UserID uuid.UUID
	// Data is the opaque ceremony state (go-webauthn's SessionData and what the ceremony adds), JSON.
	Data []byte
	// ExpiresAt is when the ceremony times out; the session is unusable from then on.
	ExpiresAt time.Time
}

// SessionStore keeps ceremony sessions between initialize and finalize.
//
// Contract (checked by db's session conformance suite for every implementation):
//   - Put stores s under (TenantID, Ceremony, Challenge) until s.ExpiresAt.
//   - Consume returns the session and deletes it in one atomic step: of any number of concurrent
//     Consume calls for one session, on any number of instances, exactly one succeeds.
//   - Consume returns ErrSessionNotFound for an unknown, consumed or expired session, and for a session
//     stored under another tenant or ceremony.
//   - DeleteUser deletes every session of one user of one tenant (s.UserID), whatever its ceremony;
//     the sessions of other users and tenants, and discoverable ones, stay.
//   - DeleteTenant deletes every session of one tenant; other tenants' sessions stay.
type SessionStore interface {
	Put(ctx context.Context, s Session) error
	Consume(ctx context.Context, tenantID uuid.UUID, ceremony Ceremony, challenge string) (Session, error)
	DeleteUser(ctx context.Context, tenantID, userID uuid.UUID) error
	DeleteTenant(ctx context.Context, tenantID uuid.UUID) error
}
