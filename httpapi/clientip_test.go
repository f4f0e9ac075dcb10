package httpapi_test

import (
	"io"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/passkey-server/passkey-server/httpapi"
)

func TestClientIP(t *testing.T) {
	// app.Test connects from 0.0.0.0, so trusting 0.0.0.0 makes the test peer a trusted proxy.
	cases := []struct {
		name    string
		trusted []string
		xff     []string // one entry per header line
		want    string
	}{
		{"no proxies: header ignored", nil, []string{"203.0.113.9"}, "0.0.0.0"},
		{"untrusted peer: header ignored", []string{"10.0.0.0/8"}, []string{"203.0.113.9"}, "0.0.0.0"},
		{"trusted peer", []string{"0.0.0.0"}, []string{"203.0.113.9"}, "203.0.113.9"},
		{"spoofed left part is skipped", []string{"0.0.0.0", "10.0.0.0/8"}, []string{"1.2.3.4, 203.0.113.9, 10.1.1.1"}, "203.0.113.9"},
		{"garbage stops the walk", []string{"0.0.0.0"}, []string{"203.0.113.9, nonsense"}, "0.0.0.0"},
		{"ipv6", []string{"0.0.0.0"}, []string{"2001:db8::1"}, "2001:db8::1"},
		// A proxy that adds its own header line: the client's line comes first and must not win.
		{"proxy appends a line", []string{"0.0.0.0"}, []string{"10.0.0.6", "198.51.100.7"}, "198.51.100.7"},
		{"lines and commas", []string{"0.0.0.0", "10.0.0.0/8"}, []string{"1.2.3.4, 203.0.113.9", "10.1.1.1"}, "203.0.113.9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			proxies, err := httpapi.ParseTrustedProxies(c.trusted)
			if err != nil {
				t.Fatal(err)
			}
			app := fiber.New()
			app.Use(proxies.Middleware())
			app.Get("/", func(c *fiber.Ctx) error { return c.SendString(httpapi.ClientIP(c)) })
			req := httptest.NewRequest("GET", "/", nil)
			for _, line := range c.xff {
				req.Header.Add("X-Forwarded-For", line)
			}
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != c.want {
				t.Fatalf("client ip %q, want %q", b, c.want)
			}
		})
	}
	if _, err := httpapi.ParseTrustedProxies([]string{"not-an-ip"}); err == nil {
		t.Fatal("bad proxy accepted")
	}
}
