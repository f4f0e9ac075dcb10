package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/transactions"
)

// TransactionStore is the database implementation of transactions.Store: the transaction-signing
// requests of each tenant and their outcome. Every query is scoped by tenant_id, so a call for one
// tenant never reads or changes another tenant's rows.
type TransactionStore struct {
	db *bun.DB
	bound
	// now stamps transactions created without a time.
	now func() time.Time
}

var _ transactions.Store = (*TransactionStore)(nil)

// NewTransactionStore returns the transaction store of d.
func NewTransactionStore(d *DB) *TransactionStore {
	return &TransactionStore{db: d.bun, bound: d.bound, now: time.Now}
}

// transactionTable and transactionColumns select a transaction with its user's application id. The
// columns are named, not "t.*", so a column added by a later migration does not break reads of a
// binary that does not know it yet.
const (
	transactionTable   = "transactions AS t"
	transactionColumns = "t.id, t.tenant_id, t.user_id, t.identifier, t.data, t.data_hash, t.challenge, " +
		"t.status, t.credential_id, t.created_at, t.updated_at, t.confirmed_at, t.expires_at, " +
		"u.user_id AS app_user_id"
	// transactionJoin matches on the tenant as well as the id, as the composite foreign key does.
	transactionJoin = "JOIN users AS u ON u.tenant_id = t.tenant_id AND u.id = t.user_id"
)

// transactionReadRow is a transactionRow as reads return it, with the owning user's users.user_id
// from a join with users. Writes use transactionRow, which has no such column.
type transactionReadRow struct {
	transactionRow `bun:",extend"`

	AppUserID string `bun:"app_user_id,scanonly"`
}

// Create stores a new transaction, pending unless t.Status says otherwise. It returns
// transactions.ErrExists when the tenant already has a transaction with t.Identifier, in any state,
// and credentials.ErrUserNotFound when t.UserKey is not a user of t.TenantID (or the tenant does not
// exist). t.AppUserID is ignored: the user is t.UserKey. A zero CreatedAt is the current time, a zero
// UpdatedAt is CreatedAt; a zero ExpiresAt is stored as NULL and reads back as zero, that is, as
// expired.
func (s *TransactionStore) Create(ctx context.Context, t transactions.Transaction) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	if t.ID == uuid.Nil {
		return fmt.Errorf("create transaction in tenant %s: the transaction has no id", t.TenantID)
	}
	row := newTransactionRow(t)
	if row.Status == "" {
		row.Status = string(transactions.StatusPending)
	}
	if row.CreatedAt.IsZero() {
		row.CreatedAt = dbTime(s.now())
	}
	if row.UpdatedAt.IsZero() {
		row.UpdatedAt = row.CreatedAt
	}
	if _, err := conn(ctx, s.db).NewInsert().Model(&row).Exec(ctx); err != nil {
		err = translate(err)
		switch {
		case errors.Is(err, errUniqueViolation):
			// UNIQUE (tenant_id, identifier); the primary key is a random UUID.
			err = transactions.ErrExists
		case errors.Is(err, errForeignKeyViolation):
			// The composite foreign key (tenant_id, user_id) → users: the user is not in this tenant.
			err = credentials.ErrUserNotFound
		}
		return fmt.Errorf("create transaction %s in tenant %s: %w", t.ID, t.TenantID, err)
	}
	return nil
}

// ByChallenge returns the tenant's transaction with that challenge, in any state, with its
// AppUserID, or transactions.ErrNotFound. A transaction of another tenant is not found.
func (s *TransactionStore) ByChallenge(ctx context.Context, tenantID uuid.UUID, challenge string) (_ transactions.Transaction, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var row transactionReadRow
	err = s.selectTransactions(ctx, &row).
		Where("t.tenant_id = ? AND t.challenge = ?", tenantID, challenge).
		Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		err = transactions.ErrNotFound
	}
	if err != nil {
		return transactions.Transaction{}, fmt.Errorf("get transaction by challenge in tenant %s: %w", tenantID, err)
	}
	return row.transaction(), nil
}

// Finish moves the tenant's pending transaction id to status, which must be
// transactions.StatusConfirmed or transactions.StatusFailed. It stores credentialID as given, sets
// updated_at to at and, for a confirmation only, confirmed_at to at. It returns
// transactions.ErrNotFound, and changes nothing, when the tenant has no such transaction or the
// transaction is no longer pending.
//
// It is a single conditional UPDATE, so of concurrent calls for one transaction exactly one
// succeeds: PostgreSQL re-checks status = 'pending' on the row after waiting for the winner's lock,
// and SQLite runs one writer at a time. Expiry is not checked here; callers decide with
// Transaction.EffectiveStatus before confirming.
func (s *TransactionStore) Finish(ctx context.Context, tenantID, id uuid.UUID, status transactions.Status, credentialID *string, at time.Time) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var confirmedAt *time.Time
	switch status {
	case transactions.StatusConfirmed:
		v := dbTime(at)
		confirmedAt = &v
	case transactions.StatusFailed:
	default:
		return fmt.Errorf("finish transaction %s of tenant %s: status %q is neither %q nor %q",
			id, tenantID, status, transactions.StatusConfirmed, transactions.StatusFailed)
	}
	res, err := conn(ctx, s.db).NewUpdate().Model((*transactionRow)(nil)).
		Set("status = ?", string(status)).
		Set("credential_id = ?", credentialID).
		Set("confirmed_at = ?", confirmedAt).
		Set("updated_at = ?", dbTime(at)).
		Where("tenant_id = ? AND id = ? AND status = ?", tenantID, id, string(transactions.StatusPending)).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("finish transaction %s of tenant %s: %w", id, tenantID, err)
	}
	if err := oneRowAffected(res, transactions.ErrNotFound); err != nil {
		return fmt.Errorf("finish transaction %s of tenant %s: %w", id, tenantID, err)
	}
	return nil
}

// List returns the page f.Page of the transactions of one user (by internal id) of the tenant,
// newest first (by creation time, then by id), each with its AppUserID, and the number of the user's
// transactions on all pages (listPage). A user that is not in the tenant has none.
func (s *TransactionStore) List(ctx context.Context, tenantID uuid.UUID, f transactions.ListFilter) (_ []transactions.Transaction, _ int, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	// A LEFT JOIN reads the same rows as selectTransactions' JOIN (the foreign key gives every
	// transaction its user), and lets PostgreSQL leave users out of the count.
	q := conn(ctx, s.db).NewSelect().Model((*transactionReadRow)(nil)).
		ModelTableExpr(transactionTable).
		ColumnExpr(transactionColumns).
		Join("LEFT "+transactionJoin).
		Where("t.tenant_id = ? AND t.user_id = ?", tenantID, f.UserKey).
		OrderExpr("t.created_at DESC, t.id DESC")
	list, total, err := listPage(ctx, q, f.Page, func(r transactionReadRow) (transactions.Transaction, error) {
		return r.transaction(), nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list transactions of user %s in tenant %s: %w", f.UserKey, tenantID, err)
	}
	return list, total, nil
}

// selectTransactions starts a select of transactions joined with their users, scanning into model
// (a *transactionReadRow or *[]transactionReadRow). Conditions must qualify columns with t. or u.
func (s *TransactionStore) selectTransactions(ctx context.Context, model any) *bun.SelectQuery {
	return conn(ctx, s.db).NewSelect().Model(model).
		ModelTableExpr(transactionTable).
		ColumnExpr(transactionColumns).
		Join(transactionJoin)
}

func newTransactionRow(t transactions.Transaction) transactionRow {
	var created, updated time.Time
	if !t.CreatedAt.IsZero() {
		created = dbTime(t.CreatedAt)
	}
	if !t.UpdatedAt.IsZero() {
		updated = dbTime(t.UpdatedAt)
	}
	var expires *time.Time
	if !t.ExpiresAt.IsZero() {
		expires = dbTimePtr(&t.ExpiresAt)
	}
	return transactionRow{
		ID:           t.ID,
		TenantID:     t.TenantID,
		UserID:       t.UserKey,
		Identifier:   t.Identifier,
		Data:         t.Data,
		DataHash:     t.DataHash,
		Challenge:    t.Challenge,
		Status:       string(t.Status),
		CredentialID: t.CredentialID,
		CreatedAt:    created,
		UpdatedAt:    updated,
		ConfirmedAt:  dbTimePtr(t.ConfirmedAt),
		ExpiresAt:    expires,
	}
}

func (r transactionReadRow) transaction() transactions.Transaction {
	// expires_at is nullable in the schema; NULL reads as the zero time, which is expired.
	var expires time.Time
	if r.ExpiresAt != nil {
		expires = r.ExpiresAt.UTC()
	}
	return transactions.Transaction{
		ID:           r.ID,
		TenantID:     r.TenantID,
		UserKey:      r.UserID,
		AppUserID:    r.AppUserID,
		Identifier:   r.Identifier,
		Data:         r.Data,
		DataHash:     r.DataHash,
		Challenge:    r.Challenge,
		Status:       transactions.Status(r.Status),
		CredentialID: r.CredentialID,
		CreatedAt:    r.CreatedAt.UTC(),
		UpdatedAt:    r.UpdatedAt.UTC(),
		ConfirmedAt:  utcPtr(r.ConfirmedAt),
		ExpiresAt:    expires,
	}
}
