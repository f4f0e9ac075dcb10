package archive

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
)

// tenantLine is the first line: the tenant without its keys.
type tenantLine struct {
	Type        string        `json:"type"`
	Version     int           `json:"version"`
	ID          uuid.UUID     `json:"id"`
	DisplayName string        `json:"display_name"`
	Config      tenant.Config `json:"config"`
	CreatedAt   time.Time     `json:"created_at"`
}

// userLine is a user. ID is our internal id, kept so that transaction lists which show it still
// match; UserID is the application's id, the WebAuthn user handle.
type userLine struct {
	Type        string    `json:"type"`
	ID          uuid.UUID `json:"id"`
	UserID      string    `json:"user_id"`
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name"`
	Icon        *string   `json:"icon,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// credentialLine is a credential record (WebAuthn §4): everything a later login verifies against.
type credentialLine struct {
	Type   string  `json:"type"`
	ID     string  `json:"id"`
	UserID string  `json:"user_id"`
	Name   *string `json:"name,omitempty"`
	// PublicKey is the COSE_Key, base64url without padding.
	PublicKey               string     `json:"public_key"`
	AttestationType         string     `json:"attestation_type"`
	AAGUID                  uuid.UUID  `json:"aaguid"`
	SignCount               uint32     `json:"sign_count"`
	CloneWarning            bool       `json:"clone_warning"`
	BackupEligible          bool       `json:"backup_eligible"`
	BackupState             bool       `json:"backup_state"`
	UserPresent             bool       `json:"user_present"`
	UserVerified            bool       `json:"user_verified"`
	Transports              []string   `json:"transports"`
	AuthenticatorAttachment string     `json:"authenticator_attachment,omitempty"`
	IsMFA                   bool       `json:"is_mfa"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
	LastUsedAt              *time.Time `json:"last_used_at,omitempty"`
}

// transactionLine is a transaction. Data is its canonical JSON as text, so that its hash stays the
// one its token confirmed.
type transactionLine struct {
	Type          string     `json:"type"`
	ID            uuid.UUID  `json:"id"`
	UserID        string     `json:"user_id"`
	TransactionID string     `json:"transaction_id"`
	Data          string     `json:"data"`
	DataHash      string     `json:"data_hash"`
	Challenge     string     `json:"challenge"`
	Status        string     `json:"status"`
	CredentialID  *string    `json:"credential_id,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	ConfirmedAt   *time.Time `json:"confirmed_at,omitempty"`
	ExpiresAt     time.Time  `json:"expires_at"`
}

// endLine closes an archive with its counts.
type endLine struct {
	Type         string `json:"type"`
	Users        int    `json:"users"`
	Credentials  int    `json:"credentials"`
	Transactions int    `json:"transactions"`
}

var b64 = base64.RawURLEncoding

// Export writes the tenant's archive to w, streaming: a page of records is read, written and
// flushed before the next. A failure after the first line leaves the archive without its end line,
// which an import refuses.
func (s *Service) Export(ctx context.Context, tenantID uuid.UUID, w io.Writer) error {
	t, err := s.tenants.Load(ctx, tenantID)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tenantLine{Type: "tenant", Version: Version, ID: t.ID, DisplayName: t.DisplayName, Config: t.Config, CreatedAt: t.CreatedAt.UTC()}); err != nil {
		return err
	}
	end := endLine{Type: "end"}
	// flushEvery keeps a slow client's pace: the store reads its next page only after this one left.
	flushEvery := func(n int) error {
		if n%256 == 0 {
			return bw.Flush()
		}
		return nil
	}
	if err := s.store.EachUser(ctx, tenantID, func(u credentials.User) error {
		end.Users++
		if err := enc.Encode(userRecord(u)); err != nil {
			return err
		}
		return flushEvery(end.Users)
	}); err != nil {
		return fmt.Errorf("export users: %w", err)
	}
	if err := s.store.EachCredential(ctx, tenantID, func(c credentials.Credential) error {
		end.Credentials++
		if err := enc.Encode(credentialRecord(c)); err != nil {
			return err
		}
		return flushEvery(end.Credentials)
	}); err != nil {
		return fmt.Errorf("export credentials: %w", err)
	}
	if err := s.store.EachTransaction(ctx, tenantID, func(t transactions.Transaction) error {
		end.Transactions++
		if err := enc.Encode(transactionRecord(t)); err != nil {
			return err
		}
		return flushEvery(end.Transactions)
	}); err != nil {
		return fmt.Errorf("export transactions: %w", err)
	}
	if err := enc.Encode(end); err != nil {
		return err
	}
	return bw.Flush()
}

func userRecord(u credentials.User) userLine {
	return userLine{Type: "user", ID: u.Key, UserID: u.AppUserID, Name: u.Name, DisplayName: u.DisplayName, Icon: u.Icon,
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
}

func credentialRecord(c credentials.Credential) credentialLine {
	transports := c.Transports
	if transports == nil {
		transports = []string{}
	}
	return credentialLine{Type: "credential", ID: c.ID, UserID: c.AppUserID, Name: c.Name, PublicKey: b64.EncodeToString(c.PublicKey),
		AttestationType: c.AttestationType, AAGUID: c.AAGUID, SignCount: c.SignCount, CloneWarning: c.CloneWarning,
		BackupEligible: c.BackupEligible, BackupState: c.BackupState, UserPresent: c.UserPresent, UserVerified: c.UserVerified,
		Transports: transports, AuthenticatorAttachment: c.AuthenticatorAttachment, IsMFA: c.IsMFA,
		CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(), LastUsedAt: utc(c.LastUsedAt)}
}

func transactionRecord(t transactions.Transaction) transactionLine {
	return transactionLine{Type: "transaction", ID: t.ID, UserID: t.AppUserID, TransactionID: t.Identifier, Data: t.Data,
		DataHash: b64.EncodeToString(t.DataHash), Challenge: t.Challenge, Status: string(t.Status), CredentialID: t.CredentialID,
		CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(), ConfirmedAt: utc(t.ConfirmedAt), ExpiresAt: t.ExpiresAt.UTC()}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// ImportOptions say how an import treats what the tenant already has.
type ImportOptions struct {
	OnConflict Conflict
	DryRun     bool
	// APIKeys are stored with a tenant the import creates (keys carried from another server, by their
	// hashes); a tenant that exists keeps its own.
	APIKeys []tenant.APIKey
}

// maxProblems bounds the problems an import reports: enough to fix a file, not a megabyte of text.
const maxProblems = 50

// maxLine bounds one line of an archive (a credential's public key is a few hundred bytes; a
// transaction's data at most transactions.MaxDataBytes).
const maxLine = 1 << 20

// Import reads an archive from r into the tenant tenantID: it parses and checks every line first, and
// refuses the archive with ErrInvalid naming each bad line, writing nothing. A tenant that does not
// exist is created with the archive's name and config (and a new signing key, no API key); an
// existing one keeps its config unless opts.OnConflict is Replace (Fail refuses a differing config).
// The records are then written in one database transaction (Store.Import).
func (s *Service) Import(ctx context.Context, tenantID uuid.UUID, r io.Reader, opts ImportOptions) (Summary, error) {
	if opts.OnConflict == "" {
		opts.OnConflict = Fail
	}
	if !opts.OnConflict.Valid() {
		return Summary{}, passkey.Invalid("on_conflict must be one of skip, replace, fail")
	}
	head, plan, err := parse(r)
	if err != nil {
		return Summary{}, err
	}
	plan.TenantID, plan.OnConflict, plan.DryRun = tenantID, opts.OnConflict, opts.DryRun
	for i := range plan.Users {
		plan.Users[i].Value.TenantID = tenantID
	}
	for i := range plan.Credentials {
		plan.Credentials[i].Value.TenantID = tenantID
	}
	for i := range plan.Transactions {
		plan.Transactions[i].Value.TenantID = tenantID
	}

	existing, err := s.tenants.Load(ctx, tenantID)
	exists := err == nil
	if err != nil && !errors.Is(err, tenant.ErrNotFound) {
		return Summary{}, err
	}
	tenantOutcome := "created"
	if exists {
		tenantOutcome = "unchanged"
		if !sameConfig(existing, head) {
			switch opts.OnConflict {
			case Fail:
				return Summary{}, conflict([]string{"line 1: the tenant exists with another name or config"})
			case Skip:
				tenantOutcome = "skipped"
			case Replace:
				tenantOutcome = "replaced"
			}
		}
	}
	if !exists && !opts.DryRun {
		if _, _, err := s.tenants.Create(ctx, tenant.CreateInput{ID: tenantID, DisplayName: head.DisplayName, Config: head.Config, APIKeys: opts.APIKeys}); err != nil {
			return Summary{}, fmt.Errorf("create tenant: %w", err)
		}
	}
	if !exists && opts.DryRun {
		// Nothing can conflict in a tenant that does not exist, and parse checked the records among
		// themselves: every one would be created.
		return Summary{DryRun: true, Tenant: tenantOutcome, Users: Counts{Created: len(plan.Users)},
			Credentials: Counts{Created: len(plan.Credentials)}, Transactions: Counts{Created: len(plan.Transactions)}}, nil
	}
	sum, err := s.store.Import(ctx, plan)
	if err != nil {
		if !exists && !opts.DryRun {
			// Nothing partial: the tenant made for this import goes with it.
			_ = s.tenants.Delete(context.WithoutCancel(ctx), tenantID)
		}
		return Summary{}, err
	}
	if tenantOutcome == "replaced" && !opts.DryRun {
		if err := s.tenants.SetConfig(ctx, tenantID, head.Config); err != nil {
			return Summary{}, err
		}
		if err := s.tenants.Rename(ctx, tenantID, head.DisplayName); err != nil {
			return Summary{}, err
		}
	}
	sum.DryRun, sum.Tenant = opts.DryRun, tenantOutcome
	if !opts.DryRun {
		details := map[string]string{"on_conflict": string(opts.OnConflict), "tenant": tenantOutcome}
		for kind, c := range map[string]Counts{"users": sum.Users, "credentials": sum.Credentials, "transactions": sum.Transactions} {
			details[kind] = fmt.Sprintf("%d created, %d replaced, %d skipped", c.Created, c.Replaced, c.Skipped)
		}
		s.events.Emit(ctx, passkey.Event{Type: passkey.TenantImported, TenantID: tenantID, Details: details})
	}
	return sum, nil
}

// sameConfig reports whether the tenant already has the archive's name and config.
func sameConfig(t tenant.Tenant, head tenantLine) bool {
	c := head.Config
	c.Normalize()
	a, _ := json.Marshal(t.Config)
	b, _ := json.Marshal(c)
	return t.DisplayName == head.DisplayName && bytes.Equal(a, b)
}

func conflict(problems []string) error {
	return passkey.Problems(problems).Err(ErrConflict)
}

// parse reads and checks a whole archive. Every problem is reported with its line number, up to
// maxProblems.
func parse(r io.Reader) (tenantLine, Plan, error) {
	var (
		head     tenantLine
		plan     Plan
		problems passkey.Problems
		end      *endLine
		more     int
	)
	add := func(line int, format string, args ...any) {
		if len(problems) >= maxProblems {
			more++
			return
		}
		problems.Add("line %d: %s", line, fmt.Sprintf(format, args...))
	}
	users := map[string]bool{}
	creds := map[string]bool{}
	txIDs := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		if end != nil {
			add(n, "a line after the end line")
			continue
		}
		if !utf8.Valid(raw) || passkey.UnpairedSurrogate(raw) >= 0 {
			add(n, "not valid UTF-8 JSON")
			continue
		}
		var kind struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(raw, &kind); err != nil {
			add(n, "not a JSON object: %v", err)
			continue
		}
		if n == 1 && kind.Type != "tenant" {
			add(n, `the first line must be the tenant ("type":"tenant")`)
			continue
		}
		dec := func(v any) bool {
			d := json.NewDecoder(bytes.NewReader(raw))
			d.DisallowUnknownFields()
			if err := d.Decode(v); err != nil {
				add(n, "%s: %v", kind.Type, err)
				return false
			}
			return true
		}
		switch kind.Type {
		case "tenant":
			if n != 1 {
				add(n, "a second tenant line")
				continue
			}
			if !dec(&head) {
				continue
			}
			if head.Version != Version {
				add(n, "archive version %d; this server reads version %d", head.Version, Version)
			}
			if err := checkConfig(&head); err != nil {
				add(n, "%s", passkey.Details(err))
			}
		case "user":
			var l userLine
			if !dec(&l) {
				continue
			}
			u := credentials.User{Key: l.ID, AppUserID: l.UserID, Name: l.Name, DisplayName: l.DisplayName, Icon: l.Icon, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt}
			switch {
			case l.UserID == "" || len(l.UserID) > 64 || !passkey.StorableText(l.UserID):
				add(n, "user_id must be 1 to 64 bytes of text")
			case users[l.UserID]:
				add(n, "user %q appears twice", l.UserID)
			default:
				users[l.UserID] = true
				plan.Users = append(plan.Users, Item[credentials.User]{n, u})
			}
		case "credential":
			var l credentialLine
			if !dec(&l) {
				continue
			}
			key, err := b64.DecodeString(l.PublicKey)
			switch {
			case err != nil || len(key) == 0:
				add(n, "public_key must be a COSE key in base64url")
			case !validCredentialID(l.ID):
				add(n, "id must be a credential id in base64url")
			case creds[l.ID]:
				add(n, "credential %q appears twice", l.ID)
			case !users[l.UserID]:
				add(n, "credential %q names user %q, who is not on an earlier user line", l.ID, l.UserID)
			default:
				creds[l.ID] = true
				transports := l.Transports
				if transports == nil {
					transports = []string{}
				}
				plan.Credentials = append(plan.Credentials, Item[credentials.Credential]{n, credentials.Credential{
					ID: l.ID, AppUserID: l.UserID, Name: l.Name, PublicKey: key, AttestationType: l.AttestationType, AAGUID: l.AAGUID,
					SignCount: l.SignCount, CloneWarning: l.CloneWarning, BackupEligible: l.BackupEligible, BackupState: l.BackupState,
					UserPresent: l.UserPresent, UserVerified: l.UserVerified, Transports: transports,
					AuthenticatorAttachment: l.AuthenticatorAttachment, IsMFA: l.IsMFA, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt, LastUsedAt: l.LastUsedAt}})
			}
		case "transaction":
			var l transactionLine
			if !dec(&l) {
				continue
			}
			hash, err := b64.DecodeString(l.DataHash)
			sum := sha256.Sum256([]byte(l.Data))
			switch {
			case l.TransactionID == "" || !passkey.StorableText(l.TransactionID):
				add(n, "transaction_id is required")
			case txIDs[l.TransactionID]:
				add(n, "transaction %q appears twice", l.TransactionID)
			case !users[l.UserID]:
				add(n, "transaction %q names user %q, who is not on an earlier user line", l.TransactionID, l.UserID)
			case !json.Valid([]byte(l.Data)) || err != nil || !bytes.Equal(hash, sum[:]):
				add(n, "data must be JSON and data_hash its SHA-256 in base64url")
			case !validStatus(l.Status):
				add(n, "status must be pending, confirmed, failed or expired")
			case l.Challenge == "" || l.ID == uuid.Nil:
				add(n, "id and challenge are required")
			default:
				txIDs[l.TransactionID] = true
				plan.Transactions = append(plan.Transactions, Item[transactions.Transaction]{n, transactions.Transaction{
					ID: l.ID, AppUserID: l.UserID, Identifier: l.TransactionID, Data: l.Data, DataHash: hash, Challenge: l.Challenge,
					Status: transactions.Status(l.Status), CredentialID: l.CredentialID, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt,
					ConfirmedAt: l.ConfirmedAt, ExpiresAt: l.ExpiresAt}})
			}
		case "end":
			var l endLine
			if !dec(&l) {
				continue
			}
			end = &l
		default:
			add(n, "unknown type %q", kind.Type)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			add(n+1, "longer than %d bytes", maxLine)
		} else {
			return head, plan, fmt.Errorf("read archive: %w", err)
		}
	}
	switch {
	case n == 0:
		add(1, "the archive is empty")
	case end == nil && len(problems) == 0:
		add(n, "no end line: the archive is incomplete")
	case end != nil && (end.Users != len(users) || end.Credentials != len(creds) || end.Transactions != len(txIDs)) && len(problems) == 0:
		add(n, "the end line counts %d users, %d credentials, %d transactions; the archive has %d, %d, %d",
			end.Users, end.Credentials, end.Transactions, len(users), len(creds), len(txIDs))
	}
	if more > 0 {
		problems.Add("%d more problems", more)
	}
	return head, plan, problems.Err(ErrInvalid)
}

// checkConfig normalizes and validates the archive's tenant config and name, as a create would.
func checkConfig(h *tenantLine) error {
	h.Config.Normalize()
	if err := h.Config.Validate(); err != nil {
		return err
	}
	if h.DisplayName == "" || !passkey.StorableText(h.DisplayName) {
		return passkey.Invalid("display_name is required")
	}
	return nil
}

func validCredentialID(id string) bool {
	b, err := b64.DecodeString(id)
	return err == nil && len(b) > 0 && len(b) <= 1023 // WebAuthn §6.1: at most 1023 bytes
}

func validStatus(s string) bool {
	switch transactions.Status(s) {
	case transactions.StatusPending, transactions.StatusConfirmed, transactions.StatusFailed, transactions.StatusExpired:
		return true
	}
	return false
}
