package httpapi

import "testing"

func TestEscapeLinkPath(t *testing.T) {
	for in, want := range map[string]string{
		"/T/credentials":          "/T/credentials",
		"/T/transaction/a%3Eb":    "/T/transaction/a%3Eb", // already escaped: kept
		"/T/transaction/a>b":      "/T/transaction/a%3Eb",
		"/T/transaction/a b<c\"d": "/T/transaction/a%20b%3Cc%22d",
		"/T/transaction/é":        "/T/transaction/%C3%A9",
		"/T/transaction/a,b;c=d":  "/T/transaction/a,b;c=d",
	} {
		if got := escapeLinkPath(in); got != want {
			t.Errorf("escapeLinkPath(%q) = %q, want %q", in, got, want)
		}
	}
}
