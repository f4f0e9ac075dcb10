package credentials_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/tenant"
)

// origin is the tenant's only origin (dbtest.Tenant); its RP ID is example.com.
const origin = dbtest.Origin

// env is one tenant on a fresh SQLite database with a credentials service whose events are recorded.
type env struct {
	t      *testing.T
	ctx    context.Context
	snap   *tenant.Snapshot
	svc    *credentials.Service
	events *dbtest.Events
	// db is the tenant's database, for tests that make it fail.
	db *db.DB
}

// newEnv makes a tenant with a config that validates (RP ID example.com, origin https://example.com,
// timeout 60 s); edit, when not nil, changes it before the tenant is created.
func newEnv(t *testing.T, edit func(*tenant.Config)) *env {
	t.Helper()
	ctx := context.Background()
	d := dbtest.SQLite(t)
	snap := dbtest.Tenant(t, d, edit)
	rec := &dbtest.Events{}
	svc := dbtest.Credentials(d, rec)
	return &env{t: t, ctx: ctx, snap: snap, svc: svc, events: rec, db: d}
}

// with returns e for a subtest: its helpers fail t.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func mustJSON(t *testing.T, v any) []byte { return dbtest.JSON(t, v) }

// registration starts a registration of userID and returns the creation options JSON.
func (e *env) registration(c credentials.Ceremony, userID string) []byte {
	e.t.Helper()
	creation, err := e.svc.BeginRegistration(e.ctx, e.snap, c, credentials.RegistrationRequest{AppUserID: userID, Username: userID + "@example.com"})
	if err != nil {
		e.t.Fatalf("BeginRegistration(%s, %q): %v", c.Name, userID, err)
	}
	return mustJSON(e.t, creation)
}

// register runs a whole registration of the ceremony with key and returns its result.
func (e *env) register(c credentials.Ceremony, key *authenticatortest.Authenticator, userID string) credentials.Result {
	e.t.Helper()
	att, err := key.Create(e.registration(c, userID), origin)
	if err != nil {
		e.t.Fatalf("authenticator Create: %v", err)
	}
	res, err := e.svc.FinishRegistration(e.ctx, e.snap, c, att)
	if err != nil {
		e.t.Fatalf("FinishRegistration(%s, %q): %v", c.Name, userID, err)
	}
	return res
}

// loginOptions starts an assertion of the ceremony (discoverable when userID is empty) and returns the
// request options JSON.
func (e *env) loginOptions(c credentials.Ceremony, userID string) []byte {
	e.t.Helper()
	assertion, err := e.svc.BeginLogin(e.ctx, e.snap, c, userID)
	if err != nil {
		e.t.Fatalf("BeginLogin(%s, %q): %v", c.Name, userID, err)
	}
	return mustJSON(e.t, assertion)
}

// assert answers options with key, forged by tamper.
func (e *env) assert(key *authenticatortest.Authenticator, options []byte, tamper authenticatortest.Tamper) []byte {
	e.t.Helper()
	body, err := key.GetWith(options, origin, tamper)
	if err != nil {
		e.t.Fatalf("authenticator Get: %v", err)
	}
	return body
}

// login runs a whole assertion of the ceremony and returns what FinishLogin returns.
func (e *env) login(c credentials.Ceremony, key *authenticatortest.Authenticator, userID string) (credentials.Result, error) {
	e.t.Helper()
	return e.svc.FinishLogin(e.ctx, e.snap, c, e.assert(key, e.loginOptions(c, userID), authenticatortest.Tamper{}))
}

// amr returns the token's "amr" claim as strings; nil when absent.
func amr(t *testing.T, c map[string]any) []string {
	t.Helper()
	raw, ok := c["amr"]
	if !ok {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		t.Fatalf("amr is %T, not an array", raw)
	}
	out := make([]string, len(list))
	for i, v := range list {
		out[i], _ = v.(string)
	}
	return out
}

func describe(events []passkey.Event) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString(string(e.Type) + "(" + e.Ceremony + " " + e.AppUserID + ") ")
	}
	return b.String()
}

// ceremonyEvent is a ceremony step's event as the service emits it.
func (e *env) ceremonyEvent(typ passkey.EventType, c credentials.Ceremony, step, appUserID, credID string, err error) passkey.Event {
	return passkey.Event{Type: typ, TenantID: e.snap.ID, Ceremony: c.Name, Step: step, AppUserID: appUserID, CredentialID: credID, Err: err}
}

func TestPlainRegistrationAndLogin(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name string
		opts authenticatortest.Options
		// wantAMR is the amr claim of a login; wantCounts the stored signature counter after
		// registration, a known-user login and a discoverable login.
		wantAMR    []string
		wantCounts [3]uint32
	}{
		{"device-bound", authenticatortest.Options{}, []string{"hwk", "user"}, [3]uint32{0, 1, 2}},
		{"synced", authenticatortest.Options{BackupEligible: true, BackupState: true, ZeroCounter: true}, []string{"swk", "user"}, [3]uint32{0, 0, 0}},
		{"eddsa-packed", authenticatortest.Options{Algorithm: authenticatortest.EdDSA, Attestation: "packed"}, []string{"hwk", "user"}, [3]uint32{0, 1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			user := "user-" + tc.name
			key := authenticatortest.New(tc.opts)

			reg := e.register(credentials.Registration, key, user)
			credID := key.Credentials()[0].ID
			if reg.Credential.ID != credID || reg.Credential.AppUserID != user || reg.User.AppUserID != user || reg.Credential.IsMFA ||
				reg.Credential.BackupEligible != tc.opts.BackupEligible || reg.Credential.SignCount != tc.wantCounts[0] {
				t.Errorf("registered credential = %+v, want id %s of %s, passkey, BE %v", reg.Credential, credID, user, tc.opts.BackupEligible)
			}
			c := dbtest.Claims(t, reg.Token)
			if c["sub"] != user || c["cred"] != credID || c["ceremony"] != "registration" || c["iss"] != "http://localhost:8000/"+e.snap.ID.String() {
				t.Errorf("registration token claims = %v", c)
			}
			if got := amr(t, c); got != nil {
				t.Errorf("registration token amr = %v, want none", got)
			}
			dbtest.CheckEvents(t, e.events.Take(),
				e.ceremonyEvent(passkey.CeremonyStarted, credentials.Registration, passkey.StepInitialize, user, "", nil),
				e.ceremonyEvent(passkey.CeremonySucceeded, credentials.Registration, passkey.StepFinalize, user, credID, nil))

			for i, loginUser := range []string{user, ""} { // known user, then discoverable
				res, err := e.login(credentials.Login, key, loginUser)
				if err != nil {
					t.Fatalf("login %q: %v", loginUser, err)
				}
				c := dbtest.Claims(t, res.Token)
				if c["sub"] != user || c["cred"] != credID || c["ceremony"] != "login" {
					t.Errorf("login %q token claims = %v", loginUser, c)
				}
				if got := amr(t, c); !slices.Equal(got, tc.wantAMR) {
					t.Errorf("login %q token amr = %v, want %v", loginUser, got, tc.wantAMR)
				}
				dbtest.CheckEvents(t, e.events.Take(),
					e.ceremonyEvent(passkey.CeremonyStarted, credentials.Login, passkey.StepInitialize, loginUser, "", nil),
					e.ceremonyEvent(passkey.CeremonySucceeded, credentials.Login, passkey.StepFinalize, user, credID, nil))
				stored, err := e.svc.Get(e.ctx, e.snap, credID)
				if err != nil {
					t.Fatal(err)
				}
				if stored.SignCount != tc.wantCounts[i+1] || stored.LastUsedAt == nil || stored.CloneWarning {
					t.Errorf("after login %q: sign count %d, last used %v, clone warning %v; want count %d",
						loginUser, stored.SignCount, stored.LastUsedAt, stored.CloneWarning, tc.wantCounts[i+1])
				}
			}
		})
	}
}

func TestRegistrationExcludesExistingCredentials(t *testing.T) {
	e := newEnv(t, nil)
	key := authenticatortest.New(authenticatortest.Options{})
	e.register(credentials.Registration, key, "alice")
	// WebAuthn §5.4 excludeCredentials: the options list alice's passkey, so her authenticator refuses.
	if _, err := key.Create(e.registration(credentials.Registration, "alice"), origin); !errors.Is(err, authenticatortest.ErrExcluded) {
		t.Errorf("second registration with the same authenticator: %v, want ErrExcluded", err)
	}
	// Another authenticator may add a second passkey.
	other := authenticatortest.New(authenticatortest.Options{})
	e.register(credentials.Registration, other, "alice")
	list, total, err := e.svc.List(e.ctx, e.snap, credentials.ListFilter{AppUserID: "alice"})
	if err != nil || total != 2 || len(list) != 2 {
		t.Errorf("alice's credentials: %d of %d, %v; want 2", len(list), total, err)
	}
}

func TestLoginFinalizeFailures(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name   string
		tamper authenticatortest.Tamper
		want   error
		code   string
		// matched: the challenge named the session, so the event knows the user and the session is
		// spent.
		matched bool
	}{
		{"foreign origin", authenticatortest.Tamper{Origin: "https://evil.example.net"}, credentials.ErrAssertionFailed, "assertion_failed", true},
		{"corrupt signature", authenticatortest.Tamper{CorruptSignature: true}, credentials.ErrAssertionFailed, "assertion_failed", true},
		{"creation type", authenticatortest.Tamper{Type: "webauthn.create"}, credentials.ErrAssertionFailed, "assertion_failed", true},
		{"other rp id", authenticatortest.Tamper{RPID: "evil.example.net"}, credentials.ErrAssertionFailed, "assertion_failed", true},
		{"user not verified", authenticatortest.Tamper{ClearFlags: authenticatortest.FlagUV}, credentials.ErrAssertionFailed, "assertion_failed", true},
		{"unknown challenge", authenticatortest.Tamper{Challenge: base64.RawURLEncoding.EncodeToString(make([]byte, 32))}, credentials.ErrLoginSessionNotFound, "session_not_found", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			user := "user-" + string(rune('a'+i))
			key := authenticatortest.New(authenticatortest.Options{})
			e.register(credentials.Registration, key, user)
			e.events.Take()

			options := e.loginOptions(credentials.Login, user)
			res, err := e.svc.FinishLogin(e.ctx, e.snap, credentials.Login, e.assert(key, options, tc.tamper))
			if !errors.Is(err, tc.want) || passkey.ErrorCode(err) != tc.code {
				t.Fatalf("FinishLogin = %v (code %q), want %v (code %q)", err, passkey.ErrorCode(err), tc.want, tc.code)
			}
			if res.Token != "" {
				t.Errorf("a refused login returned a token")
			}
			eventUser := ""
			if tc.matched {
				eventUser = user
			}
			dbtest.CheckEvents(t, e.events.Take(),
				e.ceremonyEvent(passkey.CeremonyStarted, credentials.Login, passkey.StepInitialize, user, "", nil),
				e.ceremonyEvent(passkey.CeremonyFailed, credentials.Login, passkey.StepFinalize, eventUser, "", tc.want))

			// A refused attempt spends the session: the genuine assertion cannot use it any more.
			_, err = e.svc.FinishLogin(e.ctx, e.snap, credentials.Login, e.assert(key, options, authenticatortest.Tamper{}))
			if tc.matched && !errors.Is(err, credentials.ErrLoginSessionNotFound) {
				t.Errorf("genuine assertion after a refused one = %v, want ErrLoginSessionNotFound", err)
			}
			if !tc.matched && err != nil {
				t.Errorf("genuine assertion after one for another challenge = %v, want success", err)
			}
			e.events.Take()
		})
	}
}

func TestReplayIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	key := authenticatortest.New(authenticatortest.Options{})

	att, err := key.Create(e.registration(credentials.Registration, "alice"), origin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.FinishRegistration(e.ctx, e.snap, credentials.Registration, att); err != nil {
		t.Fatal(err)
	}
	login := e.assert(key, e.loginOptions(credentials.Login, "alice"), authenticatortest.Tamper{})
	if _, err := e.svc.FinishLogin(e.ctx, e.snap, credentials.Login, login); err != nil {
		t.Fatal(err)
	}
	discoverable := e.assert(key, e.loginOptions(credentials.Login, ""), authenticatortest.Tamper{})
	if _, err := e.svc.FinishLogin(e.ctx, e.snap, credentials.Login, discoverable); err != nil {
		t.Fatal(err)
	}
	e.events.Take()

	cases := []struct {
		name     string
		ceremony credentials.Ceremony
		finish   func() error
		want     error
	}{
		{"registration", credentials.Registration, func() error {
			_, err := e.svc.FinishRegistration(e.ctx, e.snap, credentials.Registration, att)
			return err
		}, credentials.ErrSessionNotFound},
		{"login", credentials.Login, func() error {
			_, err := e.svc.FinishLogin(e.ctx, e.snap, credentials.Login, login)
			return err
		}, credentials.ErrLoginSessionNotFound},
		{"discoverable login", credentials.Login, func() error {
			_, err := e.svc.FinishLogin(e.ctx, e.snap, credentials.Login, discoverable)
			return err
		}, credentials.ErrLoginSessionNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.finish()
			if !errors.Is(err, tc.want) || passkey.ErrorCode(err) != "session_not_found" {
				t.Fatalf("replay = %v (code %q), want %v", err, passkey.ErrorCode(err), tc.want)
			}
			dbtest.CheckEvents(t, e.events.Take(), e.ceremonyEvent(passkey.CeremonyFailed, tc.ceremony, passkey.StepFinalize, "", "", tc.want))
		})
	}
}

func TestInitializeFailures(t *testing.T) {
	e := newEnv(t, nil)
	key := authenticatortest.New(authenticatortest.Options{})
	e.register(credentials.Registration, key, "alice")
	// bob starts a registration he never finishes: he exists, with no credential.
	e.registration(credentials.Registration, "bob")
	e.events.Take()

	badIcon := "javascript:alert(1)"
	long := strings.Repeat("x", credentials.MaxUserIDBytes+1)
	cases := []struct {
		name     string
		ceremony credentials.Ceremony
		begin    func() error
		user     string // the event's AppUserID
		want     error
		details  string
	}{
		{"registration without ids", credentials.Registration, func() error {
			_, err := e.svc.BeginRegistration(e.ctx, e.snap, credentials.Registration, credentials.RegistrationRequest{})
			return err
		}, "", passkey.ErrInvalidRequest, "user_id is a required field and username is a required field"},
		{"registration with a long user id", credentials.Registration, func() error {
			_, err := e.svc.BeginRegistration(e.ctx, e.snap, credentials.Registration, credentials.RegistrationRequest{AppUserID: long, Username: "x"})
			return err
		}, long, passkey.ErrInvalidRequest, "user_id cannot be longer than 64 bytes (the WebAuthn user handle limit)"},
		{"registration with a script icon", credentials.Registration, func() error {
			_, err := e.svc.BeginRegistration(e.ctx, e.snap, credentials.Registration, credentials.RegistrationRequest{AppUserID: "carol", Username: "carol", Icon: &badIcon})
			return err
		}, "carol", passkey.ErrInvalidRequest, "icon must be a valid URL (http, https or a data: image)"},
		{"login of an unknown user", credentials.Login, func() error {
			_, err := e.svc.BeginLogin(e.ctx, e.snap, credentials.Login, "nobody")
			return err
		}, "nobody", credentials.ErrUserNotFound, ""},
		{"login of a user id with NUL", credentials.Login, func() error {
			_, err := e.svc.BeginLogin(e.ctx, e.snap, credentials.Login, "a\x00b")
			return err
		}, "a\x00b", passkey.ErrInvalidRequest, "user_id must be valid UTF-8 without NUL characters"},
		{"login of a user without credentials", credentials.Login, func() error {
			_, err := e.svc.BeginLogin(e.ctx, e.snap, credentials.Login, "bob")
			return err
		}, "bob", credentials.ErrNoCredentials, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.begin()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if got := passkey.Details(err); got != tc.details {
				t.Errorf("details = %q, want %q", got, tc.details)
			}
			dbtest.CheckEvents(t, e.events.Take(), e.ceremonyEvent(passkey.CeremonyStartFailed, tc.ceremony, passkey.StepInitialize, tc.user, "", tc.want))
		})
	}
	if _, err := e.svc.User(e.ctx, e.snap, "carol"); !errors.Is(err, credentials.ErrUserNotFound) {
		t.Errorf("an invalid registration request stored its user: %v", err)
	}
}

func TestCredentialChanges(t *testing.T) {
	e := newEnv(t, nil)
	first, second := authenticatortest.New(authenticatortest.Options{}), authenticatortest.New(authenticatortest.Options{})
	id1 := e.register(credentials.Registration, first, "alice").Credential.ID
	id2 := e.register(credentials.Registration, second, "alice").Credential.ID
	e.events.Take()
	change := func(typ passkey.EventType, id string) passkey.Event {
		return passkey.Event{Type: typ, TenantID: e.snap.ID, AppUserID: "alice", CredentialID: id, Details: map[string]string{"credential_id": id}}
	}

	cases := []struct {
		name string
		do   func() error
		want error
		// events are the events the change emits; none for a refused change.
		events []passkey.Event
	}{
		{"rename", func() error { return e.svc.Rename(e.ctx, e.snap, id1, "  Work key  ") }, nil, []passkey.Event{change(passkey.CredentialRenamed, id1)}},
		{"rename with padded id", func() error { return e.svc.Rename(e.ctx, e.snap, id2+"=", "Phone") }, nil, []passkey.Event{change(passkey.CredentialRenamed, id2)}},
		{"rename to blank", func() error { return e.svc.Rename(e.ctx, e.snap, id1, "  ") }, passkey.ErrInvalidRequest, nil},
		{"rename to 256 characters", func() error { return e.svc.Rename(e.ctx, e.snap, id1, strings.Repeat("é", 256)) }, passkey.ErrInvalidRequest, nil},
		{"rename unknown", func() error { return e.svc.Rename(e.ctx, e.snap, "AAAA", "x") }, credentials.ErrCredentialNotFound, nil},
		{"rename non-base64url id", func() error { return e.svc.Rename(e.ctx, e.snap, "not base64!", "x") }, credentials.ErrCredentialNotFound, nil},
		{"delete", func() error { return e.svc.Delete(e.ctx, e.snap, id1) }, nil, []passkey.Event{change(passkey.CredentialDeleted, id1)}},
		{"delete again", func() error { return e.svc.Delete(e.ctx, e.snap, id1) }, credentials.ErrCredentialNotFound, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			dbtest.CheckEvents(t, e.events.Take(), tc.events...)
		})
	}

	if c, err := e.svc.Get(e.ctx, e.snap, id2); err != nil || c.Name == nil || *c.Name != "Phone" {
		t.Errorf("renamed credential = %+v, %v; want name Phone", c, err)
	}
	// The deleted passkey is no longer offered, nor accepted.
	var options struct {
		PublicKey struct {
			AllowCredentials []struct{ ID string } `json:"allowCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(e.loginOptions(credentials.Login, "alice"), &options); err != nil {
		t.Fatal(err)
	}
	if allow := options.PublicKey.AllowCredentials; len(allow) != 1 || allow[0].ID != id2 {
		t.Errorf("allowCredentials after delete = %+v, want only %s", allow, id2)
	}
	if _, err := first.Get(e.loginOptions(credentials.Login, "alice"), origin); !errors.Is(err, authenticatortest.ErrNoCredential) {
		t.Errorf("deleted passkey still offered: %v", err)
	}
	e.events.Take()

	// A pending login of alice cannot finish once she is deleted: her session is still in the store
	// (nothing deletes a user's sessions), and the finalize finds her gone in the database.
	pending := e.assert(second, e.loginOptions(credentials.Login, "alice"), authenticatortest.Tamper{})
	e.events.Take()
	if err := e.svc.DeleteUser(e.ctx, e.snap, "alice"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	dbtest.CheckEvents(t, e.events.Take(), passkey.Event{Type: passkey.UserDeleted, TenantID: e.snap.ID, AppUserID: "alice", Details: map[string]string{"user_id": "alice"}})
	if _, err := e.svc.FinishLogin(e.ctx, e.snap, credentials.Login, pending); !errors.Is(err, credentials.ErrAssertionFailed) {
		t.Errorf("login of a deleted user's pending session = %v, want ErrAssertionFailed", err)
	}
	if _, err := e.svc.Get(e.ctx, e.snap, id2); !errors.Is(err, credentials.ErrCredentialNotFound) {
		t.Errorf("credential of a deleted user = %v, want ErrCredentialNotFound", err)
	}
	e.events.Take()
	if err := e.svc.DeleteUser(e.ctx, e.snap, "alice"); !errors.Is(err, credentials.ErrUserNotFound) {
		t.Errorf("deleting a deleted user = %v, want ErrUserNotFound", err)
	}
	dbtest.CheckEvents(t, e.events.Take())
}

func TestSignatureCounterRegression(t *testing.T) {
	cases := []struct {
		name  string
		allow bool // webauthn.allow_sign_count_regression
		want  error
	}{
		{"refused", false, credentials.ErrClonedAuthenticator},
		{"allowed by the tenant", true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *tenant.Config) { c.WebAuthn.AllowSignCountRegression = tc.allow })
			key := authenticatortest.New(authenticatortest.Options{})
			id := e.register(credentials.Registration, key, "alice").Credential.ID
			if _, err := e.login(credentials.Login, key, "alice"); err != nil { // counter 1
				t.Fatal(err)
			}
			e.events.Take()

			// The next assertion reports 1 again (WebAuthn §6.1.1): a clone of the authenticator.
			if err := key.SetCounter(id, 0); err != nil {
				t.Fatal(err)
			}
			res, err := e.login(credentials.Login, key, "alice")
			if !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Fatalf("login with a regressed counter = %v, want %v", err, tc.want)
			}
			if tc.want != nil && passkey.ErrorCode(err) != "cloned_authenticator" {
				t.Errorf("code = %q", passkey.ErrorCode(err))
			}
			last := passkey.CeremonySucceeded
			if tc.want != nil {
				last = passkey.CeremonyFailed
			}
			if (res.Token == "") != (tc.want != nil) {
				t.Errorf("token %q with err %v", res.Token, err)
			}
			dbtest.CheckEvents(t, e.events.Take(),
				e.ceremonyEvent(passkey.CeremonyStarted, credentials.Login, passkey.StepInitialize, "alice", "", nil),
				passkey.Event{Type: passkey.CredentialCloneFlagged, TenantID: e.snap.ID, AppUserID: "alice", CredentialID: id},
				e.ceremonyEvent(last, credentials.Login, passkey.StepFinalize, "alice", id, tc.want))
			stored, err := e.svc.Get(e.ctx, e.snap, id)
			if err != nil || !stored.CloneWarning || stored.SignCount != 1 {
				t.Errorf("stored = clone warning %v, count %d, %v; want warning, count 1", stored.CloneWarning, stored.SignCount, err)
			}

			// One regression does not lock the credential: the next counter (2) logs in, and the
			// warning is not flagged twice.
			if _, err := e.login(credentials.Login, key, "alice"); err != nil {
				t.Fatalf("login after the regression: %v", err)
			}
			dbtest.CheckEvents(t, e.events.Take(),
				e.ceremonyEvent(passkey.CeremonyStarted, credentials.Login, passkey.StepInitialize, "alice", "", nil),
				e.ceremonyEvent(passkey.CeremonySucceeded, credentials.Login, passkey.StepFinalize, "alice", id, nil))
			if stored, err := e.svc.Get(e.ctx, e.snap, id); err != nil || !stored.CloneWarning || stored.SignCount != 2 {
				t.Errorf("stored = clone warning %v, count %d, %v; want warning kept, count 2", stored.CloneWarning, stored.SignCount, err)
			}
		})
	}
}

func TestBackupStateChange(t *testing.T) {
	e := newEnv(t, nil)
	key := authenticatortest.New(authenticatortest.Options{BackupEligible: true})
	id := e.register(credentials.Registration, key, "alice").Credential.ID
	e.events.Take()

	// The passkey was synced since registration: the login reports BS.
	res, err := e.svc.FinishLogin(e.ctx, e.snap, credentials.Login,
		e.assert(key, e.loginOptions(credentials.Login, "alice"), authenticatortest.Tamper{SetFlags: authenticatortest.FlagBS}))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Credential.BackupState {
		t.Errorf("result credential backup state = false, want true")
	}
	dbtest.CheckEvents(t, e.events.Take(),
		e.ceremonyEvent(passkey.CeremonyStarted, credentials.Login, passkey.StepInitialize, "alice", "", nil),
		passkey.Event{Type: passkey.CredentialBackupStateChanged, TenantID: e.snap.ID, AppUserID: "alice", CredentialID: id, Details: map[string]string{"backup_state": "true"}},
		e.ceremonyEvent(passkey.CeremonySucceeded, credentials.Login, passkey.StepFinalize, "alice", id, nil))
	if stored, err := e.svc.Get(e.ctx, e.snap, id); err != nil || !stored.BackupState {
		t.Errorf("stored backup state = %v, %v; want true", stored.BackupState, err)
	}
}
