package transactions_test

import (
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
	}
	for in, want := range cases {
		got, err := transactions.Canonicalize([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("Canonicalize(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `{"a":}`, `[1,]`, `1 2`, strings.Repeat("[", 70) + strings.Repeat("]", 70)} {
		if _, err := transactions.Canonicalize([]byte(bad)); err == nil {
			t.Errorf("Canonicalize(%s) accepted", bad)
		}
	}
}
