package db

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun/dialect"

	"github.com/passkey-server/passkey-server/credentials"
)

// Defaults of ListUsers for a missing page or page size.
const (
	userListDefaultPage    = 1
	userListDefaultPerPage = 20
)

// ListUsers returns one page of the tenant's users and the number of the tenant's users on all pages.
// The order is by created_at then id (credentials.UserSortCreatedAt, also when f.SortBy is empty) or
// by the application's user id (credentials.UserSortUserID), descending unless f.Ascending. User ids
// are compared byte by byte on both databases (PostgreSQL's COLLATE "C", SQLite's default BINARY), so
// the order does not depend on the database's locale. Page counts from 1 (a page below 1 is page 1);
// a page size below 1 is 20. A page beyond the end is an empty, non-nil list. Any other f.SortBy is an
// error.
//
// The count and the page are two statements, so a concurrent change can make them disagree by the
// rows it added or removed.
func (s *CredentialStore) ListUsers(ctx context.Context, tenantID uuid.UUID, f credentials.UserFilter) ([]credentials.User, int, error) {
	page, perPage := f.Page, f.PerPage
	if page < 1 {
		page = userListDefaultPage
	}
	if perPage < 1 {
		perPage = userListDefaultPerPage
	}
	direction := "DESC"
	if f.Ascending {
		direction = "ASC"
	}
	var order string
	switch f.SortBy {
	case "", credentials.UserSortCreatedAt:
		order = "created_at " + direction + ", id " + direction
	case credentials.UserSortUserID:
		collate := ""
		if s.db.Dialect().Name() == dialect.PG {
			collate = ` COLLATE "C"`
		}
		// user_id is unique in the tenant, so it alone is a total order.
		order = "user_id" + collate + " " + direction
	default:
		return nil, 0, fmt.Errorf("list users of tenant %s: unknown order %q", tenantID, f.SortBy)
	}

	count, err := s.db.NewSelect().Model((*userRow)(nil)).Where("tenant_id = ?", tenantID).Count(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("count users of tenant %s: %w", tenantID, err)
	}
	total := int(count)

	limit, offset, ok := pageWindow(page, perPage, total)
	if !ok {
		return []credentials.User{}, total, nil
	}
	var rows []userRow
	err = s.db.NewSelect().Model(&rows).
		Where("tenant_id = ?", tenantID).
		OrderExpr(order).
		Limit(limit).Offset(offset).
		Scan(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("list users of tenant %s: %w", tenantID, err)
	}
	list := make([]credentials.User, 0, len(rows))
	for _, row := range rows {
		list = append(list, row.user())
	}
	return list, total, nil
}

// DeleteUser removes one user of the tenant in one statement, or returns
// credentials.ErrUserNotFound. The user's credentials and transactions go with it: their composite
// foreign keys to users are ON DELETE CASCADE. Audit log entries stay; they name the user only by its
// application id.
func (s *CredentialStore) DeleteUser(ctx context.Context, tenantID, id uuid.UUID) error {
	res, err := s.db.NewDelete().Model((*userRow)(nil)).
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
