// Package mfa defines the second-factor ceremonies (Registration, Login) as credentials.Ceremony
// values: what makes a ceremony a second factor is said here, once, and the credentials service runs
// it like any other. Sessions, stored credentials (is_mfa) and tokens (the "ceremony" claim) carry the
// ceremony's name, so a passkey session can never finish on an MFA route, or the reverse.
package mfa
