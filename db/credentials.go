package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/passkey-server/passkey-server/attestation"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/tenant"
)

// CredentialStore is the database implementation of credentials.Store: the users of each tenant and
// their public key credentials. Every query is scoped by tenant_id, so a call for one tenant never
// reads or changes another tenant's rows.
type CredentialStore struct {
	db *bun.DB
	bound
	hot
	// The hot path's statements (hot.go), built from the models once.
	insertUser       hotQuery
	userValues       func(*userRow) []any
	insertCredential hotQuery
	credentialValues func(*credentialRow) []any
	// now stamps rows whose input carries no time (RenameCredential, and users or credentials
	// created without times).
	now func() time.Time
}

var _ credentials.Store = (*CredentialStore)(nil)

// NewCredentialStore returns the credential store of d.
func NewCredentialStore(d *DB) *CredentialStore {
	s := &CredentialStore{db: d.bun, bound: d.bound, hot: newHot(d), now: time.Now}
	s.insertUser, s.userValues = insertOf[userRow](d.bun, " ON CONFLICT (tenant_id, user_id) DO UPDATE SET "+
		"name = EXCLUDED.name, display_name = EXCLUDED.display_name, icon = EXCLUDED.icon, updated_at = EXCLUDED.updated_at "+
		"RETURNING "+userColumns)
	s.insertCredential, s.credentialValues = insertOf[credentialRow](d.bun, "")
	return s
}

// credentialTable and credentialColumns select a credential with its user's application id. The
// columns are named, not "c.*", so a column added by a later migration does not break reads of a
// binary that does not know it yet.
const (
	credentialTable   = "credentials AS c"
	credentialColumns = "c.tenant_id, c.id, c.user_id, c.name, c.public_key, c.attestation_type, c.aaguid, " +
		"c.sign_count, c.clone_warning, c.backup_eligible, c.backup_state, c.user_present, c.user_verified, " +
		"c.transports, c.authenticator_attachment, c.is_mfa, c.created_at, c.updated_at, c.last_used_at, " +
		"c.attestation_verdict, c.attestation_root, c.mds_status, c.certification_level, c.attestation_violations, " +
		"c.discoverable, c.prf_enabled, c.created_conditionally, u.user_id AS app_user_id"
	// credentialJoin matches on the tenant as well as the id, as the composite foreign key does.
	credentialJoin = "JOIN users AS u ON u.tenant_id = c.tenant_id AND u.id = c.user_id"
	userColumns    = "id, tenant_id, user_id, name, display_name, icon, created_at, updated_at"
)

// The reads of the hot path (hot.go).
var (
	credentialByID = newHotQuery("SELECT " + credentialColumns + " FROM " + credentialTable + " " + credentialJoin +
		" WHERE c.tenant_id = ? AND c.id = ?")
	credentialsOfUser = newHotQuery("SELECT " + credentialColumns + " FROM " + credentialTable + " " + credentialJoin +
		" WHERE c.tenant_id = ? AND c.user_id = ? ORDER BY c.created_at ASC, c.id ASC")
	recordLogin = newHotQuery("UPDATE credentials SET sign_count = CASE WHEN sign_count < ? THEN ? ELSE sign_count END, " +
		"clone_warning = (clone_warning OR ?), backup_eligible = ?, backup_state = ?, user_verified = ?, last_used_at = ?, " +
		// An empty MDS status leaves the stored one (LoginUpdate.MDSStatus): one text for both cases.
		"mds_status = COALESCE(NULLIF(?, ''), mds_status), updated_at = ? WHERE tenant_id = ? AND id = ?")
)

// UpsertUser creates the user (u.TenantID, u.AppUserID) or, when the tenant already has it, updates its
// name, display name, icon and updated_at, in one statement. It returns the stored user: an existing
// user keeps its internal ID and created_at. A new user gets u.ID, or a random ID when u.ID is
// uuid.Nil; zero times are replaced with the current time. It returns tenant.ErrNotFound when the
// tenant does not exist.
func (s *CredentialStore) UpsertUser(ctx context.Context, u credentials.User) (_ credentials.User, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	row := newUserRow(u)
	if row.ID == uuid.Nil {
		row.ID = uuid.New()
	}
	now := dbTime(s.now())
	if row.CreatedAt.IsZero() {
		row.CreatedAt = now
	}
	if row.UpdatedAt.IsZero() {
		row.UpdatedAt = now
	}
	var rows []userRow
	if err = s.scan(ctx, s.insertUser, &rows, s.userValues(&row)...); err == nil && len(rows) != 1 {
		err = fmt.Errorf("the upsert returned %d rows", len(rows))
	}
	if err != nil {
		err = translate(err)
		if errors.Is(err, errForeignKeyViolation) {
			err = tenant.ErrNotFound
		}
		return credentials.User{}, fmt.Errorf("upsert user of tenant %s: %w", u.TenantID, err)
	}
	return rows[0].user(), nil
}

// UserByAppID returns the tenant's user with the application's user id, or
// credentials.ErrUserNotFound.
func (s *CredentialStore) UserByAppID(ctx context.Context, tenantID uuid.UUID, userID string) (_ credentials.User, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var row userRow
	err = conn(ctx, s.db).NewSelect().Model(&row).
		Where("tenant_id = ? AND user_id = ?", tenantID, userID).
		Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		err = credentials.ErrUserNotFound
	}
	if err != nil {
		return credentials.User{}, fmt.Errorf("get user by application id in tenant %s: %w", tenantID, err)
	}
	return row.user(), nil
}

// UserByKey returns the tenant's user with the internal id, or credentials.ErrUserNotFound. A user of
// another tenant is not found.
func (s *CredentialStore) UserByKey(ctx context.Context, tenantID, id uuid.UUID) (_ credentials.User, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var row userRow
	err = conn(ctx, s.db).NewSelect().Model(&row).
		Where("tenant_id = ? AND id = ?", tenantID, id).
		Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		err = credentials.ErrUserNotFound
	}
	if err != nil {
		return credentials.User{}, fmt.Errorf("get user %s of tenant %s: %w", id, tenantID, err)
	}
	return row.user(), nil
}

// loginUserQuery reads a user by application id with every credential, oldest first: the LEFT JOIN
// gives a user without credentials one row whose credential columns are NULL. The text is constant,
// so the statement is the same on every call but for its values.
var loginUser = newHotQuery("SELECT u.id AS u_id, u.tenant_id AS u_tenant_id, u.user_id AS u_user_id, u.name AS u_name, " +
	"u.display_name AS u_display_name, u.icon AS u_icon, u.created_at AS u_created_at, u.updated_at AS u_updated_at, " +
	"c.tenant_id AS c_tenant_id, c.id AS c_id, c.user_id AS c_user_id, c.name AS c_name, c.public_key AS c_public_key, " +
	"c.attestation_type AS c_attestation_type, c.aaguid AS c_aaguid, c.sign_count AS c_sign_count, " +
	"c.clone_warning AS c_clone_warning, c.backup_eligible AS c_backup_eligible, c.backup_state AS c_backup_state, " +
	"c.user_present AS c_user_present, c.user_verified AS c_user_verified, c.transports AS c_transports, " +
	"c.authenticator_attachment AS c_authenticator_attachment, c.is_mfa AS c_is_mfa, c.created_at AS c_created_at, " +
	"c.updated_at AS c_updated_at, c.last_used_at AS c_last_used_at, c.attestation_verdict AS c_attestation_verdict, " +
	"c.attestation_root AS c_attestation_root, c.mds_status AS c_mds_status, c.certification_level AS c_certification_level, " +
	"c.attestation_violations AS c_attestation_violations, c.discoverable AS c_discoverable, " +
	"c.prf_enabled AS c_prf_enabled, c.created_conditionally AS c_created_conditionally " +
	"FROM users AS u LEFT JOIN credentials AS c ON c.tenant_id = u.tenant_id AND c.user_id = u.id " +
	"WHERE u.tenant_id = ? AND u.user_id = ? ORDER BY c.created_at ASC, c.id ASC")

// userCredentialRow is one row of loginUserQuery.
type userCredentialRow struct {
	User userRow `bun:"embed:u_"`
	// Cred is zero (an empty ID, which no credential has) in the one row of a user without any.
	Cred credentialRow `bun:"embed:c_"`
}

// LoginUser returns the tenant's user with the application's user id and all its credentials, oldest
// first, in one statement, or credentials.ErrUserNotFound. It is the one read of a login's initialize
// that names its user.
func (s *CredentialStore) LoginUser(ctx context.Context, tenantID uuid.UUID, appUserID string) (_ credentials.User, _ []credentials.Credential, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var rows []userCredentialRow
	if err := s.scan(ctx, loginUser, &rows, tenantID, appUserID); err != nil {
		return credentials.User{}, nil, fmt.Errorf("get user with credentials in tenant %s: %w", tenantID, err)
	}
	if len(rows) == 0 {
		return credentials.User{}, nil, fmt.Errorf("get user with credentials in tenant %s: %w", tenantID, credentials.ErrUserNotFound)
	}
	user := rows[0].User.user()
	list := make([]credentials.Credential, 0, len(rows))
	for _, row := range rows {
		if row.Cred.ID == "" {
			continue
		}
		row.Cred.AppUserID = user.AppUserID
		c, err := row.Cred.credential()
		if err != nil {
			return credentials.User{}, nil, fmt.Errorf("get user with credentials in tenant %s: %w", tenantID, err)
		}
		list = append(list, c)
	}
	return user, list, nil
}

// CreateCredential stores a new credential. It returns credentials.ErrCredentialExists when the
// tenant already has a credential with that id, and credentials.ErrUserNotFound when c.UserKey is not
// a user of c.TenantID (or the tenant does not exist). c.AppUserID is ignored: the user is c.UserKey.
func (s *CredentialStore) CreateCredential(ctx context.Context, c credentials.Credential) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	row, err := newCredentialRow(c)
	if err != nil {
		return fmt.Errorf("create credential %s of tenant %s: %w", shortCredentialID(c.ID), c.TenantID, err)
	}
	now := dbTime(s.now())
	if row.CreatedAt.IsZero() {
		row.CreatedAt = now
	}
	if row.UpdatedAt.IsZero() {
		row.UpdatedAt = row.CreatedAt
	}
	if _, err := s.exec(ctx, s.insertCredential, s.credentialValues(&row)...); err != nil {
		err = translate(err)
		switch {
		case errors.Is(err, errUniqueViolation):
			err = credentials.ErrCredentialExists
		case errors.Is(err, errForeignKeyViolation):
			// The composite foreign key (tenant_id, user_id) → users: the user is not in this tenant.
			err = credentials.ErrUserNotFound
		}
		return fmt.Errorf("create credential %s of tenant %s: %w", shortCredentialID(c.ID), c.TenantID, err)
	}
	return nil
}

// Credential returns one credential of the tenant with its AppUserID, or
// credentials.ErrCredentialNotFound.
func (s *CredentialStore) Credential(ctx context.Context, tenantID uuid.UUID, id string) (_ credentials.Credential, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var rows []credentialRow
	err = s.scan(ctx, credentialByID, &rows, tenantID, id)
	if err == nil && len(rows) == 0 {
		err = credentials.ErrCredentialNotFound
	}
	if err != nil {
		return credentials.Credential{}, fmt.Errorf("get credential %s of tenant %s: %w", shortCredentialID(id), tenantID, err)
	}
	c, err := rows[0].credential()
	if err != nil {
		return credentials.Credential{}, fmt.Errorf("get credential %s of tenant %s: %w", shortCredentialID(id), tenantID, err)
	}
	return c, nil
}

// CredentialsOfUser returns every credential of one user of the tenant, oldest first. A user that
// does not exist in the tenant has none: the list is empty, not nil, and there is no error.
func (s *CredentialStore) CredentialsOfUser(ctx context.Context, tenantID, userID uuid.UUID) (_ []credentials.Credential, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var rows []credentialRow
	if err = s.scan(ctx, credentialsOfUser, &rows, tenantID, userID); err != nil {
		return nil, fmt.Errorf("list credentials of user %s in tenant %s: %w", userID, tenantID, err)
	}
	list, err := credentialsOf(rows)
	if err != nil {
		return nil, fmt.Errorf("list credentials of user %s in tenant %s: %w", userID, tenantID, err)
	}
	return list, nil
}

// ListCredentials returns the page f.Page of the tenant's credentials, restricted to one application
// user when f.AppUserID is set, and the number of credentials that match the filter on all pages
// (listPage). The order is by creation time, newest first unless f.Ascending, then by id.
func (s *CredentialStore) ListCredentials(ctx context.Context, tenantID uuid.UUID, f credentials.ListFilter) (_ []credentials.Credential, _ int, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	order := "c.created_at DESC, c.id DESC"
	if f.Ascending {
		order = "c.created_at ASC, c.id ASC"
	}
	// A LEFT JOIN reads the same rows as selectCredentials' JOIN (the foreign key gives every
	// credential its user), and lets PostgreSQL leave users out of the count when no condition
	// reads u.
	q := conn(ctx, s.db).NewSelect().Model((*credentialRow)(nil)).
		ModelTableExpr(credentialTable).
		ColumnExpr(credentialColumns).
		Join("LEFT "+credentialJoin).
		Where("c.tenant_id = ?", tenantID)
	if f.AppUserID != "" {
		q = q.Where("u.user_id = ?", f.AppUserID)
	}
	list, total, err := listPage(ctx, q.OrderExpr(order), f.Page, credentialRow.credential)
	if err != nil {
		return nil, 0, fmt.Errorf("list credentials of tenant %s: %w", tenantID, err)
	}
	return list, total, nil
}

// RecordLogin writes back the result of a successful login: the signature counter, the backup and
// user verification flags, and last_used_at (also written to updated_at). The counter never goes
// back: of two concurrent logins, the one with the higher counter wins whatever order they commit in
// (otherwise a cloned authenticator could replay the lower value). The clone warning is sticky: once
// set, a later login never clears it. It returns credentials.ErrCredentialNotFound when
// the tenant has no credential with that id.
//
// This is the login hot path, so it is a single UPDATE: no read before the write and no transaction.
// Concurrent logins of one credential serialize on its row, and the warning is ORed in by the
// database, so no update can lose another's warning.
func (s *CredentialStore) RecordLogin(ctx context.Context, tenantID uuid.UUID, id string, u credentials.LoginUpdate) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	at := dbTime(u.LastUsedAt)
	res, err := s.exec(ctx, recordLogin, int64(u.SignCount), int64(u.SignCount), u.CloneWarning, u.BackupEligible,
		u.BackupState, u.UserVerified, at, u.MDSStatus, at, tenantID, id)
	if err == nil {
		err = oneRowAffected(res, credentials.ErrCredentialNotFound)
	}
	if err != nil {
		return fmt.Errorf("record login of credential %s in tenant %s: %w", shortCredentialID(id), tenantID, err)
	}
	return nil
}

// updateOne runs one UPDATE of the tenant's credential id with the columns set sets and updated_at,
// and returns credentials.ErrCredentialNotFound when no row matched. what names the change in errors.
func (s *CredentialStore) updateOne(ctx context.Context, tenantID uuid.UUID, id, what string, updatedAt time.Time, set func(*bun.UpdateQuery) *bun.UpdateQuery) error {
	res, err := set(conn(ctx, s.db).NewUpdate().Model((*credentialRow)(nil))).
		Set("updated_at = ?", updatedAt).
		Where("tenant_id = ? AND id = ?", tenantID, id).
		Exec(ctx)
	if err == nil {
		err = oneRowAffected(res, credentials.ErrCredentialNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s of credential %s in tenant %s: %w", what, shortCredentialID(id), tenantID, err)
	}
	return nil
}

// FlagCloneWarning sets the clone warning of one credential of the tenant and nothing else (a refused
// login is no use: last_used_at, the counter and the flags stay), or returns
// credentials.ErrCredentialNotFound.
func (s *CredentialStore) FlagCloneWarning(ctx context.Context, tenantID uuid.UUID, id string) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	return s.updateOne(ctx, tenantID, id, "flag clone warning", dbTime(s.now()), func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("clone_warning = ?", true)
	})
}

// RenameCredential sets the name of one credential of the tenant and its updated_at, or returns
// credentials.ErrCredentialNotFound.
func (s *CredentialStore) RenameCredential(ctx context.Context, tenantID uuid.UUID, id, name string) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	return s.updateOne(ctx, tenantID, id, "rename", dbTime(s.now()), func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("name = ?", name)
	})
}

// DeleteCredential removes one credential of the tenant, or returns
// credentials.ErrCredentialNotFound. The user stays, even when it has no credential left.
func (s *CredentialStore) DeleteCredential(ctx context.Context, tenantID uuid.UUID, id string) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	res, err := conn(ctx, s.db).NewDelete().Model((*credentialRow)(nil)).
		Where("tenant_id = ? AND id = ?", tenantID, id).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete credential %s of tenant %s: %w", shortCredentialID(id), tenantID, err)
	}
	if err := oneRowAffected(res, credentials.ErrCredentialNotFound); err != nil {
		return fmt.Errorf("delete credential %s of tenant %s: %w", shortCredentialID(id), tenantID, err)
	}
	return nil
}

// selectCredentials starts a select of credentials joined with their users, scanning into model
// (a *credentialRow or *[]credentialRow). Conditions must qualify columns with c. or u.
func (s *CredentialStore) selectCredentials(ctx context.Context, model any) *bun.SelectQuery {
	return conn(ctx, s.db).NewSelect().Model(model).
		ModelTableExpr(credentialTable).
		ColumnExpr(credentialColumns).
		Join(credentialJoin)
}

func newUserRow(u credentials.User) userRow {
	return userRow{
		ID:          u.Key,
		TenantID:    u.TenantID,
		UserID:      u.AppUserID,
		Name:        u.Name,
		DisplayName: u.DisplayName,
		Icon:        u.Icon,
		CreatedAt:   dbTime(u.CreatedAt),
		UpdatedAt:   dbTime(u.UpdatedAt),
	}
}

func (r userRow) user() credentials.User {
	return credentials.User{
		Key:         r.ID,
		TenantID:    r.TenantID,
		AppUserID:   r.UserID,
		Name:        r.Name,
		DisplayName: r.DisplayName,
		Icon:        r.Icon,
		CreatedAt:   r.CreatedAt.UTC(),
		UpdatedAt:   r.UpdatedAt.UTC(),
	}
}

func newCredentialRow(c credentials.Credential) (credentialRow, error) {
	transports := c.Transports
	if transports == nil {
		transports = []string{}
	}
	encoded, err := json.Marshal(transports)
	if err != nil {
		return credentialRow{}, fmt.Errorf("encode transports: %w", err)
	}
	var attachment *string
	if c.AuthenticatorAttachment != "" {
		attachment = &c.AuthenticatorAttachment
	}
	violations := c.Attestation.Violations
	if violations == nil {
		violations = []string{}
	}
	encodedViolations, err := json.Marshal(violations)
	if err != nil {
		return credentialRow{}, fmt.Errorf("encode attestation violations: %w", err)
	}
	var created, updated time.Time
	if !c.CreatedAt.IsZero() {
		created = dbTime(c.CreatedAt)
	}
	if !c.UpdatedAt.IsZero() {
		updated = dbTime(c.UpdatedAt)
	}
	return credentialRow{
		TenantID:                c.TenantID,
		ID:                      c.ID,
		UserID:                  c.UserKey,
		Name:                    c.Name,
		PublicKey:               c.PublicKey,
		AttestationType:         c.AttestationType,
		AAGUID:                  c.AAGUID,
		SignCount:               int64(c.SignCount),
		CloneWarning:            c.CloneWarning,
		BackupEligible:          c.BackupEligible,
		BackupState:             c.BackupState,
		UserPresent:             c.UserPresent,
		UserVerified:            c.UserVerified,
		Transports:              string(encoded),
		AuthenticatorAttachment: attachment,
		IsMFA:                   c.IsMFA,
		CreatedAt:               created,
		UpdatedAt:               updated,
		LastUsedAt:              dbTimePtr(c.LastUsedAt),
		AttestationVerdict:      string(c.Attestation.Verdict),
		AttestationRoot:         optionalText(c.Attestation.Root),
		MDSStatus:               optionalText(c.Attestation.Status),
		CertificationLevel:      optionalText(c.Attestation.CertificationLevel),
		AttestationViolations:   string(encodedViolations),
		Discoverable:            c.Discoverable,
		PRFEnabled:              c.PRFEnabled,
		CreatedConditionally:    c.CreatedConditionally,
	}, nil
}

func (r credentialRow) credential() (credentials.Credential, error) {
	transports := []string{}
	if r.Transports != "" {
		if err := json.Unmarshal([]byte(r.Transports), &transports); err != nil {
			return credentials.Credential{}, fmt.Errorf("decode transports of credential %s: %w", shortCredentialID(r.ID), err)
		}
		if transports == nil { // the JSON was null
			transports = []string{}
		}
	}
	var attachment string
	if r.AuthenticatorAttachment != nil {
		attachment = *r.AuthenticatorAttachment
	}
	var violations []string
	if r.AttestationViolations != "" && r.AttestationViolations != "[]" {
		if err := json.Unmarshal([]byte(r.AttestationViolations), &violations); err != nil {
			return credentials.Credential{}, fmt.Errorf("decode attestation violations of credential %s: %w", shortCredentialID(r.ID), err)
		}
	}
	if r.SignCount < 0 || r.SignCount > math.MaxUint32 {
		return credentials.Credential{}, fmt.Errorf("credential %s has sign count %d, outside uint32", shortCredentialID(r.ID), r.SignCount)
	}
	return credentials.Credential{
		ID:                      r.ID,
		TenantID:                r.TenantID,
		UserKey:                 r.UserID,
		AppUserID:               r.AppUserID,
		Name:                    r.Name,
		PublicKey:               r.PublicKey,
		AttestationType:         r.AttestationType,
		AAGUID:                  r.AAGUID,
		SignCount:               uint32(r.SignCount),
		CloneWarning:            r.CloneWarning,
		BackupEligible:          r.BackupEligible,
		BackupState:             r.BackupState,
		UserPresent:             r.UserPresent,
		UserVerified:            r.UserVerified,
		Transports:              transports,
		AuthenticatorAttachment: attachment,
		IsMFA:                   r.IsMFA,
		CreatedAt:               r.CreatedAt.UTC(),
		UpdatedAt:               r.UpdatedAt.UTC(),
		LastUsedAt:              utcPtr(r.LastUsedAt),
		Attestation: attestation.Record{Verdict: attestation.Verdict(r.AttestationVerdict), Root: deref(r.AttestationRoot),
			Status: deref(r.MDSStatus), CertificationLevel: deref(r.CertificationLevel), Violations: violations},
		Discoverable:         r.Discoverable,
		PRFEnabled:           r.PRFEnabled,
		CreatedConditionally: r.CreatedConditionally,
	}, nil
}

// credentialsOf converts rows, returning an empty, non-nil list when there are none.
func credentialsOf(rows []credentialRow) ([]credentials.Credential, error) {
	list := make([]credentials.Credential, 0, len(rows))
	for _, row := range rows {
		c, err := row.credential()
		if err != nil {
			return nil, err
		}
		list = append(list, c)
	}
	return list, nil
}

// shortCredentialID shortens a credential id for error messages: ids can be 1,364 characters long, and the
// first few identify one well enough in a log.
func shortCredentialID(id string) string {
	const keep = 16
	if len(id) <= keep {
		return id
	}
	return id[:keep] + "…"
}
