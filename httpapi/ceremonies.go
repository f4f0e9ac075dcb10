package httpapi

import (
	"github.com/gofiber/fiber/v2"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/mfa"
	"github.com/passkey-server/passkey-server/tenant"
)

// handler is a route's handler: it decodes the request, calls one service and encodes the answer.
type handler func(s *server, c *fiber.Ctx) error

// TokenResponse is the answer of every finalize call.
type TokenResponse struct {
	Token string `json:"token"`
}

// LoginRequest is the optional body of login/initialize.
type LoginRequest struct {
	UserID *string `json:"user_id"`
	// Hints replace the tenant's default hints when present (WebAuthn §5.8.7); [] sends none.
	Hints []string `json:"hints"`
}

// registrationInitialize answers a registration initialize of the ceremony (RegistrationRequest body).
func registrationInitialize(ceremony credentials.Ceremony) handler {
	return func(s *server, c *fiber.Ctx) error {
		var req credentials.RegistrationRequest
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
		creation, err := s.Credentials.BeginRegistration(c.UserContext(), snapshotOf(c), ceremony, req)
		if err != nil {
			return err
		}
		return c.JSON(creation)
	}
}

// registrationFinalize answers a registration finalize of the ceremony with a token.
func registrationFinalize(ceremony credentials.Ceremony) handler {
	return func(s *server, c *fiber.Ctx) error {
		res, err := s.Credentials.FinishRegistration(c.UserContext(), snapshotOf(c), ceremony, c.Body())
		if err != nil {
			return err
		}
		return c.JSON(TokenResponse{Token: res.Token})
	}
}

// loginInitialize starts a login. Without user_id it is discoverable and public; with user_id it
// reveals which credentials a user has, so it needs a secret API key (Hanko: any API key).
func (s *server) loginInitialize(c *fiber.Ctx) error {
	var req LoginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	userID := ""
	if req.UserID != nil {
		if *req.UserID == "" {
			return passkey.Invalid("user_id must at least have 1 entry")
		}
		k, err := s.requestKey(c)
		if err != nil {
			return err
		}
		if k.Kind != tenant.KindSecret {
			return tenant.ErrForbiddenKey
		}
		userID = *req.UserID
	}
	assertion, err := s.Credentials.BeginLoginWith(c.UserContext(), snapshotOf(c), credentials.Login, userID, credentials.AssertionOptions{Hints: req.Hints})
	if err != nil {
		return err
	}
	return c.JSON(assertion)
}

// mfaLoginInitialize starts an MFA login for the user named in the body.
func (s *server) mfaLoginInitialize(c *fiber.Ctx) error {
	var req struct {
		UserID string   `json:"user_id"`
		Hints  []string `json:"hints"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	assertion, err := s.Credentials.BeginLoginWith(c.UserContext(), snapshotOf(c), mfa.Login, req.UserID, credentials.AssertionOptions{Hints: req.Hints})
	if err != nil {
		return err
	}
	return c.JSON(assertion)
}

// loginFinalize answers a login finalize of the ceremony with a token.
func loginFinalize(ceremony credentials.Ceremony) handler {
	return func(s *server, c *fiber.Ctx) error {
		res, err := s.Credentials.FinishLogin(c.UserContext(), snapshotOf(c), ceremony, c.Body())
		if err != nil {
			return err
		}
		return c.JSON(TokenResponse{Token: res.Token})
	}
}
