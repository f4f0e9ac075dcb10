// Package httpapi is the one transport layer of the service: the Fiber apps of the public and admin
// APIs, their routes table, request decoding and validation of syntax, pagination headers, the client
// address behind trusted proxies, CORS, API-key and admin-token checks, rate limiting, the access log,
// and the one error table that maps domain errors to statuses. Handlers are thin: they decode, call one
// domain service, and encode; the domain packages know nothing of HTTP.
package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/archive"
	"github.com/passkey-server/passkey-server/attestation"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/metrics"
	"github.com/passkey-server/passkey-server/ratelimit"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
	"github.com/passkey-server/passkey-server/webhooks"
)

// Services are the domain services the API serves.
type Services struct {
	Tenants      *tenant.Service
	Directory    *tenant.Directory
	Keys         *tenant.Keys
	Credentials  *credentials.Service
	Transactions *transactions.Service
	AuditLog     *audit.Log
	// Webhooks manages webhook endpoints (admin API).
	Webhooks *webhooks.Service
	// Metadata is the FIDO metadata the admin API shows (nil: none configured).
	Metadata *attestation.Source
	// Archive exports and imports tenants (admin API).
	Archive *archive.Service
	// Events receives the failure of a ceremony step that was refused before its service saw it (a
	// missing API key, a malformed body, a rate limit); the services emit everything else.
	Events passkey.Sink
}

// Pinger is something readiness depends on (the database, Redis).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Options are the transport's own settings.
type Options struct {
	Logger      *slog.Logger
	AdminTokens []string
	// BodyLimit bounds request bodies, in bytes.
	BodyLimit int
	// Metrics observes every request; nil observes none.
	Metrics *metrics.Metrics
	// Limiter limits the public routes per tenant, client IP and API key; nil means no limits.
	Limiter *ratelimit.Limiter
	// Proxies are the trusted proxies whose X-Forwarded-For names the client.
	Proxies TrustedProxies
	// Ready lists what /health/ready checks, by name.
	Ready map[string]Pinger
	// RequestTimeout is the deadline of each request's context (DefaultRequestTimeout when zero): every
	// store call made for the request ends by then, and the request is answered 503 service_unavailable.
	RequestTimeout time.Duration
	// PublicURL is the base URL of the public API (PASSKEY_PUBLIC_URL): its pagination links start with
	// it. The admin API has no configured URL; its links are relative. Empty: relative links on both.
	PublicURL string
	// ReadTimeout bounds the time to receive a whole request, headers and body (DefaultReadTimeout
	// when zero): a client that sends slower is disconnected, so a slow body holds its memory only so
	// long.
	ReadTimeout time.Duration
	// Drain, when started, makes /health/ready answer 503 and every response ask its client to close
	// the connection, while requests are still served; nil never drains.
	Drain *Drain

	// PlaygroundTenant is the tenant GET /playground redirects to (the embedded mode's development
	// tenant); uuid.Nil answers 404 there.
	PlaygroundTenant uuid.UUID
}

// DefaultRequestTimeout is the deadline of a request when Options.RequestTimeout is zero.
const DefaultRequestTimeout = 5 * time.Second

// DefaultReadTimeout is the read timeout of a request when Options.ReadTimeout is zero.
const DefaultReadTimeout = 10 * time.Second

// Drain is the shutdown state the apps of one instance share. Before the listeners close, the instance
// drains: readiness fails, so that load balancers send new requests elsewhere, while requests that
// still arrive are served.
type Drain struct{ on atomic.Bool }

// Start begins draining; it cannot be undone.
func (d *Drain) Start() { d.on.Store(true) }

// Draining reports whether Start was called.
func (d *Drain) Draining() bool { return d != nil && d.on.Load() }

// server holds what the handlers use.
type server struct {
	Services
	Options
	log *slog.Logger
	// linkBase starts the URLs of pagination links: the public URL on the public API, "" (relative
	// links) on the admin API.
	linkBase string
}

func newServer(s Services, o Options) *server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if s.Events == nil {
		s.Events = passkey.SinkFunc(func(context.Context, passkey.Event) {})
	}
	return &server{Services: s, Options: o, log: o.Logger}
}

// newFiberApp builds an app with the middleware every app shares, in this order: request id, metrics
// (so that what it records is the status the client gets, panics included), the client address and the
// request's context for events, the access log, the request body, the request's deadline, panic recovery.
//
// Slow clients: fasthttp would allocate a buffer of the announced Content-Length (up to BodyLimit)
// before the first byte of the body arrives, so each slow client held ~128 KiB. Bodies are streamed
// instead (StreamRequestBody): fasthttp reads at most 8 KiB ahead and readBody takes the rest as it
// arrives. ReadTimeout bounds how long a whole request may take; LimitConnsPerIP, around the
// listener, how many connections one address may hold.
func (s *server) newFiberApp(name string) *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:           "passkey-server " + name,
		BodyLimit:         s.BodyLimit,
		StreamRequestBody: true,
		// fasthttp would otherwise read a whole multipart body (of any size, files to disk) before any
		// handler runs and before readBody could apply BodyLimit; the API takes no multipart bodies.
		DisablePreParseMultipartForm: true,
		DisableStartupMessage:        true,
		ErrorHandler:                 newErrorHandler(s.log),
		ReadTimeout:                  s.ReadTimeout,
		WriteTimeout:                 30 * time.Second,
		IdleTimeout:                  120 * time.Second,
	})
	// Kept-alive connections get "Connection: close" once the listener closes on shutdown.
	app.Server().CloseOnShutdown = true
	app.Use(requestID)
	if s.Metrics != nil {
		app.Use(observeRequests(s.Metrics, name))
	}
	app.Use(s.Proxies.Middleware())
	app.Use(requestContext)
	app.Use(s.accessLog(name))
	app.Use(s.readBody)
	// The deadline starts once the body is in: a slow upload is bounded by ReadTimeout, and must not
	// eat the time the request's store calls have.
	app.Use(s.deadline)
	app.Use(recover.New())
	return app
}

// Draining an oversized body: after the 413 is sent, up to maxDrain bytes are read and discarded for
// at most drainTimeout, so that a client still writing its body reads the answer instead of a
// connection reset (closing a socket with unread data makes the kernel send RST, and the client then
// loses what it had not read yet). Larger bodies are cut off.
const (
	maxDrain     = 16 << 20
	drainTimeout = 5 * time.Second
)

// readBody reads the streamed request body into the request, so that handlers find it in c.Body(). A
// body larger than BodyLimit (by its Content-Length, or once it grows past it) is answered 413
// body_too_large at once; the connection is then drained and closed. While the instance drains,
// every response asks its client to close the connection.
func (s *server) readBody(c *fiber.Ctx) error {
	if s.Drain.Draining() {
		c.Context().Response.Header.SetConnectionClose()
	}
	ctx := c.Context()
	if ctx.Request.Header.ContentLength() > s.BodyLimit {
		return refuseBody(c)
	}
	stream := ctx.RequestBodyStream()
	if stream == nil {
		if len(ctx.Request.Body()) > s.BodyLimit {
			return refuseBody(c)
		}
		return c.Next()
	}
	body, err := io.ReadAll(io.LimitReader(stream, int64(s.BodyLimit)+1))
	if err != nil {
		// The client is gone or too slow (ReadTimeout); it hardly reads an answer.
		ctx.Response.Header.SetConnectionClose()
		return fiber.NewError(fiber.StatusBadRequest, "the request body could not be read")
	}
	if len(body) > s.BodyLimit {
		return refuseBody(c)
	}
	ctx.Request.SetBodyRaw(body)
	return c.Next()
}

// refuseBody answers 413 and has the connection drained after the answer is written.
func refuseBody(c *fiber.Ctx) error {
	// fasthttp closes a connection flagged with SetConnectionClose right after the response, before the
	// drain could run; "Close" is sent as a plain header (tokens are case-insensitive, RFC 9110 7.6.1),
	// and the drain closes the connection.
	c.Set(fiber.HeaderConnection, "Close")
	c.Context().Hijack(func(conn net.Conn) {
		_ = conn.SetReadDeadline(time.Now().Add(drainTimeout))
		_, _ = io.CopyN(io.Discard, conn, maxDrain)
	})
	return fiber.ErrRequestEntityTooLarge
}

// maxUserAgent bounds the User-Agent events keep.
const maxUserAgent = 1024

// requestContext gives the request a context that carries what events record of it: the request id,
// the client address and the User-Agent (at most 1,024 bytes), copied out of Fiber's buffers.
func requestContext(c *fiber.Ctx) error {
	id, _ := c.Locals(requestIDLocal).(string)
	ua := c.Get(fiber.HeaderUserAgent)
	if len(ua) > maxUserAgent {
		n := maxUserAgent
		for n > 0 && !utf8.RuneStart(ua[n]) {
			n-- // cut at a character boundary
		}
		ua = ua[:n]
	}
	c.SetUserContext(passkey.WithRequest(c.UserContext(), passkey.Request{
		ID: strings.Clone(id), SourceIP: ClientIP(c), UserAgent: strings.Clone(ua),
	}))
	return c.Next()
}

// deadline gives the request's context its deadline, RequestTimeout from now. A handler does not stop
// by itself at the deadline (Fiber cannot interrupt it), but every store call it makes does, and its
// error answers the request 503 service_unavailable: a client gone after a few seconds is not answered
// 200 much later, and no pool connection is held for longer.
func (s *server) deadline(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), s.RequestTimeout)
	defer cancel()
	c.SetUserContext(ctx)
	return c.Next()
}

// NewPublic builds the public API: Hanko's /{tenant_id}/... routes and the key-scoped routes.
func NewPublic(svc Services, o Options) *fiber.App {
	s := newServer(svc, o)
	s.linkBase = strings.TrimRight(o.PublicURL, "/")
	app := s.newFiberApp("public")
	app.Get("/", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"name": "passkey-server", "status": "ok"})
	})
	add(app, fiber.MethodGet, "/js/passkeys.js", browserHelper) // before the tenant routes, whose first segment would take "js"
	s.registerPlayground(app)
	s.registerPublic(app)
	return app
}

// NewAdmin builds the admin API. Everything but the health checks needs an admin token.
func NewAdmin(svc Services, o Options) *fiber.App {
	s := newServer(svc, o)
	app := s.newFiberApp("admin")
	s.registerAdmin(app)
	return app
}

// accessLog writes one line per request (request id, tenant, route, status, latency, client address).
// Errors are answered here through the app's error handler, so the line has the final status; the
// error handler logs the cause of a 500 once. No header or body is logged, so no key or credential is.
func (s *server) accessLog(app string) fiber.Handler {
	log := s.log
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		if err != nil {
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				return herr
			}
		}
		if !log.Enabled(c.UserContext(), slog.LevelInfo) {
			return nil
		}
		attrs := []slog.Attr{
			slog.String("app", app),
			slog.String("method", c.Method()),
			slog.String("route", c.Route().Path),
			slog.Int("status", c.Response().StatusCode()),
			slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("ip", ClientIP(c)),
		}
		if id, ok := c.Locals(requestIDLocal).(string); ok {
			attrs = append(attrs, slog.String("request_id", id))
		}
		if snap := snapshotOf(c); snap != nil {
			attrs = append(attrs, slog.String("tenant", snap.ID.String()))
		}
		log.LogAttrs(c.UserContext(), slog.LevelInfo, "request", attrs...)
		return nil
	}
}
