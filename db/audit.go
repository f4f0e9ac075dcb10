package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/passkey-server/passkey-server/audit"
)

// AuditStore is the database implementation of audit.Store. Every filter value reaches the database
// through Bun's placeholders, which quote it; no input is ever part of the SQL text.
type AuditStore struct {
	db *bun.DB
	bound
	now func() time.Time
}

var _ audit.Store = (*AuditStore)(nil)

// NewAuditStore returns the audit log store of d.
func NewAuditStore(d *DB) *AuditStore {
	return &AuditStore{db: d.bun, bound: d.bound, now: time.Now}
}

// auditDeleteChunk is how many rows one DELETE of DeleteBefore removes, so that retention never
// holds one long transaction over a large table.
const auditDeleteChunk = 5000

// auditColumns are the columns List reads, named so that a column added later does not break reads.
const auditColumns = "id, tenant_id, type, ceremony, error, request_id, source_ip, user_agent, " +
	"actor_user_id, transaction_id, details, created_at, updated_at"

// likeEscaper escapes LIKE's wildcards and its escape character, for patterns used with ESCAPE '\'.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// containsPattern is a LIKE pattern that matches strings containing s literally.
func containsPattern(s string) string { return "%" + likeEscaper.Replace(s) + "%" }

// Insert stores events with one multi-row INSERT, so a whole batch costs one statement and one
// commit. Zero IDs and times are filled in; an event whose ID is already stored is skipped (a batch
// written again after a lost reply). When the insert fails because a tenant no longer exists
// (deleted since the events were recorded, with its other events), the events of missing tenants are
// left out and the rest is inserted.
func (s *AuditStore) Insert(ctx context.Context, events []audit.Event) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	if len(events) == 0 {
		return nil
	}
	rows := make([]auditLogRow, 0, len(events))
	for _, e := range events {
		row, err := s.newRow(e)
		if err != nil {
			return fmt.Errorf("insert audit events: %w", err)
		}
		rows = append(rows, row)
	}
	// ON CONFLICT (id) DO NOTHING: an event already stored is the same event written again (the
	// Recorder retries a batch whose commit succeeded but whose reply was lost), not an error; without
	// it that batch, and every event behind it, would be refused for ever.
	_, err = s.db.NewInsert().Model(&rows).On("CONFLICT (id) DO NOTHING").Exec(ctx)
	if err == nil {
		return nil
	}
	if !errors.Is(translate(err), errForeignKeyViolation) {
		return fmt.Errorf("insert %d audit events: %w", len(rows), translate(err))
	}
	rows, err = s.withExistingTenants(ctx, rows)
	if err != nil {
		return fmt.Errorf("insert audit events: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	if _, err := s.db.NewInsert().Model(&rows).On("CONFLICT (id) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("insert %d audit events: %w", len(rows), translate(err))
	}
	return nil
}

// withExistingTenants returns the rows whose tenant exists (or that have none).
func (s *AuditStore) withExistingTenants(ctx context.Context, rows []auditLogRow) ([]auditLogRow, error) {
	set := map[uuid.UUID]bool{}
	var ids []uuid.UUID
	for _, r := range rows {
		if r.TenantID != nil && !set[*r.TenantID] {
			set[*r.TenantID] = true
			ids = append(ids, *r.TenantID)
		}
	}
	var existing []uuid.UUID
	if len(ids) > 0 {
		err := s.db.NewSelect().TableExpr("tenants").Column("id").Where("id IN (?)", bun.In(ids)).Scan(ctx, &existing)
		if err != nil {
			return nil, fmt.Errorf("find tenants of audit events: %w", err)
		}
	}
	exists := map[uuid.UUID]bool{}
	for _, id := range existing {
		exists[id] = true
	}
	kept := rows[:0]
	for _, r := range rows {
		if r.TenantID == nil || exists[*r.TenantID] {
			kept = append(kept, r)
		}
	}
	return kept, nil
}

// List returns the page f.Page of the events that match f, newest first (ties broken by id), and how
// many match on all pages (listPage). f.TenantID nil selects deployment-wide events only. Types match
// exactly; Start and End bound created_at exclusively; ActorUserID, SourceIP and Q (source IP or
// actor) match substrings literally: LIKE wildcards in them are escaped. Matching is case-sensitive on
// PostgreSQL and ASCII-case-insensitive on SQLite (SQLite's LIKE).
func (s *AuditStore) List(ctx context.Context, f audit.Filter) (_ []audit.Event, _ int, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	q := s.db.NewSelect().Model((*auditLogRow)(nil)).ColumnExpr(auditColumns).
		Apply(auditFilter(f)).
		OrderExpr("created_at DESC, id DESC")
	list, total, err := listPage(ctx, q, f.Page, auditLogRow.event)
	if err != nil {
		scope := "deployment-wide"
		if f.TenantID != nil {
			scope = "tenant " + f.TenantID.String()
		}
		return nil, 0, fmt.Errorf("list audit events of %s: %w", scope, err)
	}
	return list, total, nil
}

// auditFilter adds f's conditions to a select of audit_logs. Every value is a placeholder argument.
func auditFilter(f audit.Filter) func(*bun.SelectQuery) *bun.SelectQuery {
	return func(q *bun.SelectQuery) *bun.SelectQuery {
		if f.TenantID != nil {
			q = q.Where("tenant_id = ?", *f.TenantID)
		} else {
			q = q.Where("tenant_id IS NULL")
		}
		if len(f.Types) > 0 {
			q = q.Where("type IN (?)", bun.In(f.Types))
		}
		if !f.Start.IsZero() {
			q = q.Where("created_at > ?", dbTime(f.Start))
		}
		if !f.End.IsZero() {
			q = q.Where("created_at < ?", dbTime(f.End))
		}
		if f.ActorUserID != "" {
			q = q.Where(`actor_user_id LIKE ? ESCAPE '\'`, containsPattern(f.ActorUserID))
		}
		if f.SourceIP != "" {
			q = q.Where(`source_ip LIKE ? ESCAPE '\'`, containsPattern(f.SourceIP))
		}
		if f.Q != "" {
			p := containsPattern(f.Q)
			q = q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Where(`source_ip LIKE ? ESCAPE '\'`, p).WhereOr(`actor_user_id LIKE ? ESCAPE '\'`, p)
			})
		}
		return q
	}
}

// DeleteBefore removes the events created before t, of every tenant and deployment-wide, in chunks
// of a few thousand rows, and returns how many it removed.
func (s *AuditStore) DeleteBefore(ctx context.Context, t time.Time) (_ int, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	at := dbTime(t)
	total := 0
	for {
		sub := s.db.NewSelect().TableExpr("audit_logs").Column("id").
			Where("created_at < ?", at).Limit(auditDeleteChunk)
		res, err := s.db.NewDelete().TableExpr("audit_logs").Where("id IN (?)", sub).Exec(ctx)
		if err != nil {
			return total, fmt.Errorf("delete audit events before %s: %w", at.Format(time.RFC3339), err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("delete audit events before %s: %w", at.Format(time.RFC3339), err)
		}
		total += int(n)
		if n < auditDeleteChunk {
			return total, nil
		}
	}
}

// newRow converts an event to a row, filling in a zero ID or time.
func (s *AuditStore) newRow(e audit.Event) (auditLogRow, error) {
	if e.ID == uuid.Nil {
		e.ID = uuid.New()
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.now()
	}
	row := auditLogRow{
		ID:            e.ID,
		TenantID:      e.TenantID,
		Type:          e.Type,
		Ceremony:      optionalText(e.Ceremony),
		Error:         optionalText(e.Error),
		RequestID:     e.RequestID,
		SourceIP:      e.SourceIP,
		UserAgent:     e.UserAgent,
		ActorUserID:   optionalText(e.ActorUserID),
		TransactionID: optionalText(e.TransactionID),
		CreatedAt:     dbTime(e.CreatedAt),
		UpdatedAt:     dbTime(e.CreatedAt),
	}
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return auditLogRow{}, fmt.Errorf("encode details of audit event %s: %w", e.ID, err)
		}
		d := string(b)
		row.Details = &d
	}
	return row, nil
}

// event converts a row to an event.
func (r auditLogRow) event() (audit.Event, error) {
	e := audit.Event{
		ID:            r.ID,
		TenantID:      r.TenantID,
		Type:          r.Type,
		Ceremony:      deref(r.Ceremony),
		Error:         deref(r.Error),
		RequestID:     r.RequestID,
		SourceIP:      r.SourceIP,
		UserAgent:     r.UserAgent,
		ActorUserID:   deref(r.ActorUserID),
		TransactionID: deref(r.TransactionID),
		CreatedAt:     r.CreatedAt.UTC(),
	}
	if r.Details != nil {
		if err := json.Unmarshal([]byte(*r.Details), &e.Details); err != nil {
			return audit.Event{}, fmt.Errorf("decode details of audit event %s: %w", r.ID, err)
		}
	}
	return e, nil
}

// optionalText is nil for "", else a pointer to s.
func optionalText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// deref is *s, or "" for nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
