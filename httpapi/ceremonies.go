package httpapi

import (
	"errors"
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
	// Signals are the user's signals for the browser's Signal API, only when the finalize was called
	// with ?signals=true (they cost one more statement; README, "Signals").
	Signals *credentials.Signals `json:"signals,omitempty"`
}

// finalizeResponse is the answer of a successful finalize: the token, and the user's signals when
// the caller asked for them. The ceremony has succeeded by then, so a failure to read the signals is
// logged and leaves them out rather than losing the token.
func (s *server) finalizeResponse(c *fiber.Ctx, res credentials.Result) error {
	out := TokenResponse{Token: res.Token}
	if c.QueryBool("signals") {
		sig, err := s.Credentials.UserSignals(c.UserContext(), snapshotOf(c), res.User.AppUserID)
		switch {
		case errors.Is(err, credentials.ErrSignalsOff):
			// Asked for, but the tenant has them off: the answer is the plain one.
		case err != nil:
			s.log.Warn("reading the signals of a finalize failed", "error", err)
		default:
			out.Signals = &sig
		}
	}
	return c.JSON(out)
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
		return s.finalizeResponse(c, res)
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
		return s.finalizeResponse(c, res)
	}
}

// userSignals answers the signals of a user (credentials.Service.UserSignals), for applications that
// send them after their own sign-in, a credential deletion or rename.
func (s *server) userSignals(c *fiber.Ctx) error {
	userID, err := pathParam(c, "user_id")
	if err != nil {
		return err
	}
	sig, err := s.Credentials.UserSignals(c.UserContext(), snapshotOf(c), userID)
	if err != nil {
		return err
	}
	return c.JSON(sig)
}
