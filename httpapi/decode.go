package httpapi

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

	"github.com/passkey-server/passkey-server"
)

// Errors of a request as a whole, before any service looks at it.
var (
	// ErrInvalidBody means the body is not one well-formed JSON value of the expected shape.
	ErrInvalidBody = passkey.NewError("invalid_body", "unable to process request")
	// ErrUnsupportedMediaType means a non-empty body was sent without a JSON content type.
	ErrUnsupportedMediaType = passkey.NewError("unsupported_media_type", "unsupported media type")
)

// decodeJSON decodes the request body into v, ignoring members v has no field for (Hanko's clients and
// browsers may add some, docs/hanko-compatibility.md#error-body). An empty body decodes as {} (Hanko's
// clients send no body to some routes). A non-empty body needs a JSON content type (415 otherwise),
// must hold exactly one JSON value (trailing data is rejected) and must fit v's types. Its text must be
// UTF-8 without unpaired UTF-16 surrogate escapes (RFC 8259, I-JSON RFC 7493 §2.1: Go's decoder would
// turn either into U+FFFD, so two different user ids could become one), and its member names must be
// unique and spelled as v's fields are: Go's decoder matches names in any letter case and keeps the
// last of duplicates, so a body could mean one thing to a proxy or log and another to us.
func decodeJSON(c *fiber.Ctx, v any) error {
	return decodeBody(c, v, false)
}

// decodeStrictJSON is decodeJSON for the admin API, whose bodies come from operators and their
// scripts, not browsers: a member v has no field for, at any depth, is a 400 that names it, so that a
// misspelt setting ("webauthn.user_verfication") is never silently left at its default.
func decodeStrictJSON(c *fiber.Ctx, v any) error {
	return decodeBody(c, v, true)
}

func decodeBody(c *fiber.Ctx, v any, strict bool) error {
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	ct := strings.ToLower(c.Get(fiber.HeaderContentType))
	if ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.Contains(ct, "+json") {
		return passkey.WithDetails(ErrUnsupportedMediaType, "the body must be JSON (Content-Type: application/json)")
	}
	if !utf8.Valid(body) {
		return passkey.WithDetails(ErrInvalidBody, "the body is not valid UTF-8")
	}
	if at := passkey.UnpairedSurrogate(body); at >= 0 {
		return passkey.WithDetails(ErrInvalidBody, fmt.Sprintf("the body has an unpaired UTF-16 surrogate escape (such as \\ud800) at offset %d", at))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return passkey.WithDetails(ErrInvalidBody, describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return passkey.WithDetails(ErrInvalidBody, "the body must hold exactly one JSON value")
	}
	return checkMembers(body, reflect.TypeOf(v), strict).Err(ErrInvalidBody)
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

// pathParam returns the path parameter name, percent-decoded: an application's user id may hold any
// character, and a client may encode a credential id's base64 padding as %3D. A malformed escape is a
// 400 naming the parameter.
func pathParam(c *fiber.Ctx, name string) (string, error) {
	v, err := url.PathUnescape(c.Params(name))
	if err != nil {
		return "", passkey.Invalid("%s is not a valid percent-encoded path segment", name)
	}
	// Unescaping returns Fiber's own buffer when there is nothing to unescape, and the value may
	// outlive the request in an event.
	return strings.Clone(v), nil
}

// withRules returns nil when the request has no syntax problems (its service then checks the rules
// itself), else the syntax problems together with those rules finds, so that a caller hears of every
// problem at once while each rule stays written in one place, its domain package.
func withRules(syntax passkey.Problems, sentinel error, rules error) error {
	if len(syntax) == 0 {
		return nil
	}
	var v *passkey.ValidationError
	if errors.As(rules, &v) {
		syntax = append(syntax, v.Problems...)
	}
	return syntax.Err(sentinel)
}
