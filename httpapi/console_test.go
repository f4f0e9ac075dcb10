package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

const consoleTestToken = "adm_console_test_token_0123456789"

// consoleClient is a browser for the console's tests: it keeps the cookies the app sets.
type consoleClient struct {
	t       *testing.T
	app     *fiber.App
	cookies map[string]string
}

func newConsoleClient(t *testing.T) *consoleClient {
	// The tests here stop before any service is called: they need none.
	app := NewAdmin(Services{}, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), BodyLimit: 4096,
		AdminTokens: []string{consoleTestToken}})
	return &consoleClient{t: t, app: app, cookies: map[string]string{}}
}

func (cc *consoleClient) do(method, path string, form url.Values) (*http.Response, string) {
	cc.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range cc.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := cc.app.Test(req, -1)
	if err != nil {
		cc.t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" || (!c.Expires.IsZero() && c.Expires.Before(time.Now())) {
			delete(cc.cookies, c.Name)
		} else {
			cc.cookies[c.Name] = c.Value
		}
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// csrfOf returns the CSRF token of the first form of a page.
func (cc *consoleClient) csrfOf(page string) string {
	cc.t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		cc.t.Fatalf("no CSRF field in the page:\n%s", page)
	}
	return m[1]
}

// signIn signs in with token and returns the answer.
func (cc *consoleClient) signIn(token string) *http.Response {
	cc.t.Helper()
	_, page := cc.do("GET", "/console/sign-in", nil)
	resp, _ := cc.do("POST", "/console/sign-in", url.Values{"_csrf": {cc.csrfOf(page)}, "token": {token}, "next": {"/console/metrics"}})
	return resp
}

func TestConsoleRedirectsToSignInWithoutSession(t *testing.T) {
	cc := newConsoleClient(t)
	for _, r := range consoleRoutes {
		if r.method != "GET" {
			continue
		}
		path := strings.NewReplacer(":tenant_id", "0b2f4c3e-9d55-4b9a-8d3e-3f0a6a1d2c11", ":credential_id", "abc", ":key_id", "x").Replace("/console" + r.path)
		resp, _ := cc.do("GET", path, nil)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/sign-in?next=") {
			t.Errorf("GET %s: %d %q, want 303 to the sign-in page", path, resp.StatusCode, loc)
		}
	}
	resp, _ := cc.do("GET", "/console", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/sign-in") {
		t.Errorf("GET /console: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A form post with a valid CSRF token but no session goes to sign-in too, and changes nothing.
	_, page := cc.do("GET", "/console/sign-in", nil)
	resp, _ = cc.do("POST", "/console/tenants", url.Values{"_csrf": {cc.csrfOf(page)}, "display_name": {"x"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/sign-in") {
		t.Errorf("POST /console/tenants without a session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestConsoleSignIn(t *testing.T) {
	cc := newConsoleClient(t)
	_, page := cc.do("GET", "/console/sign-in", nil)
	resp, body := cc.do("POST", "/console/sign-in", url.Values{"_csrf": {cc.csrfOf(page)}, "token": {"adm_wrong_token_of_good_length_x"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not an admin token") {
		t.Fatalf("wrong token: %d\n%s", resp.StatusCode, body)
	}
	if _, ok := cc.cookies[consoleCookie]; ok {
		t.Fatal("a wrong token got a session cookie")
	}

	req := httptest.NewRequest("GET", "/console/sign-in", nil)
	resp, _ = cc.app.Test(req, -1)
	for _, c := range resp.Cookies() {
		if c.Name == consoleCSRFCookie && (!c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console") {
			t.Errorf("CSRF cookie %+v: want HttpOnly, SameSite=Strict, Path=/console", c)
		}
	}

	resp = cc.signIn(consoleTestToken)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/metrics" {
		t.Fatalf("sign-in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == consoleCookie {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/console" || session.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/console, not Secure on http", session)
	}
	if d := time.Until(session.Expires); d < ConsoleSessionTTL-time.Minute || d > ConsoleSessionTTL+time.Minute {
		t.Errorf("session cookie expires in %s, want %s", d, ConsoleSessionTTL)
	}
	// Signed in, the sign-in page sends on; the console answers.
	resp, _ = cc.do("GET", "/console/sign-in?next=/console/metrics", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-in page while signed in: %d", resp.StatusCode)
	}
	resp, body = cc.do("GET", "/console/metrics", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics page: %d\n%s", resp.StatusCode, body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	nonce := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(csp)
	if nonce == nil || !strings.Contains(body, `nonce="`+nonce[1]+`"`) || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q and the page's nonce do not agree", csp)
	}
	_, body2 := cc.do("GET", "/console/metrics", nil)
	if n2 := regexp.MustCompile(`nonce="([^"]+)"`).FindStringSubmatch(body2); n2 == nil || n2[1] == nonce[1] {
		t.Error("the nonce is not new for each response")
	}

	// A form post without the CSRF token is refused, with one it goes through; sign-out ends the session.
	resp, _ = cc.do("POST", "/console/sign-out", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without the CSRF token: %d, want 403", resp.StatusCode)
	}
	resp, _ = cc.do("POST", "/console/sign-out", url.Values{"_csrf": {"not-the-token"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out with a wrong CSRF token: %d, want 403", resp.StatusCode)
	}
	old := cc.cookies[consoleCookie]
	resp, _ = cc.do("POST", "/console/sign-out", url.Values{"_csrf": {cc.csrfOf(body)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/sign-in" {
		t.Fatalf("sign-out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cc.cookies[consoleCookie] = old // a copy of the cookie kept after sign-out opens nothing
	resp, _ = cc.do("GET", "/console/metrics", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the session still works after sign-out: %d", resp.StatusCode)
	}
	// The admin API still wants its bearer token: a console session is no API credential.
	resp, _ = cc.do("GET", "/tenants", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /tenants with console cookies: %d, want 401", resp.StatusCode)
	}
}

func TestConsoleSessionsExpire(t *testing.T) {
	now := time.Now()
	s := newConsoleSessions(func() time.Time { return now })
	id, exp := s.open()
	if !s.valid(id) || !exp.Equal(now.Add(ConsoleSessionTTL)) {
		t.Fatalf("new session: valid %v, expires %s", s.valid(id), exp)
	}
	if s.valid("") || s.valid(id+"x") {
		t.Fatal("an unknown id is valid")
	}
	now = now.Add(ConsoleSessionTTL)
	if s.valid(id) {
		t.Fatal("a session is valid at its expiry")
	}
	for range maxConsoleSessions + 10 {
		s.open()
	}
	if len(s.m) > maxConsoleSessions {
		t.Fatalf("%d sessions kept, at most %d", len(s.m), maxConsoleSessions)
	}
}

func TestConsoleSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"/console/tenants/x/users?page=2": "/console/tenants/x/users?page=2",
		"":                                "/console/tenants",
		"https://evil.example/":           "/console/tenants",
		"//evil.example/console/":         "/console/tenants",
		"/console/\\evil":                 "/console/tenants",
		"/tenants":                        "/console/tenants",
		"/console/sign-out":               "/console/tenants",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}
