package audit_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// TestRecorderSQLite records through the Recorder into the database store and reads the events back.
func TestRecorderSQLite(t *testing.T) {
	d := dbtest.SQLite(t)
	_, a, _ := tenants(t, d)
	store := db.NewAuditStore(d)
	rec := audit.NewRecorder(store, discardLog())
	stop := start(t, rec)
	for i := range 450 {
		rec.Record(audit.Event{TenantID: &a, Type: "webauthn_credential_updated", ActorUserID: strings.Repeat("a", i%5+1)})
	}
	flush(t, rec)
	list, total, err := store.List(context.Background(), audit.Filter{TenantID: &a, Page: passkey.Page{Size: 1000}})
	if err != nil || total != 450 || len(list) != 450 {
		t.Fatalf("List = %d events, total %d, %v; want 450", len(list), total, err)
	}
	// Events recorded just before shutdown land too.
	for range 30 {
		rec.Record(audit.Event{TenantID: &a, Type: "webauthn_credential_deleted"})
	}
	stop()
	if _, total, _ := store.List(context.Background(), audit.Filter{TenantID: &a}); total != 480 {
		t.Fatalf("after shutdown: total %d, want 480", total)
	}
}

// tenantService returns a tenant service on d, built from the same pieces main wires: a Directory
// and a Service over the database's tenant store. The service emits its changes to events (nil drops
// them).
func tenantService(t *testing.T, d *db.DB, events *passkey.Bus) *tenant.Service {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	sealer, err := signing.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	store := db.NewTenantStore(d)
	dir := tenant.NewDirectory(tenant.DirectoryOptions{Store: store, Sealer: sealer, PublicURL: "http://localhost:8000", Logger: discardLog()})
	return tenant.NewService(tenant.Options{Store: store, Sealer: sealer, Directory: dir, Events: events, Logger: discardLog()})
}

// createTenant makes a tenant whose relying party is rpID and returns its id.
func createTenant(t *testing.T, svc *tenant.Service, rpID string) uuid.UUID {
	t.Helper()
	tn, _, err := svc.Create(context.Background(), tenant.CreateInput{DisplayName: rpID, Config: tenantConfig(rpID)})
	if err != nil {
		t.Fatalf("create tenant %s: %v", rpID, err)
	}
	return tn.ID
}

// tenants makes a tenant service on d with two tenants.
func tenants(t *testing.T, d *db.DB) (*tenant.Service, uuid.UUID, uuid.UUID) {
	t.Helper()
	svc := tenantService(t, d, nil)
	return svc, createTenant(t, svc, "a.example.com"), createTenant(t, svc, "b.example.com")
}

// tenantConfig is a config that validates (as cmd's harness has it).
func tenantConfig(rpID string) tenant.Config {
	origin := "https://" + rpID
	return tenant.Config{
		CORS: tenant.CORSConfig{AllowedOrigins: []string{origin}},
		WebAuthn: tenant.WebAuthnConfig{
			RelyingParty: tenant.RelyingParty{ID: rpID, DisplayName: "Test RP", Origins: []string{origin}},
			Timeout:      60000,
		},
	}
}
