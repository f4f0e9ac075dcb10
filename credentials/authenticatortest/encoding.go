package authenticatortest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// COSE key parameters (RFC 9052 §7, RFC 9053 §7).
const (
	coseKty    = 1
	coseAlg    = 3
	coseCrv    = -1
	coseX      = -2
	coseY      = -3
	ktyOKP     = 1
	ktyEC2     = 2
	crvP256    = 1
	crvEd25519 = 6
)

// coseKey encodes a public key as a COSE_Key in CTAP2 canonical CBOR (§6.5.1.1): kty, alg, crv and
// the coordinates, nothing else.
func coseKey(pub crypto.PublicKey) ([]byte, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		e, err := k.ECDH()
		if err != nil {
			return nil, err
		}
		p := e.Bytes() // 0x04 ‖ X ‖ Y, each 32 bytes
		return webauthncbor.Marshal(map[int]any{
			coseKty: ktyEC2, coseAlg: int64(ES256), coseCrv: crvP256, coseX: p[1:33], coseY: p[33:65],
		})
	case ed25519.PublicKey:
		return webauthncbor.Marshal(map[int]any{
			coseKty: ktyOKP, coseAlg: int64(EdDSA), coseCrv: crvEd25519, coseX: []byte(k),
		})
	}
	return nil, fmt.Errorf("authenticatortest: unsupported key %T", pub)
}

// authData builds authenticator data (§6.1): rpIdHash ‖ flags ‖ signCount (big-endian uint32) ‖
// attested credential data when attested is non-nil.
func authData(rpID string, flags Flag, counter uint32, attested []byte) []byte {
	h := sha256.Sum256([]byte(rpID))
	b := make([]byte, 0, 37+len(attested))
	b = append(b, h[:]...)
	b = append(b, byte(flags))
	b = binary.BigEndian.AppendUint32(b, counter)
	return append(b, attested...)
}

// attestedCredentialData builds attested credential data (§6.5.1): aaguid ‖ credentialIdLength
// (big-endian uint16) ‖ credentialId ‖ credentialPublicKey.
func attestedCredentialData(aaguid [16]byte, c *credential) []byte {
	b := make([]byte, 0, 18+len(c.id)+len(c.coseKey))
	b = append(b, aaguid[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.id)))
	b = append(b, c.id...)
	return append(b, c.coseKey...)
}

// clientData is CollectedClientData (§5.8.1). Field order matters: browsers write type, challenge,
// origin, crossOrigin first, which the limited verification algorithm of §5.8.1.2 relies on.
type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

// clientDataJSON serializes client data for the ceremony of type typ, applying t. The challenge is
// re-encoded base64url without padding, as a browser does after decoding the options.
func clientDataJSON(typ string, challenge []byte, origin string, t Tamper) ([]byte, error) {
	cd := clientData{Type: typ, Challenge: b64(challenge), Origin: origin, CrossOrigin: t.CrossOrigin}
	if t.Type != "" {
		cd.Type = t.Type
	}
	if t.Challenge != "" {
		cd.Challenge = t.Challenge
	}
	if t.Origin != "" {
		cd.Origin = t.Origin
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(cd); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// corrupt returns a copy of sig with a bit of its last byte flipped: for a DER ECDSA signature the
// encoding stays well formed and only s changes.
func corrupt(sig []byte) []byte {
	out := bytes.Clone(sig)
	if len(out) > 0 {
		out[len(out)-1] ^= 0x01
	}
	return out
}
