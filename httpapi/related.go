package httpapi

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// relatedOriginsCacheControl lets browsers and proxies keep a tenant's related-origins document for
// five minutes: a client fetches it during a ceremony from a related origin (WebAuthn §5.11.1), and a
// config change reaches them within that time.
const relatedOriginsCacheControl = "public, max-age=300"

// RelatedOriginsDocument is the WebAuthn well-known document (WebAuthn §5.11.1): the origins outside
// the RP ID that may use it.
type RelatedOriginsDocument struct {
	Origins []string `json:"origins"`
}

// relatedOrigins serves the tenant's webauthn.related_origins as the document a client fetches from
// https://{rp_id}/.well-known/webauthn; the tenant serves it there by a redirect or a proxy to this
// route (README, "Related origins"). A tenant without related origins answers an empty list, which
// lets no other origin in.
func (s *server) relatedOrigins(c *fiber.Ctx) error {
	doc := RelatedOriginsDocument{Origins: snapshotOf(c).Config.WebAuthn.RelatedOrigins}
	if doc.Origins == nil {
		doc.Origins = []string{}
	}
	c.Set(fiber.HeaderCacheControl, relatedOriginsCacheControl)
	return c.JSON(doc)
}

// passkeysJS is the browser helper (js/passkeys.js; README, "Browser helper").
//
//go:embed js/passkeys.js
var passkeysJS []byte

// browserHelper serves the browser helper. A page loads it as a module script from the API's origin,
// which is a cross-origin request in CORS mode, so it is answered with a literal "*": it is the same
// public file for everyone and no credentials are involved.
func browserHelper(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	c.Set(fiber.HeaderAccessControlAllowOrigin, "*")
	return c.Send(passkeysJS)
}
