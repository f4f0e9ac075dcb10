package httpapi

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
)

// CredentialResponse is a credential on the wire: Hanko's shape
// (docs/hanko-compatibility.md#credential-shape) plus the authenticator's name and icons from the
// AAGUID table, the user verification flag and the clone warning.
type CredentialResponse struct {
	ID                      string     `json:"id"`
	Name                    *string    `json:"name,omitempty"`
	PublicKey               string     `json:"public_key"`
	AttestationType         string     `json:"attestation_type"`
	AAGUID                  uuid.UUID  `json:"aaguid"`
	LastUsedAt              *time.Time `json:"last_used_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	Transports              []string   `json:"transports"`
	BackupEligible          bool       `json:"backup_eligible"`
	BackupState             bool       `json:"backup_state"`
	IsMFA                   bool       `json:"is_mfa"`
	UserID                  string     `json:"user_id"`
	UserVerified            bool       `json:"user_verified"`
	CloneWarning            bool       `json:"clone_warning"`
	AuthenticatorAttachment string     `json:"authenticator_attachment,omitempty"`
	AuthenticatorName       string     `json:"authenticator_name,omitempty"`
	IconLight               string     `json:"icon_light,omitempty"`
	IconDark                string     `json:"icon_dark,omitempty"`
	// Attestation is the judgement of the attestation at registration; nil for credentials
	// registered before attestation was judged.
	Attestation *AttestationResponse `json:"attestation,omitempty"`
}

// AttestationResponse is a credential's attestation record on the wire (openapi.yaml
// CredentialAttestation).
type AttestationResponse struct {
	Format             string   `json:"format"`
	Verdict            string   `json:"verdict"`
	Root               string   `json:"root,omitempty"`
	MDSStatus          string   `json:"mds_status,omitempty"`
	CertificationLevel string   `json:"certification_level,omitempty"`
	PolicyViolations   []string `json:"policy_violations"`
}

func (s *server) credentialResponse(c credentials.Credential) CredentialResponse {
	r := CredentialResponse{
		ID: c.ID, Name: c.Name, PublicKey: base64.RawURLEncoding.EncodeToString(c.PublicKey),
		AttestationType: c.AttestationType, AAGUID: c.AAGUID, LastUsedAt: c.LastUsedAt, CreatedAt: c.CreatedAt,
		Transports: c.Transports, BackupEligible: c.BackupEligible, BackupState: c.BackupState, IsMFA: c.IsMFA,
		UserID: c.AppUserID, UserVerified: c.UserVerified, CloneWarning: c.CloneWarning,
		AuthenticatorAttachment: c.AuthenticatorAttachment,
	}
	if r.Transports == nil {
		r.Transports = []string{}
	}
	if a := c.Attestation; a.Verdict != "" {
		r.Attestation = &AttestationResponse{Format: c.AttestationType, Verdict: string(a.Verdict), Root: a.Root,
			MDSStatus: a.Status, CertificationLevel: a.CertificationLevel, PolicyViolations: a.Violations}
		if r.Attestation.PolicyViolations == nil {
			r.Attestation.PolicyViolations = []string{}
		}
	}
	if a, ok := s.Credentials.Authenticator(c); ok {
		r.AuthenticatorName, r.IconLight, r.IconDark = a.Name, a.IconLight, a.IconDark
	}
	return r
}

// sortDirection reads a sort direction parameter: desc (the default) or asc, in any letter case;
// problem is what is wrong with any other value.
func sortDirection(c *fiber.Ctx, name, problem string, p *passkey.Problems) (ascending bool) {
	switch strings.ToLower(c.Query(name, "desc")) {
	case "desc":
	case "asc":
		return true
	default:
		p.Add("%s", problem)
	}
	return false
}

func (s *server) listCredentials(c *fiber.Ctx) error {
	var p passkey.Problems
	f := credentials.ListFilter{AppUserID: c.Query("user_id"), Page: pageOf(c, &p), Ascending: sortDirection(c, "order", "order must be one of 'desc asc'", &p)}
	if err := p.Err(passkey.ErrInvalidRequest); err != nil {
		return err
	}
	creds, total, err := s.Credentials.List(c.UserContext(), snapshotOf(c), f)
	if err != nil {
		return err
	}
	out := make([]CredentialResponse, 0, len(creds))
	for _, cr := range creds {
		out = append(out, s.credentialResponse(cr))
	}
	s.setPaginationHeaders(c, f.Page, total)
	return c.JSON(out)
}

func (s *server) getCredential(c *fiber.Ctx) error {
	id, err := pathParam(c, "credential_id")
	if err != nil {
		return err
	}
	cred, err := s.Credentials.Get(c.UserContext(), snapshotOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(s.credentialResponse(cred))
}

func (s *server) renameCredential(c *fiber.Ctx) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	id, err := pathParam(c, "credential_id")
	if err != nil {
		return err
	}
	if err := s.Credentials.Rename(c.UserContext(), snapshotOf(c), id, req.Name); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) deleteCredential(c *fiber.Ctx) error {
	id, err := pathParam(c, "credential_id")
	if err != nil {
		return err
	}
	if err := s.Credentials.Delete(c.UserContext(), snapshotOf(c), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
