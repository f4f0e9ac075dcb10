package credentials

import passkey "github.com/passkey-server/passkey-server"

// Errors of this package. Each is mapped to one status and title by the transport layer;
// go-webauthn's short explanation travels as the error's details.
var (
	// ErrUserNotFound means the tenant has no user with the given id.
	ErrUserNotFound = passkey.NewError("user_not_found", "user not found")
	// ErrSignalsOff means the tenant has not turned the Signal API answers on (webauthn.signals).
	ErrSignalsOff = passkey.NewError("signals_disabled", "the tenant has not turned on signals (webauthn.signals)")
	// ErrCredentialNotFound means the tenant has no credential with the given id.
	ErrCredentialNotFound = passkey.NewError("credential_not_found", "credential not found")
	// ErrCredentialExists means a credential with the same id is already registered in the tenant.
	ErrCredentialExists = passkey.NewError("credential_exists", "credential already registered")
	// ErrSessionNotFound means no live session matches the tenant, ceremony and challenge of a
	// registration: it never existed, was already consumed, or expired.
	ErrSessionNotFound = passkey.NewError("session_not_found", "received challenge does not match with any stored one")
	// ErrLoginSessionNotFound is ErrSessionNotFound for an assertion (Hanko answers it with another
	// status and title, docs/hanko-compatibility.md#error-titles).
	ErrLoginSessionNotFound = passkey.NewError("session_not_found", "failed to get session data")
	// ErrInvalidAttestationResponse means a registration finalize body is not a credential creation
	// response (WebAuthn §5.1, PublicKeyCredential with an AuthenticatorAttestationResponse).
	ErrInvalidAttestationResponse = passkey.NewError("invalid_credential_response", "unable to parse credential creation response")
	// ErrAttestationFailed means the attestation did not verify (WebAuthn §7.1).
	ErrAttestationFailed = passkey.NewError("attestation_failed", "failed to validate attestation")
	// ErrInvalidAssertionResponse means a login finalize body is not a credential request response.
	ErrInvalidAssertionResponse = passkey.NewError("invalid_credential_response", "unable to finish login")
	// ErrAssertionFailed means the assertion did not verify (WebAuthn §7.2).
	ErrAssertionFailed = passkey.NewError("assertion_failed", "failed to validate assertion")
	// ErrClonedAuthenticator means the signature counter did not grow (WebAuthn §6.1.1): the
	// authenticator may have been cloned. The tenant may allow such logins with
	// webauthn.allow_sign_count_regression.
	ErrClonedAuthenticator = passkey.NewError("cloned_authenticator", "signature counter did not increase: possible cloned authenticator")
	// ErrNoCredentials means the user has no credential this ceremony may use.
	ErrNoCredentials = passkey.NewError("no_credentials", "user has no suitable credentials for this operation")
)
