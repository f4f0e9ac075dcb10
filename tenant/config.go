package tenant

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/signing"
)

// Config is a tenant's configuration, in the shape of Hanko's admin API
// (docs/hanko-compatibility.md#tenant-config) plus the signing algorithm. Config is validated on every
// save (Validate) and completed with defaults (Normalize) before it is stored.
type Config struct {
	CORS     CORSConfig     `json:"cors"`
	WebAuthn WebAuthnConfig `json:"webauthn"`
	// MFA is the profile of second-factor ceremonies; Normalize fills it with defaults when absent.
	MFA *MFAConfig `json:"mfa,omitempty"`
	// SigningAlgorithm is the JWT algorithm of the tenant's tokens: ES256 (default) or RS256. A change
	// takes effect at the next signing key rotation.
	SigningAlgorithm signing.Algorithm `json:"signing_algorithm,omitempty"`
	// Playground serves the passkey playground at /{tenant_id}/playground on the public port: a page
	// on which anyone can run every ceremony for users whose id starts with "playground:". Off by
	// default; the embedded mode's development tenant has it on.
	Playground bool `json:"playground,omitempty"`
}

// CORSConfig says which browser origins may call the tenant's public routes.
type CORSConfig struct {
	// AllowedOrigins are origins such as https://app.example.com; entries may contain * and ?
	// wildcards, and "*" alone allows any origin.
	AllowedOrigins []string `json:"allowed_origins"`
	// AllowUnsafeWildcard makes "*" reflect the caller's origin (and so allow credentials) instead of
	// answering with a literal "*".
	AllowUnsafeWildcard bool `json:"allow_unsafe_wildcard"`
}

// RelyingParty is the WebAuthn relying party of a tenant.
type RelyingParty struct {
	// ID is the RP ID: a registrable domain suffix of every origin's host, or "localhost".
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	// Icon is kept for compatibility; browsers no longer show it.
	Icon *string `json:"icon,omitempty"`
	// Origins are the exact origins allowed in clientDataJSON.
	Origins []string `json:"origins"`
}

// WebAuthnConfig is the profile of passkey registration, login and transaction ceremonies.
type WebAuthnConfig struct {
	RelyingParty RelyingParty `json:"relying_party"`
	// Timeout is the ceremony timeout in milliseconds; sessions expire after it.
	Timeout                int     `json:"timeout"`
	UserVerification       string  `json:"user_verification"`
	Attachment             *string `json:"attachment,omitempty"`
	AttestationPreference  string  `json:"attestation_preference"`
	ResidentKeyRequirement string  `json:"resident_key_requirement"`
	// AllowSignCountRegression accepts logins whose signature counter did not grow (WebAuthn §6.1.1).
	// Off by default: such a login is refused and the credential marked with a clone warning.
	AllowSignCountRegression bool `json:"allow_sign_count_regression,omitempty"`
	// Signals turns on the answers for the browser's Signal API (credentials/signals.go). Off by
	// default: a browser applies a signal to every passkey of the RP ID, so a tenant that shares its RP
	// ID with another tenant, or with another passkey server (an application moving from Hanko's), would
	// make authenticators drop passkeys that the other one still accepts (README, "Signals").
	Signals bool `json:"signals,omitempty"`
	// RelatedOrigins are origins outside the RP ID that may run ceremonies for it (WebAuthn §5.11,
	// Related Origin Requests): served as the tenant's /.well-known/webauthn document and accepted in
	// clientDataJSON. See related.go for their validation.
	RelatedOrigins []string `json:"related_origins,omitempty"`
	// Hints are the default hints of the tenant's passkey ceremonies (WebAuthn §5.8.7); a request's
	// own hints replace them.
	Hints []string `json:"hints,omitempty"`
	// AttestationPolicy says which authenticators passkeys may come from (nil: mode none).
	AttestationPolicy *AttestationPolicy `json:"attestation_policy,omitempty"`
	// ExtensionOutputs is the policy for client extension outputs (WebAuthn §5.9) of extensions the
	// ceremony did not ask for, in every ceremony of the tenant (MFA too): "ignore" (the default,
	// also when empty) accepts the response and drops them, "refuse" fails the ceremony. See
	// ExtensionOutputPolicies.
	ExtensionOutputs string `json:"extension_outputs,omitempty"`
}

// Policies for unsolicited client extension outputs (WebAuthnConfig.ExtensionOutputs). Ignore is the
// default: a client may add outputs of its own (password managers add credProps), the server acts on
// no output it did not ask for and hands none back, and refusing would lock such users out. Refuse
// is for tenants that want any deviation from what they asked for to fail loudly.
const (
	ExtensionOutputsIgnore = "ignore"
	ExtensionOutputsRefuse = "refuse"
)

// ExtensionOutputPolicies are the values of WebAuthnConfig.ExtensionOutputs.
var ExtensionOutputPolicies = []string{ExtensionOutputsIgnore, ExtensionOutputsRefuse}

// MFAConfig is the profile of second-factor ceremonies.
type MFAConfig struct {
	Timeout                int    `json:"timeout"`
	UserVerification       string `json:"user_verification"`
	Attachment             string `json:"attachment"`
	AttestationPreference  string `json:"attestation_preference"`
	ResidentKeyRequirement string `json:"resident_key_requirement"`
	// Hints are the default hints of second-factor ceremonies (WebAuthn §5.8.7). Absent (a config stored
	// before hints existed, or one that leaves them out) means ["security-key"]; [] means none.
	Hints []string `json:"hints"`
	// AttestationPolicy says which authenticators second factors may come from (nil: mode none).
	AttestationPolicy *AttestationPolicy `json:"attestation_policy,omitempty"`
}

// Timeout bounds in milliseconds. Below ten seconds a person cannot finish a ceremony; above ten
// minutes a stolen challenge stays useful for too long.
const (
	MinTimeout = 10_000
	MaxTimeout = 600_000
	// DefaultTimeout is the ceremony timeout of a config that gives none: five minutes, the lower end
	// of the range WebAuthn recommends when the user is verified (§15.1), and the development tenant's.
	DefaultTimeout = 300_000
)

var (
	userVerifications = []string{"required", "preferred", "discouraged"}
	attachments       = []string{"platform", "cross-platform"}
	attestations      = []string{"none", "indirect", "direct", "enterprise"}
	residentKeys      = []string{"discouraged", "preferred", "required"}
	// Hints are the values of WebAuthn §5.8.7 (PublicKeyCredentialHint).
	Hints = []string{"security-key", "client-device", "hybrid"}
)

// DefaultMFAHints are the hints of an MFA profile that names none: a second factor is usually a
// security key.
var DefaultMFAHints = []string{"security-key"}

// CheckHints adds a problem to p for every value of hints (the field named field) that is not a
// WebAuthn hint or is given twice.
func CheckHints(p *passkey.Problems, field string, hints []string) {
	seen := map[string]bool{}
	for _, h := range hints {
		if !slices.Contains(Hints, h) {
			p.Add("%s: %q is not a hint; hints are one of '%s'", field, h, strings.Join(Hints, " "))
		} else if seen[h] {
			p.Add("%s: %q is listed more than once", field, h)
		}
		seen[h] = true
	}
}

// Normalize fills the defaults of docs/hanko-compatibility.md#tenant-config into empty optional fields:
// user verification "required", attestation "direct", resident key "required", and an MFA profile
// (cross-platform, direct, discouraged, UV preferred, the WebAuthn timeout) when none is given; ES256
// signing. Unlike Hanko, a missing timeout is DefaultTimeout and missing CORS origins are the relying
// party's origins (the pages that run the ceremonies), so a first config names only its relying party;
// a missing value is never reported as a wrong one.
func (c *Config) Normalize() {
	w := &c.WebAuthn
	if w.Timeout == 0 {
		w.Timeout = DefaultTimeout
	}
	if c.CORS.AllowedOrigins == nil {
		c.CORS.AllowedOrigins = append([]string(nil), w.RelyingParty.Origins...)
	}
	if w.UserVerification == "" {
		w.UserVerification = "required"
	}
	if w.AttestationPreference == "" {
		w.AttestationPreference = "direct"
	}
	if w.ResidentKeyRequirement == "" {
		w.ResidentKeyRequirement = "required"
	}
	if w.Attachment != nil && *w.Attachment == "" {
		w.Attachment = nil
	}
	// The MFA profile inherits the WebAuthn timeout only when that one is valid: a wrong
	// webauthn.timeout is reported once, not again as mfa.timeout, which the request did not name.
	inherited := w.Timeout
	if inherited < MinTimeout || inherited > MaxTimeout {
		inherited = DefaultTimeout
	}
	if c.MFA == nil {
		c.MFA = &MFAConfig{Timeout: inherited}
	}
	m := c.MFA
	if m.Timeout == 0 {
		m.Timeout = inherited
	}
	if m.UserVerification == "" {
		m.UserVerification = "preferred"
	}
	if m.Attachment == "" {
		m.Attachment = "cross-platform"
	}
	if m.AttestationPreference == "" {
		m.AttestationPreference = "direct"
	}
	if m.ResidentKeyRequirement == "" {
		m.ResidentKeyRequirement = "discouraged"
	}
	if m.Hints == nil {
		m.Hints = slices.Clone(DefaultMFAHints)
	}
	if c.SigningAlgorithm == "" {
		c.SigningAlgorithm = signing.ES256
	}
	w.AttestationPolicy.normalize()
	m.AttestationPolicy.normalize()
	for i, o := range w.RelyingParty.Origins {
		w.RelyingParty.Origins[i] = strings.TrimRight(strings.TrimSpace(o), "/")
	}
	for i, o := range w.RelatedOrigins {
		w.RelatedOrigins[i] = strings.TrimRight(strings.TrimSpace(o), "/")
	}
}

// Validate checks a normalized config and returns every problem at once, as an *passkey.ValidationError
// that wraps ErrInvalidConfig, or nil.
func (c *Config) Validate() error {
	var p problems
	rp := c.WebAuthn.RelyingParty
	if rp.ID == "" {
		p.add("webauthn.relying_party.id is a required field")
	} else if !validRPID(rp.ID) {
		p.add("webauthn.relying_party.id must be a domain name or localhost, without scheme or port")
	}
	if strings.TrimSpace(rp.DisplayName) == "" {
		p.add("webauthn.relying_party.display_name is a required field")
	}
	p.Text("webauthn.relying_party.display_name", rp.DisplayName)
	if rp.Icon != nil && !passkey.IconURL(*rp.Icon) {
		p.add("webauthn.relying_party.icon must be a valid URL (http, https or a data: image)")
	}
	if len(rp.Origins) == 0 {
		p.add("webauthn.relying_party.origins must have at least 1 entry")
	}
	for _, o := range rp.Origins {
		if err := checkOrigin(o, rp.ID); err != "" {
			p.add(fmt.Sprintf("webauthn.relying_party.origins: %q %s", o, err))
		}
	}
	p.timeout("webauthn.timeout", c.WebAuthn.Timeout)
	p.enum("webauthn.user_verification", c.WebAuthn.UserVerification, userVerifications)
	if c.WebAuthn.Attachment != nil {
		p.enum("webauthn.attachment", *c.WebAuthn.Attachment, attachments)
	}
	p.enum("webauthn.attestation_preference", c.WebAuthn.AttestationPreference, attestations)
	p.enum("webauthn.resident_key_requirement", c.WebAuthn.ResidentKeyRequirement, residentKeys)
	p.validateRelatedOrigins(c.WebAuthn.RelatedOrigins)
	CheckHints(&p.Problems, "webauthn.hints", c.WebAuthn.Hints)
	c.WebAuthn.AttestationPolicy.validate("webauthn.attestation_policy", &p)
	if c.WebAuthn.ExtensionOutputs != "" {
		p.enum("webauthn.extension_outputs", c.WebAuthn.ExtensionOutputs, ExtensionOutputPolicies)
	}
	if m := c.MFA; m != nil {
		CheckHints(&p.Problems, "mfa.hints", m.Hints)
		p.timeout("mfa.timeout", m.Timeout)
		p.enum("mfa.user_verification", m.UserVerification, userVerifications)
		p.enum("mfa.attachment", m.Attachment, attachments)
		p.enum("mfa.attestation_preference", m.AttestationPreference, attestations)
		p.enum("mfa.resident_key_requirement", m.ResidentKeyRequirement, residentKeys)
		m.AttestationPolicy.validate("mfa.attestation_policy", &p)
	}
	if len(c.CORS.AllowedOrigins) == 0 {
		p.add("cors.allowed_origins must have at least 1 entry")
	}
	for _, o := range c.CORS.AllowedOrigins {
		if o == "*" {
			continue
		}
		if !utf8.ValidString(o) || !corsOriginShape(o) || !passkey.StorableText(o) {
			p.add(fmt.Sprintf("cors.allowed_origins: %q must be an origin such as https://app.example.com (http or https, no path; wildcards * and ? allowed) or *", o))
		}
	}
	if !c.SigningAlgorithm.Valid() {
		p.add("signing_algorithm must be one of 'ES256 RS256'")
	}
	return p.Err(ErrInvalidConfig)
}

// corsOriginShape reports whether a CORS entry can match a browser's Origin header: an http or https
// scheme (or a wildcard one, such as *), a host, and no path. Trailing slashes are allowed: the matcher
// ignores them (NewCORSPolicy), as Hanko's does.
func corsOriginShape(o string) bool {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || (scheme != "http" && scheme != "https" && !strings.ContainsAny(scheme, "*?")) {
		return false
	}
	rest = strings.TrimRight(rest, "/")
	return rest != "" && !strings.ContainsAny(rest, "/#")
}

type problems struct{ passkey.Problems }

func (p *problems) add(s string) { p.Add("%s", s) }

func (p *problems) enum(field, v string, allowed []string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	p.Add("%s must be one of '%s'", field, strings.Join(allowed, " "))
}

func (p *problems) timeout(field string, ms int) {
	if ms < MinTimeout || ms > MaxTimeout {
		p.Add("%s must be between %d and %d milliseconds", field, MinTimeout, MaxTimeout)
	}
}

var domainLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validRPID accepts "localhost" and lower-case DNS names with at least two labels. IP addresses are not
// valid RP IDs (WebAuthn §5.1.4.1 requires a valid domain).
func validRPID(id string) bool {
	if id == "localhost" {
		return true
	}
	if len(id) > 253 || net.ParseIP(id) != nil {
		return false
	}
	labels := strings.Split(id, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !domainLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// checkOrigin returns "" when origin may be used with rpID, else why not. Web origins must be
// scheme://host[:port] with no path; the host must be the RP ID or a subdomain of it (WebAuthn §5.1.4.1);
// https is required except on localhost. Android app origins (android:apk-key-hash:...) are accepted as
// they are, since their binding to the RP is checked by Digital Asset Links, not by us.
func checkOrigin(origin, rpID string) string {
	if !passkey.StorableText(origin) {
		return "must be valid UTF-8 without NUL characters"
	}
	if strings.HasPrefix(origin, "android:apk-key-hash:") {
		if len(origin) == len("android:apk-key-hash:") {
			return "has no key hash"
		}
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "is not an origin such as https://login.example.com"
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "must not have a path, query, fragment or user info"
	}
	host := u.Hostname()
	switch u.Scheme {
	case "https":
	case "http":
		if host != "localhost" && !strings.HasSuffix(host, ".localhost") {
			return "must use https (http is allowed only on localhost)"
		}
	default:
		return "must use https"
	}
	if rpID != "" && host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return fmt.Sprintf("is not on the relying party id %q or a subdomain of it", rpID)
	}
	return ""
}
