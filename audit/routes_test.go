package audit_test

import (
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/passkey-server/passkey-server/audit"
)

// TestRoutesMatch checks that a request finds its route whether its route handler ran or a group
// middleware answered first, as Fiber's router would match it.
func TestRoutesMatch(t *testing.T) {
	table := audit.NewRoutes(map[string]audit.Route{
		audit.RouteKey("POST", "/:tenant_id/login/initialize"):      {Type: "hanko_login"},
		audit.RouteKey("POST", "/credentials/login/initialize"):     {Type: "keyed_login"},
		audit.RouteKey("POST", "/:tenant_id/mfa/login/initialize"):  {Type: "mfa_login"},
		audit.RouteKey("DELETE", "/credentials/:credential_id"):     {Type: "keyed_delete"},
		audit.RouteKey("DELETE", "/tenants/:tenant_id/users/:user"): {Type: "user_deleted"},
	})
	app := fiber.New()
	reject := func(c *fiber.Ctx) error {
		if c.Get("X-Reject") != "" {
			return fiber.ErrUnauthorized // as a group's API key check does, before the route runs
		}
		return c.Next()
	}
	var got string
	app.Use(func(c *fiber.Ctx) error {
		err := c.Next()
		got = "-"
		if r, ok := table.Match(c); ok {
			got = r.Type
		}
		return err
	})
	keyed := app.Group("/credentials", reject)
	keyed.Post("/login/initialize", func(c *fiber.Ctx) error { return nil })
	keyed.Delete("/:credential_id", func(c *fiber.Ctx) error { return nil })
	tenants := app.Group("/:tenant_id", reject)
	tenants.Post("/login/initialize", func(c *fiber.Ctx) error { return nil })
	tenants.Group("/mfa", reject).Post("/login/initialize", func(c *fiber.Ctx) error { return nil })

	for _, tc := range []struct {
		method, path string
		reject       bool
		want         string
	}{
		{"POST", "/t1/login/initialize", false, "hanko_login"},
		{"POST", "/t1/login/initialize", true, "hanko_login"},
		{"POST", "/credentials/login/initialize", false, "keyed_login"},
		{"POST", "/credentials/login/initialize", true, "keyed_login"}, // a literal beats :tenant_id
		{"POST", "/t1/mfa/login/initialize", true, "mfa_login"},
		{"POST", "/T1/MFA/Login/Initialize/", true, "mfa_login"}, // Fiber ignores case and a trailing slash
		{"DELETE", "/credentials/abc", true, "keyed_delete"},
		{"GET", "/t1/login/initialize", true, "-"}, // the method is part of the route
		{"POST", "/t1/login", true, "-"},
		{"POST", "/t1//initialize", true, "-"}, // an empty segment is no parameter
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.reject {
			req.Header.Set("X-Reject", "1")
		}
		if _, err := app.Test(req); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s %s (rejected %v): route %q, want %q", tc.method, tc.path, tc.reject, got, tc.want)
		}
	}
}
