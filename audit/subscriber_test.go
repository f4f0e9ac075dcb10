package audit_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/webhooks"
)

// ceremonyTypes are the Hanko type stems of each ceremony name (docs/hanko-compatibility.md#audit-log-types),
// written out here rather than taken from the package, so that a changed mapping fails the test.
var ceremonyTypes = []struct{ ceremony, stem string }{
	{"registration", "webauthn_registration"},
	{"login", "webauthn_authentication"},
	{"mfa_registration", "mfa_registration"},
	{"mfa_login", "mfa_authentication"},
	{"transaction", "webauthn_transaction"},
}

// ceremonyEvent returns the event a service emits for one ceremony step: err nil is a success.
func ceremonyEvent(tenantID uuid.UUID, ceremony, step string, err error) passkey.Event {
	e := passkey.Event{TenantID: tenantID, Ceremony: ceremony, Step: step, Err: err}
	switch {
	case step == passkey.StepInitialize && err == nil:
		e.Type = passkey.CeremonyStarted
	case step == passkey.StepInitialize:
		e.Type = passkey.CeremonyStartFailed
	case err == nil:
		e.Type = passkey.CeremonySucceeded
	default:
		e.Type = passkey.CeremonyFailed
	}
	return e
}

// TestFromEventCeremonies checks the Hanko type of every ceremony × step × outcome, and that each is
// a Hanko type.
func TestFromEventCeremonies(t *testing.T) {
	tenantID := uuid.New()
	hanko := audit.HankoTypes()
	steps := []struct{ step, name string }{{passkey.StepInitialize, "init"}, {passkey.StepFinalize, "final"}}
	outcomes := []struct {
		err    error
		suffix string
		code   string
	}{
		{nil, "succeeded", ""},
		{credentials.ErrAssertionFailed, "failed", "assertion_failed"},
	}
	seen := map[string]bool{}
	for _, c := range ceremonyTypes {
		for _, s := range steps {
			for _, o := range outcomes {
				want := c.stem + "_" + s.name + "_" + o.suffix
				t.Run(want, func(t *testing.T) {
					got, ok := audit.FromEvent(ceremonyEvent(tenantID, c.ceremony, s.step, o.err))
					if !ok {
						t.Fatalf("%s %s (err %v) not kept", c.ceremony, s.step, o.err)
					}
					if got.Type != want || got.Ceremony != c.ceremony || got.Error != o.code {
						t.Errorf("type %q, ceremony %q, error %q; want %q, %q, %q",
							got.Type, got.Ceremony, got.Error, want, c.ceremony, o.code)
					}
					if got.TenantID == nil || *got.TenantID != tenantID {
						t.Errorf("TenantID = %v, want %s", got.TenantID, tenantID)
					}
					if got.Details != nil {
						t.Errorf("Details = %v on a ceremony event, want none", got.Details)
					}
					if !slices.Contains(hanko, got.Type) {
						t.Errorf("%s is not one of Hanko's types", got.Type)
					}
					seen[got.Type] = true
				})
			}
		}
	}
	if len(seen) != 20 {
		t.Errorf("%d distinct ceremony types, want 20 (5 ceremonies × 2 steps × 2 outcomes)", len(seen))
	}
}

// TestFromEventErrors checks that a failed step stores the error's stable code and its client-safe
// details, and never the text of an error that is not a domain error.
func TestFromEventErrors(t *testing.T) {
	local := passkey.NewError("assertion_failed", "failed to validate assertion")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"code and details", passkey.WithDetails(credentials.ErrAssertionFailed, "Error validating challenge"),
			"assertion_failed: Error validating challenge"},
		{"local sentinel", passkey.WithDetails(local, "Error validating challenge"), "assertion_failed: Error validating challenge"},
		{"wrapped", fmt.Errorf("finish login: %w", passkey.WithDetails(credentials.ErrAssertionFailed, fmt.Sprintf("sign count %d", 3))),
			"assertion_failed: sign count 3"},
		{"code only", credentials.ErrAssertionFailed, "assertion_failed"},
		{"validation problems", passkey.Invalid("user_id is a required field"), "invalid_request: user_id is a required field"},
		{"plain error", errors.New("pq: connection refused to 10.0.0.5, password=hunter2"), "internal_error"},
		{"plain error wrapping nothing domain", fmt.Errorf("store: %w", errors.New("disk full")), "internal_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []string{passkey.StepInitialize, passkey.StepFinalize} {
				got, ok := audit.FromEvent(ceremonyEvent(uuid.New(), "login", step, tc.err))
				if !ok || got.Error != tc.want {
					t.Errorf("%s: Error = %q (kept %v), want %q", step, got.Error, ok, tc.want)
				}
			}
		})
	}
	// A success carries no error.
	if got, _ := audit.FromEvent(ceremonyEvent(uuid.New(), "login", passkey.StepFinalize, nil)); got.Error != "" {
		t.Errorf("success has error %q", got.Error)
	}
}

// TestFromEventMetadata checks that a ceremony event's actor, transaction, ceremony, request and time
// are copied.
func TestFromEventMetadata(t *testing.T) {
	tenantID := uuid.New()
	at := time.Date(2026, 2, 3, 4, 5, 6, 7000, time.UTC)
	e := ceremonyEvent(tenantID, "transaction", passkey.StepFinalize, nil)
	e.AppUserID = "carol"
	e.TransactionID = "tx-1"
	e.CredentialID = "Y3JlZA"
	e.At = at
	e.Request = passkey.Request{ID: "req-1", SourceIP: "203.0.113.7", UserAgent: "agent/1"}
	got, ok := audit.FromEvent(e)
	if !ok {
		t.Fatal("transaction success not kept")
	}
	want := audit.Event{
		TenantID: &tenantID, Type: "webauthn_transaction_final_succeeded", Ceremony: "transaction",
		RequestID: "req-1", SourceIP: "203.0.113.7", UserAgent: "agent/1",
		ActorUserID: "carol", TransactionID: "tx-1", CreatedAt: at,
	}
	if got.TenantID == nil || *got.TenantID != tenantID {
		t.Fatalf("TenantID = %v, want %s", got.TenantID, tenantID)
	}
	got.TenantID = want.TenantID
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("FromEvent =\n %+v\nwant\n %+v", got, want)
	}
	if got.ID != uuid.Nil {
		t.Errorf("ID = %s: FromEvent must leave it to the Recorder", got.ID)
	}
}

// TestFromEventChanges checks the type, actor and details of every change the log keeps.
func TestFromEventChanges(t *testing.T) {
	tenantID := uuid.New()
	at := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	request := passkey.Request{ID: "req-2", SourceIP: "198.51.100.1", UserAgent: "admin-cli"}
	tests := []struct {
		event   passkey.EventType
		user    string
		details map[string]string
		want    string
		actor   string // the actor stored; "-" when the test does not pin it
	}{
		{passkey.CredentialRenamed, "alice", map[string]string{"credential_id": "Y3JlZA"}, "webauthn_credential_updated", "alice"},
		{passkey.CredentialDeleted, "alice", map[string]string{"credential_id": "Y3JlZA"}, "webauthn_credential_deleted", "alice"},
		{passkey.UserDeleted, "bob", map[string]string{"user_id": "bob"}, "user_deleted", "-"},
		{passkey.TenantCreated, "", nil, "tenant_created", ""},
		{passkey.TenantRenamed, "", nil, "tenant_updated", ""},
		{passkey.TenantConfigChanged, "", nil, "tenant_config_updated", ""},
		{passkey.APIKeyCreated, "", map[string]string{"api_key_id": uuid.NewString(), "name": "ci", "kind": "secret"}, "api_key_created", ""},
		{passkey.APIKeyRevoked, "", map[string]string{"secret_id": uuid.NewString()}, "api_key_deleted", ""},
		{passkey.SigningKeyRotated, "", map[string]string{"kid": "k1", "algorithm": "ES256"}, "signing_key_rotated", ""},
		{passkey.WebhookEndpointDisabled, "", map[string]string{"webhook_id": uuid.NewString(), "reason": webhooks.DisabledGone}, "webhook_endpoint_disabled", ""},
	}
	for _, tc := range tests {
		t.Run(string(tc.event), func(t *testing.T) {
			details := map[string]string{}
			for k, v := range tc.details {
				details[k] = v
			}
			got, ok := audit.FromEvent(passkey.Event{Type: tc.event, TenantID: tenantID, AppUserID: tc.user,
				Details: details, At: at, Request: request})
			if !ok {
				t.Fatalf("%s not kept", tc.event)
			}
			if got.Type != tc.want {
				t.Errorf("Type = %q, want %q", got.Type, tc.want)
			}
			if got.TenantID == nil || *got.TenantID != tenantID {
				t.Errorf("TenantID = %v, want %s", got.TenantID, tenantID)
			}
			if tc.actor != "-" && got.ActorUserID != tc.actor {
				t.Errorf("ActorUserID = %q, want %q", got.ActorUserID, tc.actor)
			}
			if got.Ceremony != "" || got.Error != "" || got.TransactionID != "" {
				t.Errorf("ceremony fields on a change: %+v", got)
			}
			if got.RequestID != "req-2" || got.SourceIP != "198.51.100.1" || got.UserAgent != "admin-cli" || !got.CreatedAt.Equal(at) {
				t.Errorf("request or time not copied: %+v", got)
			}
			if len(got.Details) != len(tc.details) {
				t.Errorf("Details = %v, want %v", got.Details, tc.details)
			}
			for k, v := range tc.details {
				if got.Details[k] != v {
					t.Errorf("Details[%s] = %v, want %s", k, got.Details[k], v)
				}
			}
			// The entry does not share the event's map.
			details["injected"] = "x"
			if _, present := got.Details["injected"]; present {
				t.Error("Details shares the event's map")
			}
		})
	}
}

// TestFromEventEndpointDisabledKeepsNoURL: a disabled webhook endpoint is recorded with its id and the
// reason only, whatever else its event carries: a URL may hold a token, and the log is readable with
// a tenant's API key while endpoints are admin-only.
func TestFromEventEndpointDisabledKeepsNoURL(t *testing.T) {
	id := uuid.NewString()
	got, ok := audit.FromEvent(passkey.Event{Type: passkey.WebhookEndpointDisabled, TenantID: uuid.New(),
		Details: map[string]string{"webhook_id": id, "reason": webhooks.DisabledFailing, "url": "https://example.com/hook?token=s3cret"}})
	if !ok {
		t.Fatal("not kept")
	}
	want := map[string]any{"webhook_id": id, "reason": webhooks.DisabledFailing}
	if got.Type != "webhook_endpoint_disabled" || !maps.Equal(got.Details, want) {
		t.Errorf("type %q, details %v; want webhook_endpoint_disabled, %v", got.Type, got.Details, want)
	}
}

// TestFromEventTenantDeleted checks that a tenant's deletion is deployment-wide (deleting a tenant
// deletes its events) and names the tenant.
func TestFromEventTenantDeleted(t *testing.T) {
	tenantID := uuid.New()
	got, ok := audit.FromEvent(passkey.Event{Type: passkey.TenantDeleted, TenantID: tenantID,
		Request: passkey.Request{ID: "req-3"}})
	if !ok {
		t.Fatal("tenant deletion not kept")
	}
	if got.Type != "tenant_deleted" || got.TenantID != nil || got.RequestID != "req-3" {
		t.Errorf("FromEvent = %+v, want type tenant_deleted, no tenant, request req-3", got)
	}
	if got.Details["tenant_id"] != tenantID.String() || len(got.Details) != 1 {
		t.Errorf("Details = %v, want tenant_id %s only", got.Details, tenantID)
	}
}

// TestFromEventDropped checks the events the log does not keep.
func TestFromEventDropped(t *testing.T) {
	tenantID := uuid.New()
	tests := []struct {
		name  string
		event passkey.Event
	}{
		// A request whose tenant could not be found: nobody could read it, and unauthenticated
		// clients must not fill the table.
		{"ceremony failure without tenant", ceremonyEvent(uuid.Nil, "login", passkey.StepFinalize, credentials.ErrAssertionFailed)},
		{"ceremony start failure without tenant", ceremonyEvent(uuid.Nil, "registration", passkey.StepInitialize, errors.New("boom"))},
		{"ceremony success without tenant", ceremonyEvent(uuid.Nil, "transaction", passkey.StepInitialize, nil)},
		{"credential change without tenant", passkey.Event{Type: passkey.CredentialDeleted, AppUserID: "alice",
			Details: map[string]string{"credential_id": "Y3JlZA"}}},
		{"api key without tenant", passkey.Event{Type: passkey.APIKeyCreated}},
		// The login's own entry shows these.
		{"clone flag", passkey.Event{Type: passkey.CredentialCloneFlagged, TenantID: tenantID, AppUserID: "alice", CredentialID: "Y3JlZA"}},
		{"backup state", passkey.Event{Type: passkey.CredentialBackupStateChanged, TenantID: tenantID, AppUserID: "alice", CredentialID: "Y3JlZA"}},
		{"unknown ceremony", ceremonyEvent(tenantID, "password", passkey.StepFinalize, nil)},
		{"unknown type", passkey.Event{Type: "something.else", TenantID: tenantID}},
		{"zero event", passkey.Event{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := audit.FromEvent(tc.event); ok {
				t.Errorf("kept as %+v", got)
			}
		})
	}
}

// allEvents returns one event of every type and ceremony step that services emit, with a tenant.
func allEvents(tenantID uuid.UUID) []passkey.Event {
	var out []passkey.Event
	for _, c := range ceremonyTypes {
		for _, step := range []string{passkey.StepInitialize, passkey.StepFinalize} {
			out = append(out, ceremonyEvent(tenantID, c.ceremony, step, nil),
				ceremonyEvent(tenantID, c.ceremony, step, credentials.ErrAssertionFailed))
		}
	}
	for _, typ := range []passkey.EventType{
		passkey.CredentialRenamed, passkey.CredentialDeleted, passkey.CredentialCloneFlagged,
		passkey.CredentialBackupStateChanged, passkey.UserDeleted, passkey.TenantCreated, passkey.TenantRenamed,
		passkey.TenantConfigChanged, passkey.TenantDeleted, passkey.APIKeyCreated, passkey.APIKeyRevoked,
		passkey.SigningKeyRotated, passkey.CredentialAuthenticatorStatusChanged, passkey.TenantImported,
		passkey.WebhookEndpointDisabled,
	} {
		out = append(out, passkey.Event{Type: typ, TenantID: tenantID})
	}
	return out
}

// TestTypes checks that every type FromEvent produces is one a query may filter by, that Types is
// sorted without duplicates, and that it holds every Hanko type.
func TestTypes(t *testing.T) {
	types := audit.Types()
	if !slices.IsSorted(types) || len(slices.Compact(slices.Clone(types))) != len(types) {
		t.Errorf("Types() not sorted and unique: %v", types)
	}
	produced := map[string]bool{}
	for _, e := range allEvents(uuid.New()) {
		if got, ok := audit.FromEvent(e); ok {
			produced[got.Type] = true
			if !slices.Contains(types, got.Type) {
				t.Errorf("%s (from %s %s %s) is not in Types()", got.Type, e.Type, e.Ceremony, e.Step)
			}
		}
	}
	// 20 ceremony types and 13 changes.
	if len(produced) != 33 {
		t.Errorf("FromEvent produced %d types, want 33: %v", len(produced), produced)
	}
	// Types() holds nothing else: every type a query may name is one the log can hold.
	for _, typ := range types {
		if !produced[typ] {
			t.Errorf("Types() has %s, which FromEvent never produces", typ)
		}
	}
	for _, h := range audit.HankoTypes() {
		if !slices.Contains(types, h) {
			t.Errorf("Hanko type %s is not in Types()", h)
		}
	}
	if n := len(audit.HankoTypes()); n != 22 {
		t.Errorf("%d Hanko types, want 22 (docs/hanko-compatibility.md#audit-log-types)", n)
	}
	// HankoTypes returns a copy.
	audit.HankoTypes()[0] = "changed"
	if audit.HankoTypes()[0] == "changed" {
		t.Error("HankoTypes returns the package's slice")
	}
}
