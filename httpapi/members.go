package httpapi

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"

	passkey "github.com/passkey-server/passkey-server"
)

// maxMemberProblems bounds the problems checkMembers lists, so that a body of a thousand unknown
// members gets a short answer.
const maxMemberProblems = 10

var (
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkMembers walks a body that decoded into a value of type t and lists the member names Go's decoder
// would have accepted silently: a name given twice in one object (the decoder keeps the last), a name
// that matches a field only in another letter case (the decoder accepts "User_ID" for "user_id"), and,
// when strict, a name that matches no field at all. Members of types that decode themselves
// (json.RawMessage, such as transaction_data, and json.Unmarshaler values) are left to their owners;
// objects without a fixed shape (maps, any) are checked for duplicates only. body must already have
// decoded into t without error.
func checkMembers(body []byte, t reflect.Type, strict bool) passkey.Problems {
	w := memberWalker{dec: json.NewDecoder(bytes.NewReader(body)), strict: strict}
	if err := w.value(t, ""); err != nil && len(w.problems) == 0 {
		w.problems.Add("the body is not valid JSON") // unreachable: the body decoded before
	}
	return w.problems
}

type memberWalker struct {
	dec      *json.Decoder
	strict   bool
	problems passkey.Problems
}

// errWalkDone stops a walk once enough problems are listed.
var errWalkDone = errors.New("enough problems")

func (w *memberWalker) add(format string, args ...any) error {
	if len(w.problems) == maxMemberProblems {
		w.problems.Add("further problems are not listed")
		return errWalkDone
	}
	w.problems.Add(format, args...)
	return nil
}

// value walks the next JSON value, which decodes into t (nil: a value of no fixed shape).
func (w *memberWalker) value(t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t == rawMessageType || reflect.PointerTo(t).Implements(unmarshalerType) ||
		reflect.PointerTo(t).Implements(textType)) {
		var skip json.RawMessage
		return w.dec.Decode(&skip)
	}
	if t != nil && t.Kind() == reflect.Interface {
		t = nil
	}
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return w.object(t, path)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := w.dec.Token()
		return err
	}
	return nil
}

// object walks the members of an object whose '{' has been read.
func (w *memberWalker) object(t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	switch {
	case t != nil && t.Kind() == reflect.Struct:
		fields = jsonFields(t)
	case t != nil && t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	seen := map[string]bool{}
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		name := tok.(string)
		at := memberPath(path, name)
		if seen[name] {
			if err := w.add("%s appears more than once", at); err != nil {
				return err
			}
		}
		seen[name] = true
		if fields == nil {
			if err := w.value(elem, at); err != nil {
				return err
			}
			continue
		}
		ft, known := fields[name]
		if !known {
			if canonical, ok := foldedField(fields, name); ok {
				if err := w.add("%s must be written %s (member names are case-sensitive)", at, memberPath(path, canonical)); err != nil {
					return err
				}
				ft, known = fields[canonical], true
			} else if w.strict {
				if err := w.add("%s is not a known member", at); err != nil {
					return err
				}
			}
		}
		if !known {
			var skip json.RawMessage // ignored, as the decoder ignores it
			if err := w.dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if err := w.value(ft, at); err != nil {
			return err
		}
	}
	_, err := w.dec.Token()
	return err
}

// foldedField returns the field whose name equals name in another letter case, as Go's decoder would
// match it (Unicode simple case folding).
func foldedField(fields map[string]reflect.Type, name string) (string, bool) {
	for f := range fields {
		if strings.EqualFold(f, name) {
			return f, true
		}
	}
	return "", false
}

var plainName = regexp.MustCompile(`^[A-Za-z0-9_$@-]{1,64}$`)

// memberPath names a member for details: path.name, with a name that is not plain quoted and
// shortened, so that details stay short, printable and storable (no NUL reaches the audit log).
func memberPath(path, name string) string {
	if !plainName.MatchString(name) {
		if len(name) > 64 {
			name = strings.ToValidUTF8(name[:64], "") + "…"
		}
		name = fmt.Sprintf("%q", name)
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields returns the member names Go's decoder fills in a struct, with their types: exported
// fields by their json tag name or Go name, "-" left out, untagged embedded structs promoted.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if tag == "-" {
			continue
		}
		ft := f.Type
		if f.Anonymous && name == "" {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for n, typ := range jsonFields(ft) {
					if _, taken := fields[n]; !taken {
						fields[n] = typ
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	fieldCache.Store(t, fields)
	return fields
}
