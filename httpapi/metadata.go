package httpapi

import (
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/attestation"
)

// MetadataResponse describes the FIDO metadata an instance holds (GET /metadata).
type MetadataResponse struct {
	// Configured says whether PASSKEY_MDS_FILE or PASSKEY_MDS_URL is set; Loaded whether a blob is
	// in use.
	Configured bool       `json:"configured"`
	Loaded     bool       `json:"loaded"`
	Number     *int       `json:"number,omitempty"`
	NextUpdate string     `json:"next_update,omitempty"`
	Entries    int        `json:"entries"`
	Skipped    int        `json:"skipped_entries"`
	Origin     string     `json:"origin,omitempty"`
	LoadedAt   *time.Time `json:"loaded_at,omitempty"`
	// Stale is true once the blob in use is past its nextUpdate (a refresh failed since).
	Stale   bool                 `json:"stale"`
	Refresh metadataRefreshState `json:"refresh"`
}

type metadataRefreshState struct {
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	Failures    int        `json:"failures"`
	Next        *time.Time `json:"next,omitempty"`
}

// metadataState is what readiness details and GET /metadata show of the metadata source.
func metadataState(src *attestation.Source, now time.Time) MetadataResponse {
	r := MetadataResponse{Configured: src.Configured()}
	if m := src.Current(); m != nil {
		n, at := m.Number, m.LoadedAt.UTC()
		r.Loaded, r.Number, r.NextUpdate, r.Entries, r.Skipped, r.Origin, r.LoadedAt = true, &n, m.NextUpdate.Format(time.DateOnly), m.Len(), m.Skipped, m.Origin, &at
		r.Stale = !now.Before(m.NextUpdate.AddDate(0, 0, 1))
	}
	st := src.Status()
	r.Refresh = metadataRefreshState{LastError: st.LastError, Failures: st.Failures,
		LastAttempt: optionalTime(st.LastAttempt), LastSuccess: optionalTime(st.LastSuccess)}
	if r.Configured {
		r.Refresh.Next = optionalTime(src.NextRefresh())
	}
	return r
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (s *server) getMetadata(c *fiber.Ctx) error {
	return c.JSON(metadataState(s.Metadata, time.Now()))
}

// AuthenticatorResponse is one model's metadata summary (GET /metadata/{aaguid}).
type AuthenticatorResponse struct {
	AAGUID                 uuid.UUID              `json:"aaguid"`
	Description            string                 `json:"description"`
	Status                 string                 `json:"status,omitempty"`
	CertificationLevel     string                 `json:"certification_level,omitempty"`
	RefusedStatus          string                 `json:"refused_status,omitempty"`
	StatusReports          []statusReportResponse `json:"status_reports"`
	TimeOfLastStatusChange string                 `json:"time_of_last_status_change,omitempty"`
	AttestationTypes       []string               `json:"attestation_types"`
	KeyProtection          []string               `json:"key_protection"`
	AttestationRoots       []string               `json:"attestation_roots"`
	MultiDeviceSupport     string                 `json:"multi_device_credential_support,omitempty"`
}

type statusReportResponse struct {
	Status        string `json:"status"`
	EffectiveDate string `json:"effective_date,omitempty"`
}

func (s *server) getMetadataEntry(c *fiber.Ctx) error {
	raw := c.Params("aaguid")
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		return passkey.Invalid("aaguid must be an AAGUID in 8-4-4-4-12 form")
	}
	a, err := s.Metadata.Authenticator(id)
	if err != nil {
		return err
	}
	r := AuthenticatorResponse{AAGUID: a.AAGUID, Description: a.Description, Status: a.Status, CertificationLevel: a.CertificationLevel,
		RefusedStatus: a.Refused, AttestationTypes: a.AttestationTypes, KeyProtection: a.KeyProtection, AttestationRoots: a.Roots,
		MultiDeviceSupport: a.MultiDevice, StatusReports: make([]statusReportResponse, 0, len(a.StatusReports))}
	if !a.TimeOfLastStatusChange.IsZero() {
		r.TimeOfLastStatusChange = a.TimeOfLastStatusChange.Format(time.DateOnly)
	}
	for _, sr := range a.StatusReports {
		out := statusReportResponse{Status: sr.Status}
		if sr.EffectiveDate != nil {
			out.EffectiveDate = sr.EffectiveDate.Format(time.DateOnly)
		}
		r.StatusReports = append(r.StatusReports, out)
	}
	r.Description = strings.TrimSpace(r.Description)
	return c.JSON(r)
}
