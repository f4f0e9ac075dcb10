package attestation

import (
	"crypto/x509"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/tenant"
)

// Errors of this package; the transport maps each to a status.
var (
	// ErrNotAllowed means a registration's authenticator is refused by the tenant's enforced
	// attestation policy; details name the rules it broke.
	ErrNotAllowed = passkey.NewError("authenticator_not_allowed", "the authenticator is not allowed by the attestation policy")
	// ErrRevoked means a login's authenticator has a status in the FIDO Metadata Service that the
	// tenant's enforced policy refuses (REVOKED, or a key compromise), reported after the credential
	// was registered.
	ErrRevoked = passkey.NewError("authenticator_revoked", "the authenticator has been revoked by the FIDO Metadata Service")
	// ErrMetadataUnavailable means an enforced policy needs the FIDO metadata and none is loaded.
	ErrMetadataUnavailable = passkey.NewError("metadata_unavailable", "the FIDO metadata is not loaded")
)

// Verdict is what an attestation proves about the authenticator (WebAuthn §6.5.3 attestation types).
type Verdict string

// Verdicts, strongest first.
const (
	// Verified: the attestation certificate chain leads to a root the FIDO metadata lists for the
	// authenticator's AAGUID (WebAuthn §7.1 step 21), so the AAGUID, flags and key come from a
	// certified model.
	Verified Verdict = "verified"
	// Unverified: a certificate attestation whose chain leads to no root the metadata lists for the
	// AAGUID (the AAGUID is unknown to it, no metadata is loaded, or the chain is not the model's).
	Unverified Verdict = "unverified"
	// Self: self attestation (packed without x5c): signed by the credential's own key, proving nothing
	// about the model.
	Self Verdict = "self"
	// None: no attestation ("none" format): the AAGUID is whatever the client left.
	None Verdict = "none"
)

// Evidence is what a verified registration tells of its authenticator: go-webauthn's parsed and
// signature-checked attestation (WebAuthn §7.1 steps 18-19).
type Evidence struct {
	// Format is the attestation statement format ("packed", "none", ...); Type go-webauthn's
	// attestation type ("basic_full", "basic_surrogate", "attca", "none", ...).
	Format, Type string
	AAGUID       uuid.UUID
	// Chain is the statement's x5c, attestation certificate first; empty without one.
	Chain          [][]byte
	BackupEligible bool
}

// Record is the judgement of a credential's attestation, stored with it.
type Record struct {
	Verdict Verdict
	// Root is the subject of the metadata root the chain verified to ("" unless Verified).
	Root string
	// Status is the authenticator's current MDS status report when judged ("" when the metadata does
	// not list its AAGUID); CertificationLevel its highest FIDO certification level in effect, counted
	// only for a Verified attestation ("" for none).
	Status             string
	CertificationLevel string
	// Violations are the rules of the tenant's policy the registration broke (monitor mode records
	// them; enforce refuses): see the Violation constants.
	Violations []string
	// Name is the model's description in verified metadata ("" otherwise): a credential's initial name.
	Name string
}

// Violations of an attestation policy, as stored and reported.
const (
	ViolationAAGUIDDenied     = "aaguid_denied"
	ViolationAAGUIDNotAllowed = "aaguid_not_allowed"
	ViolationBackupEligible   = "backup_eligible"
	ViolationUnverified       = "attestation_unverified"
	ViolationCertification    = "certification_below_minimum"
	ViolationRevoked          = "status_revoked"
	ViolationCompromised      = "status_compromised"
)

// refusedStatuses are the statuses an enforced policy refuses at registration and at login: the
// FIDO Alliance no longer trusts the model, or its keys can be extracted or forged, or user
// verification can be bypassed. Any report of them in effect counts, not only the latest: a later
// certification does not retract a compromise (MDS3 §3.1.4).
var refusedStatuses = []metadata.AuthenticatorStatus{metadata.Revoked, metadata.AttestationKeyCompromise,
	metadata.UserKeyRemoteCompromise, metadata.UserKeyPhysicalCompromise, metadata.UserVerificationBypass}

// Assess judges evidence against m (nil: no metadata) at now: the verdict, its root, the model's
// status and certification. It applies no policy.
func Assess(m *Metadata, e Evidence, now time.Time) Record {
	var r Record
	entry, listed := m.Entry(e.AAGUID)
	switch {
	case e.Format == "none" || e.Type == string(metadata.None):
		r.Verdict = None
	case len(e.Chain) == 0:
		r.Verdict = Self // packed self attestation (basic_surrogate), or a format without certificates
	default:
		r.Verdict = Unverified
		if listed {
			if root, ok := verifyChain(entry, e.Chain, now); ok {
				r.Verdict, r.Root = Verified, root
			}
		}
	}
	if listed {
		if cur := metadata.CurrentStatusReportAt(entry.StatusReports, now); cur != nil {
			r.Status = string(cur.Status)
		}
		if r.Verdict == Verified {
			r.CertificationLevel = certificationLevel(entry, now)
			r.Name = strings.TrimSpace(entry.MetadataStatement.Description)
		}
	}
	return r
}

// verifyChain checks the attestation chain against the entry's attestation roots (WebAuthn §7.1 step
// 21; FIDO Metadata Statement attestationRootCertificates) and returns the subject of the root it
// leads to.
func verifyChain(entry *metadata.Entry, chain [][]byte, now time.Time) (string, bool) {
	certs := make([]*x509.Certificate, 0, len(chain))
	for _, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return "", false
		}
		certs = append(certs, c)
	}
	opts := entry.MetadataStatement.Verifier(certs[1:])
	opts.CurrentTime = now
	chains, err := certs[0].Verify(opts)
	if err != nil || len(chains) == 0 {
		return "", false
	}
	c := chains[0]
	return c[len(c)-1].Subject.String(), true
}

// certificationLevel is the highest FIDO_CERTIFIED_* level among the entry's reports in effect, ""
// for none. FIDO_CERTIFIED (the phased-out scheme) counts as L1, as MDS3 says L1 replaces it.
func certificationLevel(entry *metadata.Entry, now time.Time) string {
	best := -1
	for _, r := range metadata.EffectiveStatusReports(entry.StatusReports, now) {
		level := slices.Index(tenant.CertificationLevels, string(r.Status))
		if r.Status == metadata.FidoCertified {
			level = 0
		}
		best = max(best, level)
	}
	if best < 0 {
		return ""
	}
	return tenant.CertificationLevels[best]
}

// StatusRefused returns the refused status in effect for the AAGUID in m (REVOKED, or a compromise),
// or "" when there is none. It is the check a login repeats: one map lookup in memory.
func StatusRefused(m *Metadata, aaguid uuid.UUID, now time.Time) string {
	entry, ok := m.Entry(aaguid)
	if !ok {
		return ""
	}
	for _, r := range metadata.EffectiveStatusReports(entry.StatusReports, now) {
		if slices.Contains(refusedStatuses, r.Status) {
			return string(r.Status)
		}
	}
	return ""
}

// Check judges a registration's evidence with the current metadata (Assess) and applies the policy:
// it returns the record to store, and ErrNotAllowed (details: the broken rules) when the policy is
// enforced and the evidence breaks it. A nil Source has no metadata.
//
// An enforced policy refuses with ErrMetadataUnavailable while metadata is configured but not loaded
// (a corrupt file at start, a URL that never answered): no status can be checked then, and accepting
// would register what the policy may refuse. Without any metadata configured, enforce applies what it
// can (the AAGUID lists, backup eligibility) and a rule that needs metadata is broken.
func (s *Source) Check(p *tenant.AttestationPolicy, e Evidence) (Record, error) {
	m, now := s.Current(), s.now()
	r := Assess(m, e, now)
	mode := p.ModeOf()
	if mode == tenant.PolicyNone {
		return r, nil
	}
	if mode == tenant.PolicyEnforce && m == nil && s.Configured() {
		return r, ErrMetadataUnavailable
	}
	if ok, rule := p.AllowsAAGUID(e.AAGUID); !ok {
		r.Violations = append(r.Violations, rule)
	}
	if e.BackupEligible && !p.BackupEligibleAllowed() {
		r.Violations = append(r.Violations, ViolationBackupEligible)
	}
	if p.NeedsVerified() && r.Verdict != Verified {
		r.Violations = append(r.Violations, ViolationUnverified)
	}
	if min := p.MinCertification; min != "" && r.Verdict == Verified &&
		slices.Index(tenant.CertificationLevels, r.CertificationLevel) < slices.Index(tenant.CertificationLevels, min) {
		r.Violations = append(r.Violations, ViolationCertification)
	}
	if s := StatusRefused(m, e.AAGUID, now); s == string(metadata.Revoked) {
		r.Violations = append(r.Violations, ViolationRevoked)
	} else if s != "" {
		r.Violations = append(r.Violations, ViolationCompromised)
	}
	if mode == tenant.PolicyEnforce && len(r.Violations) > 0 {
		return r, passkey.WithDetails(ErrNotAllowed, "the authenticator breaks the attestation policy: "+strings.Join(r.Violations, ", "))
	}
	return r, nil
}

// Refused returns the refused status in effect for the AAGUID in the current metadata (see
// StatusRefused), "" when there is none or no metadata is loaded.
func (s *Source) Refused(aaguid uuid.UUID) string {
	return StatusRefused(s.Current(), aaguid, s.now())
}

func (s *Source) now() time.Time {
	if s == nil {
		return time.Now()
	}
	return s.o.Now()
}

// ErrUnknownAuthenticator means the loaded metadata does not list the AAGUID.
var ErrUnknownAuthenticator = passkey.NewError("authenticator_not_found", "the FIDO metadata does not list this AAGUID")

// Authenticator summarises one model's metadata statement and status for operators.
type Authenticator struct {
	AAGUID      uuid.UUID
	Description string
	// Status is the current status report; CertificationLevel the highest level in effect (as for a
	// verified attestation of the model); Refused a refused status in effect ("" for none).
	Status, CertificationLevel, Refused string
	StatusReports                       []StatusReport
	TimeOfLastStatusChange              time.Time
	AttestationTypes, KeyProtection     []string
	// Roots are the subjects of the model's attestation root certificates.
	Roots []string
	// MultiDevice is the statement's multiDeviceCredentialSupport ("" when not stated).
	MultiDevice string
}

// StatusReport is one status report of a model.
type StatusReport struct {
	Status        string
	EffectiveDate *time.Time
}

// Authenticator returns the summary of the model with the AAGUID in the current metadata:
// ErrMetadataUnavailable when none is loaded, ErrUnknownAuthenticator when it does not list it.
func (s *Source) Authenticator(aaguid uuid.UUID) (Authenticator, error) {
	m, now := s.Current(), s.now()
	if m == nil {
		return Authenticator{}, ErrMetadataUnavailable
	}
	e, ok := m.Entry(aaguid)
	if !ok {
		return Authenticator{}, ErrUnknownAuthenticator
	}
	a := Authenticator{AAGUID: aaguid, Description: e.MetadataStatement.Description, CertificationLevel: certificationLevel(e, now),
		Refused: StatusRefused(m, aaguid, now), TimeOfLastStatusChange: e.TimeOfLastStatusChange,
		KeyProtection: e.MetadataStatement.KeyProtection, MultiDevice: string(e.MetadataStatement.MultiDeviceCredentialSupport),
		AttestationTypes: []string{}, Roots: []string{}, StatusReports: []StatusReport{}}
	if cur := metadata.CurrentStatusReportAt(e.StatusReports, now); cur != nil {
		a.Status = string(cur.Status)
	}
	for _, r := range e.StatusReports {
		a.StatusReports = append(a.StatusReports, StatusReport{Status: string(r.Status), EffectiveDate: r.EffectiveDate})
	}
	for _, t := range e.MetadataStatement.AttestationTypes {
		a.AttestationTypes = append(a.AttestationTypes, string(t))
	}
	for _, r := range e.MetadataStatement.AttestationRootCertificates {
		a.Roots = append(a.Roots, r.Subject.String())
	}
	if a.KeyProtection == nil {
		a.KeyProtection = []string{}
	}
	return a, nil
}
