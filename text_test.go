package passkey_test

import (
	"testing"

	passkey "github.com/passkey-server/passkey-server"
)

func TestUnpairedSurrogate(t *testing.T) {
	for in, want := range map[string]int{
		`{"a":"x"}`:                  -1,
		`{"a":"\ud83d\ude00"}`:       -1, // a pair (U+1F600)
		`{"a":"\uD83D\uDE00"}`:       -1, // upper-case hex
		`{"a":"\\ud800"}`:            -1, // an escaped backslash, then the text "ud800"
		`{"a":"\u0041\u00e9"}`:       -1,
		`{"a":"\ud800"}`:             6,  // a lone high surrogate
		`{"a":"\udc00"}`:             6,  // a lone low surrogate
		`{"a":"\ud83dx"}`:            6,  // high, then no escape
		`{"a":"\ud83d\u0041"}`:       6,  // high, then no low
		`{"a":"\ud83d\ud83d\ude00"}`: 6,  // two highs
		`{"a":"ok","\udfff":1}`:      11, // in a member name
		`{"a":"\ud83d\ude00\udc00"}`: 18, // a pair, then a lone low
		`["\\\ud800"]`:               4,  // \\ then a lone escape
		`"\ud8`:                      -1, // truncated: the decoder refuses it
	} {
		if got := passkey.UnpairedSurrogate([]byte(in)); got != want {
			t.Errorf("UnpairedSurrogate(%s) = %d, want %d", in, got, want)
		}
	}
}
