package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/tenant"
)

// Session is the server-side state of one ceremony between initialize and finalize.
type Session struct {
	TenantID uuid.UUID
	// Ceremony is the Name of the ceremony the session belongs to: only that ceremony can consume it.
	Ceremony string
	// Challenge is the base64url (unpadded) challenge sent to the browser; it is the session's key.
	Challenge string
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
//   - DeleteTenant deletes every session of one tenant; other tenants' sessions stay. It may take as
//     long as a walk over the whole store (RedisSessions SCANs the keyspace), so it is called in the
//     background, by a SessionSweeper, never inside a request.
//
// Nothing deletes the sessions of one user: a store needs no index of them, and a Put costs one
// command whoever the ceremony is for. That is safe because no finalize trusts a session's user
// alone: it checks in the database that the user still exists and owns the credential, so a
// deleted user's pending session fails at finalize, and expires with its ceremony timeout (a user
// created again under the same application user id has a new internal key, which the old session
// does not name).
type SessionStore interface {
	Put(ctx context.Context, s Session) error
	Consume(ctx context.Context, tenantID uuid.UUID, ceremony string, challenge string) (Session, error)
	DeleteTenant(ctx context.Context, tenantID uuid.UUID) error
}

// sessionState is what a ceremony keeps between initialize and finalize.
type sessionState struct {
	WebAuthn webauthn.SessionData `json:"w"`
	// UserKey is the internal id of the user the ceremony is for; uuid.Nil for a discoverable login.
	UserKey uuid.UUID `json:"u"`
}

func (s *Service) putSession(ctx context.Context, snap *tenant.Snapshot, ceremony Ceremony, state sessionState) error {
	data, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	expires := state.WebAuthn.Expires
	if expires.IsZero() {
		expires = s.now().Add(profileOf(snap.Config, ceremony.SecondFactor).timeout)
	}
	if err := s.sessions.Put(ctx, Session{TenantID: snap.ID, Ceremony: ceremony.Name, Challenge: state.WebAuthn.Challenge,
		Data: data, ExpiresAt: expires}); err != nil {
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
	sess, err := s.sessions.Consume(ctx, snap.ID, ceremony.Name, challenge)
	if errors.Is(err, ErrSessionNotFound) {
		return sessionState{}, passkey.WithDetails(notFound, ErrSessionNotFound.Error())
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
