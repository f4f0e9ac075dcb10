// Package api holds the wire conventions every HTTP handler of the service shares: errors that carry
// safe details, strict JSON body decoding, and Hanko's pagination headers. It knows no feature; the
// one error handler that turns errors into responses lives in cmd/passkey-server.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// Sentinel errors for problems with a request as a whole, before any feature looks at it.
var (
	// ErrInvalidBody means the body is not one well-formed JSON value of the expected shape.
	ErrInvalidBody = errors.New("unable to process request")
	// ErrUnsupportedMediaType means a non-empty body was sent without a JSON content type.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrInvalidRequest means the request is well-formed but its values are not acceptable.
	ErrInvalidRequest = errors.New("unable to validate request")
)

// detailed is an error with details that are safe to show to the caller.
type detailed struct {
	err     error
	details string
}

func (e *detailed) Error() string   { return e.err.Error() + ": " + e.details }
func (e *detailed) Unwrap() error   { return e.err }
func (e *detailed) Details() string { return e.details }

// WithDetails wraps err with a message that may be sent to the client as the body's "details". Only
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

// DecodeJSON decodes the request body into v. An empty body decodes as {} (Hanko's clients send no
// body to some routes). A non-empty body needs a JSON content type (415 otherwise), must hold exactly
// one JSON value (trailing data is rejected), must be UTF-8 (RFC 8259; Go's decoder would otherwise
// turn invalid bytes into U+FFFD, so two different user ids could become one) and must fit v's types;
// unknown members are ignored.
func DecodeJSON(c *fiber.Ctx, v any) error {
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	ct := strings.ToLower(c.Get(fiber.HeaderContentType))
	if ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.Contains(ct, "+json") {
		return WithDetails(ErrUnsupportedMediaType, "the body must be JSON (Content-Type: application/json)")
	}
	if !utf8.Valid(body) {
		return WithDetails(ErrInvalidBody, "the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return WithDetails(ErrInvalidBody, describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return WithDetails(ErrInvalidBody, "the body must hold exactly one JSON value")
	}
	return nil
}

// jsonKind names the JSON type a Go type decodes from, so that error details never show Go type names.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	}
	return "value"
}

func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("Syntax error: offset=%d, error=%s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Sprintf("the body must be a JSON %s, not %s", jsonKind(typ.Type), typ.Value)
	case errors.As(err, &typ):
		return fmt.Sprintf("Unmarshal type error: expected=%s, got=%s, field=%s, offset=%d", jsonKind(typ.Type), typ.Value, typ.Field, typ.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "Syntax error: unexpected end of JSON input"
	default:
		return "the body is not valid JSON"
	}
}

// Problems collects every validation problem of a request or config, so one response can report them
// all at once.
type Problems []string

// Add records one problem.
func (p *Problems) Add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// Err returns nil when there are no problems, else a *ValidationError wrapping sentinel.
func (p Problems) Err(sentinel error) error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Err: sentinel, Problems: p}
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

// Details joins the problems the way Hanko's validator does, with " and ".
func (e *ValidationError) Details() string { return strings.Join(e.Problems, " and ") }

// StorableText reports whether s can be stored as text by every database the service runs on: valid
// UTF-8 without NUL characters (PostgreSQL rejects NUL in text and jsonb).
func StorableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// Text records a problem when a field's value is not StorableText.
func (p *Problems) Text(field, value string) {
	if !StorableText(value) {
		p.Add("%s must be valid UTF-8 without NUL characters", field)
	}
}

// maxIconURL bounds an icon URL (user or relying party icon).
const maxIconURL = 2048

// IconURL reports whether s is an acceptable icon: an absolute http or https URL, or a data: URL of an
// image, of at most 2,048 bytes of storable text. Other schemes (javascript:, file:) are refused, as
// applications may put the icon into a page.
func IconURL(s string) bool {
	if len(s) > maxIconURL || !StorableText(s) {
		return false
	}
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u.Host != ""
	case "data":
		return strings.HasPrefix(strings.ToLower(u.Opaque), "image/")
	}
	return false
}

// PathParam returns the path parameter name, percent-decoded: an application's user id may hold any
// character, and a client may encode a credential id's base64 padding as %3D. A malformed escape is a
// 400 naming the parameter.
func PathParam(c *fiber.Ctx, name string) (string, error) {
	v, err := url.PathUnescape(c.Params(name))
	if err != nil {
		return "", Problems{name + " is not a valid percent-encoded path segment"}.Err(ErrInvalidRequest)
	}
	return v, nil
}
