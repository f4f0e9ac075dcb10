package db

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/passkey-server/passkey-server/audit"
)

// AuditStore is the database implementation of audit.Store. Every filter value reaches the database
// through Bun's placeholders, which quote it; no input is ever part of the SQL text.
type AuditStore struct {
	db *bun.DB
	bound
	hot
	now func() time.Time
}

var _ audit.Store = (*AuditStore)(nil)

// NewAuditStore returns the audit log store of d.
func NewAuditStore(d *DB) *AuditStore {
	return &AuditStore{db: d.bun, bound: d.bound, hot: newHot(d), now: time.Now}
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

// deploymentTenant is the tenant_id of deployment-wide (admin) events: audit_logs is keyed by
// (tenant_id, id) like every table, and no tenant is ever created with the nil UUID
// (TenantStore.CreateTenant refuses it).
var deploymentTenant = uuid.Nil

// Insert stores events, a whole batch in one statement and one commit. Zero IDs and times are filled
// in; an event whose ID is already stored is skipped (a batch written again after a lost reply), and
// so are the events of tenants that no longer exist (deleted since the events were recorded: their
// other events went with them).
//
// audit_logs has no foreign key to tenants (migrations/*/..._tenant_first_keys.tx.up.sql), which
// made every event look up and lock its tenant's row. Instead the batch looks up each of its tenants
// once. On PostgreSQL that lookup also takes FOR KEY SHARE on the tenant rows, so a concurrent
// TenantStore.DeleteTenant either waits for this insert and then deletes its events too, or has
// deleted the tenant first and the events are left out: none outlives its tenant.
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
	if s.db.Dialect().Name() == dialect.PG && s.cached {
		err = s.insertPostgres(ctx, rows)
	} else {
		err = s.insertLookedUp(ctx, rows)
	}
	if err != nil {
		return fmt.Errorf("insert %d audit events: %w", len(rows), translate(err))
	}
	return nil
}

// auditInsertPostgres is the statement of insertPostgres. Its text is the same for every batch: the
// columns arrive as one array parameter each, so pgx prepares it once per connection and PostgreSQL
// neither parses nor plans it again, where a multi-row VALUES list with the values in the text was a
// new statement for every batch. $13 holds the batch's tenants, each once.
//
// ON CONFLICT (tenant_id, id) DO NOTHING: an event already stored is the same event written again
// (the Recorder retries a batch whose commit succeeded but whose reply was lost), not an error;
// without it that batch, and every event behind it, would be refused for ever.
const auditInsertPostgres = `INSERT INTO audit_logs (tenant_id, id, type, ceremony, error, request_id, source_ip,
	user_agent, actor_user_id, transaction_id, details, created_at, updated_at)
SELECT e.tenant_id, e.id, e.type, e.ceremony, e.error, e.request_id, e.source_ip,
	e.user_agent, e.actor_user_id, e.transaction_id, e.details::jsonb, e.created_at, e.created_at
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
	$8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[])
	AS e (tenant_id, id, type, ceremony, error, request_id, source_ip,
	user_agent, actor_user_id, transaction_id, details, created_at)
WHERE e.tenant_id = '00000000-0000-0000-0000-000000000000'
	OR e.tenant_id = ANY (ARRAY(SELECT id FROM tenants WHERE id = ANY ($13::uuid[]) FOR KEY SHARE))
ON CONFLICT (tenant_id, id) DO NOTHING`

// insertPostgres stores rows with auditInsertPostgres. It goes to database/sql, not through Bun,
// which would write the arguments into the statement's text.
func (s *AuditStore) insertPostgres(ctx context.Context, rows []auditLogRow) error {
	n := len(rows)
	var (
		tenantIDs      = make([]uuid.UUID, n)
		ids            = make([]uuid.UUID, n)
		types          = make([]string, n)
		ceremonies     = make([]*string, n)
		errs           = make([]*string, n)
		requestIDs     = make([]string, n)
		sourceIPs      = make([]string, n)
		userAgents     = make([]string, n)
		actors         = make([]*string, n)
		transactionIDs = make([]*string, n)
		details        = make([]*string, n)
		createdAt      = make([]time.Time, n)
	)
	for i, r := range rows {
		tenantIDs[i], ids[i], types[i], ceremonies[i], errs[i] = r.TenantID, r.ID, r.Type, r.Ceremony, r.Error
		requestIDs[i], sourceIPs[i], userAgents[i] = r.RequestID, r.SourceIP, r.UserAgent
		actors[i], transactionIDs[i], details[i], createdAt[i] = r.ActorUserID, r.TransactionID, r.Details, r.CreatedAt
	}
	// Kept prepared like the hot path's statements (hot.go): the connections' default is the simple
	// protocol (openPostgres), which would parse and plan it for every batch.
	_, err := sqlConn(ctx, s.db).ExecContext(ctx, auditInsertPostgres, s.modeArgs([]any{tenantIDs, ids, types, ceremonies, errs, requestIDs,
		sourceIPs, userAgents, actors, transactionIDs, details, createdAt, batchTenants(rows)})...)
	return err
}

// insertLookedUp stores rows with one multi-row INSERT, after one lookup of the batch's tenants, both
// in one transaction: SQLite's (which holds its write lock, so no tenant is deleted in between), and
// PostgreSQL's when its statements cannot be kept prepared (DB.prepared), with the lookup taking FOR
// KEY SHARE as insertPostgres does. (auditInsertPostgres's array parameters need the extended protocol.)
func (s *AuditStore) insertLookedUp(ctx context.Context, rows []auditLogRow) error {
	return runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		exists := map[uuid.UUID]bool{deploymentTenant: true}
		if tenants := batchTenants(rows); len(tenants) > 0 {
			var existing []uuid.UUID
			q := tx.NewSelect().TableExpr("tenants").Column("id").Where("id IN (?)", bun.In(tenants))
			if s.bind {
				q = q.For("KEY SHARE")
			}
			err := q.Scan(ctx, &existing)
			if err != nil {
				return fmt.Errorf("find tenants of audit events: %w", err)
			}
			for _, id := range existing {
				exists[id] = true
			}
		}
		kept := rows[:0]
		for _, r := range rows {
			if exists[r.TenantID] {
				kept = append(kept, r)
			}
		}
		if len(kept) == 0 {
			return nil
		}
		_, err := tx.NewInsert().Model(&kept).On("CONFLICT (tenant_id, id) DO NOTHING").Exec(ctx)
		return err
	})
}

// batchTenants returns the tenants of rows, each once, deploymentTenant left out.
func batchTenants(rows []auditLogRow) []uuid.UUID {
	var tenants []uuid.UUID
	for _, r := range rows {
		if r.TenantID != deploymentTenant && !slices.Contains(tenants, r.TenantID) {
			tenants = append(tenants, r.TenantID)
		}
	}
	return tenants
}

// List returns the page f.Page of the events that match f, newest first (ties broken by id), and how
// many match on all pages (listPage). f.TenantID nil selects deployment-wide events only. Types match
// exactly; Start and End bound created_at exclusively; ActorUserID, SourceIP and Q (source IP or
// actor) match substrings literally: LIKE wildcards in them are escaped. Matching is case-sensitive on
// PostgreSQL and ASCII-case-insensitive on SQLite (SQLite's LIKE).
func (s *AuditStore) List(ctx context.Context, f audit.Filter) (_ []audit.Event, _ int, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	q := conn(ctx, s.db).NewSelect().Model((*auditLogRow)(nil)).ColumnExpr(auditColumns).
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
		tenantID := deploymentTenant
		if f.TenantID != nil {
			tenantID = *f.TenantID
		}
		q = q.Where("tenant_id = ?", tenantID)
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
		// By the whole key: an index on id alone does not exist.
		sub := conn(ctx, s.db).NewSelect().TableExpr("audit_logs").Column("tenant_id", "id").
			Where("created_at < ?", at).Limit(auditDeleteChunk)
		res, err := conn(ctx, s.db).NewDelete().TableExpr("audit_logs").Where("(tenant_id, id) IN (?)", sub).Exec(ctx)
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
		TenantID:      deploymentTenant,
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
	if e.TenantID != nil {
		row.TenantID = *e.TenantID
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
	if r.TenantID != deploymentTenant {
		tenantID := r.TenantID
		e.TenantID = &tenantID
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
