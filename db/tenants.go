package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// TenantStore is the database implementation of tenant.Store: tenants, their API keys and their
// signing keys.
type TenantStore struct {
	db *bun.DB
	bound
	// now stamps tenants.updated_at on changes whose input carries no time (DeleteAPIKey).
	now func() time.Time
}

var _ tenant.Store = (*TenantStore)(nil)

// NewTenantStore returns the tenant store of d.
func NewTenantStore(d *DB) *TenantStore {
	return &TenantStore{db: d.bun, bound: d.bound, now: time.Now}
}

// CreateTenant stores a new tenant with its first API keys and signing key in one transaction. Its
// revision is t.Revision, or 1 when that is not positive. Every key must belong to t; two keys with
// one name give tenant.ErrAPIKeyNameTaken.
func (s *TenantStore) CreateTenant(ctx context.Context, t tenant.Tenant, keys []tenant.APIKey, signingKey signing.Key) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	row, err := newTenantRow(t)
	if err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	if row.Revision < 1 {
		row.Revision = 1
	}
	if t.ID == deploymentTenant {
		return errors.New("create tenant: the nil UUID is no tenant id: it names the deployment-wide audit events")
	}
	names := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k.TenantID != t.ID {
			return fmt.Errorf("create tenant: api key %s belongs to tenant %s, not %s", k.ID, k.TenantID, t.ID)
		}
		if names[k.Name] {
			return fmt.Errorf("create tenant: %w", tenant.ErrAPIKeyNameTaken)
		}
		names[k.Name] = true
	}
	if signingKey.TenantID != t.ID {
		return fmt.Errorf("create tenant: signing key %s belongs to tenant %s, not %s", signingKey.ID, signingKey.TenantID, t.ID)
	}

	err = runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			return fmt.Errorf("insert tenant: %w", translate(err))
		}
		for _, k := range keys {
			keyRow := newAPIKeyRow(k)
			if _, err := tx.NewInsert().Model(&keyRow).Exec(ctx); err != nil {
				return fmt.Errorf("insert api key: %w", translate(err))
			}
		}
		signingRow := newSigningKeyRow(signingKey)
		if _, err := tx.NewInsert().Model(&signingRow).Exec(ctx); err != nil {
			return fmt.Errorf("insert signing key: %w", translate(err))
		}
		return s.recordChange(ctx, tx, t.ID, false)
	})
	if err != nil {
		return fmt.Errorf("create tenant %s: %w", t.ID, err)
	}
	return nil
}

// GetTenant returns one tenant, or tenant.ErrNotFound.
func (s *TenantStore) GetTenant(ctx context.Context, id uuid.UUID) (_ tenant.Tenant, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var row tenantRow
	err = conn(ctx, s.db).NewSelect().Model(&row).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return tenant.Tenant{}, tenant.ErrNotFound
	}
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("get tenant %s: %w", id, err)
	}
	return row.tenant()
}

// ListTenants returns every tenant, oldest first.
func (s *TenantStore) ListTenants(ctx context.Context) (_ []tenant.Tenant, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var rows []tenantRow
	if err := conn(ctx, s.db).NewSelect().Model(&rows).Order("created_at", "id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	tenants := make([]tenant.Tenant, 0, len(rows))
	for _, row := range rows {
		t, err := row.tenant()
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		tenants = append(tenants, t)
	}
	return tenants, nil
}

// UpdateTenant replaces the display name and config of an existing tenant, sets its updated_at to
// t.UpdatedAt and increments its revision. The stored revision, not t.Revision, is incremented.
func (s *TenantStore) UpdateTenant(ctx context.Context, t tenant.Tenant) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	row, err := newTenantRow(t)
	if err != nil {
		return fmt.Errorf("update tenant: %w", err)
	}
	err = runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*tenantRow)(nil)).
			Set("display_name = ?", row.DisplayName).
			Set("config = ?", row.Config).
			Set("updated_at = ?", row.UpdatedAt).
			Set("revision = revision + 1").
			Where("id = ?", row.ID).
			Exec(ctx)
		if err != nil {
			return err
		}
		if err := oneRowAffected(res, tenant.ErrNotFound); err != nil {
			return err
		}
		return s.recordChange(ctx, tx, row.ID, false)
	})
	if err != nil {
		return fmt.Errorf("update tenant %s: %w", t.ID, err)
	}
	return nil
}

// DeleteTenant removes a tenant and everything it owns, in one transaction: the database cascades
// the delete to its API keys, signing keys, users, credentials and transactions, and the tenant's
// audit events, which have no foreign key to tenants (see AuditStore.Insert), are deleted after the
// tenant row, so that an audit insert racing with it either finishes first and its events are
// deleted here, or finds the tenant gone.
func (s *TenantStore) DeleteTenant(ctx context.Context, id uuid.UUID) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	err = runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*tenantRow)(nil)).Where("id = ?", id).Exec(ctx)
		if err != nil {
			return err
		}
		if err := oneRowAffected(res, tenant.ErrNotFound); err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model((*auditLogRow)(nil)).Where("tenant_id = ?", id).Exec(ctx); err != nil {
			return fmt.Errorf("delete audit events: %w", err)
		}
		// Its webhook endpoints went with it (ON DELETE CASCADE).
		if err := bumpSubscriptions(ctx, tx); err != nil {
			return err
		}
		return s.recordChange(ctx, tx, id, true)
	})
	if err != nil {
		return fmt.Errorf("delete tenant %s: %w", id, err)
	}
	return nil
}

// changeRow is a row tenant_changes answers TenantChanges with: the time of the read, with the
// columns of a change, NULL when no change is new.
type changeRow struct {
	At       time.Time     `bun:"at"`
	ID       sql.NullInt64 `bun:"id"`
	TenantID uuid.NullUUID `bun:"tenant_id"`
	Revision sql.NullInt64 `bun:"revision"`
}

// TenantChanges returns the tenant changes committed since the read that returned since, with those
// written less than tenant.ChangeReplay before since.At again, and the cursor of this read: one
// indexed statement whose cost is the number of changes, whatever the number of tenants.
//
// Why again: PostgreSQL numbers changes when they are written and they become visible when they
// commit, in another order. A read that saw change 11 may not yet see change 10, still committing;
// it has no id above the cursor when it commits. Its changed_at, though, is at most its commit
// latency older than the commit, and the next read is made after it and asks for everything written
// since a minute before the previous read, so it returns change 10. (SQLite writes one transaction
// at a time, in id order; reading again costs it nothing but a few rows.)
func (s *TenantStore) TenantChanges(ctx context.Context, since tenant.ChangeCursor) (_ []tenant.Change, _ tenant.ChangeCursor, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	replayFrom := time.Unix(0, 0)
	if !since.At.IsZero() {
		replayFrom = since.At.Add(-tenant.ChangeReplay)
	}
	// The one-row table on the left gives the time of the read even when no change is new.
	var rows []changeRow
	err = conn(ctx, s.db).NewRaw(`SELECT now.at, c.id, c.tenant_id, c.revision
		FROM (SELECT ? AS at) AS now
		LEFT JOIN tenant_changes AS c ON c.id > ? OR c.changed_at > ?
		ORDER BY c.id`, s.readClock(), since.ID, dbTime(replayFrom)).Scan(ctx, &rows)
	if err != nil {
		return nil, since, fmt.Errorf("read tenant changes: %w", err)
	}
	next := since
	changes := make([]tenant.Change, 0, len(rows))
	for _, row := range rows {
		next.At = row.At.UTC()
		if !row.ID.Valid {
			continue
		}
		next.ID = max(next.ID, row.ID.Int64)
		changes = append(changes, tenant.Change{ID: row.ID.Int64, TenantID: row.TenantID.UUID, Revision: row.Revision.Int64})
	}
	return changes, next, nil
}

// clock is the time a change is stamped with: PostgreSQL's clock, which every instance shares, or, in
// SQLite, this process's (one machine's) clock.
func (s *TenantStore) clock() any {
	if s.db.Dialect().Name() == dialect.PG {
		return bun.Safe("clock_timestamp()")
	}
	return dbTime(s.now())
}

// readClock is the time of a read of the feed: in PostgreSQL when the statement started, before its
// snapshot, so that every change the read does not see commits after it.
func (s *TenantStore) readClock() any {
	if s.db.Dialect().Name() == dialect.PG {
		return bun.Safe("statement_timestamp()")
	}
	return dbTime(s.now())
}

// recordChange appends the change of a tenant to the change feed, with the tenant's revision as tx
// has made it (0 when deleted), and deletes the changes nobody reads any more (older than
// tenant.ChangeRetention and the minute read again; an index range that is empty but once an hour).
// It is the last statement of tx, so that the time from its changed_at to its commit is short.
func (s *TenantStore) recordChange(ctx context.Context, tx bun.Tx, tenantID uuid.UUID, deleted bool) error {
	var cutoff any = dbTime(s.now().Add(-tenant.ChangeRetention - tenant.ChangeReplay))
	if s.db.Dialect().Name() == dialect.PG {
		cutoff = bun.SafeQuery("clock_timestamp() - make_interval(secs => ?)", (tenant.ChangeRetention + tenant.ChangeReplay).Seconds())
	}
	if _, err := tx.NewRaw("DELETE FROM tenant_changes WHERE changed_at < ?", cutoff).Exec(ctx); err != nil {
		return fmt.Errorf("prune tenant changes: %w", err)
	}
	var err error
	if deleted {
		_, err = tx.NewRaw("INSERT INTO tenant_changes (tenant_id, revision, changed_at) VALUES (?, 0, ?)", tenantID, s.clock()).Exec(ctx)
	} else {
		_, err = tx.NewRaw("INSERT INTO tenant_changes (tenant_id, revision, changed_at) SELECT id, revision, ? FROM tenants WHERE id = ?",
			s.clock(), tenantID).Exec(ctx)
	}
	if err != nil {
		return fmt.Errorf("record tenant change: %w", err)
	}
	return nil
}

// CreateAPIKey stores a new API key of an existing tenant and increments the tenant's revision. It
// returns tenant.ErrNotFound when the tenant does not exist and tenant.ErrAPIKeyNameTaken when the
// tenant already has a key of that name.
func (s *TenantStore) CreateAPIKey(ctx context.Context, k tenant.APIKey) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	err = runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		// Bumping first also locks the tenant row, so concurrent creations in one tenant take turns
		// and the name check below cannot race.
		if err := bumpRevision(ctx, tx, k.TenantID, k.CreatedAt); err != nil {
			return err
		}
		taken, err := tx.NewSelect().Model((*apiKeyRow)(nil)).
			Where("tenant_id = ? AND name = ?", k.TenantID, k.Name).
			Exists(ctx)
		if err != nil {
			return fmt.Errorf("check api key name: %w", err)
		}
		if taken {
			return tenant.ErrAPIKeyNameTaken
		}
		row := newAPIKeyRow(k)
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			return fmt.Errorf("insert api key: %w", translate(err))
		}
		return s.recordChange(ctx, tx, k.TenantID, false)
	})
	if err != nil {
		return fmt.Errorf("create api key %q of tenant %s: %w", k.Name, k.TenantID, err)
	}
	return nil
}

// ListAPIKeys returns the tenant's API keys, oldest first. A tenant that does not exist has none.
func (s *TenantStore) ListAPIKeys(ctx context.Context, tenantID uuid.UUID) (_ []tenant.APIKey, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var rows []apiKeyRow
	err = conn(ctx, s.db).NewSelect().Model(&rows).
		Where("tenant_id = ?", tenantID).
		Order("created_at", "id").
		Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list api keys of tenant %s: %w", tenantID, err)
	}
	keys := make([]tenant.APIKey, 0, len(rows))
	for _, row := range rows {
		keys = append(keys, row.apiKey())
	}
	return keys, nil
}

// DeleteAPIKey removes one API key of the tenant and increments the tenant's revision. A key of
// another tenant, or no key at all, gives tenant.ErrAPIKeyNotFound.
func (s *TenantStore) DeleteAPIKey(ctx context.Context, tenantID, keyID uuid.UUID) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	err = runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*apiKeyRow)(nil)).
			Where("tenant_id = ? AND id = ?", tenantID, keyID).
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("delete api key: %w", err)
		}
		if err := oneRowAffected(res, tenant.ErrAPIKeyNotFound); err != nil {
			return err
		}
		if err := bumpRevision(ctx, tx, tenantID, s.now()); err != nil {
			return err
		}
		return s.recordChange(ctx, tx, tenantID, false)
	})
	if err != nil {
		return fmt.Errorf("delete api key %s of tenant %s: %w", keyID, tenantID, err)
	}
	return nil
}

// APIKeyByHash finds an API key by the SHA-256 hash of its secret, across all tenants, or returns
// tenant.ErrAPIKeyNotFound.
func (s *TenantStore) APIKeyByHash(ctx context.Context, hash []byte) (_ tenant.APIKey, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var row apiKeyRow
	err = conn(ctx, s.db).NewSelect().Model(&row).Where("hash = ?", hash).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return tenant.APIKey{}, tenant.ErrAPIKeyNotFound
	}
	if err != nil {
		return tenant.APIKey{}, fmt.Errorf("find api key by hash: %w", err)
	}
	return row.apiKey(), nil
}

// TouchAPIKeys records when keys were last used, in one transaction. A time never moves a key's
// last use backwards, and keys that no longer exist are ignored. No revision changes: last use is
// not part of what instances cache.
func (s *TenantStore) TouchAPIKeys(ctx context.Context, lastUsed map[tenant.APIKeyRef]time.Time) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	if len(lastUsed) == 0 {
		return nil
	}
	err = runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		for key, at := range lastUsed {
			at = dbTime(at)
			_, err := tx.NewUpdate().Model((*apiKeyRow)(nil)).
				Set("last_used_at = ?", at).
				Where("tenant_id = ? AND id = ?", key.TenantID, key.ID).
				Where("last_used_at IS NULL OR last_used_at < ?", at).
				Exec(ctx)
			if err != nil {
				return fmt.Errorf("update api key %s: %w", key.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("touch api keys: %w", err)
	}
	return nil
}

// ListSigningKeys returns all signing keys of the tenant, newest first. A tenant that does not exist
// has none.
func (s *TenantStore) ListSigningKeys(ctx context.Context, tenantID uuid.UUID) (_ []signing.Key, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var rows []signingKeyRow
	err = conn(ctx, s.db).NewSelect().Model(&rows).
		Where("tenant_id = ?", tenantID).
		OrderExpr("created_at DESC, id DESC").
		Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list signing keys of tenant %s: %w", tenantID, err)
	}
	keys := make([]signing.Key, 0, len(rows))
	for _, row := range rows {
		keys = append(keys, row.signingKey())
	}
	return keys, nil
}

// RotateSigningKey retires the tenant's previous keys as r says (the key with retired_at NULL gets
// retired_at = r.At and expires_at = r.ExpiresAt; with r.Revoke every other key also ends by then),
// stores next and increments the tenant's revision, all in one transaction. It returns
// tenant.ErrNotFound when the tenant does not exist.
func (s *TenantStore) RotateSigningKey(ctx context.Context, next signing.Key, r tenant.Retirement) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	err = runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if err := bumpRevision(ctx, tx, next.TenantID, next.CreatedAt); err != nil {
			return err
		}
		_, err := tx.NewUpdate().Model((*signingKeyRow)(nil)).
			Set("retired_at = ?", dbTime(r.At)).
			Set("expires_at = ?", dbTime(r.ExpiresAt)).
			Where("tenant_id = ? AND retired_at IS NULL", next.TenantID).
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("retire signing keys: %w", err)
		}
		if r.Revoke {
			if err := revokeSigningKeys(ctx, tx, next.TenantID, r); err != nil {
				return err
			}
		}
		row := newSigningKeyRow(next)
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			return fmt.Errorf("insert signing key: %w", translate(err))
		}
		return s.recordChange(ctx, tx, next.TenantID, false)
	})
	if err != nil {
		return fmt.Errorf("rotate signing key of tenant %s: %w", next.TenantID, err)
	}
	return nil
}

// revokeSigningKeys ends every key of the tenant by r: retired_at and expires_at no later than r's.
// The times are compared in Go, not in SQL, so that both dialects compare them alike.
func revokeSigningKeys(ctx context.Context, tx bun.Tx, tenantID uuid.UUID, r tenant.Retirement) error {
	var rows []signingKeyRow
	if err := tx.NewSelect().Model(&rows).Where("tenant_id = ?", tenantID).Scan(ctx); err != nil {
		return fmt.Errorf("revoke signing keys: %w", err)
	}
	for _, row := range rows {
		retired, expires := row.RetiredAt, row.ExpiresAt
		if retired == nil || retired.After(r.At) {
			retired = &r.At
		}
		if expires == nil || expires.After(r.ExpiresAt) {
			expires = &r.ExpiresAt
		}
		_, err := tx.NewUpdate().Model((*signingKeyRow)(nil)).
			Set("retired_at = ?", dbTime(*retired)).
			Set("expires_at = ?", dbTime(*expires)).
			Where("tenant_id = ? AND id = ?", tenantID, row.ID).
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("revoke signing key %s: %w", row.ID, err)
		}
	}
	return nil
}

// bumpRevision increments the revision of a tenant and sets its updated_at, or returns
// tenant.ErrNotFound; the caller records the change (recordChange) as its transaction's last statement. In PostgreSQL the update also locks the tenant row until the transaction ends.
func bumpRevision(ctx context.Context, tx bun.Tx, tenantID uuid.UUID, at time.Time) error {
	res, err := tx.NewUpdate().Model((*tenantRow)(nil)).
		Set("revision = revision + 1").
		Set("updated_at = ?", dbTime(at)).
		Where("id = ?", tenantID).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("bump tenant revision: %w", err)
	}
	return oneRowAffected(res, tenant.ErrNotFound)
}

// oneRowAffected returns notFound when res reports no affected row.
func oneRowAffected(res sql.Result, notFound error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("count affected rows: %w", err)
	}
	if n == 0 {
		return notFound
	}
	return nil
}
