package credentials

import (
	"bytes"
	"context"
	"errors"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/tenant"
)

// discoverUser finds the user of a discoverable login by its user handle.
//
// Credentials imported from Hanko may carry a 16-byte binary UUID as their handle
// (docs/hanko-compatibility.md#hanko-user-handles). Unlike Hanko, a handle is first looked up as it
// is, so an application user id of exactly 16 characters still works; only when that finds nobody is
// a 16-byte handle read as a UUID.
func (s *Service) discoverUser(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, handle []byte) (webauthn.User, error) {
	// go-webauthn puts this function's error text into its own error's details, which reach the
	// client: return only errUnknownUserHandle, and log anything unexpected here.
	wu, err := s.lookupHandle(ctx, snap, ceremony, handle)
	if err != nil {
		if !errors.Is(err, ErrUserNotFound) && !errors.Is(err, ErrNoCredentials) {
			s.log.Error("discoverable login: user lookup failed", "error", err, "tenant", snap.ID)
		}
		return nil, errUnknownUserHandle
	}
	return wu, nil
}

// errUnknownUserHandle is what a discoverable login learns about a handle it cannot use.
var errUnknownUserHandle = errors.New("unknown user handle")

func (s *Service) lookupHandle(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, handle []byte) (*webauthnUser, error) {
	var user User
	var err error = ErrUserNotFound
	if passkey.StorableText(string(handle)) {
		user, err = s.store.UserByAppID(ctx, snap.ID, string(handle))
	}
	legacy := false
	if errors.Is(err, ErrUserNotFound) && len(handle) == 16 {
		if id, uerr := uuid.FromBytes(handle); uerr == nil {
			user, err = s.store.UserByAppID(ctx, snap.ID, id.String())
			legacy = true
		}
	}
	if err != nil {
		return nil, err
	}
	wu, err := s.withCredentials(ctx, snap, ceremony, user)
	if err != nil {
		return nil, err
	}
	if legacy {
		// go-webauthn checks the assertion's handle against WebAuthnID.
		wu.legacyHandle = bytes.Clone(handle)
	}
	return wu, nil
}

// hankoHandle reports whether handle is the handle Hanko's server gave a credential of the user whose
// application id is appUserID: Hanko stored a user id that parsed as a UUID as its 16 raw bytes
// (docs/hanko-compatibility.md#hanko-user-handles), so those credentials answer with that handle, not
// with the id's text.
func hankoHandle(appUserID string, handle []byte) bool {
	if len(handle) != 16 || string(handle) == appUserID {
		return false
	}
	id, err := uuid.Parse(appUserID)
	return err == nil && bytes.Equal(id[:], handle)
}
