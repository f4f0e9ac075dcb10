package credentials

import (
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/attestation"
	"github.com/passkey-server/passkey-server/tenant"
)

// attestationPolicy is the policy of the ceremony's profile: a tenant may accept synced passkeys for
// login but only certified security keys as a second factor.
func attestationPolicy(snap *tenant.Snapshot, ceremony Ceremony) *tenant.AttestationPolicy {
	if ceremony.SecondFactor && snap.Config.MFA != nil {
		return snap.Config.MFA.AttestationPolicy
	}
	return snap.Config.WebAuthn.AttestationPolicy
}

// evidence is what go-webauthn verified of a registration (WebAuthn §7.1 steps 18-19: the statement's
// signature, and for packed full attestation the certificate's fields and AAGUID extension), for the
// trust path and policy checks of package attestation (step 21 and the relying party's policy).
func evidence(parsed *protocol.ParsedCredentialCreationData, wc *webauthn.Credential, aaguid uuid.UUID) attestation.Evidence {
	e := attestation.Evidence{Format: wc.AttestationFormat, Type: wc.AttestationType, AAGUID: aaguid,
		BackupEligible: wc.Flags.BackupEligible}
	if x5c, ok := parsed.Response.AttestationObject.AttStatement["x5c"].([]any); ok {
		for _, c := range x5c {
			if der, ok := c.([]byte); ok {
				e.Chain = append(e.Chain, der)
			}
		}
	}
	return e
}

// judgeRegistration applies the tenant's attestation policy to a verified registration and fills the
// credential's attestation record and, from verified metadata, its initial name.
func (s *Service) judgeRegistration(snap *tenant.Snapshot, ceremony Ceremony, e attestation.Evidence, cred *Credential) error {
	record, err := s.metadata.Check(attestationPolicy(snap, ceremony), e)
	if err != nil {
		return err
	}
	name := record.Name
	record.Name = "" // not stored: the credential's name is
	cred.Attestation = record
	if name != "" {
		// The model's name from metadata whose chain verified beats the community table's, which
		// rests on the AAGUID the authenticator claims.
		if utf8.RuneCountInString(name) > maxCredentialNameRunes {
			name = string([]rune(name)[:maxCredentialNameRunes])
		}
		cred.Name = &name
	} else if a, ok := s.aaguids.Lookup(cred.AAGUID); ok {
		cred.Name = &a.Name
	}
	return nil
}

// checkStatus repeats at login the status check of registration with data already in memory: the
// credential's AAGUID and the current metadata (no statement). It returns ErrRevoked when the
// authenticator now has a refused status and the ceremony's policy enforces, and the status a
// monitoring policy records ("" for no change). A change of status is an event
// (passkey.CredentialAuthenticatorStatusChanged), emitted once per change under monitor and at every
// refused login under enforce (which writes nothing). It returns that event, for the caller to commit
// with the login's write (monitor) or to emit (enforce).
func (s *Service) checkStatus(snap *tenant.Snapshot, ceremony Ceremony, cred Credential) (string, passkey.Event, error) {
	policy := attestationPolicy(snap, ceremony)
	mode := policy.ModeOf()
	if mode == tenant.PolicyNone {
		return "", passkey.Event{}, nil
	}
	status := s.metadata.Refused(cred.AAGUID)
	if status == "" || status == cred.Attestation.Status {
		return "", passkey.Event{}, nil
	}
	action := "flagged"
	if mode == tenant.PolicyEnforce {
		action = "refused"
	}
	e := passkey.Event{Type: passkey.CredentialAuthenticatorStatusChanged, TenantID: snap.ID,
		AppUserID: cred.AppUserID, CredentialID: cred.ID, Details: map[string]string{
			"credential_id": cred.ID, "aaguid": cred.AAGUID.String(), "previous_status": cred.Attestation.Status, "status": status, "action": action}}
	if mode == tenant.PolicyEnforce {
		return "", e, passkey.WithDetails(attestation.ErrRevoked, "the FIDO Metadata Service reports the authenticator's status as "+status)
	}
	return status, e, nil
}
