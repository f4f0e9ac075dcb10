package passkey

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// EventType names what happened. Services emit an Event of one of these types at the point where the
// change or failure happens; the audit log, metrics and (later) webhooks subscribe to them.
type EventType string

// Ceremony events: one step of a WebAuthn ceremony (Event.Ceremony names which) began or finished.
const (
	// CeremonyStarted: an initialize step answered with options.
	CeremonyStarted EventType = "ceremony.started"
	// CeremonyStartFailed: an initialize step was refused (Event.Err says why).
	CeremonyStartFailed EventType = "ceremony.start_failed"
	// CeremonySucceeded: a finalize step verified the credential and issued a token.
	CeremonySucceeded EventType = "ceremony.succeeded"
	// CeremonyFailed: a finalize step was refused (Event.Err says why).
	CeremonyFailed EventType = "ceremony.failed"
)

// Credential and user events.
const (
	// CredentialRenamed: a credential got a new name.
	CredentialRenamed EventType = "credential.renamed"
	// CredentialDeleted: a credential was deleted; it can never log in again.
	CredentialDeleted EventType = "credential.deleted"
	// CredentialCloneFlagged: a login showed a signature counter that did not grow, and the credential
	// now carries a clone warning.
	CredentialCloneFlagged EventType = "credential.clone_flagged"
	// CredentialBackupStateChanged: a login reported a backup state other than the stored one (a
	// passkey was synced, or stopped being).
	CredentialBackupStateChanged EventType = "credential.backup_state_changed"
	// CredentialAuthenticatorStatusChanged: a login found that the FIDO Metadata Service now reports
	// the credential's authenticator as REVOKED or compromised (Details: aaguid, previous_status,
	// status, and action: flagged under a monitoring policy, refused under an enforced one).
	CredentialAuthenticatorStatusChanged EventType = "credential.authenticator_status_changed"
	// UserDeleted: a user was deleted with all its credentials and transactions.
	UserDeleted EventType = "user.deleted"
)

// Tenant events.
const (
	// TenantCreated: a tenant was made.
	TenantCreated EventType = "tenant.created"
	// TenantRenamed: a tenant got a new display name.
	TenantRenamed EventType = "tenant.renamed"
	// TenantConfigChanged: a tenant's config was replaced.
	TenantConfigChanged EventType = "tenant.config_changed"
	// TenantDeleted: a tenant was deleted with everything it owned.
	TenantDeleted EventType = "tenant.deleted"
	// APIKeyCreated: an API key was made (Details: api_key_id, name, kind; never the secret).
	APIKeyCreated EventType = "api_key.created"
	// APIKeyRevoked: an API key was deleted (Details: secret_id).
	APIKeyRevoked EventType = "api_key.revoked"
	// SigningKeyRotated: a tenant has a new active signing key (Details: kid, algorithm).
	SigningKeyRotated EventType = "signing_key.rotated"
	// WebhookEndpointDisabled: the webhook sender disabled an endpoint on its own (a 410 answer, or
	// failing for days; Details: webhook_id, reason).
	WebhookEndpointDisabled EventType = "webhook.endpoint_disabled"
	// TenantImported: an archive or another server's tenant was imported (Details: on_conflict and the
	// users, credentials and transactions created, replaced and skipped).
	TenantImported EventType = "tenant.imported"
)

// Ceremony steps, as in Event.Step.
const (
	StepInitialize = "initialize"
	StepFinalize   = "finalize"
)

// StepType is the type of the event of a ceremony step that ended with err (nil: it succeeded).
func StepType(step string, err error) EventType {
	switch {
	case step == StepInitialize && err == nil:
		return CeremonyStarted
	case step == StepInitialize:
		return CeremonyStartFailed
	case err == nil:
		return CeremonySucceeded
	}
	return CeremonyFailed
}

// Event is one thing that happened in a tenant. Only what a subscriber may show is put here: ids and
// names, never a secret, a key or a credential's public key. An event owns its strings: an emitter
// never puts a string into it that points into a buffer it reuses, so subscribers may keep events.
type Event struct {
	Type EventType
	// TenantID is the tenant the event happened in; uuid.Nil when it belongs to no tenant yet (a
	// request whose tenant could not be found).
	TenantID uuid.UUID
	// Ceremony is the ceremony of a ceremony event ("registration", "login", "mfa_registration",
	// "mfa_login", "transaction"); Step is StepInitialize or StepFinalize.
	Ceremony string
	Step     string
	// Err is why a ceremony step failed: a domain error (ErrorCode and Details say what the caller was
	// told) or any other error (CodeInternal).
	Err error
	// AppUserID is the application's id of the user the event concerns, when known.
	AppUserID string
	// CredentialID is the credential the event concerns, base64url.
	CredentialID string
	// TransactionID is the application's transaction id of a transaction event.
	TransactionID string
	// Details says what an admin or credential change acted on, as flat string values.
	Details map[string]string
	// At is when it happened; Request where (both filled by Bus.Emit).
	At      time.Time
	Request Request
}

// Failed reports whether e is the failure of a ceremony step.
func (e Event) Failed() bool { return e.Type == CeremonyStartFailed || e.Type == CeremonyFailed }

// Request describes the API request an event happened in, for the audit log.
type Request struct {
	ID        string
	SourceIP  string
	UserAgent string
	// emitted is set once any event was emitted in the request (see Emitted).
	emitted *atomic.Bool
}

type requestKey struct{}

// WithRequest returns a context for one API request: events emitted with it carry r.
func WithRequest(ctx context.Context, r Request) context.Context {
	r.emitted = new(atomic.Bool)
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestOf returns the request of ctx (the zero Request outside a request).
func RequestOf(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey{}).(Request)
	return r
}

// Emitted reports whether an event was emitted with ctx's request. The transport layer uses it to
// emit the failure of a ceremony that was refused before its service saw it (a missing API key, a
// malformed body), and only then.
func Emitted(ctx context.Context) bool {
	r := RequestOf(ctx)
	return r.emitted != nil && r.emitted.Load()
}

// Sink receives events. Emit must neither block nor fail the operation that emitted: a subscriber
// that stores or sends events queues them.
type Sink interface {
	Emit(ctx context.Context, e Event)
}

// Outbox is a subscriber that stores events in the transaction of the change that caused them, so
// that the change and its record commit or roll back together (the webhook deliveries: a crash after
// the change committed loses none, a change rolled back sends none). Its Emit takes the events that
// are no change (a refused ceremony), in a transaction of their own.
type Outbox interface {
	Sink
	// Wants reports, from memory and at once, whether Record would store anything for e: a change
	// whose events no outbox wants runs without a transaction.
	Wants(e Event) bool
	// Record stores e with the transaction of ctx (Transactor.Atomically). An error rolls the change
	// back.
	Record(ctx context.Context, e Event) error
}

// Transactor runs a function as one database transaction: the store writes made with the context
// fn is given commit together when fn returns nil, and roll back together otherwise. A call made
// with a context that already carries a transaction joins it.
type Transactor interface {
	Atomically(ctx context.Context, fn func(ctx context.Context) error) error
}

// Bus is the one sink services emit to: it stamps each event with its time and request and hands it
// to every subscriber, in order. A nil *Bus drops events.
//
// Services report a change and the events it causes with Commit, and events that change nothing
// (a refused or started ceremony) with Emit.
type Bus struct {
	subscribers []Sink
	tx          Transactor
	now         func() time.Time
}

// NewBus returns a Bus that hands events to subscribers.
func NewBus(subscribers ...Sink) *Bus { return &Bus{subscribers: subscribers, now: time.Now} }

// Subscribe adds a subscriber; an Outbox gets the events of a change in its transaction (Commit).
// Call it while wiring, before any event is emitted.
func (b *Bus) Subscribe(s Sink) { b.subscribers = append(b.subscribers, s) }

// UseTransactions makes Commit run a change whose events an Outbox wants in one transaction of t.
// Without it, an Outbox gets those events after the change, as every other subscriber does.
func (b *Bus) UseTransactions(t Transactor) { b.tx = t }

// Emit implements Sink.
func (b *Bus) Emit(ctx context.Context, e Event) {
	if b == nil {
		return
	}
	e = b.stamp(ctx, e)
	for _, s := range b.subscribers {
		s.Emit(ctx, e)
	}
}

// Commit makes one change, write, and reports the events it caused. When an Outbox wants one of the
// events, the Outbox's records of them and write run in one transaction (UseTransactions), and an
// error of either rolls both back; otherwise write runs alone, without a transaction. The other
// subscribers get the events once the change committed. A failed change reports nothing: the
// caller emits its failure, if it is one, with Emit. write may be nil (the events are the change).
func (b *Bus) Commit(ctx context.Context, write func(ctx context.Context) error, events ...Event) error {
	if b == nil {
		if write == nil {
			return nil
		}
		return write(ctx)
	}
	for i := range events {
		events[i] = b.stamp(ctx, events[i])
	}
	var outboxes []Outbox
	if b.tx != nil {
		for _, s := range b.subscribers {
			if o, ok := s.(Outbox); ok && wantsAny(o, events) {
				outboxes = append(outboxes, o)
			}
		}
	}
	var err error
	switch {
	case len(outboxes) > 0:
		// The records first, the write last: a write whose last statement notes when it happened
		// (the tenant change feed, db/tenants.go) stays the transaction's last statement.
		err = b.tx.Atomically(ctx, func(ctx context.Context) error {
			for _, o := range outboxes {
				for _, e := range events {
					if !o.Wants(e) {
						continue
					}
					if err := o.Record(ctx, e); err != nil {
						return err
					}
				}
			}
			if write != nil {
				return write(ctx)
			}
			return nil
		})
	case write != nil:
		err = write(ctx)
	}
	if err != nil {
		return err
	}
	for _, s := range b.subscribers {
		if o, ok := s.(Outbox); ok && slices.Contains(outboxes, o) {
			continue
		}
		for _, e := range events {
			s.Emit(ctx, e)
		}
	}
	return nil
}

func wantsAny(o Outbox, events []Event) bool {
	for _, e := range events {
		if o.Wants(e) {
			return true
		}
	}
	return false
}

// stamp sets the time (unless set) and the request of e, and marks the request as having emitted.
func (b *Bus) stamp(ctx context.Context, e Event) Event {
	if e.At.IsZero() {
		e.At = b.now()
	}
	r := RequestOf(ctx)
	if r.emitted != nil {
		r.emitted.Store(true)
	}
	e.Request = r
	return e
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, e Event)

// Emit implements Sink.
func (f SinkFunc) Emit(ctx context.Context, e Event) { f(ctx, e) }
