package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/api"
	"github.com/passkey-server/passkey-server/tenant"
)

type localKey int

const (
	recorderLocal localKey = iota
	actorLocal
	transactionLocal
	tenantLocal
)

// maxFilterText bounds the substring filters, so a query cannot send the database huge patterns.
const maxFilterText = 256

// maxErrorBody is the largest response body the middleware reads an error code from.
const maxErrorBody = 8 << 10

// Route says what a request to one route records.
type Route struct {
	// Type is the event type. For a ceremony route it is the stem: the event is Type+"_succeeded" or
	// Type+"_failed".
	Type string
	// Ceremony is the ceremony of a ceremony route (CeremonyRegistration, ...).
	Ceremony string
	// Plain routes record Type itself, and only when the request succeeded (credential updated or
	// deleted, admin changes).
	Plain bool
	// Global routes are plain routes whose event is deployment-wide: TenantID is nil and the route's
	// tenant goes into Details["tenant_id"]. For the deletion of a tenant, whose events are deleted
	// with it.
	Global bool
	// TenantFromResponse takes the event's tenant from the "id" member of the JSON response, for a
	// route that creates a tenant (POST /tenants answers {"id": ...}); the tenant package cannot call
	// SetTenant, as audit depends on it.
	TenantFromResponse bool
	// ResponseDetails copies string members of a plain route's JSON response into Details, as
	// response member → detail key (the id of a created API key, the kid of a new signing key). Never
	// name a secret here.
	ResponseDetails map[string]string
}

// RouteKey is the key of a route in the table Middleware takes: the method and the route pattern as
// Fiber reports it (c.Route().Path), such as RouteKey("POST", "/:tenant_id/registration/initialize").
func RouteKey(method, path string) string { return method + " " + path }

// Describe maps an error to its response: the status, the stable error code and the client-safe
// details. The app's error handler uses the same table, so an event stores what the client was told
// and never internal error text.
type Describe func(err error) (status int, code, details string)

// Middleware records one event per request to a route of routes, after the handlers ran (see
// Routes.Match: a request that a group middleware rejected before its route ran counts too):
// "<Type>_succeeded" or "<Type>_failed" for ceremony routes, "<Type>" for plain routes (successes
// only). Requests to other routes record nothing. The event has the tenant (the request's
// tenant, else the :tenant_id parameter when it is a UUID; a request with neither records nothing),
// the request id, the client address (api.ClientIP, which believes X-Forwarded-For only from trusted
// proxies), the User-Agent (at most 1,024 bytes), the actor and transaction set with SetActor and
// SetTransaction, for failures the error code and details as describe gives them, and for plain
// routes what they acted on (plainDetails).
//
// A request failed when the handler returned an error or the response status is 400 or more. The
// handler's error is returned unchanged, after the event is recorded, so the app's error handler
// still writes the response. Put the middleware inside the middleware that renders errors (the
// access log): when an outer middleware has already turned the error into a response, the code is
// read from the JSON error body ("code", "details"), which is what the client was sent.
//
// Recording never blocks and never fails a request (see Recorder.Record).
func Middleware(rec *Recorder, routes *Routes, describe Describe) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if rec == nil {
			return c.Next()
		}
		c.Locals(recorderLocal, rec)
		err := c.Next()
		route, ok := routes.Match(c)
		if !ok {
			return err
		}
		status := c.Response().StatusCode()
		failed := err != nil || status >= fiber.StatusBadRequest
		plain := route.Plain || route.Global
		if plain && failed {
			return err
		}
		e := requestEvent(c)
		e.Type = route.Type
		e.Ceremony = route.Ceremony
		switch {
		case plain:
		case failed:
			e.Type += SuffixFailed
			e.Error = failure(c, err, describe)
		default:
			e.Type += SuffixSucceeded
		}
		if route.TenantFromResponse && !failed {
			if id, ok := responseID(c); ok {
				e.TenantID = &id
			}
		}
		if plain {
			e.Details = plainDetails(c, route)
		}
		if route.Global {
			if e.TenantID != nil {
				e.Details["tenant_id"] = e.TenantID.String()
			}
			e.TenantID = nil
		} else if e.TenantID == nil {
			// Nobody could read an event without a tenant (a bogus key on a key-scoped route), and
			// unauthenticated clients must not be able to fill the table with them.
			return err
		}
		rec.Record(e)
		return err
	}
}

// plainDetails returns what a plain route acted on: its path parameters other than the tenant (the
// credential, API key or user), percent-decoded as the handlers read them (raw when malformed), and the
// members of the response that route.ResponseDetails names.
func plainDetails(c *fiber.Ctx, route Route) map[string]any {
	d := map[string]any{}
	for _, name := range c.Route().Params {
		if name == "tenant_id" || c.Params(name) == "" {
			continue
		}
		v, err := api.PathParam(c, name)
		if err != nil {
			v = c.Params(name)
		}
		d[name] = strings.Clone(v)
	}
	if len(route.ResponseDetails) == 0 {
		return d
	}
	body := c.Response().Body()
	var members map[string]any
	if len(body) == 0 || len(body) > maxErrorBody || json.Unmarshal(body, &members) != nil {
		return d
	}
	for member, key := range route.ResponseDetails {
		if v, ok := members[member].(string); ok {
			d[key] = v
		}
	}
	return d
}

// Admin records an event of type typ for the request now, with the request's metadata (request id,
// client address, User-Agent, actor), tenantID (nil for a deployment-wide event; for the deletion of
// a tenant, pass nil and put the tenant id in details, as the tenant's events are deleted with it)
// and details. It is for changes the route table cannot describe; call it after the change is made.
// It records nothing when the request did not pass through Middleware.
func Admin(c *fiber.Ctx, typ string, tenantID *uuid.UUID, details map[string]any) {
	rec, _ := c.Locals(recorderLocal).(*Recorder)
	if rec == nil {
		return
	}
	e := requestEvent(c)
	e.TenantID = tenantID
	e.Type = typ
	e.Details = details
	rec.Record(e)
}

// SetActor records userID (the application's user id) as the actor of the request's event. Call it
// as soon as the handler knows the user, so that failures have it too. The string is copied.
func SetActor(c *fiber.Ctx, userID string) {
	c.Locals(actorLocal, strings.Clone(userID))
}

// SetTransaction records id (the application's transaction id) as the transaction of the request's
// event. The string is copied.
func SetTransaction(c *fiber.Ctx, id string) {
	c.Locals(transactionLocal, strings.Clone(id))
}

// SetTenant sets the tenant of the request's event, for routes whose tenant is not in the path or
// the request context (the creation of a tenant).
func SetTenant(c *fiber.Ctx, id uuid.UUID) {
	c.Locals(tenantLocal, id)
}

// requestEvent returns an event with the request's metadata. Record copies the strings.
func requestEvent(c *fiber.Ctx) Event {
	e := Event{
		SourceIP:  api.ClientIP(c),
		UserAgent: c.Get(fiber.HeaderUserAgent),
	}
	e.RequestID, _ = c.Locals("requestid").(string)
	e.ActorUserID, _ = c.Locals(actorLocal).(string)
	e.TransactionID, _ = c.Locals(transactionLocal).(string)
	if id, ok := c.Locals(tenantLocal).(uuid.UUID); ok {
		e.TenantID = &id
	} else if snap := tenant.FromContext(c); snap != nil {
		id := snap.ID
		e.TenantID = &id
	} else if id, err := uuid.Parse(c.Params("tenant_id")); err == nil {
		e.TenantID = &id
	}
	return e
}

// failure returns the stored error of a failed request: "code" or "code: details". With an error it
// asks describe; without one (an outer middleware already wrote the error response) it reads the code
// and details from the JSON error body, or names the status.
func failure(c *fiber.Ctx, err error, describe Describe) string {
	var code, details string
	switch {
	case err != nil && describe != nil:
		_, code, details = describe(err)
	case err != nil:
		code = "internal_error"
		var fe *fiber.Error
		if errors.As(err, &fe) {
			code = statusCode(fe.Code)
		}
	default:
		code, details = bodyCode(c)
	}
	if details == "" {
		return code
	}
	return code + ": " + details
}

// bodyCode reads "code" and "details" from a JSON error body, or names the status.
func bodyCode(c *fiber.Ctx) (code, details string) {
	body := c.Response().Body()
	if len(body) > 0 && len(body) <= maxErrorBody && bytes.Contains(c.Response().Header.ContentType(), []byte("json")) {
		var b struct {
			Code    string `json:"code"`
			Details string `json:"details"`
		}
		if json.Unmarshal(body, &b) == nil && b.Code != "" {
			return b.Code, b.Details
		}
	}
	return statusCode(c.Response().StatusCode()), ""
}

// responseID reads the "id" member of a JSON response body.
func responseID(c *fiber.Ctx) (uuid.UUID, bool) {
	body := c.Response().Body()
	if len(body) == 0 || len(body) > maxErrorBody {
		return uuid.Nil, false
	}
	var b struct {
		ID uuid.UUID `json:"id"`
	}
	if json.Unmarshal(body, &b) != nil || b.ID == uuid.Nil {
		return uuid.Nil, false
	}
	return b.ID, true
}

// statusCode names an HTTP status in snake case ("not_found").
func statusCode(status int) string {
	text := http.StatusText(status)
	if text == "" {
		return fmt.Sprintf("status_%d", status)
	}
	return strings.ToLower(strings.NewReplacer(" ", "_", "-", "_", "'", "").Replace(text))
}

// Entry is one audit log entry on the wire (Hanko's AuditLog, contract §1.4, plus ceremony).
type Entry struct {
	ID          uuid.UUID `json:"id"`
	Type        string    `json:"type"`
	Error       string    `json:"error,omitempty"`
	RequestID   string    `json:"meta_http_request_id"`
	SourceIP    string    `json:"meta_source_ip"`
	UserAgent   string    `json:"meta_user_agent"`
	ActorUserID string    `json:"actor_user_id,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// TenantID is null only for deployment-wide events, which the tenant endpoints never return.
	TenantID *uuid.UUID `json:"tenant_id"`
	// TransactionID is null, never omitted, when the event has no transaction (as in Hanko).
	TransactionID *string `json:"transaction_id"`
	Ceremony      string  `json:"ceremony,omitempty"`
	// Details says what an admin or credential change acted on (credential_id, secret_id, user_id,
	// api_key_id, kid; tenant_id for a deleted tenant).
	Details map[string]any `json:"details,omitempty"`
}

// NewEntry returns the wire form of e.
func NewEntry(e Event) Entry {
	out := Entry{
		ID: e.ID, Type: e.Type, Error: e.Error, RequestID: e.RequestID, SourceIP: e.SourceIP,
		UserAgent: e.UserAgent, ActorUserID: e.ActorUserID, CreatedAt: e.CreatedAt, UpdatedAt: e.CreatedAt,
		TenantID: e.TenantID, Ceremony: e.Ceremony, Details: e.Details,
	}
	if e.TransactionID != "" {
		tx := e.TransactionID
		out.TransactionID = &tx
	}
	return out
}

// Tenants finds tenants; *tenant.Service is one. AdminList uses it to answer 404 for a tenant that
// does not exist.
type Tenants interface {
	Get(ctx context.Context, id uuid.UUID) (tenant.Tenant, error)
}

// Handlers answers audit log queries (contract §4.7): GET /{tenant_id}/audit_logs on the public API
// and GET /tenants/{tenant_id}/audit_logs on the admin API.
type Handlers struct {
	store   Store
	tenants Tenants
	known   map[string]bool
}

// NewHandlers returns the query handlers over store. types are the types a query may filter by (see
// Types); tenants, when not nil, makes AdminList answer tenant.ErrNotFound for unknown tenants.
func NewHandlers(store Store, tenants Tenants, types []string) *Handlers {
	known := make(map[string]bool, len(types))
	for _, t := range types {
		known[t] = true
	}
	return &Handlers{store: store, tenants: tenants, known: known}
}

// errNoTenant means PublicList ran without the tenant middleware: a wiring mistake, hence a 500.
var errNoTenant = errors.New("audit: no tenant in the request context")

// PublicList answers GET /{tenant_id}/audit_logs for the request's tenant (tenant.FromContext); the
// caller's middleware checks the API key.
func (h *Handlers) PublicList(c *fiber.Ctx) error {
	snap := tenant.FromContext(c)
	if snap == nil {
		return errNoTenant
	}
	return h.list(c, &snap.ID)
}

// AdminList answers GET /tenants/:tenant_id/audit_logs.
func (h *Handlers) AdminList(c *fiber.Ctx) error {
	id, err := uuid.Parse(c.Params("tenant_id"))
	if err != nil {
		return tenant.ErrInvalidID
	}
	if h.tenants != nil {
		if _, err := h.tenants.Get(c.UserContext(), id); err != nil {
			return err
		}
	}
	return h.list(c, &id)
}

// DeploymentList answers GET /audit_logs on the admin API: the deployment-wide events, which belong
// to no tenant (the deletion of a tenant, whose id is in details).
func (h *Handlers) DeploymentList(c *fiber.Ctx) error {
	return h.list(c, nil)
}

// list answers a query over the events of tenantID, or the deployment-wide events when it is nil.
func (h *Handlers) list(c *fiber.Ctx, tenantID *uuid.UUID) error {
	f, err := h.ParseFilter(c)
	if err != nil {
		return err
	}
	f.TenantID = tenantID
	events, total, err := h.store.List(c.UserContext(), f)
	if err != nil {
		return fmt.Errorf("list audit logs: %w", err)
	}
	out := make([]Entry, 0, len(events))
	for _, e := range events {
		out = append(out, NewEntry(e))
	}
	api.SetPaginationHeaders(c, f.Page.Number, f.Page.Size, total)
	return c.JSON(out)
}

// ParseFilter reads the query parameters of an audit log query (contract §4.7): page and per_page,
// type (repeated, comma-separated, or both; each a known type), start_time and end_time (RFC 3339),
// actor_user_id, meta_source_ip and q (substrings). Every problem is reported at once, as an
// api.ValidationError wrapping ErrInvalidFilter. TenantID is left for the caller to set.
func (h *Handlers) ParseFilter(c *fiber.Ctx) (Filter, error) {
	var p api.Problems
	var f Filter
	page, perPage, err := api.Page(c)
	var verr *api.ValidationError
	switch {
	case errors.As(err, &verr):
		p = append(p, verr.Problems...)
	case err != nil:
		p.Add("%s", api.Details(err))
	}
	f.Page = passkey.Page{Number: page, Size: perPage}

	seen := map[string]bool{}
	for _, raw := range c.Context().QueryArgs().PeekMulti("type") {
		for _, t := range strings.Split(string(raw), ",") {
			t = strings.TrimSpace(t)
			switch {
			case t == "" || seen[t]:
			case !h.known[t]:
				p.Add("type %s is not a known audit log type", quote(t))
				seen[t] = true
			default:
				f.Types = append(f.Types, t)
				seen[t] = true
			}
		}
	}

	for _, q := range []struct {
		name string
		dst  *time.Time
	}{{"start_time", &f.Start}, {"end_time", &f.End}} {
		name, dst := q.name, q.dst
		raw := c.Query(name)
		if raw == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			p.Add("%s must be an RFC 3339 time, such as 2026-01-02T15:04:05Z", name)
			continue
		}
		*dst = t.UTC()
	}

	for _, q := range []struct {
		name string
		dst  *string
	}{{"actor_user_id", &f.ActorUserID}, {"meta_source_ip", &f.SourceIP}, {"q", &f.Q}} {
		name, dst := q.name, q.dst
		raw := c.Query(name)
		switch {
		case raw == "":
		case !api.StorableText(raw):
			p.Add("%s must be valid UTF-8 without NUL characters", name)
		case len(raw) > maxFilterText:
			p.Add("%s cannot be longer than %d bytes", name, maxFilterText)
		default:
			*dst = strings.Clone(raw)
		}
	}
	return f, p.Err(ErrInvalidFilter)
}

// quote quotes a client's value for details, shortened.
func quote(s string) string {
	if len(s) > 64 {
		s = clean(s, 64) + "…"
	}
	return fmt.Sprintf("%q", s)
}
