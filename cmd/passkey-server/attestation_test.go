package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/attestation"
	"github.com/passkey-server/passkey-server/attestation/attestationtest"
	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
)

// trustWorld is a FIDO trust world of the tests' own: an MDS root signing the blobs, a vendor root
// issuing packed attestation certificates, a model certified at L2, a model that is not certified,
// and a model an enforcing tenant denies.
type trustWorld struct {
	t                              *testing.T
	mdsRoot, vendor                *attestationtest.CA
	certified, uncertified, denied uuid.UUID
	path                           string
	source                         *attestation.Source
}

func newTrustWorld(t *testing.T) *trustWorld {
	w := &trustWorld{t: t, mdsRoot: attestationtest.NewCA("Test MDS Root"), vendor: attestationtest.NewCA("Test Vendor Root"),
		certified: uuid.New(), uncertified: uuid.New(), denied: uuid.New(), path: filepath.Join(t.TempDir(), "mds.jwt")}
	w.publish(1, false)
	w.source = attestation.NewSource(attestation.SourceOptions{File: w.path, Root: w.mdsRoot.Base64(), Logger: discardLog()})
	if err := w.source.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

// publish writes blob number n; revoked adds a REVOKED report to the certified model.
func (w *trustWorld) publish(n int, revoked bool) {
	certified := []attestationtest.Status{{Status: "FIDO_CERTIFIED_L1", EffectiveDate: "2024-01-01"}, {Status: "FIDO_CERTIFIED_L2", EffectiveDate: "2024-06-01"}}
	if revoked {
		certified = append(certified, attestationtest.Status{Status: "REVOKED", EffectiveDate: time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)})
	}
	blob := attestationtest.Blob{Number: n, NextUpdate: time.Now().AddDate(0, 1, 0), Entries: []attestationtest.Entry{
		{AAGUID: w.certified, Description: "Test Certified Key", Roots: []*attestationtest.CA{w.vendor}, Statuses: certified},
		{AAGUID: w.uncertified, Description: "Test Uncertified Key", Roots: []*attestationtest.CA{w.vendor},
			Statuses: []attestationtest.Status{{Status: "NOT_FIDO_CERTIFIED", EffectiveDate: "2024-01-01"}}},
	}}.Sign(w.mdsRoot)
	w.write(blob)
}

func (w *trustWorld) write(b []byte) {
	if err := os.WriteFile(w.path, b, 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// key returns a security key of the model aaguid with a packed attestation certificate from the
// vendor root.
func (w *trustWorld) key(aaguid uuid.UUID, o authenticatortest.Options) *authenticatortest.Authenticator {
	o.Attestation, o.AAGUID = "packed", aaguid
	o.AttestationKey, o.AttestationChain = w.vendor.Attestation(aaguid)
	if o.Attachment == "" {
		o.Attachment = authenticatortest.CrossPlatform
	}
	return authenticatortest.New(o)
}

// setPolicy replaces the tenant's config with the attestation policy of profile ("webauthn" or "mfa").
func (r *rp) setPolicy(profile string, policy map[string]any) {
	r.t.Helper()
	cfg := validConfig("example.com")
	if profile == "mfa" {
		cfg["mfa"] = map[string]any{"attestation_policy": policy}
	} else {
		cfg["webauthn"].(map[string]any)["attestation_policy"] = policy
	}
	expectStatus(r.t, r.s.adminCall("PUT", "/tenants/"+r.id+"/config", cfg), 204, "")
}

// tryRegister runs a registration and returns the finalize response and the credential id.
func (r *rp) tryRegister(a *authenticatortest.Authenticator, userID string) (int, httpapi.ErrorBody, string) {
	r.t.Helper()
	att, err := a.Create(r.registrationOptions(userID), testOrigin)
	if err != nil {
		r.t.Fatal(err)
	}
	resp := r.registrationFinalize(att)
	var cred struct{ ID string }
	_ = json.Unmarshal(att, &cred)
	var e httpapi.ErrorBody
	_ = json.Unmarshal(readAll(r.t, resp), &e)
	return resp.StatusCode, e, cred.ID
}

func TestAttestationPolicy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newTrustWorld(t)
		s := newTestServer(t, d, newTestSealer(t), func(o *testOptions) { o.Metadata = w.source })
		r := newRP(t, s, "example.com")
		no := false
		bank := map[string]any{"mode": "enforce", "min_certification": "FIDO_CERTIFIED_L1",
			"denied_aaguids": []string{w.denied.String()}, "allow_backup_eligible": no}

		keys := []struct {
			name       string
			key        *authenticatortest.Authenticator
			verdict    string
			violations []string
		}{
			{"certified", w.key(w.certified, authenticatortest.Options{}), "verified", []string{}},
			{"uncertified", w.key(w.uncertified, authenticatortest.Options{}), "verified", []string{"certification_below_minimum"}},
			{"denied", w.key(w.denied, authenticatortest.Options{}), "unverified", []string{"aaguid_denied", "attestation_unverified"}},
			{"synced", w.key(w.certified, authenticatortest.Options{BackupEligible: true, BackupState: true}), "verified", []string{"backup_eligible"}},
			{"none", authenticatortest.New(authenticatortest.Options{AAGUID: w.certified}), "none", []string{"attestation_unverified"}},
			{"self", authenticatortest.New(authenticatortest.Options{Attestation: "packed", AAGUID: w.certified}), "self", []string{"attestation_unverified"}},
		}

		// Enforce: the certified key only; a refusal stores nothing.
		r.setPolicy("webauthn", bank)
		for _, k := range keys {
			status, e, credID := r.tryRegister(k.key, "enforce-"+k.name)
			if k.name == "certified" {
				if status != 200 {
					t.Fatalf("certified key refused: %d %+v", status, e)
				}
				c := r.credential(credID)
				if c.Attestation == nil || c.Attestation.Verdict != "verified" || c.Attestation.CertificationLevel != "FIDO_CERTIFIED_L2" ||
					c.Attestation.Root != w.vendor.Cert.Subject.String() || c.Attestation.MDSStatus != "FIDO_CERTIFIED_L2" ||
					c.Attestation.Format != "packed" || len(c.Attestation.PolicyViolations) != 0 || c.Name == nil || *c.Name != "Test Certified Key" {
					t.Fatalf("certified credential %+v, attestation %+v", c, c.Attestation)
				}
				continue
			}
			if status != 403 || e.Code != "authenticator_not_allowed" {
				t.Fatalf("%s: status %d, body %+v; want 403 authenticator_not_allowed", k.name, status, e)
			}
			resp := r.get(r.path("/credentials?user_id=enforce-"+k.name, "/credentials?user_id=enforce-"+k.name))
			if list := decode[[]httpapi.CredentialResponse](t, resp); len(list) != 0 {
				t.Fatalf("%s: a refused registration stored %d credentials", k.name, len(list))
			}
		}

		// Monitor: everything registers, with its verdict and the rules it broke.
		bank["mode"] = "monitor"
		r.setPolicy("webauthn", bank)
		for _, k := range keys {
			status, e, credID := r.tryRegister(k.key, "monitor-"+k.name)
			if status != 200 {
				t.Fatalf("%s under monitor: %d %+v", k.name, status, e)
			}
			a := r.credential(credID).Attestation
			if a == nil || a.Verdict != k.verdict || !slices.Equal(a.PolicyViolations, k.violations) {
				t.Fatalf("%s under monitor: attestation %+v, want verdict %s and violations %v", k.name, a, k.verdict, k.violations)
			}
		}

		// Malformed policies are a 400 with a stable code.
		for _, bad := range []map[string]any{
			{"mode": "strict"},
			{"mode": "enforce", "min_certification": "FIDO_CERTIFIED_L9"},
			{"mode": "enforce", "allowed_aaguids": []string{"nope"}},
			{"mode": "enforce", "allowed_aaguids": []string{w.certified.String()}, "denied_aaguids": []string{w.certified.String()}},
		} {
			cfg := validConfig("example.com")
			cfg["webauthn"].(map[string]any)["attestation_policy"] = bad
			expectStatus(t, s.adminCall("PUT", "/tenants/"+r.id+"/config", cfg), 400, "invalid_config")
		}

		// MFA has its own policy: synced passkeys log in, but only certified keys are second factors.
		r.setPolicy("mfa", map[string]any{"mode": "enforce", "allow_backup_eligible": false})
		synced := authenticatortest.New(authenticatortest.Options{BackupEligible: true, BackupState: true})
		r.register(synced, "dana")
		resp := r.post(r.mfaPath("/registration/initialize", "/register/initialize"), map[string]any{"user_id": "dana", "username": "dana"}, true)
		expectStatus(t, resp, 200, "")
		att, err := authenticatortest.New(authenticatortest.Options{BackupEligible: true, BackupState: true}).Create(readAll(t, resp), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, r.post(r.mfaPath("/registration/finalize", "/register/finalize"), att, true), 403, "authenticator_not_allowed")
		r.mfaRegister(w.key(w.certified, authenticatortest.Options{}), "dana")
	})
}

func TestAttestationRevokedAtLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newTrustWorld(t)
		s := newTestServer(t, d, newTestSealer(t), func(o *testOptions) { o.Metadata = w.source })
		r := newRP(t, s, "example.com")
		r.setPolicy("webauthn", map[string]any{"mode": "enforce", "min_certification": "FIDO_CERTIFIED_L1"})
		key := w.key(w.certified, authenticatortest.Options{})
		_, credID := r.register(key, "carol")
		r.login(key, "carol")

		// A blob with a bad signature, and then a stale one, keep blob 1.
		w.write(attestationtest.Blob{Number: 5, NextUpdate: time.Now().AddDate(0, 1, 0)}.Sign(attestationtest.NewCA("Impostor")))
		if err := w.source.Refresh(context.Background()); err == nil {
			t.Fatal("a blob under another root was taken")
		}
		w.write(attestationtest.Blob{Number: 6, NextUpdate: time.Now().AddDate(0, 0, -3)}.Sign(w.mdsRoot))
		if err := w.source.Refresh(context.Background()); err == nil {
			t.Fatal("a stale blob was taken")
		}
		state := decode[httpapi.MetadataResponse](t, s.adminCall("GET", "/metadata", nil))
		if !state.Loaded || state.Number == nil || *state.Number != 1 || state.Entries != 2 || state.Refresh.LastError == "" || state.Refresh.Failures != 2 {
			t.Fatalf("metadata after failed refreshes: %+v", state)
		}
		ready := decode[map[string]any](t, call(t, s.admin, "GET", "/health/ready", nil))
		if ready["ready"] != true || ready["details"] == nil {
			t.Fatalf("readiness after failed refreshes: %v", ready)
		}
		r.login(key, "carol")

		// Blob 2 revokes the model: the next login is refused, and audited.
		w.publish(2, true)
		if err := w.source.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		options := r.loginOptions("carol")
		assertion, err := key.Get(options, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, r.loginFinalize(assertion), 403, "authenticator_revoked")
		entries := r.auditLog("?type=authenticator_status_changed")
		if len(entries) != 1 || entries[0].Details["status"] != "REVOKED" || entries[0].Details["action"] != "refused" ||
			entries[0].Details["credential_id"] != credID {
			t.Fatalf("audit entries %+v", entries)
		}
		if e := r.auditLog("?type=webauthn_authentication_final_failed"); len(e) == 0 || !strings.HasPrefix(e[0].Error, "authenticator_revoked") {
			t.Fatalf("failed login entries %+v", e)
		}

		// Under monitor the login goes through, the status is recorded once, and flagged once.
		r.setPolicy("webauthn", map[string]any{"mode": "monitor"})
		r.login(key, "carol")
		r.login(key, "carol")
		if a := r.credential(credID).Attestation; a == nil || a.MDSStatus != "REVOKED" {
			t.Fatalf("attestation after a monitored login: %+v", a)
		}
		if entries := r.auditLog("?type=authenticator_status_changed"); len(entries) != 2 || entries[0].Details["action"] != "flagged" {
			t.Fatalf("audit entries %+v", entries)
		}

		// The admin API shows the model and its new status.
		m := decode[httpapi.AuthenticatorResponse](t, s.adminCall("GET", "/metadata/"+w.certified.String(), nil))
		if m.Description != "Test Certified Key" || m.Status != "REVOKED" || m.RefusedStatus != "REVOKED" || m.CertificationLevel != "FIDO_CERTIFIED_L2" ||
			len(m.StatusReports) != 3 || len(m.AttestationRoots) != 1 {
			t.Fatalf("metadata entry %+v", m)
		}
		expectStatus(t, s.adminCall("GET", "/metadata/"+uuid.NewString(), nil), 404, "authenticator_not_found")
		expectStatus(t, s.adminCall("GET", "/metadata/not-an-aaguid", nil), 400, "invalid_request")
	})
}

// TestAttestationWithoutMetadata: a corrupt blob at start does not stop tenants that do not enforce;
// an enforcing tenant's registrations get 503 metadata_unavailable.
func TestAttestationWithoutMetadata(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		path := filepath.Join(t.TempDir(), "mds.jwt")
		if err := os.WriteFile(path, []byte("corrupt"), 0o600); err != nil {
			t.Fatal(err)
		}
		src := attestation.NewSource(attestation.SourceOptions{File: path, Root: attestationtest.NewCA("Root").Base64(), Logger: discardLog()})
		if err := src.Refresh(context.Background()); err == nil {
			t.Fatal("a corrupt blob loaded")
		}
		s := newTestServer(t, d, newTestSealer(t), func(o *testOptions) { o.Metadata = src })
		plain, bank := newRP(t, s, "example.com"), newRP(t, s, "example.com")
		bank.setPolicy("webauthn", map[string]any{"mode": "enforce"})
		key := authenticatortest.New(authenticatortest.Options{})
		plain.register(key, "erin")
		plain.login(key, "erin")
		status, e, _ := bank.tryRegister(authenticatortest.New(authenticatortest.Options{}), "erin")
		if status != 503 || e.Code != "metadata_unavailable" {
			t.Fatalf("enforcing tenant without metadata: %d %+v", status, e)
		}
		state := decode[httpapi.MetadataResponse](t, s.adminCall("GET", "/metadata", nil))
		if !state.Configured || state.Loaded || state.Refresh.LastError == "" {
			t.Fatalf("metadata state %+v", state)
		}
	})
}
