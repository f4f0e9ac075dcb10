package credentials

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	passkey "github.com/passkey-server/passkey-server"
)

// MaxPRFSaltBytes bounds each PRF salt (WebAuthn §10.1.4 sets no bound: the client hashes any
// BufferSource). Salts are usually 32 bytes; a bound keeps options small.
const MaxPRFSaltBytes = 256

// ExtensionInputs are the extension inputs a caller may add to a ceremony's options (WebAuthn §9).
// Only the pseudo-random function extension is taken from callers; credProps and the PRF
// availability probe are asked for by every registration.
type ExtensionInputs struct {
	// PRF is the input of the pseudo-random function extension (WebAuthn §10.1.4), nil when absent.
	PRF *PRFInputs
}

// PRFInputs is AuthenticationExtensionsPRFInputs (WebAuthn §10.1.4).
type PRFInputs struct {
	// Eval holds the salts to evaluate, nil when absent.
	Eval *PRFValues
	// EvalByCredential maps base64url credential ids (each one of the login's allowCredentials) to
	// their salts; assertions only.
	EvalByCredential map[string]PRFValues
}

// PRFValues is AuthenticationExtensionsPRFValues: a required first salt and an optional second.
// As outputs (PRFResults.Results) they are the PRF's results.
type PRFValues struct {
	First  []byte
	Second []byte
}

// ExtensionResults are the client extension outputs (WebAuthn §5.9) a finalize hands back to its
// caller: only those of extensions the ceremony asked for. They are never stored or logged.
type ExtensionResults struct {
	// PRF is the pseudo-random function's output, nil when the client sent none.
	PRF *PRFResults `json:"prf,omitempty"`
}

// PRFResults is AuthenticationExtensionsPRFOutputsJSON (WebAuthn §10.1.4): whether the credential
// has a PRF (registration) and the results for the salts (base64url).
type PRFResults struct {
	Enabled *bool           `json:"enabled,omitempty"`
	Results *PRFResultsJSON `json:"results,omitempty"`
}

// PRFResultsJSON is AuthenticationExtensionsPRFValuesJSON: the PRF's results, base64url.
type PRFResultsJSON struct {
	First  string `json:"first"`
	Second string `json:"second,omitempty"`
}

// ParseExtensionInputs decodes a request's "extensions" member (field names the member in problems)
// for a registration (assertion false) or a login. It is strict, unlike the rest of a request body:
// an extension input the server would silently drop, a member in another letter case or of the wrong
// type, or a salt that is not base64url of 1 to MaxPRFSaltBytes bytes is a problem, because a caller
// that believes it asked for a PRF evaluation must not get options without one. evalByCredential's
// keys are checked against the allowed credentials later (checkEvalByCredential). Problems wrap
// passkey.ErrInvalidRequest.
func ParseExtensionInputs(raw json.RawMessage, field string, assertion bool) (ExtensionInputs, error) {
	var p passkey.Problems
	in := parseExtensionInputs(&p, raw, field, assertion)
	return in, p.Err(passkey.ErrInvalidRequest)
}

func parseExtensionInputs(p *passkey.Problems, raw json.RawMessage, field string, assertion bool) ExtensionInputs {
	var in ExtensionInputs
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return in
	}
	members, ok := jsonObject(p, raw, field)
	if !ok {
		return in
	}
	for _, name := range sortedKeys(members) {
		if name != protocol.ExtensionPRF {
			p.Add("%s.%s is not an extension this server accepts (only prf)", field, name)
			continue
		}
		in.PRF = parsePRFInputs(p, members[name], field+".prf", assertion)
	}
	return in
}

func parsePRFInputs(p *passkey.Problems, raw json.RawMessage, field string, assertion bool) *PRFInputs {
	members, ok := jsonObject(p, raw, field)
	if !ok {
		return nil
	}
	prf := &PRFInputs{}
	for _, name := range sortedKeys(members) {
		switch name {
		case "eval":
			v := parsePRFValues(p, members[name], field+".eval")
			prf.Eval = &v
		case "evalByCredential":
			if !assertion {
				p.Add("%s.evalByCredential is only for logins (WebAuthn §10.1.4)", field)
				continue
			}
			byCred, ok := jsonObject(p, members[name], field+".evalByCredential")
			if !ok {
				continue
			}
			prf.EvalByCredential = make(map[string]PRFValues, len(byCred))
			for _, id := range sortedKeys(byCred) {
				at := fmt.Sprintf("%s.evalByCredential[%q]", field, id)
				if _, err := decodeID(id); err != nil || id == "" {
					p.Add("%s: the key must be a base64url credential id", at)
					continue
				}
				prf.EvalByCredential[strings.TrimRight(id, "=")] = parsePRFValues(p, byCred[id], at)
			}
		default:
			p.Add("%s.%s is not a member of the prf extension (eval, evalByCredential)", field, name)
		}
	}
	return prf
}

func parsePRFValues(p *passkey.Problems, raw json.RawMessage, field string) PRFValues {
	members, ok := jsonObject(p, raw, field)
	if !ok {
		return PRFValues{}
	}
	var v PRFValues
	if _, ok := members["first"]; !ok {
		p.Add("%s.first is a required field", field)
	}
	for _, name := range sortedKeys(members) {
		switch name {
		case "first":
			v.First = parseSalt(p, members[name], field+".first")
		case "second":
			v.Second = parseSalt(p, members[name], field+".second")
		default:
			p.Add("%s.%s is not a member of PRF values (first, second)", field, name)
		}
	}
	return v
}

func parseSalt(p *passkey.Problems, raw json.RawMessage, field string) []byte {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.Add("%s must be a base64url string", field)
		return nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimRight(s, "="))
	switch {
	case err != nil || strings.ContainsAny(s, "\r\n"):
		p.Add("%s must be base64url", field)
	case len(b) == 0 || len(b) > MaxPRFSaltBytes:
		p.Add("%s must be 1 to %d bytes", field, MaxPRFSaltBytes)
	default:
		return b
	}
	return nil
}

// jsonObject decodes raw as a JSON object whose member names are unique.
func jsonObject(p *passkey.Problems, raw json.RawMessage, field string) (map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		p.Add("%s must be an object", field)
		return nil, false
	}
	members := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			p.Add("%s must be an object", field)
			return nil, false
		}
		name := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			p.Add("%s must be an object", field)
			return nil, false
		}
		if _, dup := members[name]; dup {
			p.Add("%s.%s appears more than once", field, name)
		}
		members[name] = v
	}
	if _, err := dec.Token(); err != nil && !errors.Is(err, io.EOF) {
		p.Add("%s must be an object", field)
		return nil, false
	}
	return members, true
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkEvalByCredential adds a problem for every evalByCredential key that is not among the
// credentials of allowCredentials (WebAuthn §10.1.4: the client refuses such inputs). A discoverable
// login has none, so evalByCredential is refused there.
func (in ExtensionInputs) checkEvalByCredential(allowed []protocol.CredentialDescriptor) error {
	if in.PRF == nil || len(in.PRF.EvalByCredential) == 0 {
		return nil
	}
	var p passkey.Problems
	if len(allowed) == 0 {
		p.Add("extensions.prf.evalByCredential needs a login that names its user (allowCredentials)")
		return p.Err(passkey.ErrInvalidRequest)
	}
	for _, id := range sortedKeysOf(in.PRF.EvalByCredential) {
		if !slices.ContainsFunc(allowed, func(d protocol.CredentialDescriptor) bool { return encodeID(d.CredentialID) == id }) {
			p.Add("extensions.prf.evalByCredential[%q] is not one of the credentials this login allows", id)
		}
	}
	return p.Err(passkey.ErrInvalidRequest)
}

func sortedKeysOf(m map[string]PRFValues) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (v PRFValues) protocol() protocol.PRFValues {
	return protocol.PRFValues{First: v.First, Second: v.Second}
}

// registrationExtensions are the extension options of every registration (WebAuthn §10.1.3,
// §10.1.4): credProps, so that the credential records whether it is discoverable, and the PRF
// availability probe (with the caller's salts when given), so that it records prf_enabled.
func (in ExtensionInputs) registrationExtensions() webauthn.RegistrationOption {
	opts := []webauthn.ExtensionOption{webauthn.WithExtensionCredProps(), webauthn.WithExtensionPRFSupport()}
	if in.PRF != nil && in.PRF.Eval != nil {
		opts = append(opts, webauthn.WithExtensionPRF(in.PRF.Eval.protocol()))
	}
	return webauthn.WithExtensions(opts...)
}

// assertionExtensions are the extension options of a login: the caller's PRF inputs, if any.
func (in ExtensionInputs) assertionExtensions() []webauthn.LoginOption {
	if in.PRF == nil {
		return nil
	}
	opts := []webauthn.ExtensionOption{webauthn.WithExtensionPRFSupport()}
	if in.PRF.Eval != nil {
		opts = append(opts, webauthn.WithExtensionPRF(in.PRF.Eval.protocol()))
	}
	if len(in.PRF.EvalByCredential) > 0 {
		byCred := make(map[string]protocol.PRFValues, len(in.PRF.EvalByCredential))
		for id, v := range in.PRF.EvalByCredential {
			byCred[id] = v.protocol()
		}
		opts = append(opts, webauthn.WithExtensionPRFByCredential(byCred, nil))
	}
	return []webauthn.LoginOption{webauthn.WithAssertionExtensions(opts...)}
}

// extensionResults picks the client extension outputs a finalize hands back: those of extensions
// the session asked for (an unsolicited output the tenant's policy ignores is not passed on).
func extensionResults(outputs protocol.AuthenticationExtensionsClientOutputs, session protocol.SessionExtensions) *ExtensionResults {
	if outputs.PRF == nil || !slices.Contains(session.Requested, protocol.ExtensionPRF) {
		return nil
	}
	prf := &PRFResults{Enabled: outputs.PRF.Enabled}
	if r := outputs.PRF.Results; r != nil && len(r.First) > 0 {
		prf.Results = &PRFResultsJSON{First: base64.RawURLEncoding.EncodeToString(r.First)}
		if len(r.Second) > 0 {
			prf.Results.Second = base64.RawURLEncoding.EncodeToString(r.Second)
		}
	}
	if prf.Enabled == nil && prf.Results == nil {
		return nil
	}
	return &ExtensionResults{PRF: prf}
}
