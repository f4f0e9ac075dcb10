package credentials

import (
	"context"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/attestation"
)

// User is a user of a tenant's application, known to us only by the application's opaque AppUserID.
// Its Key is our own internal id; the two are never confused: AppUserID is a string the application
// chose, Key a UUID this service chose.
type User struct {
	// Key is our internal id (Hanko's "webauthn user id"); never the WebAuthn user handle.
	Key      uuid.UUID
	TenantID uuid.UUID
	// AppUserID is the application's id of the user. Its UTF-8 bytes are the WebAuthn user handle, so it is
	// at most 64 bytes (WebAuthn §5.4.3).
	AppUserID   string
	Name        string
	DisplayName string
	Icon        *string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Credential is a stored public key credential (WebAuthn §4 "credential record").
type Credential struct {
	// ID is the credential id, base64url without padding.
	ID       string
	TenantID uuid.UUID
	// UserKey is the owning user's internal id; AppUserID its application user id (filled on reads).
	UserKey   uuid.UUID
	AppUserID string
	Name      *string
	// PublicKey is the COSE_Key of the credential.
	PublicKey []byte
	// AttestationType is the attestation statement format ("none", "packed", ...), as Hanko reports it.
	AttestationType string
	AAGUID          uuid.UUID
	SignCount       uint32
	// CloneWarning is set once a login showed a signature counter that did not grow (WebAuthn §6.1.1).
	CloneWarning            bool
	BackupEligible          bool
	BackupState             bool
	UserPresent             bool
	UserVerified            bool
	Transports              []string
	AuthenticatorAttachment string
	// IsMFA marks credentials registered as a second factor; plain login never accepts them.
	IsMFA bool
	// Attestation is the judgement of the credential's attestation at registration (verdict, root,
	// MDS status and certification level, the policy rules it broke); its Status changes when a login
	// finds the authenticator revoked since. The zero value: registered before attestation was judged.
	Attestation attestation.Record
	CreatedAt   time.Time
	UpdatedAt   time.Time
	LastUsedAt  *time.Time
}

// user is the owner of c as a login knows it: the keys that identify the user (Key, AppUserID), read
// with the credential in one statement. A login needs no more of the user (the token's subject is the
// AppUserID), so its finalize reads nothing else.
func (c Credential) user() User {
	return User{Key: c.UserKey, TenantID: c.TenantID, AppUserID: c.AppUserID}
}

// LoginUpdate is what a successful login writes back to its credential (WebAuthn §7.2 steps 21-25).
type LoginUpdate struct {
	SignCount      uint32
	CloneWarning   bool
	BackupEligible bool
	BackupState    bool
	UserVerified   bool
	LastUsedAt     time.Time
	// MDSStatus, when not empty, replaces the stored MDS status (Attestation.Status): a login found
	// the authenticator's status changed and the tenant's policy only monitors.
	MDSStatus string
}

// ListFilter selects and pages credentials of a tenant.
type ListFilter struct {
	// AppUserID restricts the list to one application user; empty means every user of the tenant.
	AppUserID string
	// Page is the page to return (passkey.Page.Normalized applies the defaults).
	Page passkey.Page
	// Ascending orders by created_at ascending; the default is newest first.
	Ascending bool
}

// Store persists users and credentials. Every method is scoped to one tenant: a call for tenant A never
// reads, changes or deletes tenant B's rows.
type Store interface {
	// UpsertUser creates the user (tenant, u.AppUserID) or updates its name, display name and icon, and
	// returns the stored user with its internal ID.
	UpsertUser(ctx context.Context, u User) (User, error)
	// UserByAppID returns the user with the application's user id, or ErrUserNotFound.
	UserByAppID(ctx context.Context, tenantID uuid.UUID, appUserID string) (User, error)
	// UserByKey returns the user with the internal id, or ErrUserNotFound.
	UserByKey(ctx context.Context, tenantID, userKey uuid.UUID) (User, error)
	// LoginUser returns the user with the application's user id and all its credentials, oldest first,
	// in one statement (the initialize of a login that names its user), or ErrUserNotFound. A user
	// without credentials has an empty list.
	LoginUser(ctx context.Context, tenantID uuid.UUID, appUserID string) (User, []Credential, error)

	// CreateCredential stores a new credential; ErrCredentialExists when its id is taken in the tenant,
	// ErrUserNotFound when its user does not exist in the tenant.
	CreateCredential(ctx context.Context, c Credential) error
	// Credential returns one credential (with its user's AppUserID) in one statement, or
	// ErrCredentialNotFound. It is the one read of a login's finalize.
	Credential(ctx context.Context, tenantID uuid.UUID, id string) (Credential, error)
	// CredentialsOfUser returns all credentials of a user, oldest first.
	CredentialsOfUser(ctx context.Context, tenantID, userKey uuid.UUID) ([]Credential, error)
	// ListCredentials returns one page of the tenant's credentials and the total count.
	ListCredentials(ctx context.Context, tenantID uuid.UUID, f ListFilter) ([]Credential, int, error)
	// RecordLogin writes back the result of a successful login, or ErrCredentialNotFound. The stored
	// counter never decreases and the clone warning, once set, stays.
	RecordLogin(ctx context.Context, tenantID uuid.UUID, id string, u LoginUpdate) error
	// FlagCloneWarning sets a credential's clone warning and nothing else, or ErrCredentialNotFound.
	FlagCloneWarning(ctx context.Context, tenantID uuid.UUID, id string) error
	// RenameCredential sets a credential's name, or ErrCredentialNotFound.
	RenameCredential(ctx context.Context, tenantID uuid.UUID, id, name string) error
	// DeleteCredential removes a credential, or ErrCredentialNotFound.
	DeleteCredential(ctx context.Context, tenantID uuid.UUID, id string) error

	// ListUsers returns one page of the tenant's users in the filter's order and the total count.
	ListUsers(ctx context.Context, tenantID uuid.UUID, f UserFilter) ([]User, int, error)
	// DeleteUser removes a user with all its credentials and transactions, or ErrUserNotFound.
	DeleteUser(ctx context.Context, tenantID, userKey uuid.UUID) error
}
