package credentials

import (
	"bytes"
	"testing"
)

// FuzzDecodeID checks the credential id codec: decodeID never panics, encodeID and decodeID are inverse
// on any bytes, and an id decodeID accepts is the canonical encoding of its bytes, up to the padding
// normalizeID removes. The last property is what makes an id a key: two different strings must never
// name the same credential bytes, or a stored id would stop matching the id an authenticator reports.
func FuzzDecodeID(f *testing.F) {
	for _, s := range []string{
		"", "=", "==", "AA", "AA==", "AAA", "AAA=", "AAAA", "_-_-", "-_8", "A", "A===",
		"AA=A", "AA AA", "+/+/", "KCbVz1oUJ2mzK9YhQH0nHHk0ayOEH2x0gRMvThoIHEI",
		"KCbVz1oUJ2mzK9YhQH0nHHk0ayOEH2x0gRMvThoIHEI=", "\xff\xfe", "é",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Any bytes survive a round trip, so every credential id a stored key can have is encodable.
		raw := []byte(s)
		back, err := decodeID(encodeID(raw))
		if err != nil || !bytes.Equal(back, raw) {
			t.Fatalf("decodeID(encodeID(%x)) = %x, %v", raw, back, err)
		}
		if enc := encodeID(raw); len(raw) > 0 {
			if id, err := checkID(enc); err != nil || id != enc {
				t.Fatalf("checkID(encodeID(%x)) = %q, %v", raw, id, err)
			}
		}

		b, err := decodeID(s)
		if err != nil {
			return
		}
		want, err := checkID(s)
		if len(b) > 0 && err != nil {
			t.Fatalf("decodeID accepts %q but checkID does not: %v", s, err)
		}
		if got := encodeID(b); len(b) > 0 && got != want {
			t.Fatalf("decodeID accepts %q as %x, but that is encoded %q, not %q", s, b, got, want)
		}
	})
}
