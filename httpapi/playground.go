package httpapi

import (
	"errors"
	"html/template"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/mfa"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
)

// PlaygroundUserPrefix starts the id of every user the playground acts for. Its proxy holds the
// powers of a secret key (registration, MFA, transactions for a named user), so it acts only for
// users of this namespace: a page anyone can open must never add a passkey to an application's user.
const PlaygroundUserPrefix = "playground:"

var playgroundPage = template.Must(template.ParseFS(web, "web/playground.html"))

// playgroundRoute is one call of the playground's server-side proxy: what the page would otherwise
// need a secret key for, done with the tenant's services directly (no key ever reaches the page).
type playgroundRoute struct {
	method, path string
	handle       handler
}

var playgroundRoutes = []playgroundRoute{
	{"POST", "/registration/initialize", playgroundRegistration(credentials.Registration)},
	{"POST", "/login/initialize", playgroundLogin(credentials.Login)},
	{"POST", "/mfa/registration/initialize", playgroundRegistration(mfa.Registration)},
	{"POST", "/mfa/registration/finalize", registrationFinalize(mfa.Registration)},
	{"POST", "/mfa/login/initialize", playgroundLogin(mfa.Login)},
	{"POST", "/mfa/login/finalize", loginFinalize(mfa.Login)},
	{"POST", "/transaction/initialize", (*server).playgroundTransaction},
	{"POST", "/transaction/finalize", (*server).transactionFinalize},
	{"GET", "/credentials/:credential_id", (*server).playgroundCredential},
}

// registerPlayground serves the playground of tenants whose config has "playground": GET
// /{tenant_id}/playground (the page) and its proxy under /{tenant_id}/playground/, rate limited as
// the public routes are; and GET /playground, a redirect to the development tenant's playground in
// the embedded mode. A tenant without the playground answers 404. The tenant id is constrained to a
// UUID, so that /credentials/playground stays a key-scoped path.
func (s *server) registerPlayground(app *fiber.App) {
	app.Get("/playground", func(c *fiber.Ctx) error {
		if s.PlaygroundTenant == uuid.Nil {
			return fiber.ErrNotFound
		}
		return c.Redirect("/"+s.PlaygroundTenant.String()+"/playground", fiber.StatusFound)
	})
	refusals := limitRefusals(s.Limiter, ClientIP, func(err error) bool { return errors.Is(err, tenant.ErrNotFound) })
	chain := func(h handler) []fiber.Handler {
		return []fiber.Handler{refusals, s.pathTenant, s.rateLimit(), requirePlayground,
			func(c *fiber.Ctx) error { return h(s, c) }}
	}
	add(app, "GET", "/:tenant_id<guid>/playground", chain((*server).playground)...)
	for _, r := range playgroundRoutes {
		add(app, r.method, "/:tenant_id<guid>/playground"+r.path, chain(r.handle)...)
	}
}

// requirePlayground answers 404 unless the tenant has the playground on.
func requirePlayground(c *fiber.Ctx) error {
	if snap := snapshotOf(c); snap == nil || !snap.Config.Playground {
		return fiber.ErrNotFound
	}
	return c.Next()
}

// playgroundData is what the page is rendered with.
type playgroundData struct {
	Nonce, TenantID, TenantName, RPID, Issuer, Prefix string
}

func (s *server) playground(c *fiber.Ctx) error {
	snap := snapshotOf(c)
	nonce := newNonce()
	return renderPage(c, playgroundPage, "playground.html", nonce, fiber.StatusOK, playgroundData{
		Nonce: nonce, TenantID: snap.ID.String(), TenantName: snap.DisplayName, RPID: snap.Config.WebAuthn.RelyingParty.ID,
		Issuer: snap.Issuer, Prefix: PlaygroundUserPrefix,
	})
}

// playgroundUser returns the playground's user id for the id typed in the page.
func playgroundUser(id string) (string, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return "", passkey.Invalid("user_id is a required field")
	}
	return PlaygroundUserPrefix + id, nil
}

// playgroundRegistration starts a registration of the ceremony for a playground user.
func playgroundRegistration(ceremony credentials.Ceremony) handler {
	return func(s *server, c *fiber.Ctx) error {
		var req credentials.RegistrationRequest
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
		user, err := playgroundUser(req.AppUserID)
		if err != nil {
			return err
		}
		req.AppUserID = user
		creation, err := s.Credentials.BeginRegistration(c.UserContext(), snapshotOf(c), ceremony, req)
		if err != nil {
			return err
		}
		return c.JSON(creation)
	}
}

// playgroundLogin starts a login of the ceremony for a named playground user.
func playgroundLogin(ceremony credentials.Ceremony) handler {
	return func(s *server, c *fiber.Ctx) error {
		var req struct {
			UserID string `json:"user_id"`
		}
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
		user, err := playgroundUser(req.UserID)
		if err != nil {
			return err
		}
		assertion, err := s.Credentials.BeginLogin(c.UserContext(), snapshotOf(c), ceremony, user)
		if err != nil {
			return err
		}
		return c.JSON(assertion)
	}
}

func (s *server) playgroundTransaction(c *fiber.Ctx) error {
	var req transactions.InitRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	user, err := playgroundUser(req.AppUserID)
	if err != nil {
		return err
	}
	req.AppUserID = user
	assertion, err := s.Transactions.Begin(c.UserContext(), snapshotOf(c), req)
	if err != nil {
		return err
	}
	return c.JSON(assertion)
}

// playgroundCredential shows a credential of a playground user as the API stores and lists it.
func (s *server) playgroundCredential(c *fiber.Ctx) error {
	id, err := pathParam(c, "credential_id")
	if err != nil {
		return err
	}
	cred, err := s.Credentials.Get(c.UserContext(), snapshotOf(c), id)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(cred.AppUserID, PlaygroundUserPrefix) {
		return credentials.ErrCredentialNotFound
	}
	return c.JSON(s.credentialResponse(cred))
}
