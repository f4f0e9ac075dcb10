package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// Credentials returns a credentials service on d, with its sessions in memory, its events sent to
// events (on a bus whose changes are transactions of d) and its log discarded: the service the
// domain packages' tests run ceremonies on.
func Credentials(d *db.DB, events passkey.Sink) *credentials.Service {
	bus := passkey.NewBus(events)
	bus.UseTransactions(d)
	return credentials.NewService(credentials.Options{
		Store:    db.NewCredentialStore(d),
		Sessions: db.NewMemorySessions(time.Now),
		Events:   bus,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

// JSON is v as JSON; it fails the test when v does not encode.
func JSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Origin is the only origin of the tenants Tenant makes; their RP ID is example.com.
const Origin = "https://example.com"

// Tenant makes a tenant on d whose config validates (RP ID example.com, origin and CORS Origin, a 60 s
// timeout) and returns its snapshot as a Directory serves it, for tests of the domain services. edit,
// when not nil, changes the config before the tenant is made.
func Tenant(t testing.TB, d *db.DB, edit func(*tenant.Config)) *tenant.Snapshot {
	t.Helper()
	ctx := context.Background()
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	sealer, err := signing.NewSealer(master)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := tenant.NewDirectory(tenant.DirectoryOptions{Store: db.NewTenantStore(d), Sealer: sealer, PublicURL: "http://localhost:8000", Logger: quiet})
	tenants := tenant.NewService(tenant.Options{Store: db.NewTenantStore(d), Sealer: sealer, Directory: dir, Logger: quiet})
	cfg := tenant.Config{
		CORS: tenant.CORSConfig{AllowedOrigins: []string{Origin}},
		WebAuthn: tenant.WebAuthnConfig{
			RelyingParty: tenant.RelyingParty{ID: "example.com", DisplayName: "Test RP", Origins: []string{Origin}},
			Timeout:      60000,
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	tn, _, err := tenants.Create(ctx, tenant.CreateInput{DisplayName: "T", Config: cfg})
	if err != nil {
		t.Fatalf("dbtest: create tenant: %v", err)
	}
	snap, err := dir.Resolve(ctx, tn.ID)
	if err != nil {
		t.Fatalf("dbtest: resolve tenant: %v", err)
	}
	return snap
}

// Events records the events a service emits, in order. It is a passkey.Sink.
type Events struct {
	mu     sync.Mutex
	events []passkey.Event
}

// Emit implements passkey.Sink.
func (r *Events) Emit(_ context.Context, e passkey.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Take returns the events recorded since the last Take.
func (r *Events) Take() []passkey.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// CheckEvents compares events with want in order: every field but At and Request must be equal, and
// Err must match the wanted error with errors.Is (nil wants nil).
func CheckEvents(t testing.TB, got []passkey.Event, want ...passkey.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d events %v, want %d", len(got), got, len(want))
		return
	}
	for i := range want {
		g, w := got[i], want[i]
		gotErr, wantErr := g.Err, w.Err
		g.Err, w.Err, g.At, g.Request = nil, nil, time.Time{}, passkey.Request{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("event %d = %+v, want %+v", i, g, w)
		}
		if wantErr == nil && gotErr != nil || wantErr != nil && !errors.Is(gotErr, wantErr) {
			t.Errorf("event %d (%s) Err = %v, want %v", i, g.Type, gotErr, wantErr)
		}
	}
}

// Claims returns the claims of a token without verifying it (tests verify signatures elsewhere).
func Claims(t testing.TB, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS compact serialization", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("token payload: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatalf("token payload: %v", err)
	}
	return m
}
