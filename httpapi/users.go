package httpapi

import (
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/tenant"
)

// UserResponse is a user on the wire: Hanko's shape (docs/hanko-compatibility.md#user-shape) plus the
// times. Icon is "" when the user has none, as in Hanko.
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
// credentials (oldest first) and its newest transactions.
type UserDetailResponse struct {
	UserResponse
	Credentials  []CredentialResponse  `json:"credentials"`
	Transactions []TransactionResponse `json:"transactions"`
}

func userResponse(u credentials.User) UserResponse {
	r := UserResponse{ID: u.Key, UserID: u.AppUserID, Name: u.Name, DisplayName: u.DisplayName,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	if u.Icon != nil {
		r.Icon = *u.Icon
	}
	return r
}

// parseTenantID reads the tenant_id path parameter.
func parseTenantID(c *fiber.Ctx) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Params("tenant_id"))
	if err != nil {
		return uuid.Nil, tenant.ErrInvalidID
	}
	return id, nil
}

// adminTenant returns the snapshot of the tenant in the path of an admin route.
func (s *server) adminTenant(c *fiber.Ctx) (*tenant.Snapshot, error) {
	id, err := parseTenantID(c)
	if err != nil {
		return nil, err
	}
	return s.Directory.Resolve(c.UserContext(), id)
}

// adminUser returns the tenant in the path and the user reference, percent-decoded: an application
// user id may hold any character (docs/hanko-compatibility.md#internal-user-ids).
func (s *server) adminUser(c *fiber.Ctx) (*tenant.Snapshot, string, error) {
	snap, err := s.adminTenant(c)
	if err != nil {
		return nil, "", err
	}
	ref, err := pathParam(c, "user_id")
	if err != nil {
		return nil, "", err
	}
	return snap, ref, nil
}

func (s *server) listUsers(c *fiber.Ctx) error {
	snap, err := s.adminTenant(c)
	if err != nil {
		return err
	}
	var p passkey.Problems
	f := credentials.UserFilter{
		Page:      pageOf(c, &p),
		Ascending: sortDirection(c, "sort_direction", "sort_direction must be desc or asc", &p),
		SortBy:    strings.ToLower(c.Query("sort_by")),
	}
	if err := withRules(p, passkey.ErrInvalidRequest, f.Validate()); err != nil {
		return err
	}
	users, total, err := s.Credentials.ListUsers(c.UserContext(), snap, f)
	if err != nil {
		return err
	}
	out := make([]UserResponse, 0, len(users))
	for _, u := range users {
		out = append(out, userResponse(u))
	}
	s.setPaginationHeaders(c, f.Page, total)
	return c.JSON(out)
}

// getUser answers the admin user detail, composed here from the credentials service (the user and
// its credentials) and the transactions service (its transactions).
func (s *server) getUser(c *fiber.Ctx) error {
	snap, ref, err := s.adminUser(c)
	if err != nil {
		return err
	}
	d, err := s.Credentials.UserDetail(c.UserContext(), snap, ref)
	if err != nil {
		return err
	}
	txs, err := s.Transactions.OfUser(c.UserContext(), snap, d.User)
	if err != nil {
		return err
	}
	out := UserDetailResponse{UserResponse: userResponse(d.User), Credentials: make([]CredentialResponse, 0, len(d.Credentials)),
		Transactions: s.transactionResponses(txs)}
	for _, cr := range d.Credentials {
		out.Credentials = append(out.Credentials, s.credentialResponse(cr))
	}
	return c.JSON(out)
}

func (s *server) deleteUser(c *fiber.Ctx) error {
	snap, ref, err := s.adminUser(c)
	if err != nil {
		return err
	}
	if err := s.Credentials.DeleteUser(c.UserContext(), snap, ref); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
