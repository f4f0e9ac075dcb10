package passkey

import (
	"net/url"
	"strings"
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
