package transactions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	passkey "github.com/passkey-server/passkey-server"
)

// maxDepth bounds the nesting of transaction data, so a hostile body cannot exhaust the stack.
const maxDepth = 64

// Canonicalize returns the canonical form of a JSON value: the JSON Canonicalization Scheme (RFC 8785)
// with one deliberate difference. Object members are sorted by the UTF-16 code units of their names,
// whitespace is removed, and strings are written with JCS's minimal escaping (no \u003c-style
// re-escaping); numbers, however, are kept exactly as written instead of being converted to IEEE-754
// doubles, so 12345678901234567890 or 0.1000000000000000055511151231257827 stay exact. For numbers a
// double represents exactly and that are written in shortest form (what JSON.stringify produces), the
// result equals RFC 8785.
//
// An application recomputes the challenge binding as SHA-256(transaction_id ‖ Canonicalize(data)).
// We wrote this rather than use an RFC 8785 library because those convert numbers to doubles, which
// silently changes large amounts and ids (docs/hanko-compatibility.md#transaction-number-precision).
//
// Text that has no exact form is refused rather than changed (RFC 8785 §3.2.2.2 and I-JSON, RFC 7493
// §2.1): invalid UTF-8 and unpaired surrogate escapes such as "\ud800", which a JSON decoder would
// silently turn into U+FFFD, so that different data never hashes the same.
func Canonicalize(data []byte) ([]byte, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("transaction_data must be valid UTF-8")
	}
	if passkey.UnpairedSurrogate(data) >= 0 {
		return nil, errors.New("transaction_data has an unpaired UTF-16 surrogate escape")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out bytes.Buffer
	if err := canonicalValue(dec, &out, 0); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("transaction_data must be one JSON value")
	}
	return out.Bytes(), nil
}

func canonicalValue(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("transaction_data is nested deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("transaction_data is not valid JSON: %w", err)
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return canonicalObject(dec, out, depth)
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := canonicalValue(dec, out, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			out.WriteByte(']')
			return nil
		}
		return fmt.Errorf("transaction_data: unexpected %q", v)
	case string:
		writeString(out, v)
	case json.Number:
		out.WriteString(v.String())
	case bool:
		if v {
			out.WriteString("true")
		} else {
			out.WriteString("false")
		}
	case nil:
		out.WriteString("null")
	}
	return nil
}

func canonicalObject(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	type member struct {
		name  string
		value []byte
	}
	var members []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("transaction_data is not valid JSON: %w", err)
		}
		name := tok.(string)
		var value bytes.Buffer
		if err := canonicalValue(dec, &value, depth+1); err != nil {
			return err
		}
		if seen[name] {
			return fmt.Errorf("transaction_data has the member %q twice", name)
		}
		seen[name] = true
		members = append(members, member{name, value.Bytes()})
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	slices.SortFunc(members, func(a, b member) int { return compareUTF16(a.name, b.name) })
	out.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			out.WriteByte(',')
		}
		writeString(out, m.name)
		out.WriteByte(':')
		out.Write(m.value)
	}
	out.WriteByte('}')
	return nil
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785 §3.2.3 requires.
func compareUTF16(a, b string) int {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

// writeString writes s as a JSON string with RFC 8785 §3.2.2.2 escaping: only the quote, the backslash
// and control characters are escaped, controls with their short forms where JSON has one.
func writeString(out *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	out.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, string(utf8.RuneError)) {
		switch {
		case r == '"':
			out.WriteString(`\"`)
		case r == '\\':
			out.WriteString(`\\`)
		case r == '\b':
			out.WriteString(`\b`)
		case r == '\t':
			out.WriteString(`\t`)
		case r == '\n':
			out.WriteString(`\n`)
		case r == '\f':
			out.WriteString(`\f`)
		case r == '\r':
			out.WriteString(`\r`)
		case r < 0x20:
			out.WriteString(`\u00`)
			out.WriteByte(hex[r>>4])
			out.WriteByte(hex[r&0xf])
		default:
			out.WriteRune(r)
		}
	}
	out.WriteByte('"')
}
