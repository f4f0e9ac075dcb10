package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/archive"
	"github.com/passkey-server/passkey-server/attestation"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/ratelimit"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
	"github.com/passkey-server/passkey-server/webhooks"
)

// errAdminUnauthorized means an admin API call had no valid admin token.
var errAdminUnauthorized = passkey.NewError("admin_unauthorized", "a valid admin token is required (Authorization: Bearer <token>)")

// errorKind is one row of the error table: the status and title a caller sees for one domain error.
// The code is the error's own (passkey.Error).
type errorKind struct {
	err    *passkey.Error
	status int
	title  string
}

// errorTable maps every known error condition to its response. The codes are stable API: they are
// listed in openapi.yaml (ErrorCode), and a test keeps the two in step. Titles follow Hanko's where
// Hanko has the same condition (docs/hanko-compatibility.md#error-titles).
var errorTable = []errorKind{
	// First: an outage is the answer whatever else the error says (a ceremony's failure wrapping it).
	{passkey.ErrUnavailable, 503, "Service Unavailable"}, // classify answers it first (title from details); listed for its code
	{ErrInvalidBody, 400, "unable to process request"},
	{ErrUnsupportedMediaType, 415, "Unsupported Media Type"},
	{passkey.ErrInvalidRequest, 400, "unable to validate request"},
	{tenant.ErrInvalidID, 400, "tenant_id must be a valid uuid"},
	{tenant.ErrNotFound, 404, "tenant not found"},
	{tenant.ErrInvalidConfig, 400, "unable to update tenant config"},
	{tenant.ErrAPIKeyNotFound, 404, "api key not found"},
	{tenant.ErrAPIKeyNameTaken, 409, "an api key with this name already exists"},
	{tenant.ErrInvalidAPIKey, 401, "The api key is invalid"},
	{tenant.ErrAPIKeyMissing, 401, "api key is missing"},
	{tenant.ErrForbiddenKey, 403, "this route needs a secret api key"},
	{credentials.ErrSessionNotFound, 400, "received challenge does not match with any stored one"},
	{credentials.ErrLoginSessionNotFound, 401, "failed to get session data"},
	{credentials.ErrUserNotFound, 404, "user not found"},
	{credentials.ErrSignalsOff, 409, "signals are off"},
	{credentials.ErrCredentialNotFound, 404, "credential not found"},
	{credentials.ErrCredentialExists, 409, "credential already registered"},
	{credentials.ErrInvalidAttestationResponse, 400, "unable to parse credential creation response"},
	{credentials.ErrInvalidAssertionResponse, 400, "unable to finish login"},
	{transactions.ErrInvalidResponse, 400, "unable to finish transaction"},
	{credentials.ErrAttestationFailed, 400, "failed to validate attestation"},
	{credentials.ErrAssertionFailed, 401, "failed to validate assertion"},
	{credentials.ErrClonedAuthenticator, 401, "signature counter did not increase: possible cloned authenticator"},
	{credentials.ErrNoCredentials, 400, "user has no suitable credentials for this operation"},
	// Webhooks.
	{webhooks.ErrInvalidEndpoint, 400, "invalid webhook endpoint"},
	{webhooks.ErrNotFound, 404, "webhook not found"},
	{webhooks.ErrDeliveryNotFound, 404, "webhook delivery not found"},
	{attestation.ErrNotAllowed, 403, "the authenticator is not allowed by the attestation policy"},
	{attestation.ErrRevoked, 403, "the authenticator has been revoked"},
	{attestation.ErrMetadataUnavailable, 503, "the FIDO metadata is not loaded"},
	{attestation.ErrUnknownAuthenticator, 404, "authenticator not found in the FIDO metadata"},
	{transactions.ErrExists, 409, "transaction already exists"},
	{transactions.ErrNotFound, 401, "failed to get session data"}, // Hanko's title; details say more
	{transactions.ErrDataTooLarge, 413, "transaction_data is too large"},
	{ratelimit.ErrRateLimited, 429, "Too Many Requests"},
	{audit.ErrInvalidFilter, 400, "unable to list audit logs"},
	{archive.ErrInvalid, 400, "unable to import tenant"},
	{archive.ErrConflict, 409, "unable to import tenant"},
	{errAdminUnauthorized, 401, "unauthorized"},
}

// fiberErrorCodes names the codes of errors Fiber itself raises (routing, body limit).
var fiberErrorCodes = map[int]string{
	400: "bad_request",
	404: "not_found",
	405: "method_not_allowed",
	413: "body_too_large",
	415: "unsupported_media_type",
	429: "rate_limited",
	431: "headers_too_large",
	503: "unavailable",
}

// response is what a caller sees for an error.
type response struct {
	status  int
	code    string
	title   string
	details string
}

// internalError is the response to anything the table does not know. Its cause is logged, never sent.
var internalError = response{status: 500, code: passkey.CodeInternal, title: "Internal Server Error"}

// ErrorBody is the JSON body of every error response: Hanko's title, details and status
// (docs/hanko-compatibility.md#error-body), plus a stable code and the request id.
type ErrorBody struct {
	Title     string `json:"title"`
	Details   string `json:"details"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
	// Signals are for the browser's Signal API: a login whose credential the tenant does not know
	// carries signals.unknownCredential (credentials.Signals).
	Signals *credentials.Signals `json:"signals,omitempty"`
}

// retryAfterUnavailable is the Retry-After of a 503 service_unavailable, in seconds: outages this
// service answers honestly are mostly short (a failover, a restart), and a client that retries after a
// second does not pile onto a recovering store.
const retryAfterUnavailable = "1"

// classify finds the response for err. A request that ran past its deadline (Options.RequestTimeout)
// is service_unavailable too, whichever call noticed it. The title of service_unavailable says which
// kind of dependency failed ("the database is unavailable"), never its address.
func classify(err error) response {
	if errors.Is(err, passkey.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		details := passkey.Details(err)
		if details == "" || !errors.Is(err, passkey.ErrUnavailable) {
			details = "the request took too long"
		}
		return response{status: 503, code: passkey.ErrUnavailable.Code, title: details, details: details}
	}
	for _, k := range errorTable {
		if errors.Is(err, k.err) {
			r := response{status: k.status, code: k.err.Code, title: k.title, details: passkey.Details(err)}
			var rt *retitled
			if r.status < 500 && errors.As(err, &rt) {
				r.title = rt.title
			}
			return r
		}
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code, ok := fiberErrorCodes[fe.Code]
		if !ok {
			code = strings.ToLower(strings.ReplaceAll(http.StatusText(fe.Code), " ", "_"))
		}
		title := http.StatusText(fe.Code)
		if title == "" {
			title = fe.Message
		}
		return response{status: fe.Code, code: code, title: title}
	}
	return internalError
}

// asDomainError returns err as the domain error a client was answered with, for the event of a
// request refused before its service saw it: Fiber's own errors (a body too large) become a
// passkey.Error with their code.
func asDomainError(err error) error {
	var de *passkey.Error
	if errors.As(err, &de) {
		return err
	}
	r := classify(err)
	if r.code == passkey.CodeInternal {
		return err
	}
	return passkey.NewError(r.code, r.title)
}

// ErrorCodes returns every code an error response may carry, sorted: the table's, Fiber's and
// internal_error. openapi.yaml's ErrorCode enum must list exactly these.
func ErrorCodes() []string {
	set := map[string]bool{internalError.code: true}
	for _, k := range errorTable {
		set[k.err.Code] = true
	}
	for _, c := range fiberErrorCodes {
		set[c] = true
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// retitled gives a client error the title of the operation that refused it, where the table's title
// (Hanko's) names another one: a refused tenant creation says "unable to create tenant", not "unable to
// update tenant config". The code stays the table's.
type retitled struct {
	error
	title string
}

func (e *retitled) Unwrap() error { return e.error }

// newErrorHandler returns the one error handler of both apps: it maps err through errorTable and
// writes the JSON body; unknown errors become a 500 whose cause is logged here, once.
func newErrorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		r := classify(err)
		reqID, _ := c.Locals(requestIDLocal).(string)
		if r.status >= 500 {
			log.Error("request failed", "error", err, "method", c.Method(), "path", c.Path(), "request_id", reqID)
		}
		c.Status(r.status)
		if r.code == passkey.ErrUnavailable.Code {
			c.Set(fiber.HeaderRetryAfter, retryAfterUnavailable)
		}
		if c.Method() == fiber.MethodHead {
			return nil
		}
		body := ErrorBody{Title: r.title, Details: r.details, Status: r.status, Code: r.code, RequestID: reqID}
		if r.status < 500 {
			body.Signals = credentials.SignalsOf(err)
		}
		return c.JSON(body)
	}
}
