package credentials

import (
	"context"
	"errors"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/tenant"
)

// Signals are what a browser's Signal API can be told after a ceremony (WebAuthn §5.1.10), so that
// authenticators and password managers stop offering passkeys the server no longer accepts and show
// the user's current names. The shapes are the arguments of PublicKeyCredential.signalUnknownCredential,
// signalAllAcceptedCredentials and signalCurrentUserDetails.
type Signals struct {
	UnknownCredential *protocol.SignalUnknownCredential `json:"unknownCredential,omitempty"`
	// AllAcceptedCredentials and CurrentUserDetails hold one entry per user handle the user's
	// credentials may have been created with (see userHandles).
	AllAcceptedCredentials []protocol.SignalAllAcceptedCredentials `json:"allAcceptedCredentials,omitempty"`
	CurrentUserDetails     []protocol.SignalCurrentUserDetails     `json:"currentUserDetails,omitempty"`
}

// signalledError is a failed ceremony whose answer carries signals for the browser.
type signalledError struct {
	err     error
	signals Signals
}

func (e *signalledError) Error() string { return e.err.Error() }
func (e *signalledError) Unwrap() error { return e.err }

// SignalsOf returns the signals an error's answer should carry, or nil.
func SignalsOf(err error) *Signals {
	var se *signalledError
	if errors.As(err, &se) {
		return &se.signals
	}
	return nil
}

// unknownCredential adds to err the signal that the tenant has no credential rawID (WebAuthn §5.1.10.1,
// signalUnknownCredential). Only for an id the tenant's store answered "not found" for: a credential
// that exists but is another user's, an MFA credential on plain login, or one whose signature fails is
// still accepted somewhere, and the signal makes the authenticator hide or delete it. The signal names
// the credential id the caller sent and nothing of any user, so it tells an unauthenticated caller
// nothing it did not know (issue 12, point 11: which user ids exist stays hidden).
//
// Only for a tenant that turned signals on (tenant.WebAuthnConfig.Signals).
func unknownCredential(err error, snap *tenant.Snapshot, rawID []byte) error {
	if !snap.Config.WebAuthn.Signals {
		return err
	}
	return &signalledError{err: err, signals: Signals{UnknownCredential: &protocol.SignalUnknownCredential{
		RPID: snap.Config.WebAuthn.RelyingParty.ID, CredentialID: rawID}}}
}

// UserSignals returns the signals of a user (WebAuthn §5.1.10.2 and §5.1.10.3): every credential the
// tenant accepts for the user (passkeys and MFA credentials alike: an authenticator deletes those not
// listed under the handle) and the user's names. One statement (Store.LoginUser); ErrUserNotFound for
// an unknown user, ErrSignalsOff for a tenant that has not turned signals on.
func (s *Service) UserSignals(ctx context.Context, snap *tenant.Snapshot, appUserID string) (Signals, error) {
	if !snap.Config.WebAuthn.Signals {
		return Signals{}, ErrSignalsOff
	}
	if !passkey.StorableText(appUserID) {
		return Signals{}, ErrUserNotFound
	}
	user, creds, err := s.store.LoginUser(ctx, snap.ID, appUserID)
	if err != nil {
		return Signals{}, err
	}
	return userSignals(snap, user, creds), nil
}

func userSignals(snap *tenant.Snapshot, user User, creds []Credential) Signals {
	rpID := snap.Config.WebAuthn.RelyingParty.ID
	ids := make([]protocol.URLEncodedBase64, 0, len(creds))
	for _, c := range creds {
		if id, err := decodeID(c.ID); err == nil {
			ids = append(ids, id)
		}
	}
	var out Signals
	for _, handle := range userHandles(user.AppUserID) {
		out.AllAcceptedCredentials = append(out.AllAcceptedCredentials, protocol.SignalAllAcceptedCredentials{
			RPID: rpID, UserID: handle, AllAcceptedCredentialIDs: ids})
		out.CurrentUserDetails = append(out.CurrentUserDetails, protocol.SignalCurrentUserDetails{
			RPID: rpID, UserID: handle, Name: user.Name, DisplayName: user.DisplayName})
	}
	return out
}

// userHandles are the user handles the credentials of an application user may carry: the id's bytes
// (every credential registered here), and for an id that is a UUID also its 16 bytes, the handle
// Hanko's server gave (docs/hanko-compatibility.md#hanko-user-handles). Which handle each credential
// has is not stored, so both entries list every credential: an id listed under a handle it does not
// belong to is ignored by the authenticator, while one missing from its handle's list would be deleted.
func userHandles(appUserID string) []protocol.URLEncodedBase64 {
	handles := []protocol.URLEncodedBase64{[]byte(appUserID)}
	if id, err := uuid.Parse(appUserID); err == nil && hankoHandle(appUserID, id[:]) {
		handles = append(handles, id[:])
	}
	return handles
}
