package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/archive"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/transactions"
)

// ArchiveStore reads and writes whole tenants for archive.Service (export and import).
type ArchiveStore struct {
	db *bun.DB
	bound
	credentials  *CredentialStore
	transactions *TransactionStore
}

var _ archive.Store = (*ArchiveStore)(nil)

// NewArchiveStore returns the archive store of d.
func NewArchiveStore(d *DB) *ArchiveStore {
	return &ArchiveStore{db: d.bun, bound: d.bound, credentials: NewCredentialStore(d), transactions: NewTransactionStore(d)}
}

// exportPage is how many rows an export reads at a time: each page is one short query (keyset, by
// primary key), so no statement or transaction stays open while a slow client reads.
const exportPage = 500

// EachUser implements archive.Store.
func (s *ArchiveStore) EachUser(ctx context.Context, tenantID uuid.UUID, fn func(credentials.User) error) error {
	after := uuid.Nil
	for {
		var rows []userRow
		if err := s.page(ctx, func(ctx context.Context) error {
			return conn(ctx, s.db).NewSelect().Model(&rows).Where("tenant_id = ? AND id > ?", tenantID, after).
				OrderExpr("id ASC").Limit(exportPage).Scan(ctx)
		}); err != nil {
			return err
		}
		for _, r := range rows {
			if err := fn(r.user()); err != nil {
				return err
			}
		}
		if len(rows) < exportPage {
			return nil
		}
		after = rows[len(rows)-1].ID
	}
}

// EachCredential implements archive.Store.
func (s *ArchiveStore) EachCredential(ctx context.Context, tenantID uuid.UUID, fn func(credentials.Credential) error) error {
	after := ""
	for {
		var rows []credentialRow
		if err := s.page(ctx, func(ctx context.Context) error {
			return s.credentials.selectCredentials(ctx, &rows).Where("c.tenant_id = ? AND c.id > ?", tenantID, after).
				OrderExpr("c.id ASC").Limit(exportPage).Scan(ctx)
		}); err != nil {
			return err
		}
		for _, r := range rows {
			c, err := r.credential()
			if err != nil {
				return err
			}
			if err := fn(c); err != nil {
				return err
			}
		}
		if len(rows) < exportPage {
			return nil
		}
		after = rows[len(rows)-1].ID
	}
}

// EachTransaction implements archive.Store.
func (s *ArchiveStore) EachTransaction(ctx context.Context, tenantID uuid.UUID, fn func(transactions.Transaction) error) error {
	after := uuid.Nil
	for {
		var rows []transactionReadRow
		if err := s.page(ctx, func(ctx context.Context) error {
			return s.transactions.selectTransactions(ctx, &rows).Where("t.tenant_id = ? AND t.id > ?", tenantID, after).
				OrderExpr("t.id ASC").Limit(exportPage).Scan(ctx)
		}); err != nil {
			return err
		}
		for _, r := range rows {
			if err := fn(r.transaction()); err != nil {
				return err
			}
		}
		if len(rows) < exportPage {
			return nil
		}
		after = rows[len(rows)-1].ID
	}
}

// page runs one read of an export with the call timeout.
func (s *ArchiveStore) page(ctx context.Context, read func(context.Context) error) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	if err := read(ctx); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return nil
}

// errDryRun rolls back the transaction of a dry import.
var errDryRun = errors.New("dry run")

// Import implements archive.Store: one transaction, row by row. It has no call timeout of its own (an
// import of many users takes longer than one call may): the caller's context bounds it. The
// transaction is its own, never one the context carries (DB.Atomically): a dry run is a rollback.
func (s *ArchiveStore) Import(ctx context.Context, p archive.Plan) (sum archive.Summary, err error) {
	defer func() { err = unavailable(kindDatabase, err) }()
	if _, ok := ctx.Value(txKey{}).(bun.Tx); ok {
		return archive.Summary{}, errors.New("import: called inside a transaction; it needs its own")
	}
	err = runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		var problems passkey.Problems
		conflict := func(line int, format string, args ...any) {
			if len(problems) < 50 {
				problems.Add("line %d: %s", line, fmt.Sprintf(format, args...))
			}
		}
		keys := map[string]uuid.UUID{} // application user id → internal id in this tenant
		for _, it := range p.Users {
			u := it.Value
			var old userRow
			err := tx.NewSelect().Model(&old).Where("tenant_id = ? AND user_id = ?", p.TenantID, u.AppUserID).Scan(ctx)
			switch {
			case err == nil:
				keys[u.AppUserID] = old.ID
				switch p.OnConflict {
				case archive.Skip:
					sum.Users.Skipped++
				case archive.Fail:
					conflict(it.Line, "user %q exists", u.AppUserID)
				case archive.Replace:
					row := newUserRow(u)
					if _, err := tx.NewUpdate().Model(&row).Column("name", "display_name", "icon", "created_at", "updated_at").
						Where("tenant_id = ? AND id = ?", p.TenantID, old.ID).Exec(ctx); err != nil {
						return fmt.Errorf("replace user: %w", err)
					}
					sum.Users.Replaced++
				}
			case errors.Is(err, sql.ErrNoRows):
				// The archive's internal id, unless this tenant uses it for another user already.
				if taken, err := tx.NewSelect().Model((*userRow)(nil)).Where("tenant_id = ? AND id = ?", p.TenantID, u.Key).Exists(ctx); err != nil {
					return err
				} else if taken || u.Key == uuid.Nil {
					u.Key = uuid.New()
				}
				row := newUserRow(u)
				if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
					return fmt.Errorf("import user: %w", err)
				}
				keys[u.AppUserID] = u.Key
				sum.Users.Created++
			default:
				return err
			}
		}
		for _, it := range p.Credentials {
			c := it.Value
			c.UserKey = keys[c.AppUserID] // parse made sure the archive has the user
			exists, err := tx.NewSelect().Model((*credentialRow)(nil)).Where("tenant_id = ? AND id = ?", p.TenantID, c.ID).Exists(ctx)
			if err != nil {
				return err
			}
			if exists {
				switch p.OnConflict {
				case archive.Skip:
					sum.Credentials.Skipped++
					continue
				case archive.Fail:
					conflict(it.Line, "credential %q exists", c.ID)
					continue
				}
				if _, err := tx.NewDelete().Model((*credentialRow)(nil)).Where("tenant_id = ? AND id = ?", p.TenantID, c.ID).Exec(ctx); err != nil {
					return err
				}
				sum.Credentials.Replaced++
			} else {
				sum.Credentials.Created++
			}
			row, err := newCredentialRow(c)
			if err != nil {
				return err
			}
			if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
				return fmt.Errorf("import credential: %w", err)
			}
		}
		for _, it := range p.Transactions {
			t := it.Value
			t.UserKey = keys[t.AppUserID]
			var old transactionRow
			err := tx.NewSelect().Model(&old).Column("id").Where("tenant_id = ? AND identifier = ?", p.TenantID, t.Identifier).Scan(ctx)
			switch {
			case err == nil:
				switch p.OnConflict {
				case archive.Skip:
					sum.Transactions.Skipped++
					continue
				case archive.Fail:
					conflict(it.Line, "transaction %q exists", t.Identifier)
					continue
				}
				if _, err := tx.NewDelete().Model((*transactionRow)(nil)).Where("tenant_id = ? AND id = ?", p.TenantID, old.ID).Exec(ctx); err != nil {
					return err
				}
				sum.Transactions.Replaced++
			case errors.Is(err, sql.ErrNoRows):
				sum.Transactions.Created++
			default:
				return err
			}
			// Transaction ids are unique across tenants: a copy of a tenant in the same database
			// gets new ones.
			if taken, err := tx.NewSelect().Model((*transactionRow)(nil)).Where("id = ?", t.ID).Exists(ctx); err != nil {
				return err
			} else if taken {
				t.ID = uuid.New()
			}
			row := newTransactionRow(t)
			if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
				return fmt.Errorf("import transaction: %w", err)
			}
		}
		if len(problems) > 0 {
			return problems.Err(archive.ErrConflict)
		}
		if p.DryRun {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		err = nil
	}
	if err != nil {
		return archive.Summary{}, err
	}
	return sum, nil
}
