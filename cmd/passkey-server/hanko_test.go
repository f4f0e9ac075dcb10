package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the Hanko database

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/signing"
)

// TestImportHanko fills a database made with Hanko's schema (db/testdata/hanko_schema.sql, from its
// migrations) with a tenant as Hanko writes it (a passkey made by a software authenticator, an MFA
// key, a transaction, an API secret in clear, a user id too long to be a user handle and a credential
// whose public key is not base64url), imports it, and logs in with the old passkey and the old API key;
// a second run changes nothing, and a dry run writes nothing.
func TestImportHanko(t *testing.T) {
	ctx := context.Background()
	// The passkeys: registered on a server of ours, their records copied into Hanko's tables.
	scratch := newTestServer(t, dbtest.SQLite(t), newTestSealer(t))
	r := newRP(t, scratch, "example.com")
	passkey := authenticatortest.New(authenticatortest.Options{})
	_, passkeyID := r.register(passkey, "alice")
	mfaKey := authenticatortest.New(authenticatortest.Options{Attachment: authenticatortest.CrossPlatform, Transports: []string{"usb"}})
	r.mfaRegister(mfaKey, "alice")
	store := db.NewCredentialStore(scratch.db)
	_, creds, err := store.LoginUser(ctx, uuidOf(t, r.id), "alice")
	if err != nil || len(creds) != 2 {
		t.Fatalf("registered credentials: %v %v", creds, err)
	}

	hankoURL := dbtest.PostgresURL(t)
	hanko, err := sql.Open("pgx", hankoURL)
	if err != nil {
		t.Fatal(err)
	}
	defer hanko.Close()
	schema, err := os.ReadFile("../../db/testdata/hanko_schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hanko.ExecContext(ctx, string(schema)); err != nil {
		t.Fatalf("hanko schema: %v", err)
	}
	tenantID, configID, wcID, rpID, corsID, userID, longUserID := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	hankoKey := base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64)) // 88 characters with padding, as Hanko makes them
	now := time.Now().UTC().Add(-time.Hour)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := hanko.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO tenants VALUES ($1, 'Shop', $2, $2)`, tenantID, now)
	exec(`INSERT INTO configs VALUES ($1, $2, $3, $3)`, configID, tenantID, now)
	exec(`INSERT INTO webauthn_configs (id, timeout, user_verification, config_id, created_at, updated_at, attestation_preference, resident_key_requirement)
	      VALUES ($1, 60000, 'preferred', $2, $3, $3, 'none', 'required')`, wcID, configID, now)
	exec(`INSERT INTO relying_parties VALUES ($1, 'example.com', 'Shop', NULL, $2, $3, $3)`, rpID, wcID, now)
	exec(`INSERT INTO webauthn_origins VALUES ($1, $2, $3, $4, $4)`, uuid.New(), testOrigin, rpID, now)
	exec(`INSERT INTO cors VALUES ($1, false, $2, $3, $3)`, corsID, configID, now)
	exec(`INSERT INTO cors_origins VALUES ($1, $2, $3, $4, $4)`, uuid.New(), testOrigin, corsID, now)
	exec(`INSERT INTO mfa_configs (id, config_id, created_at, updated_at) VALUES ($1, $2, $3, $3)`, uuid.New(), configID, now)
	exec(`INSERT INTO secrets VALUES ($1, 'backend', $2, true, $3, $4, $4)`, uuid.New(), hankoKey, configID, now)
	exec(`INSERT INTO webauthn_users VALUES ($1, 'alice', 'alice@example.com', '', 'Alice', $2, $3, $3)`, userID, tenantID, now)
	exec(`INSERT INTO webauthn_users VALUES ($1, $2, 'long', '', 'Long', $3, $4, $4)`, longUserID, strings.Repeat("x", 70), tenantID, now)
	for _, c := range creds {
		exec(`INSERT INTO webauthn_credentials VALUES ($1, 'alice', $2, 'none', $3, $4, NULL, NULL, $5, $6, $7, $8, $8, $9)`,
			c.ID, base64.RawURLEncoding.EncodeToString(c.PublicKey), c.AAGUID, int64(c.SignCount), c.BackupEligible, c.BackupState, userID, now, c.IsMFA)
		for _, tr := range c.Transports {
			exec(`INSERT INTO webauthn_credential_transports VALUES ($1, $2, $3)`, uuid.NewString(), tr, c.ID)
		}
	}
	exec(`INSERT INTO webauthn_credentials VALUES ('YmFk', 'alice', '%%% not base64 %%%', 'none', $1, 0, NULL, NULL, false, false, $2, $3, $3, false)`,
		uuid.Nil, userID, now)
	exec(`INSERT INTO transactions VALUES ($1, 'pay-1', '{"amount":"1.00"}', 'Y2hhbGxlbmdlLWNoYWxsZW5nZQ', $2, $3, $4, $4)`, uuid.New(), userID, tenantID, now)

	// The import, into a new database of ours.
	targetURL := dbtest.PostgresURL(t)
	masterKey := make([]byte, 32)
	cfg, err := loadConfig(map[string]string{"PASSKEY_DATABASE_URL": targetURL, "PASSKEY_MASTER_KEY": base64.StdEncoding.EncodeToString(masterKey),
		"PASSKEY_ADMIN_TOKENS": testToken})
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := importCommand(ctx, cfg, discardLog(), append([]string{"hanko", "--from-database", hankoURL}, args...), &out)
		return out.String(), err
	}
	out, err := run("--dry-run")
	if err != nil || !strings.Contains(out, "[1/1] tenant "+tenantID.String()+" (created): users 1 created") || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	out, err = run()
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	for _, want := range []string{"(created): users 1 created, 0 replaced, 0 skipped; credentials 2 created", "transactions 1 created",
		"left out: webauthn_users " + longUserID.String(), "left out: webauthn_credentials YmFk"} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q:\n%s", want, out)
		}
	}
	out, err = run()
	if err != nil || !strings.Contains(out, "(unchanged): users 0 created, 0 replaced, 1 skipped; credentials 0 created, 0 replaced, 2 skipped; transactions 0 created, 0 replaced, 1 skipped") {
		t.Fatalf("second run: %v\n%s", err, out)
	}

	// The old passkey, MFA key and API key work on this server.
	target, err := db.Open(ctx, targetURL)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	sealer, err := signing.NewSealer(masterKey)
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, target, sealer)
	moved := &rp{s: s, t: t, id: tenantID.String(), secret: hankoKey}
	c := moved.claims(moved.login(passkey, "alice"))
	if c["sub"] != "alice" || c["cred"] != passkeyID {
		t.Fatalf("login after the Hanko import: %v", c)
	}
	moved.login(passkey, "") // usernameless
	assertion, err := mfaKey.Get(moved.mfaLoginOptions("alice"), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, moved.post(moved.mfaPath("/login/finalize", "/login/finalize"), assertion, true), 200, "")
}
