package passkey

import (
	"net/url"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// StorableText reports whether s can be stored as text by every database the service runs on: valid
// UTF-8 without NUL characters (PostgreSQL rejects NUL in text and jsonb). Refusing invalid UTF-8 also
// keeps two different inputs from collapsing into one U+FFFD string.
func StorableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// maxIconURL bounds an icon URL (user or relying party icon).
const maxIconURL = 2048

// IconURL reports whether s is an acceptable icon: an absolute http or https URL, or a data: URL of an
// image, of at most 2,048 bytes of storable text. Other schemes (javascript:, file:) are refused, as
// applications may put the icon into a page.
func IconURL(s string) bool {
	if len(s) > maxIconURL || !StorableText(s) {
		return false
	}
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u.Host != ""
	case "data":
		return strings.HasPrefix(strings.ToLower(u.Opaque), "image/")
	}
	return false
}

// UnpairedSurrogate returns the byte offset of the first \u escape in the JSON text data that names a
// UTF-16 surrogate which is not a high surrogate directly followed by a low one (such as "\ud800"), or
// -1 when there is none. A JSON decoder turns such an escape into U+FFFD, so two different strings
// (two user ids, two transaction texts) would decode to one; RFC 8259 §8.2 leaves their meaning open
// and I-JSON (RFC 7493 §2.1) forbids them, so every decoded body refuses them. A backslash occurs in
// JSON only inside strings, so the scan needs no tokenizer.
func UnpairedSurrogate(data []byte) int {
	escape := func(i int) (rune, bool) { // the code unit of a \uXXXX escape at data[i]
		if i+6 > len(data) || data[i] != '\\' || data[i+1] != 'u' {
			return 0, false
		}
		var r rune
		for _, c := range data[i+2 : i+6] {
			switch {
			case '0' <= c && c <= '9':
				r = r<<4 | rune(c-'0')
			case 'a' <= c && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			case 'A' <= c && c <= 'F':
				r = r<<4 | rune(c-'A'+10)
			default:
				return 0, false
			}
		}
		return r, true
	}
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		r, ok := escape(i)
		if !ok {
			i++ // \\, \" and the like: skip the escaped character
			continue
		}
		switch {
		case utf16.IsSurrogate(r) && r < 0xdc00: // high: a low one must follow
			if low, ok := escape(i + 6); !ok || low < 0xdc00 || low > 0xdfff {
				return i
			}
			i += 11
		case utf16.IsSurrogate(r):
			return i
		default:
			i += 5
		}
	}
	return -1
}
