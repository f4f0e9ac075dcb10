package credentials

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/tenant"
)

// profile is one set of ceremony options of a tenant: its passkey profile or its MFA profile.
type profile struct {
	timeout          time.Duration
	userVerification string
	attachment       string
	attestation      string
	residentKey      string
}

func profileOf(c tenant.Config, mfa bool) profile {
	if mfa && c.MFA != nil {
		m := c.MFA
		return profile{time.Duration(m.Timeout) * time.Millisecond, m.UserVerification, m.Attachment, m.AttestationPreference, m.ResidentKeyRequirement}
	}
	w := c.WebAuthn
	p := profile{time.Duration(w.Timeout) * time.Millisecond, w.UserVerification, "", w.AttestationPreference, w.ResidentKeyRequirement}
	if w.Attachment != nil {
		p.attachment = *w.Attachment
	}
	return p
}

// newRelyingParty builds the go-webauthn relying party of one tenant profile. The server enforces the
// ceremony timeout itself, whatever the browser does, and uses the tenant's timeout also when user
// verification is discouraged (go-webauthn would use two minutes).
func newRelyingParty(c tenant.Config, mfa bool) (*webauthn.WebAuthn, error) {
	p := profileOf(c, mfa)
	rp := c.WebAuthn.RelyingParty
	var web, opaque []string
	for _, o := range rp.Origins {
		if strings.HasPrefix(o, "http://") || strings.HasPrefix(o, "https://") {
			web = append(web, o)
		} else {
			opaque = append(opaque, o)
		}
	}
	requireRK := p.residentKey == string(protocol.ResidentKeyRequirementRequired)
	timeout := webauthn.TimeoutConfig{Enforce: true, Timeout: p.timeout, TimeoutUVD: p.timeout}
	w, err := webauthn.New(&webauthn.Config{
		RPID:                  rp.ID,
		RPDisplayName:         rp.DisplayName,
		RPOrigins:             web,
		RPOpaqueOrigins:       opaque,
		AttestationPreference: protocol.ConveyancePreference(p.attestation),
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			AuthenticatorAttachment: protocol.AuthenticatorAttachment(p.attachment),
			RequireResidentKey:      &requireRK,
			ResidentKey:             protocol.ResidentKeyRequirement(p.residentKey),
			UserVerification:        protocol.UserVerificationRequirement(p.userVerification),
		},
		Timeouts: webauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
	if err != nil {
		return nil, fmt.Errorf("relying party of tenant config: %w", err)
	}
	return w, nil
}

// relyingParties caches the go-webauthn relying parties of every tenant, rebuilt when the tenant's
// revision changes, so no request builds one.
type relyingParties struct {
	mu      sync.RWMutex
	tenants map[uuid.UUID]*tenantRPs
}

type tenantRPs struct {
	revision int64
	passkey  *webauthn.WebAuthn
	mfa      *webauthn.WebAuthn
}

func (r *relyingParties) get(snap *tenant.Snapshot, mfa bool) (*webauthn.WebAuthn, error) {
	r.mu.RLock()
	t := r.tenants[snap.ID]
	r.mu.RUnlock()
	if t == nil || t.revision != snap.Revision {
		passkey, err := newRelyingParty(snap.Config, false)
		if err != nil {
			return nil, err
		}
		second, err := newRelyingParty(snap.Config, true)
		if err != nil {
			return nil, err
		}
		t = &tenantRPs{revision: snap.Revision, passkey: passkey, mfa: second}
		r.mu.Lock()
		if r.tenants == nil {
			r.tenants = map[uuid.UUID]*tenantRPs{}
		}
		r.tenants[snap.ID] = t
		r.mu.Unlock()
	}
	if mfa {
		return t.mfa, nil
	}
	return t.passkey, nil
}

// webauthnUser adapts a User and the credentials a ceremony may use to go-webauthn's User.
type webauthnUser struct {
	user  User
	creds []Credential
	// legacyHandle is set when the assertion carried the 16-byte binary form of a UUID user id, as
	// credentials registered with Hanko's server do (see hankoHandle).
	legacyHandle []byte
}

// WebAuthnID is the user handle: the UTF-8 bytes of the application's user id (WebAuthn §5.4.3), or
// the legacy binary handle of a credential imported from Hanko.
func (u *webauthnUser) WebAuthnID() []byte {
	if u.legacyHandle != nil {
		return u.legacyHandle
	}
	return []byte(u.user.UserID)
}

// hankoHandle reports whether handle is the handle Hanko's server gave a credential of the user whose
// application id is userID: Hanko stored a user id that parsed as a UUID as its 16 raw bytes (contract
// §4.3), so those credentials answer with that handle, not with the id's text.
func hankoHandle(userID string, handle []byte) bool {
	if len(handle) != 16 || string(handle) == userID {
		return false
	}
	id, err := uuid.Parse(userID)
	return err == nil && bytes.Equal(id[:], handle)
}

// WebAuthnName is the user's account name.
func (u *webauthnUser) WebAuthnName() string { return u.user.Name }

// WebAuthnDisplayName is the user's display name.
func (u *webauthnUser) WebAuthnDisplayName() string { return u.user.DisplayName }

// WebAuthnCredentials are the credentials this ceremony accepts.
func (u *webauthnUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(u.creds))
	for _, c := range u.creds {
		wc, err := c.webauthn()
		if err == nil {
			out = append(out, wc)
		}
	}
	return out
}

// webauthn converts a stored credential to go-webauthn's record.
func (c Credential) webauthn() (webauthn.Credential, error) {
	id, err := decodeID(c.ID)
	if err != nil {
		return webauthn.Credential{}, err
	}
	transports := make([]protocol.AuthenticatorTransport, len(c.Transports))
	for i, t := range c.Transports {
		transports[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID:                id,
		PublicKey:         c.PublicKey,
		AttestationFormat: c.AttestationType,
		Transport:         transports,
		Flags: webauthn.CredentialFlags{
			UserPresent:    c.UserPresent,
			UserVerified:   c.UserVerified,
			BackupEligible: c.BackupEligible,
			BackupState:    c.BackupState,
		},
		Authenticator: webauthn.Authenticator{
			AAGUID:    c.AAGUID[:],
			SignCount: c.SignCount,
			// Not the stored warning: go-webauthn's flag must say whether this login's counter
			// regressed (see VerifyLogin).
			Attachment: protocol.AuthenticatorAttachment(c.AuthenticatorAttachment),
		},
	}, nil
}
