package authenticatortest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// descriptorJSON is PublicKeyCredentialDescriptorJSON (§5.10.3).
type descriptorJSON struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// credentialParameterJSON is PublicKeyCredentialParameters (§5.3).
type credentialParameterJSON struct {
	Type string `json:"type"`
	Alg  int64  `json:"alg"`
}

// creationOptionsJSON is the part of PublicKeyCredentialCreationOptionsJSON (§5.4) the authenticator
// reads.
type creationOptionsJSON struct {
	RP struct {
		ID string `json:"id"`
	} `json:"rp"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	Challenge              string                    `json:"challenge"`
	PubKeyCredParams       []credentialParameterJSON `json:"pubKeyCredParams"`
	ExcludeCredentials     []descriptorJSON          `json:"excludeCredentials"`
	AuthenticatorSelection struct {
		ResidentKey        string `json:"residentKey"`
		RequireResidentKey bool   `json:"requireResidentKey"`
	} `json:"authenticatorSelection"`
	Extensions struct {
		CredProps bool `json:"credProps"`
	} `json:"extensions"`
}

// requestOptionsJSON is the part of PublicKeyCredentialRequestOptionsJSON (§5.5) the authenticator
// reads.
type requestOptionsJSON struct {
	Challenge        string           `json:"challenge"`
	RPID             string           `json:"rpId"`
	AllowCredentials []descriptorJSON `json:"allowCredentials"`
}

// registrationResponseJSON is RegistrationResponseJSON (§5.1, toJSON()).
type registrationResponseJSON struct {
	ID                      string                    `json:"id"`
	RawID                   string                    `json:"rawId"`
	Type                    string                    `json:"type"`
	AuthenticatorAttachment string                    `json:"authenticatorAttachment"`
	Response                attestationResponseJSON   `json:"response"`
	ClientExtensionResults  map[string]map[string]any `json:"clientExtensionResults"`
}

// attestationResponseJSON is AuthenticatorAttestationResponseJSON (§5.2.1).
type attestationResponseJSON struct {
	ClientDataJSON     string   `json:"clientDataJSON"`
	AuthenticatorData  string   `json:"authenticatorData"`
	Transports         []string `json:"transports"`
	PublicKey          string   `json:"publicKey"`
	PublicKeyAlgorithm int64    `json:"publicKeyAlgorithm"`
	AttestationObject  string   `json:"attestationObject"`
}

// authenticationResponseJSON is AuthenticationResponseJSON (§5.1, toJSON()).
type authenticationResponseJSON struct {
	ID                      string                    `json:"id"`
	RawID                   string                    `json:"rawId"`
	Type                    string                    `json:"type"`
	AuthenticatorAttachment string                    `json:"authenticatorAttachment"`
	Response                assertionResponseJSON     `json:"response"`
	ClientExtensionResults  map[string]map[string]any `json:"clientExtensionResults"`
}

// assertionResponseJSON is AuthenticatorAssertionResponseJSON (§5.2.2).
type assertionResponseJSON struct {
	ClientDataJSON    string  `json:"clientDataJSON"`
	AuthenticatorData string  `json:"authenticatorData"`
	Signature         string  `json:"signature"`
	UserHandle        *string `json:"userHandle"`
}

// Create runs a registration ceremony (navigator.credentials.create(), §5.1.3, and
// authenticatorMakeCredential, §6.3.2) for the creation options JSON and the caller's origin, and
// returns the registration response JSON. It honours rp.id (default: the origin's host), user.id,
// challenge, pubKeyCredParams, excludeCredentials, authenticatorSelection.residentKey (and the
// legacy requireResidentKey) and the credProps extension, then stores the new credential.
func (a *Authenticator) Create(options []byte, origin string) ([]byte, error) {
	return a.CreateWith(options, origin, Tamper{})
}

// CreateWith is Create with the response forged as t says. The credential is stored all the same.
func (a *Authenticator) CreateWith(options []byte, origin string, t Tamper) ([]byte, error) {
	var o creationOptionsJSON
	if err := decodeOptions(options, &o); err != nil {
		return nil, err
	}
	rpID, err := checkRPID(o.RP.ID, origin)
	if err != nil {
		return nil, err
	}
	userHandle, err := decodeB64(o.User.ID)
	if err != nil || len(userHandle) == 0 || len(userHandle) > 64 {
		return nil, fmt.Errorf("%w: user.id must be base64url of 1 to 64 bytes", ErrInvalidOptions)
	}
	challenge, err := decodeChallenge(o.Challenge)
	if err != nil {
		return nil, err
	}
	if !offers(o.PubKeyCredParams, a.opts.Algorithm) {
		return nil, fmt.Errorf("%w: %v", ErrAlgorithmNotOffered, a.opts.Algorithm)
	}
	// §5.4.6: residentKey wins over the legacy requireResidentKey; absent, it is "discouraged".
	resident := o.AuthenticatorSelection.ResidentKey == "required" || o.AuthenticatorSelection.ResidentKey == "preferred" ||
		(o.AuthenticatorSelection.ResidentKey == "" && o.AuthenticatorSelection.RequireResidentKey)

	cdj, err := clientDataJSON("webauthn.create", challenge, origin, t)
	if err != nil {
		return nil, err
	}
	cdh := sha256.Sum256(cdj)

	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range o.ExcludeCredentials {
		id, err := decodeB64(d.ID)
		if err != nil {
			return nil, fmt.Errorf("%w: excludeCredentials id: %v", ErrInvalidOptions, err)
		}
		if a.find(rpID, id) != nil {
			return nil, ErrExcluded
		}
	}
	c, err := a.newCredential(rpID, userHandle, resident)
	if err != nil {
		return nil, fmt.Errorf("create credential: %w", err)
	}

	ad := authData(hashedRPID(rpID, t), a.flags(FlagAT, t), c.counter, attestedCredentialData(a.opts.AAGUID, c))
	attStmt := map[string]any{}
	if a.opts.Attestation == "packed" {
		signed := append(bytes.Clone(ad), cdh[:]...)
		if a.opts.AttestationKey != nil {
			// §8.2 basic attestation: sig over authenticatorData ‖ clientDataHash with the
			// attestation key, whose certificate chain is x5c.
			h := sha256.Sum256(signed)
			sig, err := a.opts.AttestationKey.Sign(rand.Reader, h[:], crypto.SHA256)
			if err != nil {
				return nil, fmt.Errorf("sign attestation: %w", err)
			}
			if t.CorruptSignature {
				sig = corrupt(sig)
			}
			attStmt = map[string]any{"alg": int64(ES256), "sig": sig, "x5c": a.opts.AttestationChain}
		} else {
			// §8.2 self attestation: sig over authenticatorData ‖ clientDataHash
			// with the credential private key, alg equal to the credential's.
			sig, err := c.sign(signed)
			if err != nil {
				return nil, fmt.Errorf("sign attestation: %w", err)
			}
			if t.CorruptSignature {
				sig = corrupt(sig)
			}
			attStmt = map[string]any{"alg": int64(c.alg), "sig": sig}
		}
	}
	attObj, err := webauthncbor.Marshal(map[string]any{"fmt": a.opts.Attestation, "attStmt": attStmt, "authData": ad})
	if err != nil {
		return nil, fmt.Errorf("encode attestation object: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(c.signer.Public())
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	ext := map[string]map[string]any{}
	if o.Extensions.CredProps {
		ext["credProps"] = map[string]any{"rk": resident}
	}
	out, err := json.Marshal(registrationResponseJSON{
		ID:                      b64(c.id),
		RawID:                   b64(c.id),
		Type:                    "public-key",
		AuthenticatorAttachment: a.opts.Attachment,
		Response: attestationResponseJSON{
			ClientDataJSON:     b64(cdj),
			AuthenticatorData:  b64(ad),
			Transports:         a.opts.Transports,
			PublicKey:          b64(spki),
			PublicKeyAlgorithm: int64(c.alg),
			AttestationObject:  b64(attObj),
		},
		ClientExtensionResults: ext,
	})
	if err != nil {
		return nil, err
	}
	a.creds = append(a.creds, c)
	return out, nil
}

// Get runs an authentication ceremony (navigator.credentials.get(), §5.1.4, and
// authenticatorGetAssertion, §6.3.3) for the request options JSON and the caller's origin, and returns
// the authentication response JSON. It answers with the first credential for rpId (default: the
// origin's host) listed in allowCredentials or, when the list is empty, the most recently created
// discoverable credential. userHandle is the stored user handle for a discoverable credential and
// null otherwise. Unless ZeroCounter is set, the signature counter grows by one.
func (a *Authenticator) Get(options []byte, origin string) ([]byte, error) {
	return a.GetWith(options, origin, Tamper{})
}

// GetWith is Get with the response forged as t says. The counter grows all the same.
func (a *Authenticator) GetWith(options []byte, origin string, t Tamper) ([]byte, error) {
	var o requestOptionsJSON
	if err := decodeOptions(options, &o); err != nil {
		return nil, err
	}
	rpID, err := checkRPID(o.RPID, origin)
	if err != nil {
		return nil, err
	}
	challenge, err := decodeChallenge(o.Challenge)
	if err != nil {
		return nil, err
	}
	cdj, err := clientDataJSON("webauthn.get", challenge, origin, t)
	if err != nil {
		return nil, err
	}
	cdh := sha256.Sum256(cdj)

	a.mu.Lock()
	defer a.mu.Unlock()
	var c *credential
	for _, d := range o.AllowCredentials {
		id, err := decodeB64(d.ID)
		if err != nil {
			return nil, fmt.Errorf("%w: allowCredentials id: %v", ErrInvalidOptions, err)
		}
		if c = a.find(rpID, id); c != nil {
			break
		}
	}
	if len(o.AllowCredentials) == 0 {
		for i := len(a.creds) - 1; i >= 0; i-- {
			if a.creds[i].rpID == rpID && a.creds[i].resident {
				c = a.creds[i]
				break
			}
		}
	}
	if c == nil {
		return nil, ErrNoCredential
	}

	if !a.opts.ZeroCounter {
		c.counter++
	}
	ad := authData(hashedRPID(rpID, t), a.flags(0, t), c.counter, nil)
	sig, err := c.sign(append(bytes.Clone(ad), cdh[:]...))
	if err != nil {
		return nil, fmt.Errorf("sign assertion: %w", err)
	}
	if t.CorruptSignature {
		sig = corrupt(sig)
	}
	var userHandle *string
	if c.resident {
		s := b64(c.userHandle)
		userHandle = &s
	}
	if t.UserHandle != nil {
		s := b64(t.UserHandle)
		userHandle = &s
	}
	return json.Marshal(authenticationResponseJSON{
		ID:                      b64(c.id),
		RawID:                   b64(c.id),
		Type:                    "public-key",
		AuthenticatorAttachment: a.opts.Attachment,
		Response: assertionResponseJSON{
			ClientDataJSON:    b64(cdj),
			AuthenticatorData: b64(ad),
			Signature:         b64(sig),
			UserHandle:        userHandle,
		},
		ClientExtensionResults: map[string]map[string]any{},
	})
}

// find returns the credential with the given ID for rpID, or nil. a.mu must be held.
func (a *Authenticator) find(rpID string, id []byte) *credential {
	for _, c := range a.creds {
		if c.rpID == rpID && bytes.Equal(c.id, id) {
			return c
		}
	}
	return nil
}

// flags returns the authenticator data flags (§6.1): UP always, UV, BE and BS per the options, plus
// extra, then t's changes.
func (a *Authenticator) flags(extra Flag, t Tamper) Flag {
	f := FlagUP | extra
	if !a.opts.SkipUserVerification {
		f |= FlagUV
	}
	if a.opts.BackupEligible {
		f |= FlagBE
	}
	if a.opts.BackupState {
		f |= FlagBS
	}
	return (f | t.SetFlags) &^ t.ClearFlags
}

// hashedRPID returns the RP ID whose hash goes into authenticator data.
func hashedRPID(rpID string, t Tamper) string {
	if t.RPID != "" {
		return t.RPID
	}
	return rpID
}

// decodeOptions unmarshals options, either {"publicKey": {...}} (CredentialCreationOptions and
// CredentialRequestOptions as go-webauthn and Hanko send them) or the bare inner object.
func decodeOptions(options []byte, v any) error {
	var wrapper struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &wrapper); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	if len(wrapper.PublicKey) > 0 && !bytes.Equal(wrapper.PublicKey, []byte("null")) {
		options = wrapper.PublicKey
	}
	if err := json.Unmarshal(options, v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	return nil
}

// decodeChallenge decodes the base64url challenge, which must not be empty.
func decodeChallenge(s string) ([]byte, error) {
	b, err := decodeB64(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%w: challenge must be non-empty base64url", ErrInvalidOptions)
	}
	return b, nil
}

// offers reports whether params offers alg. An empty list means ES256 and RS256 (§5.1.3).
func offers(params []credentialParameterJSON, alg Algorithm) bool {
	if len(params) == 0 {
		return alg == ES256
	}
	for _, p := range params {
		if p.Type == "public-key" && p.Alg == int64(alg) {
			return true
		}
	}
	return false
}

// checkRPID returns the RP ID for a ceremony: rpID, or the origin's host when empty. Like a browser
// (§5.1.3, §5.1.4.1), it requires an http(s) origin's host to equal the RP ID or be a
// subdomain of it; the public suffix list is not consulted. Other origins (such as Android
// "android:apk-key-hash:" facets) are not checked.
func checkRPID(rpID, origin string) (string, error) {
	u, err := url.Parse(origin)
	web := err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Hostname() != ""
	if rpID == "" {
		if !web {
			return "", fmt.Errorf("%w: no RP ID and origin %q has no host", ErrInvalidOptions, origin)
		}
		return u.Hostname(), nil
	}
	if !web {
		return rpID, nil
	}
	host := strings.ToLower(u.Hostname())
	id := strings.ToLower(rpID)
	if host != id && !strings.HasSuffix(host, "."+id) {
		return "", fmt.Errorf("%w: RP ID %q, origin %q", ErrRPIDMismatch, rpID, origin)
	}
	return rpID, nil
}
