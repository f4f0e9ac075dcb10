package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
)

// Limits of an endpoint.
const (
	MaxURLLength         = 2048
	MaxDescriptionLength = 256 // characters
	// DefaultRotationOverlap is how long the previous secret still signs after a rotation, so that
	// receivers can switch to the new one without missing a message.
	DefaultRotationOverlap = 24 * time.Hour
	// secretBytes is the size of a secret (Standard Webhooks asks for 24 to 64 bytes).
	secretBytes = 32
	// SecretPrefix starts every secret, as Standard Webhooks' libraries expect.
	SecretPrefix = "whsec_"
	// DefaultDeliveryLimit is how many deliveries a page of a listing holds when the request names no
	// size, and the most it may name.
	DefaultDeliveryLimit = 100
)

// Options configure a Service. Store, Sealer, Tenants and Index are required.
type Options struct {
	Store   Store
	Sealer  Sealer
	Tenants Tenants
	Index   *Index
	// AllowPrivate accepts URLs that name private, loopback or link-local hosts
	// (PASSKEY_WEBHOOK_ALLOW_PRIVATE); AllowHTTP accepts http:// URLs (PASSKEY_WEBHOOK_ALLOW_HTTP).
	AllowPrivate bool
	AllowHTTP    bool
	// RotationOverlap: DefaultRotationOverlap when zero.
	RotationOverlap time.Duration
	Now             func() time.Time
	Logger          *slog.Logger
}

// Service manages a tenant's webhook endpoints and their deliveries (the admin API).
type Service struct{ o Options }

// NewService returns a Service.
func NewService(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RotationOverlap <= 0 {
		o.RotationOverlap = DefaultRotationOverlap
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{o: o}
}

// Input is what an admin sets on an endpoint; nil fields are left as they are (on creation: events
// and URL are required, enabled defaults to true).
type Input struct {
	URL         *string
	Events      *[]string
	Description *string
	Enabled     *bool
}

// Create makes an endpoint and returns it with its secret (whsec_…), which is shown only now.
func (s *Service) Create(ctx context.Context, tenantID uuid.UUID, in Input) (Endpoint, string, error) {
	var p passkey.Problems
	if in.URL == nil {
		p.Add("url is required")
	}
	if in.Events == nil {
		p.Add("events is required")
	}
	now := s.o.Now().UTC()
	ep := Endpoint{ID: newID(), TenantID: tenantID, Enabled: true, CreatedAt: now, UpdatedAt: now}
	s.apply(&ep, in, &p)
	if err := p.Err(ErrInvalidEndpoint); err != nil {
		return Endpoint{}, "", err
	}
	if err := s.o.Tenants.Exists(ctx, tenantID); err != nil {
		return Endpoint{}, "", err
	}
	secret, sealed, err := s.newSecret(ep.ID)
	if err != nil {
		return Endpoint{}, "", err
	}
	if err := s.o.Store.CreateEndpoint(ctx, ep, Secrets{Current: sealed}); err != nil {
		return Endpoint{}, "", err
	}
	s.changed(ctx)
	return ep, secret, nil
}

// List returns a tenant's endpoints, oldest first.
func (s *Service) List(ctx context.Context, tenantID uuid.UUID) ([]Endpoint, error) {
	if err := s.o.Tenants.Exists(ctx, tenantID); err != nil {
		return nil, err
	}
	return s.o.Store.ListEndpoints(ctx, tenantID)
}

// Get returns one endpoint.
func (s *Service) Get(ctx context.Context, tenantID, id uuid.UUID) (Endpoint, error) {
	return s.o.Store.GetEndpoint(ctx, tenantID, id)
}

// Update changes an endpoint. Enabling it again clears why it was disabled.
func (s *Service) Update(ctx context.Context, tenantID, id uuid.UUID, in Input) (Endpoint, error) {
	var p passkey.Problems
	var probe Endpoint
	s.apply(&probe, in, &p) // validate before touching the store
	if err := p.Err(ErrInvalidEndpoint); err != nil {
		return Endpoint{}, err
	}
	ep, err := s.o.Store.GetEndpoint(ctx, tenantID, id)
	if err != nil {
		return Endpoint{}, err
	}
	s.apply(&ep, in, &p)
	ep.UpdatedAt = s.o.Now().UTC()
	if err := s.o.Store.UpdateEndpoint(ctx, ep); err != nil {
		return Endpoint{}, err
	}
	s.changed(ctx)
	return ep, nil
}

// Delete deletes an endpoint and its deliveries; their pending attempts are dropped.
func (s *Service) Delete(ctx context.Context, tenantID, id uuid.UUID) error {
	if err := s.o.Store.DeleteEndpoint(ctx, tenantID, id); err != nil {
		return err
	}
	s.changed(ctx)
	return nil
}

// RotateSecret gives an endpoint a new secret and returns it (shown only now). The previous secret
// keeps signing, beside the new one, for the rotation overlap.
func (s *Service) RotateSecret(ctx context.Context, tenantID, id uuid.UUID) (string, error) {
	secret, sealed, err := s.newSecret(id)
	if err != nil {
		return "", err
	}
	if err := s.o.Store.RotateSecret(ctx, tenantID, id, sealed, s.o.Now().Add(s.o.RotationOverlap).UTC()); err != nil {
		return "", err
	}
	return secret, nil
}

// Deliveries returns one page of an endpoint's deliveries, newest first, and where the next page
// starts. A filter that breaks its rules (DeliveryFilter.Validate) is a passkey.ErrInvalidRequest.
func (s *Service) Deliveries(ctx context.Context, tenantID, endpointID uuid.UUID, f DeliveryFilter) (DeliveryPage, error) {
	if err := f.Validate(); err != nil {
		return DeliveryPage{}, err
	}
	if _, err := s.o.Store.GetEndpoint(ctx, tenantID, endpointID); err != nil {
		return DeliveryPage{}, err
	}
	if f.Limit <= 0 {
		f.Limit = DefaultDeliveryLimit
	}
	var statuses []Status
	for _, st := range f.Statuses {
		if !slices.Contains(statuses, st) {
			statuses = append(statuses, st)
		}
	}
	// One more than the page: whether it comes tells whether there is a next page, so the last page
	// links to none (rather than to an empty one).
	ds, err := s.o.Store.ListDeliveries(ctx, tenantID, endpointID, DeliveryFilter{Statuses: statuses, After: f.After, Limit: f.Limit + 1})
	if err != nil {
		return DeliveryPage{}, err
	}
	page := DeliveryPage{Deliveries: ds}
	if len(ds) > f.Limit {
		page.Deliveries = ds[:f.Limit]
		last := ds[f.Limit-1]
		page.Next = &DeliveryCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return page, nil
}

// Redeliver sends a delivery of the endpoint again, from a first attempt, with the same webhook-id
// (so a receiver that saw it may drop it). A delivery still pending is left as it is.
func (s *Service) Redeliver(ctx context.Context, tenantID, endpointID, deliveryID uuid.UUID) (Delivery, error) {
	d, err := s.o.Store.GetDelivery(ctx, tenantID, deliveryID)
	if err != nil {
		return Delivery{}, err
	}
	if d.EndpointID != endpointID {
		return Delivery{}, ErrDeliveryNotFound
	}
	if d.Status == StatusPending {
		return d, nil
	}
	return s.o.Store.Redeliver(ctx, tenantID, deliveryID)
}

// SendTest queues a webhook.test message to an endpoint, whatever it subscribes to.
func (s *Service) SendTest(ctx context.Context, tenantID, endpointID uuid.UUID) (Delivery, error) {
	ep, err := s.o.Store.GetEndpoint(ctx, tenantID, endpointID)
	if err != nil {
		return Delivery{}, err
	}
	if !ep.Enabled {
		return Delivery{}, passkey.WithDetails(ErrInvalidEndpoint, "the endpoint is disabled")
	}
	msg, err := newMessage(Test, s.o.Now(), map[string]any{"tenant_id": tenantID.String(), "webhook_id": endpointID.String()})
	if err != nil {
		return Delivery{}, err
	}
	ds, err := s.o.Store.Enqueue(ctx, tenantID, []uuid.UUID{endpointID}, msg.Type, msg.Payload)
	if err != nil {
		return Delivery{}, err
	}
	if len(ds) == 0 {
		return Delivery{}, ErrNotFound
	}
	return ds[0], nil
}

// changed reloads this instance's index after an endpoint change (other instances see it within their
// refresh interval).
func (s *Service) changed(ctx context.Context) {
	if err := s.o.Index.Load(ctx); err != nil {
		s.o.Logger.Warn("webhooks: reload subscriptions after a change", "error", err)
	}
}

// apply validates in and sets it on ep, adding what is wrong to p.
func (s *Service) apply(ep *Endpoint, in Input, p *passkey.Problems) {
	if in.URL != nil {
		u := strings.TrimSpace(*in.URL)
		if problem := s.checkURL(u); problem != "" {
			p.Add("url %s", problem)
		}
		ep.URL = u
	}
	if in.Events != nil {
		events, problems := checkEvents(*in.Events)
		for _, pr := range problems {
			p.Add("%s", pr)
		}
		ep.Events = events
	}
	if in.Description != nil {
		d := *in.Description
		p.Text("description", d)
		if utf8.RuneCountInString(d) > MaxDescriptionLength {
			p.Add("description must be at most %d characters", MaxDescriptionLength)
		}
		ep.Description = d
	}
	if in.Enabled != nil {
		ep.Enabled = *in.Enabled
		ep.DisabledReason = ""
		if !ep.Enabled {
			ep.DisabledReason = DisabledByAdmin
		}
	}
}

// checkURL returns what is wrong with an endpoint URL, or "". Hosts are checked here as far as the
// URL shows them (an IP literal, localhost); the address each delivery connects to is checked again,
// after resolution, at connect time.
func (s *Service) checkURL(raw string) string {
	if raw == "" {
		return "must not be empty"
	}
	if len(raw) > MaxURLLength {
		return fmt.Sprintf("must be at most %d bytes", MaxURLLength)
	}
	if !passkey.StorableText(raw) {
		return "must be valid UTF-8 without NUL characters"
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "must be an absolute URL"
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !s.o.AllowHTTP {
			return "must use https"
		}
	default:
		return "must use https"
	}
	if u.User != nil {
		return "must not contain credentials"
	}
	if u.Fragment != "" {
		return "must not contain a fragment"
	}
	if !s.o.AllowPrivate && privateHost(u.Hostname()) {
		return "must not point to a private, loopback or link-local address"
	}
	return ""
}

// privateHost reports whether a URL's host is a blocked address or a name that always means this
// machine or a local network.
func privateHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		return Blocked(ip)
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasSuffix(host, ".local") ||
		strings.HasSuffix(host, ".internal")
}

// checkEvents returns the event types without repeats, and what is wrong with them.
func checkEvents(in []string) ([]string, []string) {
	var problems []string
	if len(in) == 0 {
		problems = append(problems, "events must name at least one event type")
	}
	out := make([]string, 0, len(in))
	for _, e := range in {
		if !slices.Contains(EventTypes, e) {
			if passkey.StorableText(e) && len(e) <= 64 {
				problems = append(problems, fmt.Sprintf("events: unknown event type %q", e))
			} else {
				problems = append(problems, "events: unknown event type")
			}
			continue
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, problems
}

// newSecret returns a new secret in its whsec_ form and sealed for the endpoint.
func (s *Service) newSecret(endpointID uuid.UUID) (string, []byte, error) {
	raw := make([]byte, secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, err
	}
	sealed, err := s.o.Sealer.Seal(raw, secretAD(endpointID))
	if err != nil {
		return "", nil, fmt.Errorf("seal webhook secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(raw), sealed, nil
}

// newID returns a version 7 UUID: ids grow with time, so inserts append to the primary key's index.
func newID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}

// RunRetention deletes finished deliveries (succeeded, failed) whose last attempt is older than keep,
// once at the start and then every every (an hour when zero), until ctx ends; keep 0 keeps them. Each
// delivery holds its whole payload, so without it the table only grows; a pending one is never
// deleted.
func (s *Service) RunRetention(ctx context.Context, keep, every time.Duration) {
	if keep <= 0 {
		return
	}
	if every <= 0 {
		every = time.Hour
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		cutoff := s.o.Now().Add(-keep)
		n, err := s.o.Store.DeleteFinishedBefore(ctx, cutoff)
		switch {
		case err != nil && ctx.Err() == nil:
			s.o.Logger.Error("webhooks: delete old deliveries", "error", err, "before", cutoff)
		case n > 0:
			s.o.Logger.Info("webhooks: deleted old deliveries", "deliveries", n, "before", cutoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
