package transactions_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/passkey-server/passkey-server/transactions"
)

func TestCanonicalTransactionData(t *testing.T) {
	cases := map[string]string{
		`{"b":1,"a":[true,false,null],"c":{"z":"\u003c\u003e&","y":1e400}}`: `{"a":[true,false,null],"b":1,"c":{"y":1e400,"z":"<>&"}}`,
		`{"€":1,"\u20ac\u0000":2,"a\n":3}`:                                  `{"a\n":3,"€":1,"€\u0000":2}`,
		` [ 12345678901234567890 , -0.0000000000000000001 ] `:               `[12345678901234567890,-0.0000000000000000001]`,
		`"\ud83d\ude00 \u001f"`:                                             `"😀 \u001f"`,
		// RFC 8785 §3.2.3: sorting by UTF-16 code units puts U+1F600 (a surrogate pair) before U+FB01.
		`{"\ufb01":1,"\ud83d\ude00":2}`: `{"😀":2,"ﬁ":1}`,
		// An escaped backslash before "u" is no escape of a surrogate.
		`{"s":"\\ud800","t":"\"\\"}`: `{"s":"\\ud800","t":"\"\\"}`,
	}
	for in, want := range cases {
		got, err := transactions.Canonicalize([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("Canonicalize(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `{"a":}`, `[1,]`, `1 2`, strings.Repeat("[", 70) + strings.Repeat("]", 70),
		// Text with no exact form is refused, never turned into U+FFFD (three inputs, one hash).
		`{"s":"\ud800"}`, `{"s":"\udc00"}`, `{"s":"\ud83dx"}`, `{"s":"\ud83d\u0041"}`, "{\"s\":\"\xff\"}",
	} {
		if _, err := transactions.Canonicalize([]byte(bad)); err == nil {
			t.Errorf("Canonicalize(%s) accepted", bad)
		}
	}
}

// FuzzCanonicalize checks, for any input, that Canonicalize never panics and that what it accepts
// has a canonical form that is valid JSON and canonical itself (canonicalizing it again changes
// nothing), so an application recomputing the hash from the stored data gets the same bytes.
func FuzzCanonicalize(f *testing.F) {
	for _, seed := range []string{
		`{"amount":"100.00","currency":"EUR","to":"DE89 3704 0044 0532 0130 00","big":12345678901234567890}`,
		`{"b":1,"a":[true,false,null],"c":{"z":"\u003c\u003e&","y":1e400}}`,
		`{"\ufb01":1,"\ud83d\ude00":2,"s":"\\ud800"}`,
		`{"a":{"b":[{"c":-0.0e-0}]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := transactions.Canonicalize(data)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Canonicalize(%q) = %q, not valid JSON", data, out)
		}
		again, err := transactions.Canonicalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", data, out, again, err)
		}
	})
}
