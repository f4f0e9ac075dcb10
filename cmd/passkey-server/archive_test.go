package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passkey-server/passkey-server/archive"
	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
)

// emptyLike returns a new, empty database of d's kind.
func emptyLike(t *testing.T, d *db.DB) *db.DB {
	if d.Dialect() == "sqlite" {
		return dbtest.SQLite(t)
	}
	return dbtest.Postgres(t)
}

func ndjsonCall(s *testServer, method, path string, body []byte) []byte {
	s.t.Helper()
	resp := call(s.t, s.admin, method, path, body, "Authorization", "Bearer "+testToken, "Content-Type", "application/x-ndjson")
	b := readAll(s.t, resp)
	if resp.StatusCode != 200 {
		s.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b
}

// TestArchiveRoundTrip exports a tenant with passkeys, an MFA key and a transaction, imports it into an
// empty database under another master key, and finds that every ceremony still works with the old
// credentials; then imports it again under each conflict policy, and refuses bad archives whole.
func TestArchiveRoundTrip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		src := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, src, "example.com")
		passkey := authenticatortest.New(authenticatortest.Options{})
		r.register(passkey, "alice")
		mfaKey := authenticatortest.New(authenticatortest.Options{Attachment: authenticatortest.CrossPlatform, Transports: []string{"usb"}})
		r.mfaRegister(mfaKey, "bob")
		expectStatus(t, r.post("/"+r.id+"/transaction/initialize", map[string]any{"user_id": "alice", "transaction_id": "pay-1",
			"transaction_data": map[string]any{"amount": "100.00"}}, true), 200, "")
		r.login(passkey, "alice") // the counter moved: the archive carries it

		dump := ndjsonCall(src, "GET", "/tenants/"+r.id+"/export", nil)
		lines := strings.Split(strings.TrimSpace(string(dump)), "\n")
		if len(lines) != 7 || !strings.Contains(lines[0], `"type":"tenant"`) || !strings.Contains(lines[6], `"users":2,"credentials":2,"transactions":1`) {
			t.Fatalf("export:\n%s", dump)
		}
		for _, secret := range []string{r.secret, "private", "sk_", "hash\":\"" + r.secret} {
			if bytes.Contains(dump, []byte(secret)) {
				t.Fatalf("the export holds %q", secret)
			}
		}

		dst := newTestServer(t, emptyLike(t, d), newTestSealer(t))
		var sum archive.Summary
		decodeInto(t, ndjsonCall(dst, "POST", "/tenants/"+r.id+"/import?dry_run=true", dump), &sum)
		if !sum.DryRun || sum.Tenant != "created" || sum.Credentials.Created != 2 {
			t.Fatalf("dry run: %+v", sum)
		}
		expectStatus(t, dst.adminCall("GET", "/tenants/"+r.id, nil), 404, "tenant_not_found")
		decodeInto(t, ndjsonCall(dst, "POST", "/tenants/"+r.id+"/import", dump), &sum)
		if sum.DryRun || sum.Tenant != "created" || sum.Users.Created != 2 || sum.Credentials.Created != 2 || sum.Transactions.Created != 1 {
			t.Fatalf("import: %+v", sum)
		}

		// The same tenant id, a new secret key; the old credentials log in.
		resp := dst.adminCall("POST", "/tenants/"+r.id+"/secrets/api", map[string]any{"name": "after the move"})
		expectStatus(t, resp, 201, "")
		moved := &rp{s: dst, t: t, id: r.id, secret: decode[httpapi.APIKeyDTO](t, resp).Secret}
		if c := moved.claims(moved.login(passkey, "alice")); c["sub"] != "alice" {
			t.Fatalf("login after import: %v", c)
		}
		if c := moved.claims(moved.login(passkey, "")); c["sub"] != "alice" {
			t.Fatalf("discoverable login after import: %v", c)
		}
		assertion, err := mfaKey.Get(moved.mfaLoginOptions("bob"), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, moved.post(moved.mfaPath("/login/finalize", "/login/finalize"), assertion, true), 200, "")
		moved.register(passkey, "carol") // registration works too, and excludes nothing it should not

		// Again: fail refuses everything, skip skips everything, replace replaces.
		e := expectStatus(t, call(t, dst.admin, "POST", "/tenants/"+r.id+"/import", dump, "Authorization", "Bearer "+testToken,
			"Content-Type", "application/x-ndjson"), 409, "import_conflict")
		if e.Title != "unable to import tenant" || !strings.Contains(e.Details, `line 2: user`) {
			t.Fatalf("conflict: %+v", e)
		}
		decodeInto(t, ndjsonCall(dst, "POST", "/tenants/"+r.id+"/import?on_conflict=skip", dump), &sum)
		if sum.Users.Skipped != 2 || sum.Credentials.Skipped != 2 || sum.Transactions.Skipped != 1 || sum.Tenant != "unchanged" {
			t.Fatalf("skip: %+v", sum)
		}
		decodeInto(t, ndjsonCall(dst, "POST", "/tenants/"+r.id+"/import?on_conflict=replace", dump), &sum)
		if sum.Users.Replaced != 2 || sum.Credentials.Replaced != 2 || sum.Transactions.Replaced != 1 {
			t.Fatalf("replace: %+v", sum)
		}
		// The replaced credential has the exported counter again, which an authenticator has passed.
		moved.login(passkey, "alice")

		// Bad archives: every bad line named, nothing written.
		bad := strings.Join([]string{lines[0], `{"type":"user","id":"not a uuid"}`, lines[1],
			strings.Replace(lines[3], `"user_id":"`, `"user_id":"nobody`, 1), `{"type":"frob"}`, lines[6]}, "\n")
		e = expectStatus(t, call(t, dst.admin, "POST", "/tenants/"+r.id+"/import?on_conflict=replace", bad, "Authorization", "Bearer "+testToken,
			"Content-Type", "application/x-ndjson"), 400, "invalid_archive")
		for _, want := range []string{"line 2: user", "line 4: credential", `line 5: unknown type "frob"`} {
			if !strings.Contains(e.Details, want) {
				t.Errorf("details %q lack %q", e.Details, want)
			}
		}
		cut := strings.Join(lines[:5], "\n")
		e = expectStatus(t, call(t, dst.admin, "POST", "/tenants/"+r.id+"/import", cut, "Authorization", "Bearer "+testToken,
			"Content-Type", "application/x-ndjson"), 400, "invalid_archive")
		if !strings.Contains(e.Details, "no end line") {
			t.Fatalf("cut archive: %+v", e)
		}
		expectStatus(t, call(t, dst.admin, "POST", "/tenants/"+r.id+"/import", dump, "Authorization", "Bearer "+testToken), 415, "unsupported_media_type")
		expectStatus(t, call(t, dst.admin, "POST", "/tenants/"+r.id+"/import?on_conflict=merge", dump, "Authorization", "Bearer "+testToken,
			"Content-Type", "application/x-ndjson"), 400, "invalid_request")
		expectStatus(t, dst.adminCall("GET", "/tenants/00000000-0000-0000-0000-000000000001/export", nil), 404, "tenant_not_found")
	})
}

// TestImportCommand: `passkey-server import ndjson` writes an archive straight into the configured
// database, creating the tenant, and a second run with --on-conflict skip changes nothing.
func TestImportCommand(t *testing.T) {
	d := dbtest.SQLite(t)
	src := newTestServer(t, d, newTestSealer(t))
	r := newRP(t, src, "example.com")
	r.register(authenticatortest.New(authenticatortest.Options{}), "alice")
	file := filepath.Join(t.TempDir(), "tenant.ndjson")
	if err := os.WriteFile(file, ndjsonCall(src, "GET", "/tenants/"+r.id+"/export", nil), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg, err := loadConfig(map[string]string{"PASSKEY_DATA_DIR": dir})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := importCommand(context.Background(), cfg, discardLog(), []string{"ndjson", "--dry-run", file}, &out); err != nil {
		t.Fatal(err)
	}
	if err := importCommand(context.Background(), cfg, discardLog(), []string{"ndjson", file}, &out); err != nil {
		t.Fatal(err)
	}
	if err := importCommand(context.Background(), cfg, discardLog(), []string{"ndjson", file, "--on-conflict", "skip"}, &out); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"dry run, nothing written; would have imported tenant " + r.id + " (created): users 1 created",
		"imported tenant " + r.id + " (created): users 1 created, 0 replaced, 0 skipped, credentials 1 created",
		"imported tenant " + r.id + " (unchanged): users 0 created, 0 replaced, 1 skipped, credentials 0 created, 0 replaced, 1 skipped",
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	if err := importCommand(context.Background(), cfg, discardLog(), []string{"ndjson", file}, &out); err == nil || !strings.Contains(err.Error(), "user \"alice\" exists") {
		t.Fatalf("a second import with the default (fail): %v", err)
	}
}

func decodeInto(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}
