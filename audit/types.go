package audit

import (
	"sort"

	passkey "github.com/passkey-server/passkey-server"
)

// Suffixes of the two outcomes of a ceremony step: the login's initialize step is recorded as
// "webauthn_authentication_init_succeeded" or "webauthn_authentication_init_failed".
const (
	SuffixSucceeded = "_succeeded"
	SuffixFailed    = "_failed"
)

// hankoTypes are the event types Hanko's passkey server writes (docs/hanko-compatibility.md#audit-log-types).
var hankoTypes = []string{
	"webauthn_registration_init_succeeded", "webauthn_registration_init_failed",
	"webauthn_registration_final_succeeded", "webauthn_registration_final_failed",
	"webauthn_authentication_init_succeeded", "webauthn_authentication_init_failed",
	"webauthn_authentication_final_succeeded", "webauthn_authentication_final_failed",
	"webauthn_transaction_init_succeeded", "webauthn_transaction_init_failed",
	"webauthn_transaction_final_succeeded", "webauthn_transaction_final_failed",
	"webauthn_credential_updated", "webauthn_credential_deleted",
	"mfa_registration_init_succeeded", "mfa_registration_init_failed",
	"mfa_registration_final_succeeded", "mfa_registration_final_failed",
	"mfa_authentication_init_succeeded", "mfa_authentication_init_failed",
	"mfa_authentication_final_succeeded", "mfa_authentication_final_failed",
}

// ceremonyStems maps a ceremony's name to the stem of its Hanko event types.
var ceremonyStems = map[string]string{
	"registration":     "webauthn_registration",
	"login":            "webauthn_authentication",
	"mfa_registration": "mfa_registration",
	"mfa_login":        "mfa_authentication",
	"transaction":      "webauthn_transaction",
}

// changeTypes maps the events of changes to the type they are stored as: Hanko's for credentials, ours
// for the admin API.
var changeTypes = map[passkey.EventType]string{
	passkey.CredentialRenamed:                    "webauthn_credential_updated",
	passkey.CredentialDeleted:                    "webauthn_credential_deleted",
	passkey.UserDeleted:                          "user_deleted",
	passkey.CredentialAuthenticatorStatusChanged: "authenticator_status_changed",
	passkey.TenantCreated:                        "tenant_created",
	passkey.TenantRenamed:                        "tenant_updated",
	passkey.TenantConfigChanged:                  "tenant_config_updated",
	passkey.TenantDeleted:                        "tenant_deleted",
	passkey.APIKeyCreated:                        "api_key_created",
	passkey.APIKeyRevoked:                        "api_key_deleted",
	passkey.SigningKeyRotated:                    "signing_key_rotated",
	passkey.TenantImported:                       "tenant_imported",
	// The webhook sender disabled an endpoint on its own (a 410, or failing for days).
	passkey.WebhookEndpointDisabled: "webhook_endpoint_disabled",
}

// onlyDetails names the only details kept of the events whose details may hold more than the log
// should. A disabled webhook endpoint keeps webhook_id and reason (gone, failing), never its URL,
// whatever the event carries: the log is readable with a tenant's secret API key (GET
// /{tenant_id}/audit_logs) while endpoints are admin-only, a URL may carry a token in its path or
// query, and the other entries name what they acted on by id too (api_key_id, kid); the admin API
// resolves the id to the endpoint.
var onlyDetails = map[passkey.EventType][]string{
	passkey.WebhookEndpointDisabled: {"webhook_id", "reason"},
}

// HankoTypes returns the event types of Hanko's passkey server, which clients may filter by whether or
// not this server records them.
func HankoTypes() []string {
	return append([]string(nil), hankoTypes...)
}

// Types returns, sorted, every type the log stores and a query may filter by.
func Types() []string {
	set := map[string]bool{}
	for _, t := range hankoTypes {
		set[t] = true
	}
	for _, stem := range ceremonyStems {
		for _, step := range []string{"_init", "_final"} {
			set[stem+step+SuffixSucceeded] = true
			set[stem+step+SuffixFailed] = true
		}
	}
	for _, t := range changeTypes {
		set[t] = true
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
