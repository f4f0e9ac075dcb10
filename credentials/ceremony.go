package credentials

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/api"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// Ceremony errors. Each is mapped to one status and code by the error handler; go-webauthn's short
// explanation travels as the error's details.
var (
	// ErrInvalidAttestationResponse means a registration finalize body is not a credential creation
	// response (WebAuthn §5.1, PublicKeyCredential with an AuthenticatorAttestationResponse).
	ErrInvalidAttestationResponse = errors.New("unable to parse credential creation response")
	// ErrAttestationFailed means the attestation did not verify (WebAuthn §7.1).
	ErrAttestationFailed = errors.New("failed to validate attestation")
	// ErrInvalidAssertionResponse means a login finalize body is not a credential request response.
	ErrInvalidAssertionResponse = errors.New("unable to finish login")
	// ErrLoginSessionNotFound means no live login session matches the assertion's challenge.
	ErrLoginSessionNotFound = errors.New("failed to get session data")
	// ErrAssertionFailed means the assertion did not verify (WebAuthn §7.2).
	ErrAssertionFailed = errors.New("failed to validate assertion")
	// ErrClonedAuthenticator means the signature counter did not grow (WebAuthn §6.1.1): the authenticator
	// may have been cloned. The tenant may allow such logins with webauthn.allow_sign_count_regression.
	ErrClonedAuthenticator = errors.New("signature counter did not increase: possible cloned authenticator")
	// ErrNoCredentials means the user has no credential this ceremony may use.
	ErrNoCredentials = errors.New("user has no suitable credentials for this operation")
)

// MaxUserIDBytes is the largest application user id: its bytes are the WebAuthn user handle, which is
// at most 64 bytes (WebAuthn §5.4.3).
const MaxUserIDBytes = 64

// maxNameRunes bounds user names and display names (Hanko allows 128).
const maxNameRunes = 128

// Service runs registration and login ceremonies and manages credentials.
type Service struct {
	store    Store
	sessions SessionStore
	aaguids  *AAGUIDTable
	now      func() time.Time
	log      *slog.Logger
	rps      relyingParties
}

// NewService returns a ceremony service. aaguids names new credentials (nil: no names); now is the
// clock (nil: time.Now).
func NewService(store Store, sessions SessionStore, aaguids *AAGUIDTable, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Service{store: store, sessions: sessions, aaguids: aaguids, now: now, log: log}
}

// sessionState is what a ceremony keeps between initialize and finalize.
type sessionState struct {
	WebAuthn webauthn.SessionData `json:"w"`
	// UserID is the internal id of the user the ceremony is for; uuid.Nil for a discoverable login.
	UserID uuid.UUID `json:"u"`
}

// RegistrationRequest is what a registration starts from (Hanko's RegInit, contract §1.3.1).
type RegistrationRequest struct {
	UserID      string  `json:"user_id"`
	Username    string  `json:"username"`
	DisplayName *string `json:"display_name"`
	Icon        *string `json:"icon"`
}

// Validate checks the request and reports every problem at once.
func (r *RegistrationRequest) Validate() error {
	var p api.Problems
	switch {
	case r.UserID == "":
		p.Add("user_id is a required field")
	case len(r.UserID) > MaxUserIDBytes:
		p.Add("user_id cannot be longer than %d bytes (the WebAuthn user handle limit)", MaxUserIDBytes)
	default:
		p.Text("user_id", r.UserID)
	}
	p.Text("username", r.Username)
	if r.DisplayName != nil {
		p.Text("display_name", *r.DisplayName)
	}
	if strings.TrimSpace(r.Username) == "" {
		p.Add("username is a required field")
	} else if utf8.RuneCountInString(r.Username) > maxNameRunes {
		p.Add("username cannot have more than %d entries", maxNameRunes)
	}
	if r.DisplayName != nil && utf8.RuneCountInString(*r.DisplayName) > maxNameRunes {
		p.Add("display_name cannot have more than %d entries", maxNameRunes)
	}
	if r.Icon != nil {
		if !api.IconURL(*r.Icon) {
			p.Add("icon must be a valid URL (http, https or a data: image)")
		}
	}
	return p.Err(api.ErrInvalidRequest)
}

// BeginRegistration upserts the user and starts a registration (ceremony CeremonyRegistration or
// CeremonyMFARegistration). The options exclude the user's existing credentials, so an authenticator
// never silently replaces a passkey it already holds (WebAuthn §5.4, excludeCredentials).
func (s *Service) BeginRegistration(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, req RegistrationRequest) (*protocol.CredentialCreation, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	display := req.Username
	if req.DisplayName != nil && strings.TrimSpace(*req.DisplayName) != "" {
		display = *req.DisplayName
	}
	now := s.now().UTC()
	user, err := s.store.UpsertUser(ctx, User{ID: uuid.New(), TenantID: snap.ID, UserID: req.UserID, Name: req.Username,
		DisplayName: display, Icon: req.Icon, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		return nil, fmt.Errorf("upsert user: %w", err)
	}
	existing, err := s.store.CredentialsOfUser(ctx, snap.ID, user.ID)
	if err != nil {
		return nil, fmt.Errorf("load credentials: %w", err)
	}
	rp, err := s.rps.get(snap, ceremony.isMFA())
	if err != nil {
		return nil, err
	}
	wu := &webauthnUser{user: user, creds: existing}
	creation, data, err := rp.BeginRegistration(wu, webauthn.WithExclusions(webauthn.Credentials(wu.WebAuthnCredentials()).CredentialDescriptors()))
	if err != nil {
		return nil, fmt.Errorf("begin registration: %w", err)
	}
	if err := s.putSession(ctx, snap, ceremony, sessionState{WebAuthn: *data, UserID: user.ID}); err != nil {
		return nil, err
	}
	return creation, nil
}

// Result is the outcome of a successful finalize: the token for the application (empty from
// VerifyLogin), the credential and its user.
type Result struct {
	Token      string
	Credential Credential
	User       User
}

// FinishRegistration verifies an attestation (WebAuthn §7.1) for a live session of the ceremony and
// stores the new credential.
func (s *Service) FinishRegistration(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, body []byte) (Result, error) {
	parsed, err := parseAttestation(body)
	if err != nil {
		return Result{}, err
	}
	state, err := s.consume(ctx, snap, ceremony, parsed.Response.CollectedClientData.Challenge, ErrSessionNotFound)
	if err != nil {
		return Result{}, err
	}
	user, err := s.store.UserByID(ctx, snap.ID, state.UserID)
	if err != nil {
		return Result{}, err
	}
	rp, err := s.rps.get(snap, ceremony.isMFA())
	if err != nil {
		return Result{}, err
	}
	wc, err := rp.CreateCredential(&webauthnUser{user: user}, state.WebAuthn, parsed)
	if err != nil {
		return Result{}, withProtocolDetails(ErrAttestationFailed, err)
	}
	now := s.now().UTC()
	cred := Credential{
		ID:                      encodeID(wc.ID),
		TenantID:                snap.ID,
		UserID:                  user.ID,
		AppUserID:               user.UserID,
		PublicKey:               wc.PublicKey,
		AttestationType:         wc.AttestationFormat,
		SignCount:               wc.Authenticator.SignCount,
		BackupEligible:          wc.Flags.BackupEligible,
		BackupState:             wc.Flags.BackupState,
		UserPresent:             wc.Flags.UserPresent,
		UserVerified:            wc.Flags.UserVerified,
		Transports:              make([]string, 0, len(wc.Transport)),
		AuthenticatorAttachment: string(wc.Authenticator.Attachment),
		IsMFA:                   ceremony == CeremonyMFARegistration,
		CreatedAt:               now,
		UpdatedAt:               now,
		LastUsedAt:              &now,
	}
	if id, err := uuid.FromBytes(wc.Authenticator.AAGUID); err == nil {
		cred.AAGUID = id
	}
	if a, ok := s.aaguids.Lookup(cred.AAGUID); ok {
		cred.Name = &a.Name
	}
	for _, t := range wc.Transport {
		cred.Transports = append(cred.Transports, string(t))
	}
	if err := s.store.CreateCredential(ctx, cred); err != nil {
		return Result{}, err
	}
	token, err := s.issue(snap, ceremony, user, cred, nil)
	if err != nil {
		return Result{}, err
	}
	return Result{Token: token, Credential: cred, User: user}, nil
}

// BeginLogin starts a login (CeremonyLogin or CeremonyMFALogin). With an empty appUserID it is a
// discoverable ("usernameless") login with an empty allowCredentials list; otherwise allowCredentials
// lists the user's usable credentials with their transports. Plain login never offers MFA credentials.
func (s *Service) BeginLogin(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, appUserID string) (*protocol.CredentialAssertion, error) {
	return s.BeginLoginWithChallenge(ctx, snap, ceremony, appUserID, nil)
}

// BeginLoginWithChallenge is BeginLogin with a challenge chosen by the caller (transaction signing
// binds the challenge to the data); nil means a random one.
func (s *Service) BeginLoginWithChallenge(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, appUserID string, challenge []byte) (*protocol.CredentialAssertion, error) {
	var opts []webauthn.LoginOption
	if challenge != nil {
		opts = append(opts, webauthn.WithChallenge(challenge))
	}
	rp, err := s.rps.get(snap, ceremony.isMFA())
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
		state.UserID = wu.user.ID
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

// loginUser loads a user and the credentials the ceremony accepts.
func (s *Service) loginUser(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, appUserID string) (*webauthnUser, error) {
	if !api.StorableText(appUserID) {
		return nil, api.Problems{"user_id must be valid UTF-8 without NUL characters"}.Err(api.ErrInvalidRequest)
	}
	user, err := s.store.UserByAppID(ctx, snap.ID, appUserID)
	if err != nil {
		return nil, err
	}
	return s.withCredentials(ctx, snap, ceremony, user)
}

func (s *Service) withCredentials(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, user User) (*webauthnUser, error) {
	all, err := s.store.CredentialsOfUser(ctx, snap.ID, user.ID)
	if err != nil {
		return nil, fmt.Errorf("load credentials: %w", err)
	}
	usable := all[:0]
	for _, c := range all {
		if ceremony.acceptsMFACredentials() || !c.IsMFA {
			usable = append(usable, c)
		}
	}
	if len(usable) == 0 {
		return nil, ErrNoCredentials
	}
	return &webauthnUser{user: user, creds: usable}, nil
}

// FinishLogin verifies an assertion (WebAuthn §7.2) for a live session of the ceremony, records the
// new signature counter, flags and last use, and issues a token.
//
// The user comes from the session when initialize named one (the assertion's userHandle is then not
// needed, so non-resident credentials work); for a discoverable login it comes from the userHandle,
// and the credential must belong to that user.
func (s *Service) FinishLogin(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, body []byte) (Result, error) {
	res, err := s.VerifyLogin(ctx, snap, ceremony, body)
	if err != nil {
		return Result{}, err
	}
	if res.Token, err = s.issue(snap, ceremony, res.User, res.Credential, nil); err != nil {
		return Result{}, err
	}
	return res, nil
}

// VerifyLogin is FinishLogin without the token, for ceremonies that issue their own (transactions).
func (s *Service) VerifyLogin(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, body []byte) (Result, error) {
	parsed, err := ParseAssertion(body)
	if err != nil {
		return Result{}, err
	}
	state, err := s.consume(ctx, snap, ceremony, parsed.Response.CollectedClientData.Challenge, ErrLoginSessionNotFound)
	if err != nil {
		return Result{}, err
	}
	rp, err := s.rps.get(snap, ceremony.isMFA())
	if err != nil {
		return Result{}, err
	}
	var (
		wu *webauthnUser
		wc *webauthn.Credential
	)
	if state.UserID != uuid.Nil {
		user, err := s.store.UserByID(ctx, snap.ID, state.UserID)
		if err != nil {
			return Result{}, api.WithDetails(ErrAssertionFailed, "user not found")
		}
		if wu, err = s.withCredentials(ctx, snap, ceremony, user); err != nil {
			return Result{}, api.WithDetails(ErrAssertionFailed, "the user has no usable credential")
		}
		if handle := parsed.Response.UserHandle; hankoHandle(user.UserID, handle) {
			// A credential imported from Hanko: the session names this user, whose handle it is.
			wu.legacyHandle = bytes.Clone(handle)
			state.WebAuthn.UserID = wu.legacyHandle
		}
		wc, err = rp.ValidateLogin(wu, state.WebAuthn, parsed)
		if err != nil {
			return Result{}, withProtocolDetails(ErrAssertionFailed, err)
		}
	} else {
		var found webauthn.User
		found, wc, err = rp.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			return s.discoverUser(ctx, snap, ceremony, userHandle)
		}, state.WebAuthn, parsed)
		if err != nil {
			return Result{}, withProtocolDetails(ErrAssertionFailed, err)
		}
		wu = found.(*webauthnUser)
	}

	id := encodeID(wc.ID)
	var cred Credential
	for _, c := range wu.creds {
		if c.ID == id {
			cred = c
		}
	}
	now := s.now().UTC()
	update := LoginUpdate{
		SignCount:      wc.Authenticator.SignCount,
		CloneWarning:   wc.Authenticator.CloneWarning,
		BackupEligible: wc.Flags.BackupEligible,
		BackupState:    wc.Flags.BackupState,
		UserVerified:   wc.Flags.UserVerified,
		LastUsedAt:     now,
	}
	// WebAuthn §7.2 (the signature counter step): a counter that did not grow may mean a cloned authenticator. Which login
	// is refused is decided by this login's counter alone (the stored warning is not fed back to
	// go-webauthn), so one regression refuses that login but does not lock the credential for good: a
	// user whose two tabs finished out of order can log in again at once. The stored warning stays,
	// for the operator to see.
	if update.CloneWarning && !snap.Config.WebAuthn.AllowSignCountRegression {
		if err := s.store.FlagCloneWarning(ctx, snap.ID, id); err != nil {
			s.log.Warn("recording a clone warning failed", "error", err, "tenant", snap.ID)
		}
		return Result{}, ErrClonedAuthenticator
	}
	if err := s.store.RecordLogin(ctx, snap.ID, id, update); err != nil {
		return Result{}, fmt.Errorf("record login: %w", err)
	}
	cred.SignCount, cred.CloneWarning, cred.LastUsedAt = update.SignCount, cred.CloneWarning || update.CloneWarning, &now
	cred.BackupEligible, cred.BackupState, cred.UserVerified = update.BackupEligible, update.BackupState, update.UserVerified
	return Result{Credential: cred, User: wu.user}, nil
}

// discoverUser finds the user of a discoverable login by its user handle.
//
// Credentials imported from Hanko may carry a 16-byte binary UUID as their handle (contract §4.3).
// Unlike Hanko, a handle is first looked up as it is, so an application user id of exactly 16
// characters still works; only when that finds nobody is a 16-byte handle read as a UUID.
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
	err := ErrUserNotFound
	if api.StorableText(string(handle)) {
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

func (s *Service) putSession(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, state sessionState) error {
	data, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	expires := state.WebAuthn.Expires
	if expires.IsZero() {
		expires = s.now().Add(profileOf(snap.Config, ceremony.isMFA()).timeout)
	}
	if err := s.sessions.Put(ctx, Session{TenantID: snap.ID, Ceremony: ceremony, Challenge: state.WebAuthn.Challenge, UserID: state.UserID, Data: data, ExpiresAt: expires}); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	return nil
}

// consume takes the ceremony's session for a challenge out of the store. The session is gone from
// then on, whether the rest of the finalize succeeds or not: a failed attempt never leaves a usable
// challenge behind.
func (s *Service) consume(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, challenge string, notFound error) (sessionState, error) {
	if challenge == "" {
		return sessionState{}, notFound
	}
	sess, err := s.sessions.Consume(ctx, snap.ID, ceremony, challenge)
	if errors.Is(err, ErrSessionNotFound) {
		return sessionState{}, api.WithDetails(notFound, ErrSessionNotFound.Error())
	}
	if err != nil {
		return sessionState{}, err
	}
	var state sessionState
	if err := json.Unmarshal(sess.Data, &state); err != nil {
		return sessionState{}, fmt.Errorf("decode session: %w", err)
	}
	return state, nil
}

// Token signs the token of a finished ceremony (contract §2.2 plus iss, jti, ceremony and amr); extra,
// when not nil, adds to the claims (a transaction's trans and trans_hash).
func (s *Service) Token(snap *tenant.Snapshot, ceremony Ceremony, res Result, extra func(*signing.Claims)) (string, error) {
	return s.issue(snap, ceremony, res.User, res.Credential, extra)
}

func (s *Service) issue(snap *tenant.Snapshot, ceremony Ceremony, user User, cred Credential, extra func(*signing.Claims)) (string, error) {
	claims := signing.Claims{
		Issuer:       snap.Issuer,
		Subject:      user.UserID,
		Audience:     []string{snap.Config.WebAuthn.RelyingParty.ID},
		CredentialID: cred.ID,
		Ceremony:     string(ceremony),
		AMR:          ceremony.amr(cred),
		IssuedAt:     s.now(),
	}
	if extra != nil {
		extra(&claims)
	}
	token, err := snap.Signer.Sign(claims)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return token, nil
}

func (c Ceremony) isMFA() bool { return c == CeremonyMFARegistration || c == CeremonyMFALogin }

// acceptsMFACredentials reports whether the ceremony may use credentials registered as MFA credentials:
// only MFA login does (it accepts the user's MFA credentials and passkeys alike).
func (c Ceremony) acceptsMFACredentials() bool { return c == CeremonyMFALogin }

// amr names the authentication methods of a login token (RFC 8176): "hwk" for a key bound to one
// device, "swk" for a synced (backup eligible) passkey, plus "user" when the authenticator verified the
// user. Registration tokens carry none.
func (c Ceremony) amr(cred Credential) []string {
	if c == CeremonyRegistration || c == CeremonyMFARegistration {
		return nil
	}
	m := []string{"hwk"}
	if cred.BackupEligible {
		m[0] = "swk" // synced passkeys live in software (a password manager), not in one device
	}
	if cred.UserVerified {
		m = append(m, "user")
	}
	return m
}

// withProtocolDetails wraps sentinel with go-webauthn's short, client-safe explanation of err (never its
// debug information).
func withProtocolDetails(sentinel, err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return api.WithDetails(sentinel, pe.Details)
	}
	return api.WithDetails(sentinel, "the credential response is malformed")
}

// parseAttestation parses a registration's credential (WebAuthn §5.1, PublicKeyCredential with an
// AuthenticatorAttestationResponse) as browsers' toJSON() and @github/webauthn-json send it; see
// decodeCredential. Errors wrap ErrInvalidAttestationResponse.
func parseAttestation(body []byte) (*protocol.ParsedCredentialCreationData, error) {
	var ccr protocol.CredentialCreationResponse
	if err := decodeCredential(body, &ccr, &ccr.ID); err != nil {
		return nil, api.WithDetails(ErrInvalidAttestationResponse, "Parse error for Registration: "+err.Error())
	}
	parsed, err := ccr.Parse()
	if err != nil {
		return nil, withProtocolDetails(ErrInvalidAttestationResponse, err)
	}
	return parsed, nil
}

// ParseAssertion parses a login's credential (WebAuthn §5.1, PublicKeyCredential with an
// AuthenticatorAssertionResponse) as browsers' toJSON() and @github/webauthn-json send it; see
// decodeCredential. Errors wrap ErrInvalidAssertionResponse.
func ParseAssertion(body []byte) (*protocol.ParsedCredentialAssertionData, error) {
	var car protocol.CredentialAssertionResponse
	if err := decodeCredential(body, &car, &car.ID); err != nil {
		return nil, api.WithDetails(ErrInvalidAssertionResponse, "Parse error for Assertion: "+err.Error())
	}
	parsed, err := car.Parse()
	if err != nil {
		return nil, withProtocolDetails(ErrInvalidAssertionResponse, err)
	}
	return parsed, nil
}

// decodeCredential decodes exactly one JSON value into v, whose id is *id. Every binary member may be
// base64url with or without "=" padding: go-webauthn accepts padding everywhere but in id, so the
// id's padding is dropped here (the id is compared as rawId's bytes anyway). Like every body, it must
// be UTF-8 (see api.DecodeJSON).
func decodeCredential(body []byte, v any, id *string) error {
	if !utf8.Valid(body) {
		return errors.New("the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return errors.New("the body is not a JSON credential object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("the body must hold exactly one JSON value")
	}
	*id = strings.TrimRight(*id, "=")
	return nil
}

// encodeID encodes a credential id as base64url without padding.
func encodeID(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeID decodes a base64url credential id, with or without padding. Decoding is strict (unused
// trailing bits must be zero), so every id has exactly one text form and lookups by text are exact.
func decodeID(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "\r\n") { // the decoder skips line breaks; an id has none
		return nil, errors.New("credential id is not canonical base64url")
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}
