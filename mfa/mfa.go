package mfa

import "github.com/passkey-server/passkey-server/credentials"

// Registration registers a second factor: it runs with the tenant's MFA options (config "mfa") and
// the credential it stores is an MFA credential, which a plain login never accepts.
var Registration = credentials.Ceremony{Name: "mfa_registration", SecondFactor: true}

// Login verifies a second factor of a user the application names (never discoverable: MFA runs
// beside the application's own first factor, for a user it already knows). It accepts the user's MFA
// credentials and passkeys alike.
var Login = credentials.Ceremony{Name: "mfa_login", SecondFactor: true, NamedUser: true,
	Accepts: credentials.AnyCredential, AMR: credentials.Methods}
