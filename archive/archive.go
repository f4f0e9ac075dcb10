// Package archive moves one tenant between deployments as NDJSON: its config, users, credentials and
// transactions, one JSON object a line. An archive never holds a secret: no API key, no signing key,
// no master key. A tenant imported elsewhere gets a new signing key (applications fetch the JWKS
// again) and new API keys; its passkeys, users and transactions carry over unchanged, so every
// authenticator that logged in before logs in after.
//
// The lines, in this order:
//
//	{"type":"tenant","version":1,"id":…,"display_name":…,"config":{…},"created_at":…}
//	{"type":"user",…}         one per user
//	{"type":"credential",…}   one per credential, naming its user by the application's user_id
//	{"type":"transaction",…}  one per transaction, likewise
//	{"type":"end","users":n,"credentials":n,"transactions":n}
//
// The end line lets an import tell a whole archive from a cut one.
package archive

import (
	"context"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
)

// Version is the version of the archive format this server writes and reads.
const Version = 1

// Sentinel errors of this package.
var (
	// ErrInvalid means an archive has lines that cannot be imported; its details name each by number.
	ErrInvalid = passkey.NewError("invalid_archive", "the archive cannot be imported")
	// ErrConflict means an import with on_conflict=fail met records the tenant already has.
	ErrConflict = passkey.NewError("import_conflict", "the archive conflicts with the tenant's records")
)

// Conflict says what an import does with a record the tenant already has (the same user_id,
// credential id or transaction_id).
type Conflict string

// The conflict policies.
const (
	// Skip keeps the tenant's record and leaves the archive's out.
	Skip Conflict = "skip"
	// Replace overwrites the tenant's record with the archive's.
	Replace Conflict = "replace"
	// Fail refuses the whole import, which then writes nothing.
	Fail Conflict = "fail"
)

// Valid reports whether c is a known policy.
func (c Conflict) Valid() bool { return c == Skip || c == Replace || c == Fail }

// Item is one record of an import with the line it came from, for problems that name it.
type Item[T any] struct {
	Line  int
	Value T
}

// Plan is a parsed, checked archive for Store.Import. Credentials and transactions name their users by
// AppUserID; the store finds the internal keys.
type Plan struct {
	TenantID     uuid.UUID
	Users        []Item[credentials.User]
	Credentials  []Item[credentials.Credential]
	Transactions []Item[transactions.Transaction]
	OnConflict   Conflict
	// DryRun makes the store check everything and write nothing.
	DryRun bool
}

// Counts say what an import did (or, dry, would do) with one kind of record.
type Counts struct {
	Created  int `json:"created"`
	Replaced int `json:"replaced"`
	Skipped  int `json:"skipped"`
}

// Summary is the outcome of an import.
type Summary struct {
	DryRun bool `json:"dry_run"`
	// Tenant is "created", "replaced" (its config and name), "unchanged" or "skipped".
	Tenant       string `json:"tenant"`
	Users        Counts `json:"users"`
	Credentials  Counts `json:"credentials"`
	Transactions Counts `json:"transactions"`
}

// Store reads a tenant's records for an export and writes an import. Every method is scoped to one
// tenant.
type Store interface {
	// EachUser calls fn with every user of the tenant, in a stable order, a page at a time (no
	// transaction is held open while fn writes to a slow client).
	EachUser(ctx context.Context, tenantID uuid.UUID, fn func(credentials.User) error) error
	// EachCredential calls fn with every credential of the tenant, its AppUserID filled.
	EachCredential(ctx context.Context, tenantID uuid.UUID, fn func(credentials.Credential) error) error
	// EachTransaction calls fn with every transaction of the tenant, its AppUserID filled.
	EachTransaction(ctx context.Context, tenantID uuid.UUID, fn func(transactions.Transaction) error) error
	// Import writes p in one database transaction: all of it, or nothing when a record conflicts under
	// Fail (ErrConflict with the lines) or names a user neither in the archive nor in the tenant
	// (ErrInvalid), or when p.DryRun.
	Import(ctx context.Context, p Plan) (Summary, error)
}

// Service exports and imports tenants.
type Service struct {
	tenants *tenant.Service
	store   Store
	events  passkey.Sink
}

// NewService returns the archive service over tenants (configs, creation) and store (records); an
// import that wrote something emits passkey.TenantImported to events.
func NewService(tenants *tenant.Service, store Store, events passkey.Sink) *Service {
	return &Service{tenants: tenants, store: store, events: events}
}
