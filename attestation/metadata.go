// Package attestation decides what a credential's attestation proves and whether a tenant's
// attestation policy accepts it. It holds the FIDO Metadata Service (MDS3) blob in memory (Source:
// loaded from a file or a URL, its JWT signature chain verified, refreshed with an atomic swap), judges
// a registration's attestation against it (Assess: the trust verdict, the root, the MDS status and
// certification level), applies a tenant's tenant.AttestationPolicy to that judgement (Check), and
// tells a login whether its authenticator has been revoked since (Source.Status). It knows nothing of
// HTTP or of any store.
//
// go-webauthn verifies the attestation statement's signature (WebAuthn §7.1 step 19); this package
// does what go-webauthn's Config.MDS would do on top (the trust path to a metadata root, step 21, and
// the status reports), because a tenant may only monitor (record and accept), because the passkey and
// MFA profiles of one tenant carry separate policies, and because the verdict is stored with the
// credential for auditors rather than reduced to a refused ceremony. See README.md "Attestation".
package attestation

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/google/uuid"
)

// ErrInvalidBlob is wrapped by every error of Parse: the blob is not an MDS3 JWT signed by a chain to
// the configured root, cannot be parsed, is stale, or is older than the one in use.
var ErrInvalidBlob = errors.New("invalid metadata blob")

// ProductionRoot is the FIDO Alliance's MDS3 trust anchor (GlobalSign Root R46), base64 DER: the root
// every production blob from mds.fidoalliance.org chains to.
const ProductionRoot = metadata.ProductionMDSRoot

// Metadata is one verified MDS3 blob, parsed and indexed by AAGUID. It is immutable: a refresh builds
// a new one and swaps it in whole.
type Metadata struct {
	// Number is the blob's serial number ("no"); a later blob has a higher one.
	Number int
	// NextUpdate is the date by which the FIDO Alliance publishes the next blob.
	NextUpdate time.Time
	// LoadedAt is when this instance verified and loaded it; Origin names where it came from (the
	// file's path or the URL).
	LoadedAt time.Time
	Origin   string
	// Skipped is how many entries of the blob could not be parsed and were left out (real blobs carry
	// a few entries go-webauthn's parser refuses; refusing the whole blob for them would keep every
	// revocation out).
	Skipped int
	entries map[uuid.UUID]*metadata.Entry
}

// Entry returns the metadata of the authenticator model with the AAGUID, or false for a model the
// blob does not list, the zero AAGUID, and a nil Metadata.
func (m *Metadata) Entry(aaguid uuid.UUID) (*metadata.Entry, bool) {
	if m == nil || aaguid == uuid.Nil {
		return nil, false
	}
	e, ok := m.entries[aaguid]
	return e, ok
}

// Len is the number of FIDO2 entries (those with an AAGUID), zero for a nil Metadata.
func (m *Metadata) Len() int {
	if m == nil {
		return 0
	}
	return len(m.entries)
}

// Parse verifies an MDS3 blob and parses it (FIDO MDS 3.1 §3.1.8, "Metadata BLOB object processing
// rules"): the JWT's x5c chain must lead to root (base64 DER or PEM) and its signature verify with the
// chain's leaf; a blob whose nextUpdate is before now is stale and refused, because it may miss a
// revocation. Every error wraps ErrInvalidBlob.
func Parse(blob []byte, root string, now time.Time) (*Metadata, error) {
	anchor, err := normalizeRoot(root)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBlob, err)
	}
	dec, err := metadata.NewDecoder(metadata.WithRootCertificate(anchor), metadata.WithIgnoreEntryParsingErrors())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBlob, err)
	}
	payload, err := dec.DecodeBytes([]byte(strings.TrimSpace(string(blob))))
	if err != nil {
		return nil, fmt.Errorf("%w: signature or certificate chain does not verify against the MDS root: %v", ErrInvalidBlob, err)
	}
	parsed, err := dec.Parse(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBlob, err)
	}
	// nextUpdate is a date: the blob is current through the whole of that day (UTC).
	if !now.Before(parsed.Parsed.NextUpdate.AddDate(0, 0, 1)) {
		return nil, fmt.Errorf("%w: stale: its nextUpdate %s has passed", ErrInvalidBlob, parsed.Parsed.NextUpdate.Format(time.DateOnly))
	}
	m := &Metadata{Number: parsed.Parsed.Number, NextUpdate: parsed.Parsed.NextUpdate, LoadedAt: now,
		Skipped: len(parsed.Unparsed), entries: map[uuid.UUID]*metadata.Entry{}}
	for i := range parsed.Parsed.Entries {
		e := &parsed.Parsed.Entries[i]
		if e.AaGUID != uuid.Nil {
			m.entries[e.AaGUID] = e
		}
	}
	return m, nil
}

// normalizeRoot returns the root certificate as go-webauthn's decoder wants it, base64 DER, from base64
// DER or PEM, after checking that it is a certificate.
func normalizeRoot(root string) (string, error) {
	root = strings.TrimSpace(root)
	if root == "" {
		return "", errors.New("no MDS root certificate")
	}
	der, err := base64.StdEncoding.DecodeString(root)
	if block, _ := pem.Decode([]byte(root)); block != nil {
		der, err = block.Bytes, nil
	}
	if err != nil {
		return "", errors.New("the MDS root is neither PEM nor base64 DER")
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return "", fmt.Errorf("the MDS root is not a certificate: %v", err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// CheckRoot reports whether root (base64 DER or PEM) is a certificate Parse can use, for configuration
// checks at start.
func CheckRoot(root string) error {
	_, err := normalizeRoot(root)
	return err
}
