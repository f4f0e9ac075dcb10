// Package passkey holds what every domain package of the service shares: the one error type (a stable
// code with client-safe details), validation problems, the text rules every store needs, paging, and
// the events that services emit where things happen. It knows nothing of HTTP or of any store; see
// the "Architecture" section of README.md for who owns what.
package passkey

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a domain error condition with a stable, snake_case code. Each package declares its
// conditions as sentinels (var ErrNotFound = passkey.NewError("tenant_not_found", "tenant not found"));
// callers match them with errors.Is. The transport layer maps each sentinel to a status and a title,
// and the code is what clients, the audit log and webhooks see.
type Error struct {
	// Code is the stable code of the condition, listed in openapi.yaml (ErrorCode).
	Code string
	// Message describes the condition for logs and error chains.
	Message string
}

// NewError returns a new sentinel with a stable code.
func NewError(code, message string) *Error { return &Error{Code: code, Message: message} }

// Error implements error.
func (e *Error) Error() string { return e.Message }

// CodeInternal is the code of every error that is not a domain error: a failing store, a bug. Its
// cause is logged, never sent.
const CodeInternal = "internal_error"

// ErrInvalidRequest means a request is well-formed but its values are not acceptable; details say why.
var ErrInvalidRequest = NewError("invalid_request", "unable to validate request")

// ErrUnavailable means a dependency (the database, the session store) cannot answer now: it refused
// or dropped the connection, or did not answer within its deadline. Stores wrap such failures so that
// errors.Is(err, ErrUnavailable) holds, with details naming only the kind of dependency ("the database
// is unavailable"), never its address. The request may succeed when retried a moment later.
var ErrUnavailable = NewError("service_unavailable", "a dependency is unavailable")

// ErrorCode returns the code of the first domain error in err's chain, or CodeInternal when there is
// none ("" for a nil err).
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// detailed is an error with details that are safe to show to the caller.
type detailed struct {
	err     error
	details string
}

func (e *detailed) Error() string   { return e.err.Error() + ": " + e.details }
func (e *detailed) Unwrap() error   { return e.err }
func (e *detailed) Details() string { return e.details }

// WithDetails wraps err with a message that may be sent to the client as the error's details. Only
// put text there that was written for clients: never a database or internal error.
func WithDetails(err error, details string) error {
	return &detailed{err: err, details: details}
}

// Details returns the client-safe details of the first error in err's chain that has them, or "".
func Details(err error) string {
	var d interface{ Details() string }
	if errors.As(err, &d) {
		return d.Details()
	}
	return ""
}

// Problems collects every validation problem of a request or config, so one response can report them
// all at once.
type Problems []string

// Add records one problem.
func (p *Problems) Add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// Text records a problem when a field's value is not StorableText.
func (p *Problems) Text(field, value string) {
	if !StorableText(value) {
		p.Add("%s must be valid UTF-8 without NUL characters", field)
	}
}

// Err returns nil when there are no problems, else a *ValidationError wrapping sentinel.
func (p Problems) Err(sentinel error) error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Err: sentinel, Problems: p}
}

// Invalid returns an ErrInvalidRequest for one problem.
func Invalid(format string, args ...any) error {
	var p Problems
	p.Add(format, args...)
	return p.Err(ErrInvalidRequest)
}

// ValidationError lists every problem found in a request or config. It wraps a sentinel (such as
// tenant.ErrInvalidConfig or ErrInvalidRequest) so callers can match it with errors.Is.
type ValidationError struct {
	Err      error
	Problems []string
}

// Error implements error.
func (e *ValidationError) Error() string { return e.Err.Error() + ": " + e.Details() }

// Unwrap returns the sentinel.
func (e *ValidationError) Unwrap() error { return e.Err }

// Details joins the problems the way Hanko's validator does, with " and " (docs/hanko-compatibility.md).
func (e *ValidationError) Details() string { return strings.Join(e.Problems, " and ") }
