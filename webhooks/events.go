package webhooks

import (
	"encoding/json"
	"time"

	passkey "github.com/passkey-server/passkey-server"
)

// Payload is the body of every webhook request (Standard Webhooks' recommended shape).
type Payload struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// Message is a webhook event built from a domain event: its type and JSON payload.
type Message struct {
	Type    string
	Payload []byte
}

// The ceremony names of the domain events this package maps (credentials.Registration.Name and the
// others; repeated here as the package cannot import credentials' dependents).
const (
	ceremonyRegistration    = "registration"
	ceremonyLogin           = "login"
	ceremonyMFARegistration = "mfa_registration"
	ceremonyMFALogin        = "mfa_login"
	ceremonyTransaction     = "transaction"
)

// TypeOf returns the webhook event type of a domain event, or "" when no webhook reports it. Only
// finalize steps are reported: an initialize is no outcome. A failed MFA login is a login.failed
// (data.ceremony says which).
func TypeOf(e passkey.Event) string {
	switch e.Type {
	case passkey.CeremonySucceeded:
		switch e.Ceremony {
		case ceremonyRegistration:
			return PasskeyRegistered
		case ceremonyMFARegistration:
			return MFARegistered
		case ceremonyLogin:
			return LoginSucceeded
		case ceremonyMFALogin:
			return MFASucceeded
		case ceremonyTransaction:
			return TransactionSigned
		}
	case passkey.CeremonyFailed:
		switch e.Ceremony {
		case ceremonyLogin, ceremonyMFALogin:
			return LoginFailed
		case ceremonyTransaction:
			return TransactionFailed
		}
	case passkey.CredentialDeleted:
		return PasskeyDeleted
	case passkey.CredentialRenamed:
		return PasskeyRenamed
	case passkey.CredentialCloneFlagged:
		return CredentialCloneWarning
	case passkey.CredentialBackupStateChanged:
		return CredentialBackupStateChanged
	case passkey.UserDeleted:
		return UserDeleted
	case passkey.APIKeyCreated:
		return APIKeyCreated
	case passkey.APIKeyRevoked:
		return APIKeyRevoked
	case passkey.SigningKeyRotated:
		return SigningKeyRotated
	case passkey.TenantConfigChanged:
		return TenantConfigChanged
	}
	return ""
}

// NewMessage builds the webhook message of a domain event whose TypeOf is typ. The data holds ids and
// names only: the event carries no secret, key or PRF output, and the error of a failure is its
// stable code and client-safe details, never an internal error's text.
func NewMessage(typ string, e passkey.Event) (Message, error) {
	data := map[string]any{"tenant_id": e.TenantID.String()}
	if e.AppUserID != "" {
		data["user_id"] = e.AppUserID
	}
	if e.CredentialID != "" {
		data["credential_id"] = e.CredentialID
	}
	if e.TransactionID != "" {
		data["transaction_id"] = e.TransactionID
	}
	if e.Ceremony != "" {
		data["ceremony"] = e.Ceremony
	}
	if e.Failed() {
		data["error_code"] = passkey.ErrorCode(e.Err)
		if d := passkey.Details(e.Err); d != "" {
			data["error_details"] = d
		}
	}
	for k, v := range e.Details {
		switch k {
		case "secret_id": // api_key.revoked names the key like api_key.created
			k = "api_key_id"
		case "backup_state":
			data[k] = v == "true"
			continue
		}
		if _, ok := data[k]; !ok {
			data[k] = v
		}
	}
	return newMessage(typ, e.At, data)
}

func newMessage(typ string, at time.Time, data map[string]any) (Message, error) {
	body, err := json.Marshal(Payload{Type: typ, Timestamp: at.UTC().Truncate(time.Millisecond), Data: data})
	if err != nil {
		return Message{}, err
	}
	return Message{Type: typ, Payload: body}, nil
}
