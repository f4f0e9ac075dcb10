// Package mfa runs second-factor ceremonies: registering and using a passkey or security key beside the
// application's own password, on top of the credentials ceremonies and the tenant's MFA profile.
package mfa
