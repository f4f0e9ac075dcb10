package httpapi

import (
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// consoleRoute is one console page or form action (under /console, after sign-in).
type consoleRoute struct {
	method, path string
	handle       func(con *console, c *fiber.Ctx) error
}

var consoleRoutes = []consoleRoute{
	{"POST", "/sign-out", (*console).signOut},
	{"GET", "/tenants", (*console).tenants},
	{"POST", "/tenants", (*console).createTenant},
	{"GET", "/tenants/:tenant_id", (*console).tenantPage},
	{"POST", "/tenants/:tenant_id/rename", (*console).renameTenant},
	{"GET", "/tenants/:tenant_id/delete", (*console).confirmDeleteTenant},
	{"POST", "/tenants/:tenant_id/delete", (*console).deleteTenant},
	{"GET", "/tenants/:tenant_id/config", (*console).configPage},
	{"POST", "/tenants/:tenant_id/config", (*console).saveConfig},
	{"GET", "/tenants/:tenant_id/keys", (*console).keysPage},
	{"POST", "/tenants/:tenant_id/keys", (*console).createKey},
	{"POST", "/tenants/:tenant_id/keys/:key_id/revoke", (*console).revokeKey},
	{"GET", "/tenants/:tenant_id/signing-keys", (*console).signingKeysPage},
	{"POST", "/tenants/:tenant_id/signing-keys", (*console).rotateSigningKey},
	{"GET", "/tenants/:tenant_id/users", (*console).usersPage},
	{"GET", "/tenants/:tenant_id/user", (*console).userPage},
	{"POST", "/tenants/:tenant_id/credentials/:credential_id/rename", (*console).renameCredential},
	{"POST", "/tenants/:tenant_id/credentials/:credential_id/delete", (*console).deleteCredential},
	{"GET", "/tenants/:tenant_id/audit", (*console).auditPage},
	{"GET", "/metrics", (*console).metricsPage},
}

// consolePageNames are the templates under web/console, each rendered inside layout.html.
var consolePageNames = []string{"signin", "error", "tenants", "tenant", "confirm", "config", "keys", "signing", "users", "user", "audit", "metrics"}

var consoleFuncs = template.FuncMap{
	"when": func(v any) string {
		switch t := v.(type) {
		case time.Time:
			if t.IsZero() {
				return "–"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		case *time.Time:
			if t == nil || t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return ""
	},
	"lines":     func(v []string) string { return strings.Join(v, "\n") },
	"add":       func(a, b int) int { return a + b },
	"deref":     func(s *string) string { return derefString(s) },
	"problems":  func(m map[string][]string, field string) []string { return m[field] },
	"fieldID":   func(s string) string { return "f-" + strings.NewReplacer(".", "-", "_", "-").Replace(s) },
	"queryWith": queryWith,
	"safeURL":   func(s string) template.URL { return safeImageURL(s) },
	"eq":        func(a, b string) bool { return a == b },
	"has":       slices.Contains[[]string, string],
	"field": func(d configData, name, label, hint string, options ...string) fieldView {
		return fieldView{Name: name, ID: "f-" + strings.NewReplacer(".", "-", "_", "-").Replace(name), Label: label, Hint: hint,
			Value: d.Form[name], Problems: d.Problems[name], Options: options}
	},
}

// fieldView is one input of the config form with the validation's messages about it.
type fieldView struct {
	Name, ID, Label, Hint, Value string
	Problems, Options            []string
}

func parseConsolePages() map[string]*template.Template {
	pages := make(map[string]*template.Template, len(consolePageNames))
	for _, name := range consolePageNames {
		pages[name] = template.Must(template.New("layout.html").Funcs(consoleFuncs).ParseFS(web,
			"web/console/layout.html", "web/console/"+name+".html"))
	}
	return pages
}

// safeImageURL lets through the icons of the AAGUID table, which are data: images; anything else is
// dropped.
func safeImageURL(s string) template.URL {
	if strings.HasPrefix(s, "data:image/png;base64,") || strings.HasPrefix(s, "data:image/svg+xml;base64,") ||
		strings.HasPrefix(s, "data:image/webp;base64,") {
		return template.URL(s)
	}
	return ""
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// queryWith returns the query string q with key set to value (for paging links).
func queryWith(q url.Values, key string, value int) string {
	out := url.Values{}
	for k, v := range q {
		out[k] = v
	}
	out.Set(key, strconv.Itoa(value))
	return "?" + out.Encode()
}

// consoleView is what the layout renders: the page's own data in Data.
type consoleView struct {
	Nonce, CSRF, Title, Section string
	SignedIn                    bool
	Tenant                      *tenantNav
	Flash                       string
	Data                        any
}

// tenantNav names the tenant whose pages the navigation links.
type tenantNav struct {
	ID   uuid.UUID
	Name string
}

type consoleLocalKey int

const (
	tenantNavLocal consoleLocalKey = iota
	flashLocal
	sectionLocal
)

// render writes a console page.
func (con *console) render(c *fiber.Ctx, name string, status int, title string, data any) error {
	nonce := newNonce()
	token, _ := c.Locals(consoleCSRFLocal).(string)
	v := consoleView{Nonce: nonce, CSRF: token, Title: title, Data: data, SignedIn: con.sessions.valid(c.Cookies(consoleCookie))}
	v.Tenant, _ = c.Locals(tenantNavLocal).(*tenantNav)
	v.Flash, _ = c.Locals(flashLocal).(string)
	v.Section, _ = c.Locals(sectionLocal).(string)
	return renderPage(c, con.pages[name], "layout", nonce, status, v)
}

// redirect answers a form action with "see other" to path, with a short message for the next page.
func redirect(c *fiber.Ctx, path, flash string) error {
	if flash != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "done=" + url.QueryEscape(flash)
	}
	return c.Redirect(path, fiber.StatusSeeOther)
}

// withFlash shows the message of the action that led here (?done=...), as plain text.
func withFlash(c *fiber.Ctx) {
	if f := c.Query("done"); f != "" && len(f) < 200 {
		c.Locals(flashLocal, strings.Clone(f))
	}
}

// consoleTenant loads the tenant of the path and sets the navigation for it.
func (con *console) consoleTenant(c *fiber.Ctx, section string) (tenant.Tenant, error) {
	withFlash(c)
	c.Locals(sectionLocal, section)
	id, err := parseTenantID(c)
	if err != nil {
		return tenant.Tenant{}, err
	}
	t, err := con.Tenants.Load(c.UserContext(), id)
	if err != nil {
		return tenant.Tenant{}, err
	}
	c.Locals(tenantNavLocal, &tenantNav{ID: t.ID, Name: t.DisplayName})
	return t, nil
}

func tenantPath(id uuid.UUID, rest string) string { return "/console/tenants/" + id.String() + rest }

// ---- tenants

type tenantsData struct {
	Tenants  []tenant.Tenant
	Name     string
	Problems []string
}

func (con *console) tenants(c *fiber.Ctx) error {
	withFlash(c)
	c.Locals(sectionLocal, "tenants")
	ts, err := con.Tenants.List(c.UserContext())
	if err != nil {
		return err
	}
	sort.Slice(ts, func(i, j int) bool { return strings.ToLower(ts[i].DisplayName) < strings.ToLower(ts[j].DisplayName) })
	return con.render(c, "tenants", fiber.StatusOK, "Tenants", tenantsData{Tenants: ts})
}

// createTenant creates a tenant with RP ID and origin from the form (the rest defaults, as the API's
// do), then opens its config.
func (con *console) createTenant(c *fiber.Ctx) error {
	name := strings.TrimSpace(c.FormValue("display_name"))
	origin := strings.TrimRight(strings.TrimSpace(c.FormValue("origin")), "/")
	rpID := strings.TrimSpace(c.FormValue("rp_id"))
	if rpID == "" {
		if u, err := url.Parse(origin); err == nil {
			rpID = u.Hostname()
		}
	}
	cfg := tenant.Config{CORS: tenant.CORSConfig{AllowedOrigins: nonEmpty(origin)},
		WebAuthn: tenant.WebAuthnConfig{RelyingParty: tenant.RelyingParty{ID: rpID, DisplayName: name, Origins: nonEmpty(origin)},
			Timeout: 60_000}}
	t, _, err := con.Tenants.Create(c.UserContext(), tenant.CreateInput{DisplayName: name, Config: cfg})
	if p := problemsOf(err); p != nil {
		ts, lerr := con.Tenants.List(c.UserContext())
		if lerr != nil {
			return lerr
		}
		c.Locals(sectionLocal, "tenants")
		return con.render(c, "tenants", fiber.StatusUnprocessableEntity, "Tenants", tenantsData{Tenants: ts, Name: name, Problems: p})
	}
	if err != nil {
		return err
	}
	return redirect(c, tenantPath(t.ID, "/config"), "Tenant "+t.DisplayName+" created; review its configuration.")
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

type tenantData struct {
	Tenant   tenant.Tenant
	Problems []string
}

func (con *console) tenantPage(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "overview")
	if err != nil {
		return err
	}
	return con.render(c, "tenant", fiber.StatusOK, t.DisplayName, tenantData{Tenant: t})
}

func (con *console) renameTenant(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "overview")
	if err != nil {
		return err
	}
	err = con.Tenants.Rename(c.UserContext(), t.ID, c.FormValue("display_name"))
	if p := problemsOf(err); p != nil {
		return con.render(c, "tenant", fiber.StatusUnprocessableEntity, t.DisplayName, tenantData{Tenant: t, Problems: p})
	}
	if err != nil {
		return err
	}
	return redirect(c, tenantPath(t.ID, ""), "Renamed.")
}

func (con *console) confirmDeleteTenant(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "overview")
	if err != nil {
		return err
	}
	return con.render(c, "confirm", fiber.StatusOK, "Delete "+t.DisplayName, tenantData{Tenant: t})
}

func (con *console) deleteTenant(c *fiber.Ctx) error {
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	if err := con.Tenants.Delete(c.UserContext(), id); err != nil {
		return err
	}
	return redirect(c, "/console/tenants", "Tenant deleted.")
}

// ---- config

// configFields are the config form's fields, by the names the validation's messages start with.
var configFields = []string{
	"webauthn.relying_party.id", "webauthn.relying_party.display_name", "webauthn.relying_party.origins",
	"cors.allowed_origins", "webauthn.timeout", "webauthn.user_verification", "webauthn.attachment",
	"webauthn.attestation_preference", "webauthn.resident_key_requirement", "mfa.timeout", "mfa.user_verification",
	"mfa.attachment", "mfa.attestation_preference", "mfa.resident_key_requirement", "signing_algorithm",
}

type configData struct {
	Tenant   tenant.Tenant
	Config   tenant.Config
	Form     map[string]string
	Problems map[string][]string
	Other    []string
}

func configForm(cfg tenant.Config) map[string]string {
	cfg.Normalize()
	m := map[string]string{
		"webauthn.relying_party.id":           cfg.WebAuthn.RelyingParty.ID,
		"webauthn.relying_party.display_name": cfg.WebAuthn.RelyingParty.DisplayName,
		"webauthn.relying_party.origins":      strings.Join(cfg.WebAuthn.RelyingParty.Origins, "\n"),
		"cors.allowed_origins":                strings.Join(cfg.CORS.AllowedOrigins, "\n"),
		"webauthn.timeout":                    strconv.Itoa(cfg.WebAuthn.Timeout),
		"webauthn.user_verification":          cfg.WebAuthn.UserVerification,
		"webauthn.attachment":                 derefString(cfg.WebAuthn.Attachment),
		"webauthn.attestation_preference":     cfg.WebAuthn.AttestationPreference,
		"webauthn.resident_key_requirement":   cfg.WebAuthn.ResidentKeyRequirement,
		"signing_algorithm":                   string(cfg.SigningAlgorithm),
	}
	if m2 := cfg.MFA; m2 != nil {
		m["mfa.timeout"] = strconv.Itoa(m2.Timeout)
		m["mfa.user_verification"] = m2.UserVerification
		m["mfa.attachment"] = m2.Attachment
		m["mfa.attestation_preference"] = m2.AttestationPreference
		m["mfa.resident_key_requirement"] = m2.ResidentKeyRequirement
	}
	if cfg.WebAuthn.AllowSignCountRegression {
		m["webauthn.allow_sign_count_regression"] = "on"
	}
	if cfg.Playground {
		m["playground"] = "on"
	}
	return m
}

func (con *console) configPage(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "config")
	if err != nil {
		return err
	}
	return con.render(c, "config", fiber.StatusOK, "Configuration · "+t.DisplayName, configData{Tenant: t, Config: t.Config, Form: configForm(t.Config)})
}

// formLines splits a textarea into its non-empty lines.
func formLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// formInt reads a number field; what is not a number is 0, which the validation refuses with the
// API's message.
func formInt(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0
	}
	return n
}

// saveConfig replaces the tenant's config with the form's (fields the form has no input for, such as
// the RP icon, are kept) through tenant.Service.SetConfig: the API's validation, all or nothing. The
// problems are shown next to their fields.
func (con *console) saveConfig(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "config")
	if err != nil {
		return err
	}
	f := func(k string) string { return c.FormValue(k) }
	cfg := t.Config
	cfg.WebAuthn.RelyingParty.ID = strings.TrimSpace(f("webauthn.relying_party.id"))
	cfg.WebAuthn.RelyingParty.DisplayName = f("webauthn.relying_party.display_name")
	cfg.WebAuthn.RelyingParty.Origins = formLines(f("webauthn.relying_party.origins"))
	cfg.CORS.AllowedOrigins = formLines(f("cors.allowed_origins"))
	cfg.WebAuthn.Timeout = formInt(f("webauthn.timeout"))
	cfg.WebAuthn.UserVerification = f("webauthn.user_verification")
	cfg.WebAuthn.Attachment = nil
	if a := f("webauthn.attachment"); a != "" {
		cfg.WebAuthn.Attachment = &a
	}
	cfg.WebAuthn.AttestationPreference = f("webauthn.attestation_preference")
	cfg.WebAuthn.ResidentKeyRequirement = f("webauthn.resident_key_requirement")
	cfg.WebAuthn.AllowSignCountRegression = f("webauthn.allow_sign_count_regression") == "on"
	cfg.MFA = &tenant.MFAConfig{Timeout: formInt(f("mfa.timeout")), UserVerification: f("mfa.user_verification"),
		Attachment: f("mfa.attachment"), AttestationPreference: f("mfa.attestation_preference"),
		ResidentKeyRequirement: f("mfa.resident_key_requirement")}
	cfg.SigningAlgorithm = signing.Algorithm(f("signing_algorithm"))
	cfg.Playground = f("playground") == "on"
	err = con.Tenants.SetConfig(c.UserContext(), t.ID, cfg)
	if p := problemsOf(err); p != nil {
		form := map[string]string{}
		for _, k := range append(slices.Clone(configFields), "webauthn.allow_sign_count_regression", "playground") {
			form[k] = f(k)
		}
		d := configData{Tenant: t, Config: cfg, Form: form, Problems: map[string][]string{}}
		for _, msg := range p {
			field := msg
			if i := strings.IndexAny(msg, " :"); i >= 0 {
				field = msg[:i]
			}
			if slices.Contains(configFields, field) {
				d.Problems[field] = append(d.Problems[field], msg)
			} else {
				d.Other = append(d.Other, msg)
			}
		}
		return con.render(c, "config", fiber.StatusUnprocessableEntity, "Configuration · "+t.DisplayName, d)
	}
	if err != nil {
		return err
	}
	return redirect(c, tenantPath(t.ID, "/config"), "Configuration saved.")
}

// ---- API keys

type keysData struct {
	Tenant   tenant.Tenant
	Keys     []tenant.APIKey
	Secret   string
	Created  string
	Problems []string
}

func (con *console) keysPage(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "keys")
	if err != nil {
		return err
	}
	return con.renderKeys(c, t, fiber.StatusOK, keysData{})
}

func (con *console) renderKeys(c *fiber.Ctx, t tenant.Tenant, status int, d keysData) error {
	keys, err := con.Tenants.ListAPIKeys(c.UserContext(), t.ID)
	if err != nil {
		return err
	}
	d.Tenant, d.Keys = t, keys
	return con.render(c, "keys", status, "API keys · "+t.DisplayName, d)
}

// createKey creates an API key and shows its secret on this answer only (no redirect, no-store).
func (con *console) createKey(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "keys")
	if err != nil {
		return err
	}
	var expires *time.Time
	if v := strings.TrimSpace(c.FormValue("expires_at")); v != "" {
		at, err := time.Parse("2006-01-02", v)
		if err != nil {
			return con.renderKeys(c, t, fiber.StatusUnprocessableEntity, keysData{Problems: []string{"expires_at must be a date (YYYY-MM-DD)"}})
		}
		at = at.Add(24*time.Hour - time.Second)
		expires = &at
	}
	secret, k, err := con.Tenants.CreateAPIKey(c.UserContext(), t.ID, c.FormValue("name"), tenant.KeyKind(c.FormValue("kind")), expires)
	if p := problemsOf(err); p != nil {
		return con.renderKeys(c, t, fiber.StatusUnprocessableEntity, keysData{Problems: p})
	}
	if err != nil {
		if code := passkey.ErrorCode(err); code != "" && code != passkey.CodeInternal && classify(err).status < 500 {
			return con.renderKeys(c, t, classify(err).status, keysData{Problems: []string{classify(err).title}})
		}
		return err
	}
	return con.renderKeys(c, t, fiber.StatusCreated, keysData{Secret: secret, Created: k.Name})
}

func (con *console) revokeKey(c *fiber.Ctx) error {
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	keyID, err := uuid.Parse(c.Params("key_id"))
	if err != nil {
		return passkey.Invalid("key id must be a valid uuid")
	}
	if err := con.Tenants.DeleteAPIKey(c.UserContext(), id, keyID); err != nil {
		return err
	}
	return redirect(c, tenantPath(id, "/keys"), "API key revoked.")
}

// ---- signing keys

type signingData struct {
	Tenant   tenant.Tenant
	Keys     []SigningKeyDTO
	Overlap  string
	Problems []string
}

func (con *console) signingKeysPage(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "signing")
	if err != nil {
		return err
	}
	return con.renderSigning(c, t, fiber.StatusOK, signingData{})
}

func (con *console) renderSigning(c *fiber.Ctx, t tenant.Tenant, status int, d signingData) error {
	keys, err := con.Tenants.SigningKeys(c.UserContext(), t.ID)
	if err != nil {
		return err
	}
	d.Tenant, d.Keys = t, signingKeyDTOs(keys, con.Tenants.Now())
	return con.render(c, "signing", status, "Signing keys · "+t.DisplayName, d)
}

func (con *console) rotateSigningKey(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "signing")
	if err != nil {
		return err
	}
	r := tenant.Rotation{RevokePrevious: c.FormValue("revoke_previous") == "on"}
	if v := strings.TrimSpace(c.FormValue("overlap_hours")); v != "" {
		h, err := strconv.ParseFloat(v, 64)
		if err != nil || h < 0 || h > tenant.MaxRotationOverlap.Hours() {
			return con.renderSigning(c, t, fiber.StatusUnprocessableEntity, signingData{Overlap: v,
				Problems: []string{fmt.Sprintf("overlap must be a number of hours from 0 to %g", tenant.MaxRotationOverlap.Hours())}})
		}
		r.Overlap = time.Duration(h * float64(time.Hour))
	}
	k, err := con.Tenants.RotateSigningKey(c.UserContext(), t.ID, r)
	if p := problemsOf(err); p != nil {
		return con.renderSigning(c, t, fiber.StatusUnprocessableEntity, signingData{Problems: p})
	}
	if err != nil {
		return err
	}
	return redirect(c, tenantPath(t.ID, "/signing-keys"), "Rotated: new key "+k.ID+".")
}

// ---- users and credentials

type usersData struct {
	Tenant      tenant.Tenant
	Users       []credentials.User
	Query       string
	Total, Page int
	Pages       int
	Params      url.Values
	NotFound    bool
}

// consolePerPage is the page size of the console's lists.
const consolePerPage = 20

func pageNumber(c *fiber.Ctx) int {
	n, err := strconv.Atoi(c.Query("page", "1"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// usersPage lists a tenant's users, newest first, a page at a time; a search finds the user with that
// id (the application's id or the internal one).
func (con *console) usersPage(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "users")
	if err != nil {
		return err
	}
	snap, err := con.Directory.Resolve(c.UserContext(), t.ID)
	if err != nil {
		return err
	}
	d := usersData{Tenant: t, Query: strings.TrimSpace(c.Query("q")), Page: pageNumber(c), Params: url.Values{}}
	if d.Query != "" {
		d.Params.Set("q", d.Query)
		u, err := con.Credentials.UserByRef(c.UserContext(), snap, d.Query)
		switch {
		case err == nil:
			d.Users, d.Total = []credentials.User{u}, 1
		case errorsIsNotFound(err):
			d.NotFound = true
		default:
			return err
		}
	} else {
		users, total, err := con.Credentials.ListUsers(c.UserContext(), snap, credentials.UserFilter{Page: passkey.Page{Number: d.Page, Size: consolePerPage}})
		if err != nil {
			return err
		}
		d.Users, d.Total = users, total
	}
	d.Pages = (d.Total + consolePerPage - 1) / consolePerPage
	return con.render(c, "users", fiber.StatusOK, "Users · "+t.DisplayName, d)
}

func errorsIsNotFound(err error) bool {
	return classify(err).status == fiber.StatusNotFound
}

type credentialView struct {
	credentials.Credential
	Authenticator credentials.Authenticator
}

type userData struct {
	Tenant       tenant.Tenant
	User         credentials.User
	Credentials  []credentialView
	Transactions []TransactionResponse
	Problems     []string
}

func (con *console) userPage(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "users")
	if err != nil {
		return err
	}
	return con.renderUser(c, t, c.Query("id"), fiber.StatusOK, nil)
}

func (con *console) renderUser(c *fiber.Ctx, t tenant.Tenant, ref string, status int, problems []string) error {
	snap, err := con.Directory.Resolve(c.UserContext(), t.ID)
	if err != nil {
		return err
	}
	d, err := con.Credentials.UserDetail(c.UserContext(), snap, ref)
	if err != nil {
		return err
	}
	txs, err := con.Transactions.OfUser(c.UserContext(), snap, d.User)
	if err != nil {
		return err
	}
	out := userData{Tenant: t, User: d.User, Transactions: con.transactionResponses(txs), Problems: problems}
	for _, cr := range d.Credentials {
		a, _ := con.Credentials.Authenticator(cr)
		out.Credentials = append(out.Credentials, credentialView{Credential: cr, Authenticator: a})
	}
	return con.render(c, "user", status, "User "+d.User.AppUserID, out)
}

func userPath(id uuid.UUID, appUserID string) string {
	return tenantPath(id, "/user?id="+url.QueryEscape(appUserID))
}

func (con *console) renameCredential(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "users")
	if err != nil {
		return err
	}
	snap, err := con.Directory.Resolve(c.UserContext(), t.ID)
	if err != nil {
		return err
	}
	cred, err := con.Credentials.Get(c.UserContext(), snap, c.Params("credential_id"))
	if err != nil {
		return err
	}
	err = con.Credentials.Rename(c.UserContext(), snap, cred.ID, c.FormValue("name"))
	if p := problemsOf(err); p != nil {
		return con.renderUser(c, t, cred.AppUserID, fiber.StatusUnprocessableEntity, p)
	}
	if err != nil {
		return err
	}
	return redirect(c, userPath(t.ID, cred.AppUserID), "Credential renamed.")
}

func (con *console) deleteCredential(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "users")
	if err != nil {
		return err
	}
	snap, err := con.Directory.Resolve(c.UserContext(), t.ID)
	if err != nil {
		return err
	}
	cred, err := con.Credentials.Get(c.UserContext(), snap, c.Params("credential_id"))
	if err != nil {
		return err
	}
	if err := con.Credentials.Delete(c.UserContext(), snap, cred.ID); err != nil {
		return err
	}
	return redirect(c, userPath(t.ID, cred.AppUserID), "Credential deleted.")
}

// ---- audit log

type auditData struct {
	Tenant      tenant.Tenant
	Events      []audit.Event
	Types       []string
	Filter      url.Values
	Params      url.Values // Filter, for the page links
	Selected    []string
	Total, Page int
	Pages       int
	Problems    []string
}

// auditPage lists the tenant's audit events with the admin API's filters, checked by the same
// audit.Log.
func (con *console) auditPage(c *fiber.Ctx) error {
	t, err := con.consoleTenant(c, "audit")
	if err != nil {
		return err
	}
	d := auditData{Tenant: t, Types: audit.Types(), Page: pageNumber(c), Filter: url.Values{}}
	id := t.ID
	f := audit.Filter{TenantID: &id, Page: passkey.Page{Number: d.Page, Size: consolePerPage}}
	for _, raw := range c.Context().QueryArgs().PeekMulti("type") {
		if v := string(raw); v != "" {
			f.Types = append(f.Types, v)
			d.Filter.Add("type", v)
		}
	}
	d.Selected = f.Types
	for _, q := range []struct {
		name string
		to   *string
	}{{"actor_user_id", &f.ActorUserID}, {"meta_source_ip", &f.SourceIP}, {"q", &f.Q}} {
		if v := strings.TrimSpace(c.Query(q.name)); v != "" {
			*q.to = strings.Clone(v)
			d.Filter.Set(q.name, v)
		}
	}
	var p passkey.Problems
	for _, q := range []struct {
		name string
		to   *time.Time
	}{{"start_time", &f.Start}, {"end_time", &f.End}} {
		if v := strings.TrimSpace(c.Query(q.name)); v != "" {
			d.Filter.Set(q.name, v)
			at, err := time.Parse("2006-01-02T15:04", v)
			if err != nil {
				p.Add("%s must be a date and time", q.name)
				continue
			}
			*q.to = at
		}
	}
	if len(p) > 0 {
		d.Problems = p
		return con.render(c, "audit", fiber.StatusUnprocessableEntity, "Audit log · "+t.DisplayName, d)
	}
	events, total, err := con.AuditLog.List(c.UserContext(), f)
	if ps := problemsOf(err); ps != nil {
		d.Problems = ps
		return con.render(c, "audit", fiber.StatusUnprocessableEntity, "Audit log · "+t.DisplayName, d)
	}
	if err != nil {
		return err
	}
	d.Events, d.Total, d.Params = events, total, d.Filter
	d.Pages = (total + consolePerPage - 1) / consolePerPage
	return con.render(c, "audit", fiber.StatusOK, "Audit log · "+t.DisplayName, d)
}

// ---- metrics

type metricsRow struct {
	Tenant, Name            string
	Succeeded, Failed       float64
	PerMinute, FailedPerMin float64
}

type metricsData struct {
	Rows    []metricsRow
	Since   time.Time
	Minutes float64
	Enabled bool
}

// metricsPage shows the ceremonies of each tenant since this instance started, from the service's
// own counter passkey_ceremonies_total (finalize steps only: one per ceremony), and their average per
// minute.
func (con *console) metricsPage(c *fiber.Ctx) error {
	c.Locals(sectionLocal, "metrics")
	d := metricsData{Since: con.started, Minutes: max(time.Since(con.started).Minutes(), 1)}
	if con.Metrics == nil {
		return con.render(c, "metrics", fiber.StatusOK, "Metrics", d)
	}
	d.Enabled = true
	families, err := con.Metrics.Registry().Gather()
	if err != nil {
		return err
	}
	rows := map[string]*metricsRow{}
	for _, fam := range families {
		if fam.GetName() != "passkey_ceremonies_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if !strings.HasSuffix(labels["kind"], "_final") {
				continue
			}
			r := rows[labels["tenant"]]
			if r == nil {
				r = &metricsRow{Tenant: labels["tenant"]}
				rows[labels["tenant"]] = r
			}
			if labels["outcome"] == "failed" {
				r.Failed += m.GetCounter().GetValue()
			} else {
				r.Succeeded += m.GetCounter().GetValue()
			}
		}
	}
	for _, r := range rows {
		if id, err := uuid.Parse(r.Tenant); err == nil {
			if t, err := con.Tenants.Get(c.UserContext(), id); err == nil {
				r.Name = t.DisplayName
			}
		}
		r.PerMinute = (r.Succeeded + r.Failed) / d.Minutes
		r.FailedPerMin = r.Failed / d.Minutes
		d.Rows = append(d.Rows, *r)
	}
	sort.Slice(d.Rows, func(i, j int) bool {
		return d.Rows[i].Succeeded+d.Rows[i].Failed > d.Rows[j].Succeeded+d.Rows[j].Failed
	})
	return con.render(c, "metrics", fiber.StatusOK, "Metrics", d)
}
