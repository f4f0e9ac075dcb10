package main

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/passkey-server/passkey-server/api"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/ratelimit"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
)

// errAdminUnauthorized means an admin API call had no valid admin token.
var errAdminUnauthorized = errors.New("a valid admin token is required (Authorization: Bearer <token>)")

// errorKind is one row of the error table: what a caller sees for one error condition.
type errorKind struct {
	err    error
	status int
	code   string
	title  string
}

// errorTable maps every known error condition to its response. The codes are stable API: they are
// listed in openapi.yaml (ErrorCode), and a test keeps the two in step. Titles follow Hanko's where
// Hanko has the same condition.
var errorTable = []errorKind{
	{api.ErrInvalidBody, 400, "invalid_body", "unable to process request"},
	{api.ErrUnsupportedMediaType, 415, "unsupported_media_type", "Unsupported Media Type"},
	{api.ErrInvalidRequest, 400, "invalid_request", "unable to validate request"},
	{tenant.ErrInvalidID, 400, "invalid_tenant_id", "tenant_id must be a valid uuid"},
	{tenant.ErrNotFound, 404, "tenant_not_found", "tenant not found"},
	{tenant.ErrInvalidConfig, 400, "invalid_config", "unable to update tenant config"},
	{tenant.ErrAPIKeyNotFound, 404, "api_key_not_found", "api key not found"},
	{tenant.ErrAPIKeyNameTaken, 409, "api_key_name_taken", "an api key with this name already exists"},
	{tenant.ErrInvalidAPIKey, 401, "invalid_api_key", "The api key is invalid"},
	{tenant.ErrAPIKeyMissing, 401, "api_key_missing", "api key is missing"},
	{tenant.ErrForbiddenKey, 403, "secret_key_required", "this route needs a secret api key"},
	{credentials.ErrSessionNotFound, 400, "session_not_found", "received challenge does not match with any stored one"},
	{credentials.ErrLoginSessionNotFound, 401, "session_not_found", "failed to get session data"},
	{credentials.ErrUserNotFound, 404, "user_not_found", "user not found"},
	{credentials.ErrCredentialNotFound, 404, "credential_not_found", "credential not found"},
	{credentials.ErrCredentialExists, 409, "credential_exists", "credential already registered"},
	{credentials.ErrInvalidAttestationResponse, 400, "invalid_credential_response", "unable to parse credential creation response"},
	{credentials.ErrInvalidAssertionResponse, 400, "invalid_credential_response", "unable to finish login"},
	{transactions.ErrInvalidResponse, 400, "invalid_credential_response", "unable to finish transaction"},
	{credentials.ErrAttestationFailed, 400, "attestation_failed", "failed to validate attestation"},
	{credentials.ErrAssertionFailed, 401, "assertion_failed", "failed to validate assertion"},
	{credentials.ErrClonedAuthenticator, 401, "cloned_authenticator", "signature counter did not increase: possible cloned authenticator"},
	{credentials.ErrNoCredentials, 400, "no_credentials", "user has no suitable credentials for this operation"},
	{transactions.ErrExists, 409, "transaction_exists", "transaction already exists"},
	{transactions.ErrNotFound, 401, "transaction_not_found", "failed to get session data"}, // Hanko's title; details say more
	{transactions.ErrDataTooLarge, 413, "transaction_data_too_large", "transaction_data is too large"},
	{ratelimit.ErrRateLimited, 429, "rate_limited", "Too Many Requests"},
	{audit.ErrInvalidFilter, 400, "invalid_filter", "unable to list audit logs"},
	{errAdminUnauthorized, 401, "admin_unauthorized", "unauthorized"},
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

// internalError is the response to anything the table does not know. Its cause is logged, never sent.
var internalError = errorKind{status: 500, code: "internal_error", title: "Internal Server Error"}

// ErrorBody is the JSON body of every error response: Hanko's title, details and status, plus a stable
// code and the request id.
type ErrorBody struct {
	Title     string `json:"title"`
	Details   string `json:"details"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
}

// classify finds the response for err.
func classify(err error) (errorKind, string) {
	for _, k := range errorTable {
		if errors.Is(err, k.err) {
			return k, api.Details(err)
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
		return errorKind{status: fe.Code, code: code, title: title}, ""
	}
	return internalError, ""
}

// newErrorHandler returns the one error handler of both apps: it maps err through errorTable and
// writes the JSON body; unknown errors become a 500 whose cause is logged here, once.
func newErrorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		kind, details := classify(err)
		reqID, _ := c.Locals("requestid").(string)
		if kind.status >= 500 {
			log.Error("request failed", "error", err, "method", c.Method(), "path", c.Path(), "request_id", reqID)
		}
		c.Status(kind.status)
		if c.Method() == fiber.MethodHead {
			return nil
		}
		return c.JSON(ErrorBody{Title: kind.title, Details: details, Status: kind.status, Code: kind.code, RequestID: reqID})
	}
}
