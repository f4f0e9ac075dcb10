package credentials

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/tenant"
)

// errNotDiscovered is what discoverUser says about every assertion whose credential and user handle
// do not name a usable credential of one user: the credential id is unknown, the handle is not its
// user's, or the ceremony does not accept it. It is a domain not-found condition, answered as a failed
// assertion with discoverFailedDetails.
var errNotDiscovered = errors.New("no usable credential matches the credential id and user handle")

// errUnknownCredential is errNotDiscovered for a credential id the tenant does not have: answered with
// the same detail, plus the signal that the browser may drop the credential (unknownCredential).
var errUnknownCredential = fmt.Errorf("%w: the credential id is unknown", errNotDiscovered)

// discoverFailedDetails is the one detail of every discoverable login that finds no usable credential.
// One text for all of them, so that an unauthenticated caller, who can sign an assertion with a
// throwaway key for any user handle, cannot tell an existing user from a missing one (issue 12,
// point 11).
const discoverFailedDetails = "no registered credential matches the credential ID and user handle"

// discoverUser finds the user of a discoverable login (WebAuthn §7.2 steps 5-6: "identify the user"
// from credential.id and check that response.userHandle is its owner's handle).
//
// The credential is found by its id, with its user, in one read, never by the handle: the handle is
// only compared with its owner's. Every call performs that one read, so a missing handle costs what an
// existing one costs and answers the same.
//
// Credentials imported from Hanko may carry a 16-byte binary UUID as their handle
// (docs/hanko-compatibility.md#hanko-user-handles): the handle matches when it is the owner's
// application user id as it is, or the 16 bytes of that id read as a UUID.
//
// It returns errNotDiscovered for every not-found condition and the store's error, wrapped, for any
// other failure: a store that cannot answer is never an authentication failure.
func (s *Service) discoverUser(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, rawID, handle []byte) (*webauthnUser, error) {
	cred, err := s.store.Credential(ctx, snap.ID, encodeID(rawID))
	if errors.Is(err, ErrCredentialNotFound) {
		return nil, errUnknownCredential
	}
	if err == nil && !ceremony.accepts(cred) {
		return nil, errNotDiscovered
	}
	if err != nil {
		return nil, fmt.Errorf("find credential: %w", err)
	}
	user := cred.user()
	wu := &webauthnUser{user: user, creds: []Credential{cred}}
	switch {
	case bytes.Equal(handle, []byte(user.AppUserID)):
	case hankoHandle(user.AppUserID, handle):
		// go-webauthn checks the assertion's handle against WebAuthnID.
		wu.legacyHandle = bytes.Clone(handle)
	default:
		return nil, errNotDiscovered
	}
	return wu, nil
}

// discoverFailed is the error of a discoverable login whose lookup failed with err: a failed assertion
// with the one generic detail for the not-found conditions, the store's error otherwise.
func discoverFailed(err error) error {
	if errors.Is(err, errNotDiscovered) {
		return passkey.WithDetails(ErrAssertionFailed, discoverFailedDetails)
	}
	return fmt.Errorf("discoverable login: %w", err)
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
