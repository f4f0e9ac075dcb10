package httpapi

import (
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/mfa"
	"github.com/passkey-server/passkey-server/ratelimit"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
)

// keyNeed is the API key a public route needs beyond what its family checks: Hanko's family resolves
// the tenant from the path and needs no key by itself; the key-scoped family resolves it from a key of
// either kind.
type keyNeed int

const (
	anyKey    keyNeed = iota // what the family checks (Hanko's: none; key-scoped: a key of either kind)
	secretKey                // a secret key
)

// route is one operation of the public API, in Hanko's family (path under /{tenant_id}, "" when it
// has none) and in the key-scoped family (full path, "" when it has none). Every public route is
// rate limited per tenant, client address and API key.
type route struct {
	method string
	hanko  string
	keyed  string
	key    keyNeed
	// ceremony and step name the ceremony step the route runs; the transport emits its failure when
	// the request is refused before the service sees it.
	ceremony credentials.Ceremony
	step     string
	handle   handler
}

// publicRoutes is the routes table of the public API (docs/hanko-compatibility.md#public-routes and
// #key-scoped-routes). Publishable keys may call registration finalize and discoverable login;
// everything else needs a secret key.
var publicRoutes = []route{
	{method: "GET", hanko: "/.well-known/jwks.json", handle: (*server).jwks},
	{method: "GET", hanko: "/.well-known/webauthn", handle: (*server).relatedOrigins},
	{method: "GET", hanko: "/audit_logs", key: secretKey, handle: (*server).tenantAuditLogs},

	{"POST", "/registration/initialize", "/credentials/register/initialize", secretKey, credentials.Registration, passkey.StepInitialize, registrationInitialize(credentials.Registration)},
	{"POST", "/registration/finalize", "/credentials/register/finalize", anyKey, credentials.Registration, passkey.StepFinalize, registrationFinalize(credentials.Registration)},
	{"POST", "/login/initialize", "/credentials/login/initialize", anyKey, credentials.Login, passkey.StepInitialize, (*server).loginInitialize},
	{"POST", "/login/finalize", "/credentials/login/finalize", anyKey, credentials.Login, passkey.StepFinalize, loginFinalize(credentials.Login)},

	{"POST", "/mfa/registration/initialize", "/credentials/mfa/register/initialize", secretKey, mfa.Registration, passkey.StepInitialize, registrationInitialize(mfa.Registration)},
	{"POST", "/mfa/registration/finalize", "/credentials/mfa/register/finalize", secretKey, mfa.Registration, passkey.StepFinalize, registrationFinalize(mfa.Registration)},
	{"POST", "/mfa/login/initialize", "/credentials/mfa/login/initialize", secretKey, mfa.Login, passkey.StepInitialize, (*server).mfaLoginInitialize},
	{"POST", "/mfa/login/finalize", "/credentials/mfa/login/finalize", secretKey, mfa.Login, passkey.StepFinalize, loginFinalize(mfa.Login)},

	{method: "GET", hanko: "/credentials", keyed: "/credentials", key: secretKey, handle: (*server).listCredentials},
	{method: "GET", hanko: "/credentials/:credential_id", keyed: "/credentials/:credential_id", key: secretKey, handle: (*server).getCredential},
	{method: "PATCH", hanko: "/credentials/:credential_id", keyed: "/credentials/:credential_id", key: secretKey, handle: (*server).renameCredential},
	{method: "DELETE", hanko: "/credentials/:credential_id", keyed: "/credentials/:credential_id", key: secretKey, handle: (*server).deleteCredential},

	{"POST", "/transaction/initialize", "/transaction/initialize", secretKey, transactions.Signing, passkey.StepInitialize, (*server).transactionInitialize},
	{"POST", "/transaction/finalize", "/transaction/finalize", secretKey, transactions.Signing, passkey.StepFinalize, (*server).transactionFinalize},
	{method: "GET", hanko: "/transaction/:user_id", keyed: "/transaction/:user_id", key: secretKey, handle: (*server).listTransactions},

	{method: "GET", hanko: "/users/:user_id/signals", keyed: "/users/:user_id/signals", key: secretKey, handle: (*server).userSignals},
}

// keyedPrefixes are the first path segments of the key-scoped family. Its routes are registered before
// Hanko's, whose first segment (a tenant id) would otherwise take them.
var keyedPrefixes = []string{"/credentials", "/transaction", "/users"}

// registerPublic registers the routes table on app. Each route runs its own chain: the ceremony step's
// refusal event, the guard against clients whose lookups keep failing, the family's tenant resolution
// and CORS, the rate limit, the key check, the handler. Requests no route matches (CORS preflights,
// unknown paths, wrong methods) reach each family's middleware registered after its routes, which
// answers preflights and gives unknown paths a JSON 404 with the tenant's CORS headers.
func (s *server) registerPublic(app *fiber.App) {
	// A client whose requests name no tenant or key that exists is limited before the lookup (each
	// costs a database query, and no tenant's limits apply to it).
	refusals := limitRefusals(s.Limiter, ClientIP, func(err error) bool {
		return errors.Is(err, tenant.ErrNotFound) || errors.Is(err, tenant.ErrInvalidAPIKey)
	})
	limit := s.rateLimit()
	chain := func(r route, family fiber.Handler) []fiber.Handler {
		var hs []fiber.Handler
		if r.step != "" {
			hs = append(hs, s.refusedStep(r.ceremony, r.step))
		}
		hs = append(hs, refusals, family, limit)
		if r.key == secretKey {
			hs = append(hs, s.requireSecret)
		}
		handle := r.handle
		return append(hs, func(c *fiber.Ctx) error { return handle(s, c) })
	}
	for _, r := range publicRoutes {
		if r.keyed != "" {
			add(app, r.method, r.keyed, chain(r, s.keyTenant)...)
		}
	}
	// What no route matched: every key-scoped path needs a key, and under /credentials a secret one.
	app.Use("/credentials", refusals, s.keyTenant, limit, s.requireSecret)
	app.Use("/transaction", refusals, s.keyTenant, limit)
	app.Use("/users", refusals, s.keyTenant, limit, s.requireSecret)
	for _, p := range keyedPrefixes {
		app.All(p+"/*", notFound)
	}
	for _, r := range publicRoutes {
		if r.hanko != "" {
			add(app, r.method, "/:tenant_id"+r.hanko, chain(r, s.pathTenant)...)
		}
	}
	// What no route matched under a tenant: CORS and preflights; the credentials and MFA sub-paths
	// need a secret key, so a wrong method there is refused as before.
	app.Use("/:tenant_id", refusals, s.pathTenant, limit)
	app.Use("/:tenant_id/credentials", s.requireSecret)
	app.Use("/:tenant_id/mfa", s.requireSecret)
	app.Use("/:tenant_id/users", s.requireSecret)
}

// add registers a route; a GET route answers HEAD too, as Fiber's app.Get does.
func add(r fiber.Router, method, path string, handlers ...fiber.Handler) {
	r.Add(method, path, handlers...)
	if method == fiber.MethodGet {
		r.Add(fiber.MethodHead, path, handlers...)
	}
}

// notFound answers routes that do not exist inside a route family with the JSON 404.
func notFound(*fiber.Ctx) error { return fiber.ErrNotFound }

// refusedStep emits the failure of a ceremony step whose request was refused before its service saw
// it (a missing or publishable key, a malformed body, a rate limit, a panic): the service emits every
// outcome it sees, and this is the only other place a ceremony event comes from. A request whose
// tenant was not resolved records nothing: no tenant could read it, and a tenant id taken from the
// path unchecked would let anyone fill the audit log and the metrics' tenant labels.
func (s *server) refusedStep(ceremony credentials.Ceremony, step string) fiber.Handler {
	emit := func(c *fiber.Ctx, err error) {
		snap := snapshotOf(c)
		if snap == nil || passkey.Emitted(c.UserContext()) {
			return
		}
		s.Events.Emit(c.UserContext(), passkey.Event{Type: passkey.StepType(step, err), TenantID: snap.ID,
			Ceremony: ceremony.Name, Step: step, Err: asDomainError(err)})
	}
	return func(c *fiber.Ctx) (err error) {
		defer func() {
			if r := recover(); r != nil {
				emit(c, fmt.Errorf("panic: %v", r))
				panic(r) // for the recover middleware, which answers 500
			}
		}()
		if err = c.Next(); err != nil {
			emit(c, err)
		}
		return err
	}
}

// rateLimit limits requests per tenant, client IP and API key once the tenant is known (so after the
// tenant middleware; CORS preflights were answered before). Requests with a valid secret key come from
// the application's servers, which call for all their users from a few addresses: they are limited per
// key, not per IP, and count against the tenant's secret-key bucket. Everything else (browsers,
// publishable keys, wrong keys) is limited per client IP and counts against the tenant's public bucket,
// so anonymous traffic from however many addresses never uses up the servers' budget. Without a
// limiter it lets everything pass.
func (s *server) rateLimit() fiber.Handler {
	if s.Limiter == nil {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	return limitRequests(s.Limiter, func(c *fiber.Ctx) ratelimit.Keys {
		var k ratelimit.Keys
		if snap := snapshotOf(c); snap != nil {
			k.Tenant = snap.ID.String()
		}
		key, err := s.requestKey(c)
		if err == nil {
			k.APIKey = key.ID.String()
		}
		k.Secret = err == nil && key.Kind == tenant.KindSecret
		if !k.Secret {
			k.IP = ClientIP(c)
		}
		return k
	})
}
