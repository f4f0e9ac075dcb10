package tenant

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"golang.org/x/net/publicsuffix"

	passkey "github.com/passkey-server/passkey-server"
)

// MaxRelatedOrigins bounds the length of webauthn.related_origins. A client reads origins only until it
// has seen protocol.MaximumRelatedOriginLabels distinct labels (WebAuthn §5.11.1), so a longer list can
// only hold more origins of the same few registrable domains; 100 is far beyond any real deployment and
// keeps the document (and the relying party's origin list) small.
const MaxRelatedOrigins = 100

// RelatedOriginLabel is the label a client counts against the related-origins budget for a web origin
// (WebAuthn §5.11.1): the first label of the origin's registrable domain (its effective TLD plus one,
// read from the public-suffix list), so https://example.co.uk and https://example.de share "example".
// A host that is a public suffix itself has no registrable domain, and an error is returned.
func RelatedOriginLabel(origin string) (string, error) {
	u, err := url.Parse(origin)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("%q is not an origin", origin)
	}
	domain, err := publicsuffix.EffectiveTLDPlusOne(strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")))
	if err != nil {
		return "", fmt.Errorf("%q has no registrable domain", origin)
	}
	label, _, _ := strings.Cut(domain, ".")
	return label, nil
}

// IgnoredRelatedOrigins returns the origins of list that a client would skip: walking the list in
// order, an origin whose label is new once protocol.MaximumRelatedOriginLabels labels have been seen
// (WebAuthn §5.11.1, "Validating Related Origins"). Origins without a label are left to the caller.
func IgnoredRelatedOrigins(list []string) []string {
	seen := map[string]bool{}
	var ignored []string
	for _, o := range list {
		label, err := RelatedOriginLabel(o)
		if err != nil {
			continue
		}
		if !seen[label] && len(seen) >= protocol.MaximumRelatedOriginLabels {
			ignored = append(ignored, o)
			continue
		}
		seen[label] = true
	}
	return ignored
}

// validateRelatedOrigins checks webauthn.related_origins: each an https origin without a path (a client
// fetches the document over https and compares origins, WebAuthn §5.11.1) with a registrable domain,
// listed once, and all of them within the client's label budget. Over budget, the problem names the
// origins a client would ignore.
func (p *problems) validateRelatedOrigins(list []string) {
	const field = "webauthn.related_origins"
	if len(list) > MaxRelatedOrigins {
		p.Add("%s cannot have more than %d entries", field, MaxRelatedOrigins)
		return
	}
	seen := map[string]bool{}
	valid := true
	for _, o := range list {
		if why := relatedOriginProblem(o); why != "" {
			p.Add("%s: %q %s", field, o, why)
			valid = false
			continue
		}
		if seen[o] {
			p.Add("%s: %q is listed more than once", field, o)
			valid = false
		}
		seen[o] = true
	}
	if !valid {
		return
	}
	if ignored := IgnoredRelatedOrigins(list); len(ignored) > 0 {
		p.Add("%s: clients read at most %d distinct registrable domain labels (WebAuthn §5.11.1), so these origins would be ignored: %s",
			field, protocol.MaximumRelatedOriginLabels, strings.Join(ignored, ", "))
	}
}

// relatedOriginProblem returns "" when o can be a related origin, else why not.
func relatedOriginProblem(o string) string {
	if !passkey.StorableText(o) {
		return "must be valid UTF-8 without NUL characters"
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "is not an origin such as https://shop.example.de"
	}
	if u.Scheme != "https" {
		return "must use https"
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") {
		return "must not have a path, query, fragment or user info"
	}
	if u.Hostname() != strings.ToLower(u.Hostname()) {
		return "must be written in lower case"
	}
	if net.ParseIP(strings.Trim(u.Hostname(), "[]")) != nil {
		return "must have a domain name, not an IP address"
	}
	if _, err := RelatedOriginLabel(o); err != nil {
		return "has no registrable domain (a public suffix or an IP address cannot be a related origin)"
	}
	return ""
}
