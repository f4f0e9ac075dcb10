package credentials

import (
	"bytes"
	_ "embed" // for aaguid.json
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/uuid"
)

// ErrInvalidAAGUIDTable is wrapped by every error LoadAAGUIDTable returns for a file that is not a valid
// AAGUID table; the message names the offending key.
var ErrInvalidAAGUIDTable = errors.New("invalid AAGUID table")

// Authenticator is the human-readable identity of an authenticator model: its product name ("iCloud
// Keychain (Managed)", "Google Password Manager", "1Password") and optional light- and dark-theme icons,
// usually data:image/svg+xml;base64 URIs. New passkeys take Name as their initial name.
type Authenticator struct {
	Name      string `json:"name"`
	IconLight string `json:"icon_light,omitempty"`
	IconDark  string `json:"icon_dark,omitempty"`
}

// AAGUIDTable maps an authenticator's AAGUID (WebAuthn §6.5.1, attested credential data) to its
// Authenticator. It is immutable once loaded and safe for concurrent use. A nil *AAGUIDTable is valid and
// knows no authenticators.
type AAGUIDTable struct {
	entries map[uuid.UUID]Authenticator
}

// embeddedAAGUIDs is the default table: the AAGUIDs and names of aaguid.json from the community-maintained
// repository github.com/passkeydeveloper/passkey-authenticator-aaguids (commit 05ab142), without icons.
//
//go:embed aaguid.json
var embeddedAAGUIDs []byte

var defaultAAGUIDTable = sync.OnceValue(func() *AAGUIDTable {
	t, err := LoadAAGUIDTable(bytes.NewReader(embeddedAAGUIDs))
	if err != nil {
		// The embedded file is covered by TestAAGUIDDefaultTable; reaching this is a build defect.
		panic(fmt.Sprintf("credentials: embedded aaguid.json: %v", err))
	}
	return t
})

// DefaultAAGUIDTable returns the table built into the binary, parsed once on first use. Its data is the
// community-maintained list of passkey providers at github.com/passkeydeveloper/passkey-authenticator-aaguids
// (names only, no icons; hardware keys listed only in the FIDO Metadata Service are not included). Operators
// who want a newer or larger list, or icons, point PASSKEY_AAGUID_FILE at a file in the same format, such as
// that repository's aaguid.json or combined_aaguid.json; it replaces this table entirely.
func DefaultAAGUIDTable() *AAGUIDTable { return defaultAAGUIDTable() }

// LoadAAGUIDTable reads a table in the format of the passkey-authenticator-aaguids repository: one JSON
// object whose keys are AAGUIDs in canonical 8-4-4-4-12 form (any letter case) and whose values are objects
// with "name" and optional "icon_light" and "icon_dark"; other fields are ignored. It rejects, naming the key,
// a key that is not such an AAGUID, the all-zero AAGUID (which stands for "no model information" and must stay
// unnamed), the same AAGUID listed twice, and an entry whose name is empty or longer than a credential name
// may be. Every such error wraps ErrInvalidAAGUIDTable.
func LoadAAGUIDTable(r io.Reader) (*AAGUIDTable, error) {
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err == io.EOF {
		return nil, fmt.Errorf("%w: the file is empty", ErrInvalidAAGUIDTable)
	} else if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidAAGUIDTable, err)
	} else if tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: top level must be a JSON object", ErrInvalidAAGUIDTable)
	}
	t := &AAGUIDTable{entries: make(map[uuid.UUID]Authenticator)}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidAAGUIDTable, err)
		}
		key, _ := tok.(string) // inside an object, json.Decoder only yields string keys
		var a Authenticator
		if err := dec.Decode(&a); err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) {
				return nil, fmt.Errorf("%w: key %q: entry must be an object with a string \"name\"", ErrInvalidAAGUIDTable, key)
			}
			return nil, fmt.Errorf("%w: key %q: %v", ErrInvalidAAGUIDTable, key, err)
		}
		id, err := uuid.Parse(key)
		// uuid.Parse also accepts urn:uuid:, braced and unhyphenated forms; require the canonical one so
		// that a table reads the same to people and to tools such as grep.
		if err != nil || len(key) != 36 {
			return nil, fmt.Errorf("%w: key %q is not an AAGUID in 8-4-4-4-12 form", ErrInvalidAAGUIDTable, key)
		}
		if id == uuid.Nil {
			return nil, fmt.Errorf("%w: key %q: the zero AAGUID cannot be named", ErrInvalidAAGUIDTable, key)
		}
		if _, dup := t.entries[id]; dup {
			return nil, fmt.Errorf("%w: key %q: AAGUID listed more than once", ErrInvalidAAGUIDTable, key)
		}
		if strings.TrimSpace(a.Name) == "" {
			return nil, fmt.Errorf("%w: key %q: name is empty", ErrInvalidAAGUIDTable, key)
		}
		if utf8.RuneCountInString(a.Name) > maxCredentialNameRunes {
			return nil, fmt.Errorf("%w: key %q: name is longer than %d characters", ErrInvalidAAGUIDTable, key, maxCredentialNameRunes)
		}
		t.entries[id] = a
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidAAGUIDTable, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: unexpected data after the top-level object", ErrInvalidAAGUIDTable)
	}
	return t, nil
}

// Lookup returns the authenticator model with the given AAGUID. It reports false for an AAGUID the table
// does not list, for the zero AAGUID (sent by authenticators that do not reveal their model, and by Windows
// under attestation "none"), and on a nil table.
func (t *AAGUIDTable) Lookup(aaguid uuid.UUID) (Authenticator, bool) {
	if t == nil || aaguid == uuid.Nil {
		return Authenticator{}, false
	}
	a, ok := t.entries[aaguid]
	return a, ok
}

// Len returns the number of AAGUIDs in the table, zero for a nil table, for example for a startup log line.
func (t *AAGUIDTable) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}
