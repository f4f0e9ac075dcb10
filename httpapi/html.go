package httpapi

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"html/template"

	"github.com/gofiber/fiber/v2"
)

// web holds the pages the transport serves beside the API: the playground (public port) and the
// admin console (admin port), with the console's stylesheet and its vendored htmx. Everything is in
// the binary; there is no build step.
//
//go:embed web
var web embed.FS

// newNonce returns a fresh random value for a response's Content-Security-Policy: only scripts and
// styles carrying it run, so markup that slipped into a page (a tenant name, a user id) cannot.
func newNonce() string {
	// base64url: a CSP nonce may use its alphabet, and html/template writes it into the page as it is
	// (it escapes the standard alphabet's '+', so the page's nonce would no longer match the header's).
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// pageCSP is the Content-Security-Policy of the HTML pages: nothing from elsewhere, no inline script or
// style without the response's nonce, no framing, forms posting only to this origin.
func pageCSP(nonce string) string {
	return "default-src 'none'; script-src 'nonce-" + nonce + "'; style-src 'self' 'nonce-" + nonce + "'; " +
		"img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}

// renderPage executes a template into an HTML response with the security headers every page has.
func renderPage(c *fiber.Ctx, t *template.Template, name, nonce string, status int, data any) error {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentSecurityPolicy, pageCSP(nonce))
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "same-origin")
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Status(status).Send(buf.Bytes())
}
