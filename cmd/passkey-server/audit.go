package main

import "github.com/passkey-server/passkey-server/audit"

// auditRoutes is what each audited route records (contract §4.7), keyed by method and route pattern.
var auditRoutes = func() map[string]audit.Route {
	m := map[string]audit.Route{}
	add := func(method, path string, r audit.Route) { m[audit.RouteKey(method, path)] = r }
	for _, p := range []string{"/:tenant_id", "/credentials"} { // Hanko's routes, then the key-scoped ones
		reg := "/registration"
		if p == "/credentials" {
			reg = "/register"
		}
		add("POST", p+reg+"/initialize", audit.Route{Type: "webauthn_registration_init", Ceremony: audit.CeremonyRegistration})
		add("POST", p+reg+"/finalize", audit.Route{Type: "webauthn_registration_final", Ceremony: audit.CeremonyRegistration})
		add("POST", p+"/login/initialize", audit.Route{Type: "webauthn_authentication_init", Ceremony: audit.CeremonyLogin})
		add("POST", p+"/login/finalize", audit.Route{Type: "webauthn_authentication_final", Ceremony: audit.CeremonyLogin})
		add("POST", p+"/mfa"+reg+"/initialize", audit.Route{Type: "mfa_registration_init", Ceremony: audit.CeremonyMFARegistration})
		add("POST", p+"/mfa"+reg+"/finalize", audit.Route{Type: "mfa_registration_final", Ceremony: audit.CeremonyMFARegistration})
		add("POST", p+"/mfa/login/initialize", audit.Route{Type: "mfa_authentication_init", Ceremony: audit.CeremonyMFALogin})
		add("POST", p+"/mfa/login/finalize", audit.Route{Type: "mfa_authentication_final", Ceremony: audit.CeremonyMFALogin})
	}
	for _, p := range []string{"/:tenant_id/credentials/:credential_id", "/credentials/:credential_id"} {
		add("PATCH", p, audit.Route{Type: "webauthn_credential_updated", Plain: true})
		add("DELETE", p, audit.Route{Type: "webauthn_credential_deleted", Plain: true})
	}
	for _, p := range []string{"/:tenant_id/transaction", "/transaction"} {
		add("POST", p+"/initialize", audit.Route{Type: "webauthn_transaction_init", Ceremony: audit.CeremonyTransaction})
		add("POST", p+"/finalize", audit.Route{Type: "webauthn_transaction_final", Ceremony: audit.CeremonyTransaction})
	}
	// Admin API.
	add("POST", "/tenants", audit.Route{Type: "tenant_created", Plain: true, TenantFromResponse: true})
	add("PUT", "/tenants/:tenant_id", audit.Route{Type: "tenant_updated", Plain: true})
	add("DELETE", "/tenants/:tenant_id", audit.Route{Type: "tenant_deleted", Global: true})
	add("PUT", "/tenants/:tenant_id/config", audit.Route{Type: "tenant_config_updated", Plain: true})
	add("POST", "/tenants/:tenant_id/secrets/api", audit.Route{Type: "api_key_created", Plain: true,
		ResponseDetails: map[string]string{"id": "api_key_id", "name": "name", "kind": "kind"}})
	add("DELETE", "/tenants/:tenant_id/secrets/api/:secret_id", audit.Route{Type: "api_key_deleted", Plain: true})
	add("POST", "/tenants/:tenant_id/signing_keys", audit.Route{Type: "signing_key_rotated", Plain: true,
		ResponseDetails: map[string]string{"kid": "kid", "algorithm": "algorithm"}})
	add("DELETE", "/tenants/:tenant_id/users/:user_id", audit.Route{Type: "user_deleted", Plain: true})
	return m
}()

// auditTable finds the audit route of a request, for the audit middleware and the ceremony metrics.
var auditTable = audit.NewRoutes(auditRoutes)

// describeError tells the audit log the status, code and client-facing details of an error: what the
// client was sent, never internal error text.
func describeError(err error) (int, string, string) {
	kind, details := classify(err)
	return kind.status, kind.code, details
}
