package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/csrf"

	passkey "github.com/passkey-server/passkey-server"
)

// The admin console (GET /console on the admin port): server-rendered pages (html/template, htmx
// vendored, everything embedded) that call the same services as the admin API, so its actions are
// validated and audited alike.
//
// Sign-in: an admin token, posted once, opens a session kept in this process (consoleSessions); the
// browser holds only a random session id in an HttpOnly, SameSite=Strict cookie (Secure on https)
// that expires with the session. A server-side session, not a signed cookie: signing out ends it at
// once, and there is no further key to manage. The price: sessions are per instance and lost on
// restart (sign in again), so several admin instances need sticky sessions.
//
// CSRF: Fiber's csrf middleware (a token in a SameSite=Strict cookie that each form also posts as the
// field _csrf, checked against the middleware's store); every POST, sign-in included, needs it.

// Console cookies and lifetimes.
const (
	consoleCookie     = "passkey_console"
	consoleCSRFCookie = "passkey_console_csrf"
	consoleCSRFField  = "_csrf"
	// ConsoleSessionTTL is how long a console session lasts after sign-in.
	ConsoleSessionTTL = 8 * time.Hour
	// maxConsoleSessions bounds the sessions one instance keeps; the oldest goes first.
	maxConsoleSessions = 1000
)

type consoleLocal int

const consoleCSRFLocal consoleLocal = iota

// consoleSessions are the open console sessions of this instance, by the SHA-256 of their id.
type consoleSessions struct {
	mu  sync.Mutex
	m   map[[32]byte]time.Time // expiry
	now func() time.Time
}

func newConsoleSessions(now func() time.Time) *consoleSessions {
	if now == nil {
		now = time.Now
	}
	return &consoleSessions{m: map[[32]byte]time.Time{}, now: now}
}

// open starts a session and returns its id and expiry.
func (s *consoleSessions) open() (string, time.Time) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	id := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var oldest [32]byte
	var oldestAt time.Time
	for k, exp := range s.m {
		if !exp.After(now) {
			delete(s.m, k)
		} else if oldestAt.IsZero() || exp.Before(oldestAt) {
			oldest, oldestAt = k, exp
		}
	}
	if len(s.m) >= maxConsoleSessions {
		delete(s.m, oldest)
	}
	exp := now.Add(ConsoleSessionTTL)
	s.m[sha256.Sum256([]byte(id))] = exp
	return id, exp
}

// valid reports whether id names a live session.
func (s *consoleSessions) valid(id string) bool {
	if id == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.m[sha256.Sum256([]byte(id))]
	return ok && exp.After(s.now())
}

// close ends the session id.
func (s *consoleSessions) close(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sha256.Sum256([]byte(id)))
}

// adminTokenMatcher returns a check of a token against the admin tokens, compared as SHA-256 hashes in
// constant time (as requireAdminToken does).
func adminTokenMatcher(tokens []string) func(string) bool {
	hashes := make([][32]byte, len(tokens))
	for i, t := range tokens {
		hashes[i] = sha256.Sum256([]byte(t))
	}
	return func(token string) bool {
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		ok := 0
		for _, want := range hashes {
			ok |= subtle.ConstantTimeCompare(got[:], want[:])
		}
		return ok == 1 && len(hashes) > 0
	}
}

// console holds the console's state: its sessions and pages.
type console struct {
	*server
	sessions *consoleSessions
	isAdmin  func(string) bool
	pages    map[string]*template.Template
	started  time.Time
}

// registerConsole serves the console under /console. It must come before the admin API's token check,
// which would otherwise answer every console page 401.
func (s *server) registerConsole(app *fiber.App) {
	con := &console{server: s, sessions: newConsoleSessions(nil), isAdmin: adminTokenMatcher(s.AdminTokens),
		pages: parseConsolePages(), started: time.Now()}
	static, _ := fs.Sub(web, "web/static")
	app.Get("/console/static/:file", func(c *fiber.Ctx) error {
		name := c.Params("file")
		b, err := fs.ReadFile(static, name)
		if err != nil || strings.Contains(name, "/") {
			return fiber.ErrNotFound
		}
		switch {
		case strings.HasSuffix(name, ".js"):
			c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
		case strings.HasSuffix(name, ".css"):
			c.Set(fiber.HeaderContentType, "text/css; charset=utf-8")
		default:
			c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
		}
		c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		return c.Send(b)
	})
	g := app.Group("/console", csrf.New(csrf.Config{
		KeyLookup:         "form:" + consoleCSRFField,
		CookieName:        consoleCSRFCookie,
		CookiePath:        "/console",
		CookieHTTPOnly:    true,
		CookieSameSite:    "Strict",
		CookieSessionOnly: true,
		Expiration:        ConsoleSessionTTL,
		ContextKey:        consoleCSRFLocal,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			return con.render(c, "error", fiber.StatusForbidden, "Refused", errorPage{Title: "This form was refused",
				Details: "Its security token (CSRF) is missing or has expired. Go back, reload the page and try again."})
		},
	}))
	g.Get("/sign-in", con.signInPage)
	g.Post("/sign-in", con.signIn)
	g.Use(con.requireSession)
	g.Get("/", func(c *fiber.Ctx) error { return c.Redirect("/console/tenants", fiber.StatusSeeOther) })
	for _, r := range consoleRoutes {
		h := r.handle
		g.Add(r.method, r.path, func(c *fiber.Ctx) error { return con.page(c, h(con, c)) })
	}
}

// requireSession lets requests with a live session through and sends everything else to sign-in,
// remembering the page asked for.
func (con *console) requireSession(c *fiber.Ctx) error {
	if con.sessions.valid(c.Cookies(consoleCookie)) {
		return c.Next()
	}
	next := "/console/tenants"
	if c.Method() == fiber.MethodGet {
		next = c.OriginalURL()
	}
	return c.Redirect("/console/sign-in?next="+url.QueryEscape(next), fiber.StatusSeeOther)
}

// safeNext returns next when it is a console path, else the tenants page: the sign-in form must not
// send anyone elsewhere.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/console/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") &&
		!strings.HasPrefix(next, "/console/sign-") {
		return next
	}
	return "/console/tenants"
}

func (con *console) signInPage(c *fiber.Ctx) error {
	if con.sessions.valid(c.Cookies(consoleCookie)) {
		return c.Redirect(safeNext(c.Query("next")), fiber.StatusSeeOther)
	}
	return con.render(c, "signin", fiber.StatusOK, "Sign in", signInData{Next: safeNext(c.Query("next"))})
}

type signInData struct {
	Next, Problem string
}

func (con *console) signIn(c *fiber.Ctx) error {
	next := safeNext(c.FormValue("next"))
	if !con.isAdmin(c.FormValue("token")) {
		return con.render(c, "signin", fiber.StatusUnauthorized, "Sign in", signInData{Next: next,
			Problem: "That is not an admin token of this server."})
	}
	id, exp := con.sessions.open()
	c.Cookie(&fiber.Cookie{Name: consoleCookie, Value: id, Path: "/console", Expires: exp, HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode, Secure: c.Protocol() == "https"})
	return c.Redirect(next, fiber.StatusSeeOther)
}

func (con *console) signOut(c *fiber.Ctx) error {
	con.sessions.close(c.Cookies(consoleCookie))
	c.Cookie(&fiber.Cookie{Name: consoleCookie, Value: "", Path: "/console", Expires: time.Unix(0, 0), HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode, Secure: c.Protocol() == "https"})
	return c.Redirect("/console/sign-in", fiber.StatusSeeOther)
}

// errorPage is the body of the console's error page.
type errorPage struct {
	Title, Details string
	Status         int
}

// page answers a console handler's error, if any, with an HTML page: the status, title and details
// of the API's error table; the cause of anything unknown is logged, never shown.
func (con *console) page(c *fiber.Ctx, err error) error {
	if err == nil {
		return nil
	}
	r := classify(err)
	if r.status >= 500 {
		reqID, _ := c.Locals(requestIDLocal).(string)
		con.log.Error("console request failed", "error", err, "method", c.Method(), "path", c.Path(), "request_id", reqID)
	}
	return con.render(c, "error", r.status, r.title, errorPage{Title: r.title, Details: r.details, Status: r.status})
}

// problemsOf returns the validation problems of err (the messages the API sends in details), or nil
// when err is no validation error.
func problemsOf(err error) []string {
	var ve *passkey.ValidationError
	if errors.As(err, &ve) {
		return ve.Problems
	}
	return nil
}
