package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/tenant"
)

// BeginLogin starts a login of the ceremony. With an empty appUserID it is a discoverable
// ("usernameless") login with an empty allowCredentials list; otherwise allowCredentials lists the
// user's credentials that the ceremony accepts, with their transports.
func (s *Service) BeginLogin(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, appUserID string) (*protocol.CredentialAssertion, error) {
	return s.BeginLoginWith(ctx, snap, ceremony, appUserID, AssertionOptions{})
}

// AssertionOptions are what a caller may add to the options of an assertion ceremony.
type AssertionOptions struct {
	// Hints replace the tenant's default hints (WebAuthn §5.8.7) when not nil; [] sends none.
	Hints []string
	// Extensions are extension inputs (WebAuthn §9): only prf, with eval and evalByCredential
	// (ParseExtensionInputs); evalByCredential's keys must be among the login's allowCredentials.
	Extensions json.RawMessage
}

// Validate checks the options and reports every problem at once.
func (o AssertionOptions) Validate() error {
	var p passkey.Problems
	tenant.CheckHints(&p, "hints", o.Hints)
	parseExtensionInputs(&p, o.Extensions, "extensions", true)
	return p.Err(passkey.ErrInvalidRequest)
}

// BeginLoginWith is BeginLogin with options the caller chose.
func (s *Service) BeginLoginWith(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, appUserID string, o AssertionOptions) (*protocol.CredentialAssertion, error) {
	assertion, err := s.startAssertion(ctx, snap, ceremony, appUserID, nil, o)
	s.emitStep(ctx, snap, ceremony, passkey.StepInitialize, err, passkey.Event{AppUserID: appUserID})
	return assertion, err
}

// FinishLogin verifies an assertion (WebAuthn §7.2) for a live session of the ceremony, issues a
// token, and records the new signature counter, flags and last use with the login's events (one
// change: passkey.Bus.Commit).
func (s *Service) FinishLogin(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, body []byte) (Result, error) {
	res, login, err := s.VerifyAssertion(ctx, snap, ceremony, body)
	if err == nil {
		res.Token, err = s.Token(snap, ceremony, res, nil)
	}
	if err == nil {
		done := s.stepEvent(snap, ceremony, passkey.StepFinalize, nil, passkey.Event{AppUserID: res.User.AppUserID, CredentialID: res.Credential.ID})
		err = s.events.Commit(ctx, s.RecordLogin(login), append(login.Events, done)...)
	}
	if err != nil {
		res.Token = ""
		s.emitStep(ctx, snap, ceremony, passkey.StepFinalize, err, passkey.Event{AppUserID: res.User.AppUserID, CredentialID: res.Credential.ID})
	}
	return res, err
}

// LoginChange is what a verified assertion changes: the credential's signature counter, flags and
// last use (Update), and the events that report changes of its state (a clone warning, a backup state,
// an authenticator status). The caller commits it, with its own events, as one change:
// Bus.Commit(ctx, s.RecordLogin(login), …).
type LoginChange struct {
	TenantID     uuid.UUID
	CredentialID string
	Update       LoginUpdate
	Events       []passkey.Event
}

// RecordLogin returns the write of a login, for passkey.Bus.Commit.
func (s *Service) RecordLogin(l LoginChange) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := s.store.RecordLogin(ctx, l.TenantID, l.CredentialID, l.Update); err != nil {
			return fmt.Errorf("record login: %w", err)
		}
		return nil
	}
}

// StartAssertion is the initialize step of an assertion ceremony without its event, for services
// that compose a ceremony of their own and emit its events (transactions). challenge is the challenge
// to use; nil means a random one.
func (s *Service) StartAssertion(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, appUserID string, challenge []byte) (*protocol.CredentialAssertion, error) {
	return s.startAssertion(ctx, snap, ceremony, appUserID, challenge, AssertionOptions{})
}

func (s *Service) startAssertion(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, appUserID string, challenge []byte, o AssertionOptions) (*protocol.CredentialAssertion, error) {
	if appUserID == "" && ceremony.NamedUser {
		return nil, passkey.Invalid("user_id is a required field")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	ext, err := ParseExtensionInputs(o.Extensions, "extensions", true)
	if err != nil {
		return nil, err
	}
	if appUserID == "" {
		if err := ext.checkEvalByCredential(nil); err != nil {
			return nil, err
		}
	}
	opts := ext.assertionExtensions()
	if challenge != nil {
		opts = append(opts, webauthn.WithChallenge(challenge))
	}
	if hints := hintsOf(o.Hints, snap.Config, ceremony); len(hints) > 0 {
		opts = append(opts, webauthn.WithAssertionPublicKeyCredentialHints(hints))
	}
	rp, err := relyingParty(snap, ceremony)
	if err != nil {
		return nil, err
	}
	var (
		assertion *protocol.CredentialAssertion
		data      *webauthn.SessionData
		state     sessionState
	)
	if appUserID == "" {
		assertion, data, err = rp.BeginDiscoverableLogin(opts...)
	} else {
		var wu *webauthnUser
		if wu, err = s.loginUser(ctx, snap, ceremony, appUserID); err != nil {
			return nil, err
		}
		if err := ext.checkEvalByCredential(webauthn.Credentials(wu.WebAuthnCredentials()).CredentialDescriptors()); err != nil {
			return nil, err
		}
		state.UserKey = wu.user.Key
		assertion, data, err = rp.BeginLogin(wu, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("begin login: %w", err)
	}
	state.WebAuthn = *data
	if err := s.putSession(ctx, snap, ceremony, state); err != nil {
		return nil, err
	}
	return assertion, nil
}

// loginUser loads a user and the credentials the ceremony accepts, in one read.
func (s *Service) loginUser(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, appUserID string) (*webauthnUser, error) {
	if !passkey.StorableText(appUserID) {
		return nil, passkey.Invalid("user_id must be valid UTF-8 without NUL characters")
	}
	user, all, err := s.store.LoginUser(ctx, snap.ID, appUserID)
	if err != nil {
		return nil, err
	}
	usable := all[:0]
	for _, c := range all {
		if ceremony.accepts(c) {
			usable = append(usable, c)
		}
	}
	if len(usable) == 0 {
		return nil, ErrNoCredentials
	}
	return &webauthnUser{user: user, creds: usable}, nil
}

// notUsableDetails is the detail of every login naming its user whose assertion comes from a
// credential the login cannot use: unknown, another user's, not accepted by the ceremony, or not
// offered at initialize.
const notUsableDetails = "the credential is not one of the user's credentials that this login accepts"

// namedUser finds the credential of the assertion of a login whose initialize named the user: one
// read of the credential by (tenant, credential id from the assertion) with its user, and the checks
// that it is the session's user's, that the ceremony accepts it and that initialize offered it
// (WebAuthn §7.2 step 5). A user deleted since initialize has no credentials left, so its session
// fails here.
func (s *Service) namedUser(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, state sessionState, parsed *protocol.ParsedCredentialAssertionData) (*webauthnUser, error) {
	cred, err := s.store.Credential(ctx, snap.ID, encodeID(parsed.RawID))
	if err != nil && !errors.Is(err, ErrCredentialNotFound) {
		// A store that cannot answer is the store's error (a 5xx), never an authentication failure
		// that apps, metrics and lockout logic would count.
		return nil, fmt.Errorf("load credential: %w", err)
	}
	if err != nil {
		// Unknown to the tenant: the browser may drop it (signalUnknownCredential).
		return nil, unknownCredential(passkey.WithDetails(ErrAssertionFailed, notUsableDetails), snap, parsed.RawID)
	}
	if cred.UserKey != state.UserKey || !ceremony.accepts(cred) ||
		!slices.ContainsFunc(state.WebAuthn.AllowedCredentialIDs, func(id []byte) bool { return bytes.Equal(id, parsed.RawID) }) {
		return nil, passkey.WithDetails(ErrAssertionFailed, notUsableDetails)
	}
	wu := &webauthnUser{user: cred.user(), creds: []Credential{cred}}
	if handle := parsed.Response.UserHandle; hankoHandle(wu.user.AppUserID, handle) {
		// A credential imported from Hanko: the session names this user, whose handle it is.
		wu.legacyHandle = bytes.Clone(handle)
	}
	return wu, nil
}

// VerifyAssertion is the finalize step of an assertion ceremony without its token, its ceremony event
// and its write, for services that compose a ceremony of their own (transactions). It verifies the
// assertion (WebAuthn §7.2) for a live session of the ceremony and returns the LoginChange to commit:
// the new signature counter, flags and last use. An assertion refused for a counter that did not grow
// records the clone warning itself.
//
// The user comes from the session when initialize named one (the assertion's userHandle is then not
// needed, so non-resident credentials work); for a discoverable login it comes from the userHandle,
// and the credential must belong to that user.
func (s *Service) VerifyAssertion(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, body []byte) (Result, LoginChange, error) {
	parsed, err := ParseAssertion(body)
	if err != nil {
		return Result{}, LoginChange{}, err
	}
	state, err := s.consume(ctx, snap, ceremony, parsed.Response.CollectedClientData.Challenge, ErrLoginSessionNotFound)
	if err != nil {
		return Result{}, LoginChange{}, err
	}
	rp, err := relyingParty(snap, ceremony)
	if err != nil {
		return Result{}, LoginChange{}, err
	}
	var (
		wu *webauthnUser
		wc *webauthn.Credential
	)
	if state.UserKey != uuid.Nil {
		if wu, err = s.namedUser(ctx, snap, ceremony, state, parsed); err != nil {
			// The session's user: its key and its application id, the user handle that initialize
			// named (WebAuthn §5.4.3), so that the failure is told of the user it was for.
			return Result{User: User{Key: state.UserKey, TenantID: snap.ID, AppUserID: string(state.WebAuthn.UserID)}}, LoginChange{}, err
		}
		// go-webauthn requires the user to own every credential of allowCredentials; namedUser has
		// checked that the one credential answering is among them (WebAuthn §7.2 step 5) and loaded
		// that one alone, so the session's list is narrowed to it.
		session := state.WebAuthn
		session.AllowedCredentialIDs = [][]byte{parsed.RawID}
		if wu.legacyHandle != nil {
			session.UserID = wu.legacyHandle // go-webauthn compares the session's user with the user's handle
		}
		wc, err = rp.ValidateLogin(wu, session, parsed)
		if err != nil {
			return Result{User: wu.user}, LoginChange{}, withProtocolDetails(ErrAssertionFailed, err)
		}
	} else {
		// go-webauthn turns the lookup's error into a protocol error whose text would reach the
		// client: keep the lookup's own error here and decide from it (discoverFailed).
		var (
			found     webauthn.User
			lookupErr error
		)
		found, wc, err = rp.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			wu, err := s.discoverUser(ctx, snap, ceremony, rawID, userHandle)
			if err != nil {
				lookupErr = err
				return nil, err
			}
			return wu, nil
		}, state.WebAuthn, parsed)
		if err != nil {
			if errors.Is(lookupErr, errUnknownCredential) {
				// The same generic detail as every other not-found case; the signal names only the
				// credential id the caller sent (see unknownCredential).
				return Result{}, LoginChange{}, unknownCredential(discoverFailed(lookupErr), snap, parsed.RawID)
			}
			if lookupErr != nil {
				return Result{}, LoginChange{}, discoverFailed(lookupErr)
			}
			return Result{}, LoginChange{}, withProtocolDetails(ErrAssertionFailed, err)
		}
		wu = found.(*webauthnUser)
	}

	id := encodeID(wc.ID)
	cred := wu.creds[0] // namedUser and discoverUser load the one credential that answered
	now := s.now().UTC()
	update := LoginUpdate{
		SignCount:      wc.Authenticator.SignCount,
		CloneWarning:   wc.Authenticator.CloneWarning,
		BackupEligible: wc.Flags.BackupEligible,
		BackupState:    wc.Flags.BackupState,
		UserVerified:   wc.Flags.UserVerified,
		LastUsedAt:     now,
	}
	cred.AppUserID = wu.user.AppUserID
	login := LoginChange{TenantID: snap.ID, CredentialID: id}
	status, statusChanged, err := s.checkStatus(snap, ceremony, cred)
	if err != nil {
		s.events.Emit(ctx, statusChanged) // refused: the login changes nothing
		return Result{User: wu.user, Credential: cred}, LoginChange{}, err
	}
	if status != "" {
		update.MDSStatus = status
		login.Events = append(login.Events, statusChanged)
	}
	changed := passkey.Event{TenantID: snap.ID, AppUserID: wu.user.AppUserID, CredentialID: id}
	// WebAuthn §7.2 (the signature counter step): a counter that did not grow may mean a cloned
	// authenticator. Which login is refused is decided by this login's counter alone (the stored
	// warning is not fed back to go-webauthn), so one regression refuses that login but does not lock
	// the credential for good: a user whose two tabs finished out of order can log in again at once.
	// The stored warning stays, for the operator to see.
	if update.CloneWarning && !snap.Config.WebAuthn.AllowSignCountRegression {
		var flagged []passkey.Event
		if !cred.CloneWarning {
			changed.Type = passkey.CredentialCloneFlagged
			flagged = append(flagged, changed)
		}
		err := s.events.Commit(ctx, func(ctx context.Context) error { return s.store.FlagCloneWarning(ctx, snap.ID, id) }, flagged...)
		if err != nil {
			s.log.Warn("recording a clone warning failed", "error", err, "tenant", snap.ID)
		}
		return Result{User: wu.user, Credential: cred}, LoginChange{}, ErrClonedAuthenticator
	}
	if update.CloneWarning && !cred.CloneWarning {
		changed.Type = passkey.CredentialCloneFlagged
		login.Events = append(login.Events, changed)
	}
	if update.BackupState != cred.BackupState {
		changed.Type = passkey.CredentialBackupStateChanged
		changed.Details = map[string]string{"backup_state": fmt.Sprint(update.BackupState)}
		login.Events = append(login.Events, changed)
	}
	login.Update = update
	cred.SignCount, cred.CloneWarning, cred.LastUsedAt = update.SignCount, cred.CloneWarning || update.CloneWarning, &now
	cred.BackupEligible, cred.BackupState, cred.UserVerified = update.BackupEligible, update.BackupState, update.UserVerified
	if update.MDSStatus != "" {
		cred.Attestation.Status = update.MDSStatus
	}
	return Result{Credential: cred, User: wu.user, Extensions: extensionResults(parsed.ClientExtensionResults, state.WebAuthn.Extensions)}, login, nil
}
