package credentials

import (
	"context"
	"errors"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/tenant"
)

// The orders of a user list (UserFilter.SortBy).
const (
	// UserSortCreatedAt orders users by creation time, ties broken by internal id. It is the default.
	UserSortCreatedAt = "created_at"
	// UserSortUserID orders users by the application's user id, compared byte by byte on every
	// database (so "Bob" comes before "alice").
	UserSortUserID = "user_id"
)

// UserFilter selects and pages the users of a tenant.
type UserFilter struct {
	// Page is the page to return (passkey.Page.Normalized applies the defaults).
	Page passkey.Page
	// Ascending reverses the default order, which is descending (newest first for UserSortCreatedAt).
	Ascending bool
	// SortBy is UserSortCreatedAt (also when empty) or UserSortUserID.
	SortBy string
}

// UserDetail is a user with every one of its credentials, oldest first.
type UserDetail struct {
	User        User
	Credentials []Credential
}

// Validate checks the filter's rules: SortBy must be UserSortCreatedAt, UserSortUserID or empty.
func (f UserFilter) Validate() error {
	switch f.SortBy {
	case "", UserSortCreatedAt, UserSortUserID:
		return nil
	}
	return passkey.Invalid("sort_by must be created_at or user_id")
}

// ListUsers returns one page of the tenant's users and the total count. A filter that breaks its
// rules (UserFilter.Validate) is a passkey.ErrInvalidRequest.
func (s *Service) ListUsers(ctx context.Context, snap *tenant.Snapshot, f UserFilter) ([]User, int, error) {
	if err := f.Validate(); err != nil {
		return nil, 0, err
	}
	if f.SortBy == "" {
		f.SortBy = UserSortCreatedAt
	}
	return s.store.ListUsers(ctx, snap.ID, f)
}

// UserByRef returns the tenant's user that ref names: the user with that application user id or, when
// there is none and ref is a UUID, the user with that internal id (Hanko's admin API takes internal
// ids, docs/hanko-compatibility.md#internal-user-ids). The application id wins when both match. A user
// of another tenant is never found, whatever ref is (unlike Hanko's,
// docs/hanko-compatibility.md#admin-users-ignore-the-tenant).
func (s *Service) UserByRef(ctx context.Context, snap *tenant.Snapshot, ref string) (User, error) {
	u, err := s.User(ctx, snap, ref)
	if !errors.Is(err, ErrUserNotFound) {
		return u, err
	}
	id, perr := uuid.Parse(ref)
	if perr != nil {
		return User{}, err
	}
	return s.UserByKey(ctx, snap, id)
}

// UserDetail returns the tenant's user that ref names (as UserByRef) with all its credentials.
func (s *Service) UserDetail(ctx context.Context, snap *tenant.Snapshot, ref string) (UserDetail, error) {
	u, err := s.UserByRef(ctx, snap, ref)
	if err != nil {
		return UserDetail{}, err
	}
	creds, err := s.store.CredentialsOfUser(ctx, snap.ID, u.Key)
	if err != nil {
		return UserDetail{}, err
	}
	return UserDetail{User: u, Credentials: creds}, nil
}

// DeleteUser removes the tenant's user that ref names (as UserByRef) with all its credentials and
// transactions: none of its passkeys can log in again. A later registration with the same application
// user id creates a new user with a new internal id.
//
// The user's pending ceremony sessions are not looked for: they stay in the session store until their
// ceremony timeout, but none can finish, since each finalize checks in the database that the
// session's user (by its internal id, which is gone) exists and owns the credential (see
// SessionStore). So the delete is one database call, and a Redis outage cannot hold up an erasure
// request.
func (s *Service) DeleteUser(ctx context.Context, snap *tenant.Snapshot, ref string) error {
	u, err := s.UserByRef(ctx, snap, ref)
	if err != nil {
		return err
	}
	return s.events.Commit(ctx, func(ctx context.Context) error { return s.store.DeleteUser(ctx, snap.ID, u.Key) },
		passkey.Event{Type: passkey.UserDeleted, TenantID: snap.ID, AppUserID: u.AppUserID, Details: map[string]string{"user_id": ref}})
}
