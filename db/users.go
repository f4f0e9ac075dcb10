package db

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun/dialect"

	"github.com/passkey-server/passkey-server/credentials"
)

// ListUsers returns the page f.Page of the tenant's users and the number of the tenant's users on all
// pages (listPage). The order is by the application's user id for credentials.UserSortUserID, else
// (credentials.UserSortCreatedAt, empty, or any other value, which the service has already refused)
// by created_at then id; descending unless f.Ascending. User ids are compared byte by byte on both
// databases (PostgreSQL's COLLATE "C", SQLite's default BINARY), so the order does not depend on the
// database's locale.
func (s *CredentialStore) ListUsers(ctx context.Context, tenantID uuid.UUID, f credentials.UserFilter) (_ []credentials.User, _ int, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	direction := "DESC"
	if f.Ascending {
		direction = "ASC"
	}
	order := "created_at " + direction + ", id " + direction
	if f.SortBy == credentials.UserSortUserID {
		collate := ""
		if s.db.Dialect().Name() == dialect.PG {
			collate = ` COLLATE "C"`
		}
		// user_id is unique in the tenant, so it alone is a total order.
		order = "user_id" + collate + " " + direction
	}
	q := conn(ctx, s.db).NewSelect().Model((*userRow)(nil)).Where("tenant_id = ?", tenantID).OrderExpr(order)
	list, total, err := listPage(ctx, q, f.Page, func(r userRow) (credentials.User, error) { return r.user(), nil })
	if err != nil {
		return nil, 0, fmt.Errorf("list users of tenant %s: %w", tenantID, err)
	}
	return list, total, nil
}

// DeleteUser removes one user of the tenant in one statement, or returns
// credentials.ErrUserNotFound. The user's credentials and transactions go with it: their composite
// foreign keys to users are ON DELETE CASCADE. Audit log entries stay; they name the user only by its
// application id.
func (s *CredentialStore) DeleteUser(ctx context.Context, tenantID, id uuid.UUID) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	res, err := conn(ctx, s.db).NewDelete().Model((*userRow)(nil)).
		Where("tenant_id = ? AND id = ?", tenantID, id).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete user %s of tenant %s: %w", id, tenantID, err)
	}
	if err := oneRowAffected(res, credentials.ErrUserNotFound); err != nil {
		return fmt.Errorf("delete user %s of tenant %s: %w", id, tenantID, err)
	}
	return nil
}
