package attestation_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/attestation"
	"github.com/passkey-server/passkey-server/attestation/attestationtest"
	"github.com/passkey-server/passkey-server/tenant"
)

// world is a test trust world: an MDS root that signs blobs, a vendor root that issues attestation
// certificates, and three models (certified at L2, not certified, revoked).
type world struct {
	mdsRoot, vendor               *attestationtest.CA
	certified, uncertified, later uuid.UUID
	now                           time.Time
}

func newWorld() *world {
	return &world{mdsRoot: attestationtest.NewCA("Test MDS Root"), vendor: attestationtest.NewCA("Test Vendor Root"),
		certified: uuid.New(), uncertified: uuid.New(), later: uuid.New(), now: time.Now().UTC()}
}

// blob lists the three models; revoked adds a REVOKED report to the certified one.
func (w *world) blob(number int, revoked bool) attestationtest.Blob {
	certified := []attestationtest.Status{{Status: "FIDO_CERTIFIED_L1", EffectiveDate: "2024-01-01"}, {Status: "FIDO_CERTIFIED_L2", EffectiveDate: "2024-06-01"}}
	if revoked {
		certified = append(certified, attestationtest.Status{Status: "REVOKED", EffectiveDate: w.now.AddDate(0, 0, -1).Format(time.DateOnly)})
	}
	return attestationtest.Blob{Number: number, NextUpdate: w.now.AddDate(0, 1, 0), Entries: []attestationtest.Entry{
		{AAGUID: w.certified, Description: "Test Certified Key", Roots: []*attestationtest.CA{w.vendor}, Statuses: certified},
		{AAGUID: w.uncertified, Description: "Test Uncertified Key", Roots: []*attestationtest.CA{w.vendor},
			Statuses: []attestationtest.Status{{Status: "NOT_FIDO_CERTIFIED", EffectiveDate: "2024-01-01"}}},
	}}
}

func TestParseVerifiesTheChain(t *testing.T) {
	w := newWorld()
	m, err := attestation.Parse(w.blob(7, false).Sign(w.mdsRoot), w.mdsRoot.Base64(), w.now)
	if err != nil {
		t.Fatal(err)
	}
	if m.Number != 7 || m.Len() != 2 {
		t.Fatalf("number %d, entries %d", m.Number, m.Len())
	}
	if _, ok := m.Entry(w.certified); !ok {
		t.Fatal("certified model missing")
	}

	for name, blob := range map[string][]byte{
		"signed under another root": w.blob(8, false).Sign(attestationtest.NewCA("Impostor")),
		"garbage":                   []byte("not a jwt"),
		"tampered payload":          tamper(w.blob(8, false).Sign(w.mdsRoot)),
	} {
		if _, err := attestation.Parse(blob, w.mdsRoot.Base64(), w.now); !errors.Is(err, attestation.ErrInvalidBlob) {
			t.Errorf("%s: err = %v, want ErrInvalidBlob", name, err)
		}
	}
	stale := w.blob(9, false)
	stale.NextUpdate = w.now.AddDate(0, 0, -2)
	if _, err := attestation.Parse(stale.Sign(w.mdsRoot), w.mdsRoot.Base64(), w.now); !errors.Is(err, attestation.ErrInvalidBlob) {
		t.Errorf("stale blob: err = %v", err)
	}
}

// tamper changes a byte of a JWT's payload, keeping it decodable.
func tamper(jwt []byte) []byte {
	out := slices.Clone(jwt)
	for i := range out {
		if out[i] == '.' { // first byte of the payload
			out[i+5] ^= 0x01
			break
		}
	}
	return out
}

func TestSourceKeepsThePreviousBlob(t *testing.T) {
	w := newWorld()
	path := filepath.Join(t.TempDir(), "blob.jwt")
	write := func(b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write([]byte("corrupt"))
	s := attestation.NewSource(attestation.SourceOptions{File: path, Root: w.mdsRoot.Base64(), Now: func() time.Time { return w.now }})
	if err := s.Refresh(context.Background()); err == nil || s.Current() != nil {
		t.Fatalf("corrupt file: err %v, current %v", err, s.Current())
	}
	if st := s.Status(); st.LastError == "" || st.Failures != 1 {
		t.Fatalf("status %+v", st)
	}

	write(w.blob(10, false).Sign(w.mdsRoot))
	if err := s.Refresh(context.Background()); err != nil || s.Current().Number != 10 {
		t.Fatalf("good blob: err %v", err)
	}
	first := s.Current()

	bad := map[string][]byte{
		"bad signature": w.blob(11, false).Sign(attestationtest.NewCA("Impostor")),
		"older number":  w.blob(9, false).Sign(w.mdsRoot),
		"stale": func() []byte {
			b := w.blob(12, false)
			b.NextUpdate = w.now.AddDate(0, 0, -3)
			return b.Sign(w.mdsRoot)
		}(),
	}
	for name, blob := range bad {
		write(blob)
		if err := s.Refresh(context.Background()); err == nil {
			t.Errorf("%s: refresh succeeded", name)
		}
		if s.Current() != first {
			t.Errorf("%s: the previous blob was replaced", name)
		}
	}
	if s.Failures() != 4 || s.Status().LastError == "" {
		t.Fatalf("failures %d, status %+v", s.Failures(), s.Status())
	}
	// After a failure the next attempt comes after the retry interval, not at nextUpdate.
	if next := s.NextRefresh(); !next.Equal(s.Status().LastAttempt.Add(time.Hour)) {
		t.Fatalf("next refresh %v", next)
	}

	write(w.blob(11, true).Sign(w.mdsRoot))
	if err := s.Refresh(context.Background()); err != nil || s.Current().Number != 11 {
		t.Fatalf("newer blob: err %v", err)
	}
	if got := s.Refused(w.certified); got != "REVOKED" {
		t.Fatalf("Refused = %q after the REVOKED blob", got)
	}
	if s.Status().LastError != "" {
		t.Fatal("a success keeps the last error")
	}
}

func TestSourceFetchesTheURL(t *testing.T) {
	w := newWorld()
	var calls atomic.Int32
	blob := w.blob(3, false).Sign(w.mdsRoot)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 {
			http.Error(rw, "down", http.StatusBadGateway)
			return
		}
		rw.Write(blob)
	}))
	defer srv.Close()
	s := attestation.NewSource(attestation.SourceOptions{URL: srv.URL, Root: w.mdsRoot.Base64(), Client: srv.Client()})
	if err := s.Refresh(context.Background()); err != nil || s.Current().Number != 3 || s.Current().Origin != srv.URL {
		t.Fatalf("err %v", err)
	}
	if err := s.Refresh(context.Background()); err == nil || s.Current().Number != 3 {
		t.Fatalf("a failed fetch: err %v", err)
	}
}

func TestCheck(t *testing.T) {
	w := newWorld()
	s := attestation.NewSource(attestation.SourceOptions{File: writeBlob(t, w.blob(1, false).Sign(w.mdsRoot)), Root: w.mdsRoot.Base64()})
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, certifiedChain := w.vendor.Attestation(w.certified)
	_, uncertifiedChain := w.vendor.Attestation(w.uncertified)
	_, foreignChain := attestationtest.NewCA("Other Vendor").Attestation(w.certified)
	no := false
	enforce := &tenant.AttestationPolicy{Mode: tenant.PolicyEnforce, MinCertification: "FIDO_CERTIFIED_L1",
		DeniedAAGUIDs: []string{w.later.String()}, AllowBackupEligible: &no}
	packed := func(aaguid uuid.UUID, chain [][]byte) attestation.Evidence {
		return attestation.Evidence{Format: "packed", Type: "basic_full", AAGUID: aaguid, Chain: chain}
	}
	for _, tc := range []struct {
		name       string
		e          attestation.Evidence
		verdict    attestation.Verdict
		level      string
		violations []string
	}{
		{"certified key", packed(w.certified, certifiedChain), attestation.Verified, "FIDO_CERTIFIED_L2", nil},
		{"uncertified key", packed(w.uncertified, uncertifiedChain), attestation.Verified, "", []string{attestation.ViolationCertification}},
		{"chain of another vendor", packed(w.certified, foreignChain), attestation.Unverified, "", []string{attestation.ViolationUnverified}},
		{"denied", packed(w.later, certifiedChain), attestation.Unverified, "", []string{attestation.ViolationAAGUIDDenied, attestation.ViolationUnverified}},
		{"self", attestation.Evidence{Format: "packed", Type: "basic_surrogate", AAGUID: w.certified}, attestation.Self, "", []string{attestation.ViolationUnverified}},
		{"none, synced", attestation.Evidence{Format: "none", Type: "none", BackupEligible: true}, attestation.None, "", []string{attestation.ViolationBackupEligible, attestation.ViolationUnverified}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.Check(enforce, tc.e)
			if r.Verdict != tc.verdict || r.CertificationLevel != tc.level || !slices.Equal(r.Violations, tc.violations) {
				t.Fatalf("record %+v", r)
			}
			if (err != nil) != (len(tc.violations) > 0) || err != nil && !errors.Is(err, attestation.ErrNotAllowed) {
				t.Fatalf("err %v", err)
			}
			monitor := *enforce
			monitor.Mode = tenant.PolicyMonitor
			if r2, err := s.Check(&monitor, tc.e); err != nil || !slices.Equal(r2.Violations, tc.violations) {
				t.Fatalf("monitor: %+v, %v", r2, err)
			}
		})
	}
	if r, _ := s.Check(nil, packed(w.certified, certifiedChain)); r.Root != w.vendor.Cert.Subject.String() || r.Name != "Test Certified Key" || r.Status != "FIDO_CERTIFIED_L2" {
		t.Fatalf("record of mode none: %+v", r)
	}
}

func TestEnforceWithoutLoadedMetadata(t *testing.T) {
	w := newWorld()
	corrupt := attestation.NewSource(attestation.SourceOptions{File: writeBlob(t, []byte("corrupt")), Root: w.mdsRoot.Base64()})
	_ = corrupt.Refresh(context.Background())
	e := attestation.Evidence{Format: "none", Type: "none"}
	if _, err := corrupt.Check(&tenant.AttestationPolicy{Mode: tenant.PolicyEnforce}, e); !errors.Is(err, attestation.ErrMetadataUnavailable) {
		t.Fatalf("enforce: %v", err)
	}
	if _, err := corrupt.Check(&tenant.AttestationPolicy{Mode: tenant.PolicyMonitor}, e); err != nil {
		t.Fatalf("monitor: %v", err)
	}
	// No metadata configured at all: enforce applies the rules it can.
	var none *attestation.Source
	if _, err := none.Check(&tenant.AttestationPolicy{Mode: tenant.PolicyEnforce}, e); err != nil {
		t.Fatalf("nothing configured: %v", err)
	}
}

func writeBlob(t *testing.T, b []byte) string {
	path := filepath.Join(t.TempDir(), "blob.jwt")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
