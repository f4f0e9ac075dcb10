// Package attestationtest builds a FIDO trust world for tests: certificate authorities, packed
// attestation certificates (WebAuthn §8.2.1) for a software authenticator, and MDS3-style metadata
// blobs (a JWT with an x5c chain) signed under a test root, so that tests run the real chain
// verification of package attestation. It is for tests only.
package attestationtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"time"

	"github.com/google/uuid"
)

// CA is a certificate authority with its key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA returns a self-signed root CA named cn. It panics on failure (a broken test setup).
func NewCA(cn string) *CA {
	key := mustKey()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Test Alliance"}, Country: []string{"US"}},
		NotBefore:             time.Now().Add(-24 * time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, Key: key}
}

// Base64 is the CA's certificate as base64 DER (the form of MDS roots and x5c entries).
func (ca *CA) Base64() string { return base64.StdEncoding.EncodeToString(ca.Cert.Raw) }

// idFIDOGenCeAAGUID is the extension that carries the AAGUID in a packed attestation certificate
// (WebAuthn §8.2.1).
var idFIDOGenCeAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}

// Attestation issues a packed attestation certificate for the model aaguid (WebAuthn §8.2.1: version
// 3, subject C, O, OU "Authenticator Attestation", CN, not a CA, the AAGUID extension) and returns
// its key and x5c chain (the certificate alone: the root is in the metadata).
func (ca *CA) Attestation(aaguid uuid.UUID) (crypto.Signer, [][]byte) {
	key := mustKey()
	ext, _ := asn1.Marshal(aaguid[:])
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject: pkix.Name{CommonName: "Test Key Attestation", Organization: []string{"Test Vendor"},
			OrganizationalUnit: []string{"Authenticator Attestation"}, Country: []string{"US"}},
		NotBefore:             time.Now().Add(-24 * time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  false,
		ExtraExtensions:       []pkix.Extension{{Id: idFIDOGenCeAAGUID, Value: ext}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		panic(err)
	}
	return key, [][]byte{der}
}

// signer issues a leaf that signs metadata blobs.
func (ca *CA) signer() (*ecdsa.PrivateKey, []byte) {
	key := mustKey()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "Test Metadata BLOB Signer", Organization: []string{"Test Alliance"}},
		NotBefore:    time.Now().Add(-24 * time.Hour),
		NotAfter:     time.Now().AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		panic(err)
	}
	return key, der
}

// Status is one status report of an entry (MDS3 StatusReport).
type Status struct {
	Status string `json:"status"`
	// EffectiveDate is YYYY-MM-DD; empty for none.
	EffectiveDate string `json:"effectiveDate,omitempty"`
}

// Entry is one authenticator model of a blob.
type Entry struct {
	AAGUID      uuid.UUID
	Description string
	// Roots are the model's attestation roots (attestationRootCertificates).
	Roots    []*CA
	Statuses []Status
	// MultiDevice sets multiDeviceCredentialSupport "explicit" (a synced passkey provider).
	MultiDevice bool
}

// Blob is a metadata blob to sign.
type Blob struct {
	Number     int
	NextUpdate time.Time
	Entries    []Entry
}

// Sign returns the blob as an MDS3 JWT (ES256) whose x5c is a signing certificate issued by root,
// followed by root itself.
func (b Blob) Sign(root *CA) []byte {
	key, leaf := root.signer()
	header, _ := json.Marshal(map[string]any{"alg": "ES256", "typ": "JWT",
		"x5c": []string{base64.StdEncoding.EncodeToString(leaf), root.Base64()}})
	entries := make([]map[string]any, 0, len(b.Entries))
	for _, e := range b.Entries {
		roots := make([]string, 0, len(e.Roots))
		for _, r := range e.Roots {
			roots = append(roots, r.Base64())
		}
		statuses := e.Statuses
		if statuses == nil {
			statuses = []Status{}
		}
		stmt := map[string]any{
			"legalHeader": "test", "aaguid": e.AAGUID.String(), "description": e.Description,
			"authenticatorVersion": 1, "protocolFamily": "fido2", "schema": 3,
			"upv":                         []map[string]int{{"major": 1, "minor": 0}},
			"authenticationAlgorithms":    []string{"secp256r1_ecdsa_sha256_raw"},
			"publicKeyAlgAndEncodings":    []string{"cose"},
			"attestationTypes":            []string{"basic_full"},
			"userVerificationDetails":     [][]map[string]any{{{"userVerificationMethod": "passcode_internal"}}},
			"keyProtection":               []string{"hardware", "secure_element"},
			"matcherProtection":           []string{"on_chip"},
			"attachmentHint":              []string{"external", "wired"},
			"tcDisplay":                   []string{},
			"attestationRootCertificates": roots,
		}
		if e.MultiDevice {
			stmt["multiDeviceCredentialSupport"] = "explicit"
		}
		entries = append(entries, map[string]any{
			"aaguid": e.AAGUID.String(), "metadataStatement": stmt, "statusReports": statuses,
			"timeOfLastStatusChange": "2024-01-01",
		})
	}
	payload, _ := json.Marshal(map[string]any{"legalHeader": "test blob", "no": b.Number,
		"nextUpdate": b.NextUpdate.UTC().Format(time.DateOnly), "entries": entries})
	signingInput := b64url(header) + "." + b64url(payload)
	h := sha256.Sum256([]byte(signingInput))
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 64) // JWS ES256: r ‖ s, 32 bytes each (RFC 7518 §3.4)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return []byte(signingInput + "." + b64url(sig))
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err)
	}
	return n
}
