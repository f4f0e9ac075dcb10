package credentials

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/passkey-server/passkey-server/tenant"
)

// profile is one set of ceremony options of a tenant: its passkey profile or its MFA profile.
type profile struct {
	timeout          time.Duration
	userVerification string
	attachment       string
	attestation      string
	residentKey      string
	// hints are the profile's default hints (WebAuthn §5.8.7); a request's own replace them.
	hints []string
}

func profileOf(c tenant.Config, mfa bool) profile {
	if mfa && c.MFA != nil {
		m := c.MFA
		hints := m.Hints
		if hints == nil { // stored before hints existed (tenant.MFAConfig.Hints)
			hints = tenant.DefaultMFAHints
		}
		return profile{time.Duration(m.Timeout) * time.Millisecond, m.UserVerification, m.Attachment, m.AttestationPreference, m.ResidentKeyRequirement, hints}
	}
	w := c.WebAuthn
	p := profile{time.Duration(w.Timeout) * time.Millisecond, w.UserVerification, "", w.AttestationPreference, w.ResidentKeyRequirement, w.Hints}
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
	// Related origins (WebAuthn §5.11) are accepted like the tenant's own origins. They are added after
	// New on purpose: with an opaque origin (android:apk-key-hash:...) configured, go-webauthn's
	// validation holds RPOrigins to the related-origins label budget counted naively (the label left of
	// the last dot, so example.co.uk counts as "co"), and would refuse, at the first ceremony, a list
	// the tenant's validation accepted with the public-suffix list (tenant/related.go). The budget is
	// checked there, exactly, when the config is saved.
	w.Config.RPOrigins = append(w.Config.RPOrigins, c.WebAuthn.RelatedOrigins...)
	return w, nil
}

// rpKey identifies a tenant's relying party among the values derived from its snapshot: one for its
// passkey options, one for its MFA options.
type rpKey struct{ secondFactor bool }

// relyingParty returns the go-webauthn relying party of the ceremony's options of the tenant, built
// once per tenant revision (tenant.Derived), so no request builds one.
func relyingParty(snap *tenant.Snapshot, ceremony Ceremony) (*webauthn.WebAuthn, error) {
	return tenant.Derived(snap, rpKey{ceremony.SecondFactor}, func(snap *tenant.Snapshot) (*webauthn.WebAuthn, error) {
		return newRelyingParty(snap.Config, ceremony.SecondFactor)
	})
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
	return []byte(u.user.AppUserID)
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
			// regressed (see VerifyAssertion).
			Attachment: protocol.AuthenticatorAttachment(c.AuthenticatorAttachment),
		},
	}, nil
}

// hintsOf returns the hints of a ceremony's options (WebAuthn §5.8.7): the request's when it names
// any (an empty list included, which sends none), else the tenant profile's default.
func hintsOf(requested []string, c tenant.Config, ceremony Ceremony) []protocol.PublicKeyCredentialHints {
	hints := requested
	if hints == nil {
		hints = profileOf(c, ceremony.SecondFactor).hints
	}
	out := make([]protocol.PublicKeyCredentialHints, len(hints))
	for i, h := range hints {
		out[i] = protocol.PublicKeyCredentialHints(h)
	}
	return out
}
