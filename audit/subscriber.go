package audit

import (
	"context"
	"slices"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
)

// Emit records the audit entry of a domain event, making the Recorder a subscriber of the event bus.
// Events the log does not keep (a clone flag, a backup state change: the login's own entry shows
// them) are ignored.
func (r *Recorder) Emit(_ context.Context, e passkey.Event) {
	if entry, ok := FromEvent(e); ok {
		r.Record(entry)
	}
}

// FromEvent returns the audit entry of a domain event, and whether the log keeps it. Ceremony steps
// are stored under Hanko's types (docs/hanko-compatibility.md#audit-log-types) with their error code
// and details, the changes under the types of changeTypes with what they acted on.
func FromEvent(e passkey.Event) (Event, bool) {
	out := Event{
		RequestID: e.Request.ID,
		SourceIP:  e.Request.SourceIP,
		UserAgent: e.Request.UserAgent,
		CreatedAt: e.At,
	}
	stem, ceremony := ceremonyStems[e.Ceremony]
	switch e.Type {
	case passkey.CeremonyStarted, passkey.CeremonyStartFailed, passkey.CeremonySucceeded, passkey.CeremonyFailed:
	default:
		ceremony = false
	}
	if ceremony {
		out.Type = stem + "_init"
		if e.Type == passkey.CeremonySucceeded || e.Type == passkey.CeremonyFailed {
			out.Type = stem + "_final"
		}
		if e.Failed() {
			out.Type += SuffixFailed
			out.Error = passkey.ErrorCode(e.Err)
			if d := passkey.Details(e.Err); d != "" {
				out.Error += ": " + d
			}
		} else {
			out.Type += SuffixSucceeded
		}
		out.Ceremony = e.Ceremony
		out.ActorUserID = e.AppUserID
		out.TransactionID = e.TransactionID
	} else if typ, ok := changeTypes[e.Type]; ok {
		out.Type = typ
		out.Details = map[string]any{}
		keep, only := onlyDetails[e.Type]
		for k, v := range e.Details {
			if !only || slices.Contains(keep, k) {
				out.Details[k] = v
			}
		}
		if e.Type == passkey.CredentialRenamed || e.Type == passkey.CredentialDeleted || e.Type == passkey.CredentialAuthenticatorStatusChanged {
			out.ActorUserID = e.AppUserID
		}
	} else {
		return Event{}, false
	}
	switch {
	case e.Type == passkey.TenantDeleted:
		// Deleting a tenant deletes its events: this one is deployment-wide and names the tenant.
		out.Details["tenant_id"] = e.TenantID.String()
	case e.TenantID == uuid.Nil:
		// Nobody could read an event without a tenant (a bogus key on a key-scoped route), and
		// unauthenticated clients must not be able to fill the table with them.
		return Event{}, false
	default:
		id := e.TenantID
		out.TenantID = &id
	}
	return out, true
}
