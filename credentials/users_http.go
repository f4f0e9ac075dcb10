package credentials

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/api"
	"github.com/passkey-server/passkey-server/tenant"
)

// UserTransactions lists a user's transactions for the admin user detail. The transactions package
// supplies it: it builds on this package, so this one cannot call it. The result is sent as the
// detail's "transactions" member and must encode as a JSON array.
type UserTransactions func(ctx context.Context, snap *tenant.Snapshot, u User) (any, error)

// AdminUserRoutes registers the user routes of the admin API (contract §1.2 A18-A20) on r. Every route
// is scoped to the tenant in its path: a user of another tenant is not found, even by its internal id
// (Hanko's get and delete ignore the tenant, contract §6 bug 3). txs fills the user detail's
// "transactions"; nil leaves the member out. Authentication is the caller's job.
func (h *Handlers) AdminUserRoutes(r fiber.Router, txs UserTransactions) {
	r.Get("/tenants/:tenant_id/users", h.listUsers)
	r.Get("/tenants/:tenant_id/users/:user_id", h.getUser(txs))
	r.Delete("/tenants/:tenant_id/users/:user_id", h.deleteUser)
}

// UserResponse is a user on the wire: Hanko's UserList shape (contract §1.2) plus the times. Icon is
// "" when the user has none, as in Hanko.
type UserResponse struct {
	ID          uuid.UUID `json:"id"`
	UserID      string    `json:"user_id"`
	Name        string    `json:"name"`
	Icon        string    `json:"icon"`
	DisplayName string    `json:"display_name"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// UserDetailResponse is the body of GET /tenants/{tenant_id}/users/{user_id}: the user, all its
// credentials (oldest first) and, when the routes were given a UserTransactions, its transactions.
type UserDetailResponse struct {
	UserResponse
	Credentials  []CredentialResponse `json:"credentials"`
	Transactions any                  `json:"transactions,omitempty"`
}

func userResponse(u User) UserResponse {
	r := UserResponse{ID: u.ID, UserID: u.UserID, Name: u.Name, DisplayName: u.DisplayName,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	if u.Icon != nil {
		r.Icon = *u.Icon
	}
	return r
}

// adminTenant returns the snapshot of the tenant in the path: tenant.ErrInvalidID when the id is not
// a UUID, tenant.ErrNotFound when there is no such tenant.
func (h *Handlers) adminTenant(c *fiber.Ctx) (*tenant.Snapshot, error) {
	id, err := uuid.Parse(c.Params("tenant_id"))
	if err != nil {
		return nil, tenant.ErrInvalidID
	}
	return h.tenants.Resolve(c.UserContext(), id)
}

// adminUser returns the tenant in the path and the user reference, percent-decoded: an application
// user id may hold any character.
func (h *Handlers) adminUser(c *fiber.Ctx) (*tenant.Snapshot, string, error) {
	snap, err := h.adminTenant(c)
	if err != nil {
		return nil, "", err
	}
	ref, err := api.PathParam(c, "user_id")
	if err != nil {
		return nil, "", err
	}
	return snap, ref, nil
}

// userFilter reads page, per_page, sort_direction (desc or asc, any case) and sort_by (created_at or
// user_id), and reports every problem at once.
func userFilter(c *fiber.Ctx) (UserFilter, error) {
	var p api.Problems
	page, perPage, err := api.Page(c)
	if err != nil {
		var invalid *api.ValidationError
		if !errors.As(err, &invalid) {
			return UserFilter{}, err
		}
		p = append(p, invalid.Problems...)
	}
	f := UserFilter{Page: passkey.Page{Number: page, Size: perPage}}
	switch strings.ToLower(c.Query("sort_direction", "desc")) {
	case "desc":
	case "asc":
		f.Ascending = true
	default:
		p.Add("sort_direction must be desc or asc")
	}
	switch by := strings.ToLower(c.Query("sort_by", UserSortCreatedAt)); by {
	case UserSortCreatedAt, UserSortUserID:
		f.SortBy = by
	default:
		p.Add("sort_by must be created_at or user_id")
	}
	return f, p.Err(api.ErrInvalidRequest)
}

func (h *Handlers) listUsers(c *fiber.Ctx) error {
	snap, err := h.adminTenant(c)
	if err != nil {
		return err
	}
	f, err := userFilter(c)
	if err != nil {
		return err
	}
	users, total, err := h.svc.ListUsers(c.UserContext(), snap, f)
	if err != nil {
		return err
	}
	out := make([]UserResponse, 0, len(users))
	for _, u := range users {
		out = append(out, userResponse(u))
	}
	api.SetPaginationHeaders(c, f.Page.Number, f.Page.Size, total)
	return c.JSON(out)
}

func (h *Handlers) getUser(txs UserTransactions) fiber.Handler {
	return func(c *fiber.Ctx) error {
		snap, ref, err := h.adminUser(c)
		if err != nil {
			return err
		}
		d, err := h.svc.UserDetail(c.UserContext(), snap, ref)
		if err != nil {
			return err
		}
		out := UserDetailResponse{UserResponse: userResponse(d.User), Credentials: make([]CredentialResponse, 0, len(d.Credentials))}
		for _, cr := range d.Credentials {
			out.Credentials = append(out.Credentials, h.response(cr))
		}
		if txs != nil {
			if out.Transactions, err = txs(c.UserContext(), snap, d.User); err != nil {
				return err
			}
		}
		return c.JSON(out)
	}
}

func (h *Handlers) deleteUser(c *fiber.Ctx) error {
	snap, ref, err := h.adminUser(c)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteUser(c.UserContext(), snap, ref); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
