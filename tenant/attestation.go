package tenant

import (
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Attestation policy modes (see AttestationPolicy.Mode).
const (
	// PolicyNone judges and records every registration's attestation and refuses nothing.
	PolicyNone = "none"
	// PolicyMonitor records what the policy would refuse with the credential, and accepts it.
	PolicyMonitor = "monitor"
	// PolicyEnforce refuses a registration the policy does not accept, and a login whose
	// authenticator the FIDO Metadata Service has since revoked.
	PolicyEnforce = "enforce"
)

// CertificationLevels are the FIDO authenticator certification levels a policy may require, lowest
// first (the MDS3 AuthenticatorStatus values of the same names).
var CertificationLevels = []string{"FIDO_CERTIFIED_L1", "FIDO_CERTIFIED_L1plus", "FIDO_CERTIFIED_L2",
	"FIDO_CERTIFIED_L2plus", "FIDO_CERTIFIED_L3", "FIDO_CERTIFIED_L3plus"}

// AttestationPolicy says which authenticators a profile (passkeys, or second factors) accepts. The
// attestation conveyance the browser is asked for stays attestation_preference; a policy that needs a
// verified attestation needs "direct" or "enterprise" there. README.md "Attestation" says what each
// rule relies on.
type AttestationPolicy struct {
	// Mode is none (the default), monitor or enforce.
	Mode string `json:"mode"`
	// MinCertification is the lowest FIDO certification level accepted (one of CertificationLevels);
	// it implies RequireVerified, since a level is only believed of an attested authenticator.
	MinCertification string `json:"min_certification,omitempty"`
	// RequireVerified accepts only attestations whose certificate chain leads to a root the metadata
	// lists for the authenticator's AAGUID.
	RequireVerified bool `json:"require_verified_attestation,omitempty"`
	// AllowedAAGUIDs, when not empty, lists the only authenticator models accepted; DeniedAAGUIDs
	// lists models refused. Unless the attestation verifies, an AAGUID is what the authenticator says
	// of itself.
	AllowedAAGUIDs []string `json:"allowed_aaguids,omitempty"`
	DeniedAAGUIDs  []string `json:"denied_aaguids,omitempty"`
	// AllowBackupEligible false refuses backup-eligible (synced) credentials; nil means true.
	AllowBackupEligible *bool `json:"allow_backup_eligible,omitempty"`
}

// ModeOf returns the mode of a policy, PolicyNone for a nil policy or an empty mode.
func (p *AttestationPolicy) ModeOf() string {
	if p == nil || p.Mode == "" {
		return PolicyNone
	}
	return p.Mode
}

// BackupEligibleAllowed reports whether the policy accepts backup-eligible credentials.
func (p *AttestationPolicy) BackupEligibleAllowed() bool {
	return p == nil || p.AllowBackupEligible == nil || *p.AllowBackupEligible
}

// NeedsVerified reports whether the policy accepts only verified attestations.
func (p *AttestationPolicy) NeedsVerified() bool {
	return p != nil && (p.RequireVerified || p.MinCertification != "")
}

// normalize lower-cases the AAGUIDs and fills the default mode.
func (p *AttestationPolicy) normalize() {
	if p == nil {
		return
	}
	if p.Mode == "" {
		p.Mode = PolicyNone
	}
	for _, list := range [][]string{p.AllowedAAGUIDs, p.DeniedAAGUIDs} {
		for i, a := range list {
			list[i] = strings.ToLower(strings.TrimSpace(a))
		}
	}
}

// validate reports the problems of the policy at field (webauthn.attestation_policy or
// mfa.attestation_policy).
func (p *AttestationPolicy) validate(field string, pr *problems) {
	if p == nil {
		return
	}
	pr.enum(field+".mode", p.Mode, []string{PolicyNone, PolicyMonitor, PolicyEnforce})
	if p.MinCertification != "" && !slices.Contains(CertificationLevels, p.MinCertification) {
		pr.Add("%s.min_certification must be one of '%s'", field, strings.Join(CertificationLevels, " "))
	}
	check := func(name string, list []string) map[string]bool {
		seen := map[string]bool{}
		for _, a := range list {
			// The canonical 8-4-4-4-12 form only, as AAGUIDs are written in MDS and in this API.
			if id, err := uuid.Parse(a); err != nil || len(a) != 36 || id == uuid.Nil {
				pr.Add("%s.%s: %q is not an AAGUID (8-4-4-4-12 hexadecimal, not all zero)", field, name, a)
				continue
			}
			seen[a] = true
		}
		return seen
	}
	allowed, denied := check("allowed_aaguids", p.AllowedAAGUIDs), check("denied_aaguids", p.DeniedAAGUIDs)
	for a := range allowed {
		if denied[a] {
			pr.Add("%s: %s is both allowed and denied", field, a)
		}
	}
	const maxAAGUIDs = 1000
	if len(p.AllowedAAGUIDs) > maxAAGUIDs || len(p.DeniedAAGUIDs) > maxAAGUIDs {
		pr.Add("%s: at most %d AAGUIDs per list", field, maxAAGUIDs)
	}
}

// AllowsAAGUID reports whether the policy's lists accept the AAGUID, and which rule refuses it
// ("aaguid_denied" or "aaguid_not_allowed") when they do not.
func (p *AttestationPolicy) AllowsAAGUID(aaguid uuid.UUID) (bool, string) {
	if p == nil {
		return true, ""
	}
	s := aaguid.String()
	if slices.Contains(p.DeniedAAGUIDs, s) {
		return false, "aaguid_denied"
	}
	if len(p.AllowedAAGUIDs) > 0 && !slices.Contains(p.AllowedAAGUIDs, s) {
		return false, "aaguid_not_allowed"
	}
	return true, ""
}
