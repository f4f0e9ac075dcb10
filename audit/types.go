package audit

import (
	"sort"
)

// Ceremonies, as stored in Event.Ceremony.
const (
	CeremonyRegistration    = "registration"
	CeremonyLogin           = "login"
	CeremonyMFARegistration = "mfa_registration"
	CeremonyMFALogin        = "mfa_login"
	CeremonyTransaction     = "transaction"
)

// Suffixes of the two outcomes of a ceremony route: a Route of Type "webauthn_login_init" records
// "webauthn_login_init_succeeded" or "webauthn_login_init_failed".
const (
	SuffixSucceeded = "_succeeded"
	SuffixFailed    = "_failed"
)

// hankoTypes are the event types Hanko's passkey server writes (contract §4.7).
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

// HankoTypes returns the event types of Hanko's passkey server (contract §4.7), which clients may
// filter by whether or not this server records them.
func HankoTypes() []string {
	return append([]string(nil), hankoTypes...)
}

// Types returns, sorted and without duplicates, every type a query may filter by: Hanko's types, the
// types the route table records (both outcomes of a ceremony route, the type itself of a plain one),
// and extra (the types of events recorded with Admin).
func Types(routes map[string]Route, extra ...string) []string {
	set := map[string]bool{}
	for _, t := range hankoTypes {
		set[t] = true
	}
	for _, r := range routes {
		if r.Plain || r.Global {
			set[r.Type] = true
			continue
		}
		set[r.Type+SuffixSucceeded] = true
		set[r.Type+SuffixFailed] = true
	}
	for _, t := range extra {
		set[t] = true
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
