package credentials

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestAAGUIDDefaultTable(t *testing.T) {
	table := DefaultAAGUIDTable()
	if table != DefaultAAGUIDTable() {
		t.Error("DefaultAAGUIDTable parsed the embedded file more than once")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(embeddedAAGUIDs, &raw); err != nil {
		t.Fatal(err)
	}
	if table.Len() != len(raw) || table.Len() < 20 {
		t.Fatalf("Len() = %d, file has %d entries", table.Len(), len(raw))
	}
	known := []struct{ aaguid, name string }{
		{"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4", "Google Password Manager"},
		{"adce0002-35bc-c60a-648b-0b25f1f05503", "Chrome on Mac"},
		{"08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"},
		{"9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "Windows Hello"},
		{"6028b017-b1d4-4c02-b4b3-afcdafc96bb2", "Windows Hello"},
		{"dd4ec289-e01d-41c9-bb89-70fa845d4bf2", "iCloud Keychain (Managed)"},
		{"bada5566-a7aa-401f-bd96-45619a55120d", "1Password"},
		{"d548826e-79b4-db40-a3d8-11116f7e8349", "Bitwarden"},
		{"53414d53-554e-4700-0000-000000000000", "Samsung Pass"},
		{"d3452668-01fd-4c12-926c-83a4204853aa", "Microsoft Password Manager"},
	}
	for _, k := range known {
		a, ok := table.Lookup(uuid.MustParse(k.aaguid))
		if !ok || a.Name != k.name {
			t.Errorf("Lookup(%s) = %q, %v; want %q", k.aaguid, a.Name, ok, k.name)
		}
	}
}

func TestAAGUIDUnknown(t *testing.T) {
	table := DefaultAAGUIDTable()
	for _, id := range []uuid.UUID{uuid.Nil, uuid.MustParse("01234567-89ab-cdef-0123-456789abcdef")} {
		if a, ok := table.Lookup(id); ok {
			t.Errorf("Lookup(%s) = %+v, want unknown", id, a)
		}
	}
	var none *AAGUIDTable
	if _, ok := none.Lookup(uuid.MustParse("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4")); ok || none.Len() != 0 {
		t.Error("a nil table knows an authenticator")
	}
}

func TestAAGUIDReplacementFile(t *testing.T) {
	const file = `{
		"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": {"name": "Renamed GPM"},
		"CB69481E-8FF7-4039-93EC-0A2729A154A8": {
			"name": "YubiKey 5 Series",
			"icon_light": "data:image/svg+xml;base64,PHN2Zy8+",
			"icon_dark": "data:image/svg+xml;base64,PHN2Zz4=",
			"future_field": [1, 2]
		}
	}`
	table, err := LoadAAGUIDTable(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if table.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", table.Len())
	}
	a, ok := table.Lookup(uuid.MustParse("cb69481e-8ff7-4039-93ec-0a2729a154a8"))
	want := Authenticator{Name: "YubiKey 5 Series", IconLight: "data:image/svg+xml;base64,PHN2Zy8+", IconDark: "data:image/svg+xml;base64,PHN2Zz4="}
	if !ok || a != want {
		t.Errorf("Lookup = %+v, %v; want %+v", a, ok, want)
	}
	if a, _ := table.Lookup(uuid.MustParse("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4")); a.Name != "Renamed GPM" {
		t.Errorf("replacement did not override the name: %q", a.Name)
	}
	if _, ok := table.Lookup(uuid.MustParse("bada5566-a7aa-401f-bd96-45619a55120d")); ok {
		t.Error("a replacement file is merged with the embedded table, want it to replace it")
	}
	empty, err := LoadAAGUIDTable(strings.NewReader(" {} \n"))
	if err != nil || empty.Len() != 0 {
		t.Errorf("empty object: %v, %d entries", err, empty.Len())
	}
}

func TestAAGUIDBrokenFile(t *testing.T) {
	long := strings.Repeat("x", maxCredentialNameRunes+1)
	tests := []struct{ name, file, mention string }{
		{"empty input", ``, "empty"},
		{"not json", `aaguid,name`, "invalid character"},
		{"array", `[{"name": "x"}]`, "top level"},
		{"null", `null`, "top level"},
		{"truncated", `{"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": {"name": "x"}`, "unexpected EOF"},
		{"trailing data", `{} {}`, "after the top-level object"},
		{"bad key", `{"not-a-uuid": {"name": "x"}}`, `"not-a-uuid"`},
		{"unhyphenated key", `{"ea9b8d664d011d213ce4b6b48cb575d4": {"name": "x"}}`, `"ea9b8d664d011d213ce4b6b48cb575d4"`},
		{"urn key", `{"urn:uuid:ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": {"name": "x"}}`, `"urn:uuid:ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"`},
		{"zero key", `{"00000000-0000-0000-0000-000000000000": {"name": "x"}}`, "zero AAGUID"},
		{"duplicate key", `{"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": {"name": "a"}, "EA9B8D66-4D01-1D21-3CE4-B6B48CB575D4": {"name": "b"}}`, "more than once"},
		{"same key twice", `{"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": {"name": "a"}, "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": {"name": "a"}}`, "more than once"},
		{"value not an object", `{"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google"}`, `"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": entry must be an object`},
		{"name not a string", `{"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": {"name": 7}}`, "entry must be an object"},
		{"no name", `{"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": {"icon_light": "x"}}`, "name is empty"},
		{"blank name", `{"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": {"name": "  "}}`, "name is empty"},
		{"long name", `{"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": {"name": "` + long + `"}}`, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := LoadAAGUIDTable(strings.NewReader(tt.file))
			if err == nil {
				t.Fatalf("loaded %d entries, want an error", table.Len())
			}
			t.Log(err)
			if !errors.Is(err, ErrInvalidAAGUIDTable) || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q, want ErrInvalidAAGUIDTable mentioning %s", err, tt.mention)
			}
		})
	}
}

// The embedded file is data, not code: keep it in the upstream format so that it can be swapped for a newer
// upstream aaguid.json, and free of icons so that the binary stays small.
func TestAAGUIDEmbeddedFileFormat(t *testing.T) {
	dec := json.NewDecoder(bytes.NewReader(embeddedAAGUIDs))
	dec.DisallowUnknownFields()
	var entries map[string]Authenticator
	if err := dec.Decode(&entries); err != nil {
		t.Fatal(err)
	}
	for key, a := range entries {
		if key != strings.ToLower(key) || a.IconLight != "" || a.IconDark != "" {
			t.Errorf("%s: keys are lower case and entries carry names only", key)
		}
	}
}
