package credentials

import (
	"encoding/json"
	"errors"
	"testing"

	passkey "github.com/passkey-server/passkey-server"
)

// FuzzParseExtensionInputs checks the strict decoding of a request's extensions: it never panics,
// every failure is an invalid_request, and accepted inputs hold only salts of 1 to MaxPRFSaltBytes
// bytes, with evalByCredential only on assertions.
func FuzzParseExtensionInputs(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `1`, `{"prf":{}}`, `{"prf":{"eval":{"first":"AAAA"}}}`,
		`{"prf":{"eval":{"first":"AAAA","second":"AQ"}}}`, `{"prf":{"eval":{"first":""}}}`,
		`{"prf":{"evalByCredential":{"AAAA":{"first":"AAAA"}}}}`, `{"prf":{"evalByCredential":{"a+b":{"first":"AAAA"}}}}`,
		`{"PRF":{}}`, `{"prf":{},"prf":{}}`, `{"credProps":true}`, `{"prf":{"eval":{"first":"AAAA","x":1}}}`,
		`{"prf":{"eval":null}}`, `{"prf":{"eval":{"first":7}}}`, `{"prf":{"eval":{"first":"AA==\n"}}}`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, assertion bool) {
		if !json.Valid(raw) && len(raw) > 0 {
			return // the transport refuses bodies that are not JSON before this runs
		}
		in, err := ParseExtensionInputs(raw, "extensions", assertion)
		if err != nil {
			if !errors.Is(err, passkey.ErrInvalidRequest) {
				t.Fatalf("error %v is no invalid_request", err)
			}
			return
		}
		if in.PRF == nil {
			return
		}
		check := func(v PRFValues) {
			if len(v.First) == 0 || len(v.First) > MaxPRFSaltBytes || len(v.Second) > MaxPRFSaltBytes {
				t.Fatalf("accepted salts %v", v)
			}
		}
		if in.PRF.Eval != nil {
			check(*in.PRF.Eval)
		}
		if len(in.PRF.EvalByCredential) > 0 && !assertion {
			t.Fatal("evalByCredential accepted on a registration")
		}
		for id, v := range in.PRF.EvalByCredential {
			if _, err := decodeID(id); err != nil || id == "" {
				t.Fatalf("accepted key %q", id)
			}
			check(v)
		}
	})
}
