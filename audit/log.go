package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/tenant"
)

// maxFilterText bounds the substring filters, so a query cannot send the database huge patterns.
const maxFilterText = 256

// minFilterYear and maxFilterYear bound the times of a filter to what every store takes: year 0 (1 BC)
// or, after conversion to UTC, year 10000 is not a time PostgreSQL or SQLite's text form can compare,
// and no event was recorded then.
const (
	minFilterYear = 1
	maxFilterYear = 9999
)

// Tenants finds tenants; *tenant.Service is one. Log uses it to answer tenant.ErrNotFound for a
// tenant that does not exist.
type Tenants interface {
	Get(ctx context.Context, id uuid.UUID) (tenant.Tenant, error)
}

// Log answers queries over the audit log (docs/hanko-compatibility.md#audit-log-filters).
type Log struct {
	store   Store
	tenants Tenants
	known   map[string]bool
}

// NewLog returns the query service over store. tenants, when not nil, makes List answer
// tenant.ErrNotFound for a tenant that does not exist.
func NewLog(store Store, tenants Tenants) *Log {
	known := map[string]bool{}
	for _, t := range Types() {
		known[t] = true
	}
	return &Log{store: store, tenants: tenants, known: known}
}

// List returns one page of the events of f.TenantID (the deployment-wide events when it is nil) that
// match f, newest first, and the total count. It checks the filter's rules and reports every problem
// at once, as a passkey.ValidationError wrapping ErrInvalidFilter: each type must be a known type
// (duplicates are dropped), the times within the years 1 to 9999 (UTC), the substring filters
// storable text of at most 256 bytes.
func (l *Log) List(ctx context.Context, f Filter) ([]Event, int, error) {
	f, err := l.Check(f)
	if err != nil {
		return nil, 0, err
	}
	if f.TenantID != nil && l.tenants != nil {
		if _, err := l.tenants.Get(ctx, *f.TenantID); err != nil {
			return nil, 0, err
		}
	}
	events, total, err := l.store.List(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("list audit logs: %w", err)
	}
	return events, total, nil
}

// Check checks the rules of a filter (see List) and returns it without duplicate types.
func (l *Log) Check(f Filter) (Filter, error) {
	var p passkey.Problems
	types := f.Types[:0:0]
	seen := map[string]bool{}
	for _, t := range f.Types {
		switch {
		case t == "" || seen[t]:
		case !l.known[t]:
			p.Add("type %s is not a known audit log type", quote(t))
		default:
			types = append(types, t)
		}
		seen[t] = true
	}
	f.Types = types
	for _, b := range []struct {
		name string
		t    time.Time
	}{{"start_time", f.Start}, {"end_time", f.End}} {
		if !b.t.IsZero() && (b.t.UTC().Year() < minFilterYear || b.t.UTC().Year() > maxFilterYear) {
			p.Add("%s must be between the years %04d and %d (UTC)", b.name, minFilterYear, maxFilterYear)
		}
	}
	for _, q := range []struct {
		name  string
		value string
	}{{"actor_user_id", f.ActorUserID}, {"meta_source_ip", f.SourceIP}, {"q", f.Q}} {
		switch {
		case !passkey.StorableText(q.value):
			p.Add("%s must be valid UTF-8 without NUL characters", q.name)
		case len(q.value) > maxFilterText:
			p.Add("%s cannot be longer than %d bytes", q.name, maxFilterText)
		}
	}
	return f, p.Err(ErrInvalidFilter)
}

// quote quotes a client's value for details, shortened.
func quote(s string) string {
	if len(s) > 64 {
		s = clean(s, 64) + "…"
	}
	return fmt.Sprintf("%q", strings.Clone(s))
}
