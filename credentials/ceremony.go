package credentials

// Ceremony describes one kind of WebAuthn ceremony as a value: which stored credentials qualify, what
// a registration marks, which options of the tenant apply, and what the token says. This package
// defines the plain passkey ceremonies (Registration, Login); mfa and transactions define theirs with
// the same type, so no ceremony is a special case in here.
type Ceremony struct {
	// Name identifies the ceremony: a session is stored under it (a challenge issued for one ceremony
	// never finishes another), and it is the token's "ceremony" claim and the events' ceremony.
	Name string
	// SecondFactor runs the ceremony with the tenant's MFA options (config "mfa") and makes the
	// credentials it registers MFA credentials.
	SecondFactor bool
	// NamedUser means the ceremony is always for a user the caller names; it is never discoverable.
	NamedUser bool
	// Accepts reports whether a stored credential may be offered to and finish the ceremony (for
	// assertions; registrations exclude every credential of the user).
	Accepts func(Credential) bool
	// AMR names the authentication methods of the ceremony's token (RFC 8176); nil for none.
	AMR func(Credential) []string
}

// Registration registers a passkey.
var Registration = Ceremony{Name: "registration"}

// Login logs in with a passkey: a known user (allowCredentials lists the user's passkeys) or a
// discoverable ("usernameless") login. It never accepts an MFA credential.
var Login = Ceremony{Name: "login", Accepts: Passkeys, AMR: Methods}

// Passkeys accepts the credentials registered as passkeys, not as second factors.
func Passkeys(c Credential) bool { return !c.IsMFA }

// AnyCredential accepts every credential of the user.
func AnyCredential(Credential) bool { return true }

// Methods names the authentication methods of an assertion with cred (RFC 8176): "hwk" for a key
// bound to one device, "swk" for a synced (backup eligible) passkey, plus "user" when the authenticator
// verified the user.
func Methods(cred Credential) []string {
	m := []string{"hwk"}
	if cred.BackupEligible {
		m[0] = "swk" // synced passkeys live in software (a password manager), not in one device
	}
	if cred.UserVerified {
		m = append(m, "user")
	}
	return m
}

// accepts reports whether the ceremony may use cred.
func (c Ceremony) accepts(cred Credential) bool { return c.Accepts != nil && c.Accepts(cred) }

// amr returns the token's methods for cred.
func (c Ceremony) amr(cred Credential) []string {
	if c.AMR == nil {
		return nil
	}
	return c.AMR(cred)
}
