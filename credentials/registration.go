package credentials

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/tenant"
)

// MaxUserIDBytes is the largest application user id: its bytes are the WebAuthn user handle, which is
// at most 64 bytes (WebAuthn §5.4.3).
const MaxUserIDBytes = 64

// maxNameRunes bounds user names and display names (Hanko allows 128).
const maxNameRunes = 128

// RegistrationRequest is what a registration starts from (docs/hanko-compatibility.md#registration).
type RegistrationRequest struct {
	AppUserID   string  `json:"user_id"`
	Username    string  `json:"username"`
	DisplayName *string `json:"display_name"`
	Icon        *string `json:"icon"`
	// Hints replace the tenant's default hints (WebAuthn §5.8.7) when present; [] sends none.
	Hints []string `json:"hints,omitempty"`
	// Extensions are extension inputs (WebAuthn §9): only prf, whose eval salts the options carry
	// (ParseExtensionInputs). credProps and the PRF probe are asked for always.
	Extensions json.RawMessage `json:"extensions,omitempty"`
	// Mediation "conditional" asks for a conditional create (WebAuthn §5.1.3, automatic passkey
	// upgrade after a password sign-in): the session remembers it, and only such a session accepts a
	// credential created without user presence.
	Mediation string `json:"mediation,omitempty"`
}

// Mediations are the mediation values a registration accepts: the default (none) and conditional.
var Mediations = []string{string(protocol.MediationConditional)}

// Validate checks the request and reports every problem at once.
func (r *RegistrationRequest) Validate() error {
	var p passkey.Problems
	switch {
	case r.AppUserID == "":
		p.Add("user_id is a required field")
	case len(r.AppUserID) > MaxUserIDBytes:
		p.Add("user_id cannot be longer than %d bytes (the WebAuthn user handle limit)", MaxUserIDBytes)
	default:
		p.Text("user_id", r.AppUserID)
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
	if r.Icon != nil && !passkey.IconURL(*r.Icon) {
		p.Add("icon must be a valid URL (http, https or a data: image)")
	}
	tenant.CheckHints(&p, "hints", r.Hints)
	parseExtensionInputs(&p, r.Extensions, "extensions", false)
	if r.Mediation != "" && !slices.Contains(Mediations, r.Mediation) {
		p.Add("mediation must be one of '%s' (or absent)", strings.Join(Mediations, " "))
	}
	return p.Err(passkey.ErrInvalidRequest)
}

// BeginRegistration upserts the user and starts a registration of the ceremony. The options exclude
// the user's existing credentials, so an authenticator never silently replaces a passkey it already
// holds (WebAuthn §5.4, excludeCredentials).
func (s *Service) BeginRegistration(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, req RegistrationRequest) (*protocol.CredentialCreation, error) {
	creation, err := s.beginRegistration(ctx, snap, ceremony, req)
	s.emitStep(ctx, snap, ceremony, passkey.StepInitialize, err, passkey.Event{AppUserID: req.AppUserID})
	return creation, err
}

func (s *Service) beginRegistration(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, req RegistrationRequest) (*protocol.CredentialCreation, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	ext, err := ParseExtensionInputs(req.Extensions, "extensions", false)
	if err != nil {
		return nil, err
	}
	display := req.Username
	if req.DisplayName != nil && strings.TrimSpace(*req.DisplayName) != "" {
		display = *req.DisplayName
	}
	now := s.now().UTC()
	user, err := s.store.UpsertUser(ctx, User{Key: uuid.New(), TenantID: snap.ID, AppUserID: req.AppUserID, Name: req.Username,
		DisplayName: display, Icon: req.Icon, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		return nil, fmt.Errorf("upsert user: %w", err)
	}
	existing, err := s.store.CredentialsOfUser(ctx, snap.ID, user.Key)
	if err != nil {
		return nil, fmt.Errorf("load credentials: %w", err)
	}
	rp, err := relyingParty(snap, ceremony)
	if err != nil {
		return nil, err
	}
	wu := &webauthnUser{user: user, creds: existing}
	opts := []webauthn.RegistrationOption{webauthn.WithExclusions(webauthn.Credentials(wu.WebAuthnCredentials()).CredentialDescriptors()),
		ext.registrationExtensions()}
	if hints := hintsOf(req.Hints, snap.Config, ceremony); len(hints) > 0 {
		opts = append(opts, webauthn.WithPublicKeyCredentialHints(hints))
	}
	// A conditional create's session has Mediation set: go-webauthn then accepts the credential
	// without user presence (WebAuthn §7.1, the step that checks UP), and only then.
	creation, data, err := rp.BeginMediatedRegistration(wu, protocol.CredentialMediationRequirement(req.Mediation), opts...)
	if err != nil {
		return nil, fmt.Errorf("begin registration: %w", err)
	}
	if err := s.putSession(ctx, snap, ceremony, sessionState{WebAuthn: *data, UserKey: user.Key}); err != nil {
		return nil, err
	}
	return creation, nil
}

// Result is the outcome of a successful finalize: the token for the application (empty from
// VerifyAssertion), the credential and its user.
type Result struct {
	Token      string
	Credential Credential
	User       User
	// Extensions are the client extension outputs of the ceremony's requested extensions (the PRF's
	// results) for the caller; nil when there are none. Never stored or logged.
	Extensions *ExtensionResults
}

// FinishRegistration verifies an attestation (WebAuthn §7.1) for a live session of the ceremony,
// stores the new credential and issues a token.
func (s *Service) FinishRegistration(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, body []byte) (Result, error) {
	res, err := s.finishRegistration(ctx, snap, ceremony, body)
	if err != nil {
		s.emitStep(ctx, snap, ceremony, passkey.StepFinalize, err, passkey.Event{AppUserID: res.User.AppUserID, CredentialID: res.Credential.ID})
	}
	return res, err
}

func (s *Service) finishRegistration(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, body []byte) (Result, error) {
	parsed, err := parseAttestation(body)
	if err != nil {
		return Result{}, err
	}
	state, err := s.consume(ctx, snap, ceremony, parsed.Response.CollectedClientData.Challenge, ErrSessionNotFound)
	if err != nil {
		return Result{}, err
	}
	// The user is the session's: its key, and its application id, which is the user handle that
	// initialize gave the authenticator (WebAuthn §5.4.3). Finalize reads nothing before its one write,
	// whose foreign key answers ErrUserNotFound for a user deleted since initialize.
	user := User{Key: state.UserKey, TenantID: snap.ID, AppUserID: string(state.WebAuthn.UserID)}
	rp, err := relyingParty(snap, ceremony)
	if err != nil {
		return Result{}, err
	}
	wc, err := rp.CreateCredential(&webauthnUser{user: user}, state.WebAuthn, parsed)
	if err != nil {
		return Result{User: user}, withProtocolDetails(ErrAttestationFailed, err)
	}
	now := s.now().UTC()
	cred := Credential{
		ID:                      encodeID(wc.ID),
		TenantID:                snap.ID,
		UserKey:                 user.Key,
		AppUserID:               user.AppUserID,
		PublicKey:               wc.PublicKey,
		AttestationType:         wc.AttestationFormat,
		SignCount:               wc.Authenticator.SignCount,
		BackupEligible:          wc.Flags.BackupEligible,
		BackupState:             wc.Flags.BackupState,
		UserPresent:             wc.Flags.UserPresent,
		UserVerified:            wc.Flags.UserVerified,
		Transports:              make([]string, 0, len(wc.Transport)),
		AuthenticatorAttachment: string(wc.Authenticator.Attachment),
		IsMFA:                   ceremony.SecondFactor,
		Discoverable:            wc.Extensions.RK,
		PRFEnabled:              wc.Extensions.PRFEnabled,
		CreatedConditionally:    state.WebAuthn.Mediation == protocol.MediationConditional,
		CreatedAt:               now,
		UpdatedAt:               now,
		LastUsedAt:              &now,
	}
	if id, err := uuid.FromBytes(wc.Authenticator.AAGUID); err == nil {
		cred.AAGUID = id
	}
	// The tenant's attestation policy (WebAuthn §7.1 steps 21-22: the trust path, and whether the RP
	// accepts it), before the one write, so that a refused registration stores nothing.
	if err := s.judgeRegistration(snap, ceremony, evidence(parsed, wc, cred.AAGUID), &cred); err != nil {
		return Result{User: user}, err
	}
	for _, t := range wc.Transport {
		cred.Transports = append(cred.Transports, string(t))
	}
	// The token before the write: a registration that stored its credential has succeeded.
	token, err := s.Token(snap, ceremony, Result{Credential: cred, User: user}, nil)
	if err != nil {
		return Result{User: user}, err
	}
	done := s.stepEvent(snap, ceremony, passkey.StepFinalize, nil, passkey.Event{AppUserID: user.AppUserID, CredentialID: cred.ID})
	if err := s.events.Commit(ctx, func(ctx context.Context) error { return s.store.CreateCredential(ctx, cred) }, done); err != nil {
		return Result{User: user}, err
	}
	return Result{Token: token, Credential: cred, User: user, Extensions: extensionResults(parsed.ClientExtensionResults, state.WebAuthn.Extensions)}, nil
}

// emitStep emits the start, or the failure, of one ceremony step; e carries what the step knows about
// its user, credential and transaction. A finalize's success is the change it commits (stepEvent).
func (s *Service) emitStep(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, step string, err error, e passkey.Event) {
	s.events.Emit(ctx, s.stepEvent(snap, ceremony, step, err, e))
}

// stepEvent returns the event of one ceremony step that ended with err.
func (s *Service) stepEvent(snap *tenant.Snapshot, ceremony Ceremony, step string, err error, e passkey.Event) passkey.Event {
	e.TenantID, e.Ceremony, e.Step, e.Err = snap.ID, ceremony.Name, step, err
	e.Type = passkey.StepType(step, err)
	return e
}
