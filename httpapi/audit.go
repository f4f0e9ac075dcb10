package httpapi

import (
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/audit"
)

// AuditEntry is one audit log entry on the wire: Hanko's shape
// (docs/hanko-compatibility.md#audit-log-entry) plus tenant, ceremony and details.
type AuditEntry struct {
	ID          uuid.UUID `json:"id"`
	Type        string    `json:"type"`
	Error       string    `json:"error,omitempty"`
	RequestID   string    `json:"meta_http_request_id"`
	SourceIP    string    `json:"meta_source_ip"`
	UserAgent   string    `json:"meta_user_agent"`
	ActorUserID string    `json:"actor_user_id,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// TenantID is null only for deployment-wide events, which the tenant endpoints never return.
	TenantID *uuid.UUID `json:"tenant_id"`
	// TransactionID is null, never omitted, when the event has no transaction (as in Hanko).
	TransactionID *string `json:"transaction_id"`
	Ceremony      string  `json:"ceremony,omitempty"`
	// Details says what an admin or credential change acted on (credential_id, secret_id, user_id,
	// api_key_id, kid; tenant_id for a deleted tenant).
	Details map[string]any `json:"details,omitempty"`
}

func auditEntry(e audit.Event) AuditEntry {
	out := AuditEntry{
		ID: e.ID, Type: e.Type, Error: e.Error, RequestID: e.RequestID, SourceIP: e.SourceIP,
		UserAgent: e.UserAgent, ActorUserID: e.ActorUserID, CreatedAt: e.CreatedAt, UpdatedAt: e.CreatedAt,
		TenantID: e.TenantID, Ceremony: e.Ceremony, Details: e.Details,
	}
	if e.TransactionID != "" {
		tx := e.TransactionID
		out.TransactionID = &tx
	}
	return out
}

// tenantAuditLogs answers GET /{tenant_id}/audit_logs for the request's tenant.
func (s *server) tenantAuditLogs(c *fiber.Ctx) error {
	id := snapshotOf(c).ID
	return s.auditLogs(c, &id)
}

// adminAuditLogs answers GET /tenants/{tenant_id}/audit_logs.
func (s *server) adminAuditLogs(c *fiber.Ctx) error {
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	return s.auditLogs(c, &id)
}

// deploymentAuditLogs answers GET /audit_logs on the admin API: the deployment-wide events, which
// belong to no tenant (the deletion of a tenant, whose id is in details).
func (s *server) deploymentAuditLogs(c *fiber.Ctx) error {
	return s.auditLogs(c, nil)
}

// auditLogs reads the query parameters of an audit log query (docs/hanko-compatibility.md#audit-log-filters):
// page and per_page, type (repeated, comma-separated, or both), start_time and end_time (RFC 3339),
// actor_user_id, meta_source_ip and q. Their syntax is checked here, every problem at once; the
// audit log checks the rules (known types, lengths).
func (s *server) auditLogs(c *fiber.Ctx, tenantID *uuid.UUID) error {
	var p passkey.Problems
	f := audit.Filter{TenantID: tenantID, Page: pageOf(c, &p)}
	for _, raw := range c.Context().QueryArgs().PeekMulti("type") {
		for _, t := range strings.Split(string(raw), ",") {
			if t = strings.TrimSpace(t); t != "" {
				f.Types = append(f.Types, t)
			}
		}
	}
	for _, q := range []struct {
		name string
		dst  *time.Time
	}{{"start_time", &f.Start}, {"end_time", &f.End}} {
		raw := c.Query(q.name)
		if raw == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			p.Add("%s must be an RFC 3339 time, such as 2026-01-02T15:04:05Z", q.name)
			continue
		}
		*q.dst = t.UTC()
	}
	f.ActorUserID = strings.Clone(c.Query("actor_user_id"))
	f.SourceIP = strings.Clone(c.Query("meta_source_ip"))
	f.Q = strings.Clone(c.Query("q"))
	_, rules := s.AuditLog.Check(f)
	if err := withRules(p, audit.ErrInvalidFilter, rules); err != nil {
		return err
	}
	events, total, err := s.AuditLog.List(c.UserContext(), f)
	if err != nil {
		return err
	}
	out := make([]AuditEntry, 0, len(events))
	for _, e := range events {
		out = append(out, auditEntry(e))
	}
	s.setPaginationHeaders(c, f.Page, total)
	return c.JSON(out)
}
