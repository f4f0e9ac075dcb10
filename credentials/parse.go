package credentials

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"

	passkey "github.com/passkey-server/passkey-server"
)

// withProtocolDetails wraps sentinel with go-webauthn's short, client-safe explanation of err (never its
// debug information).
func withProtocolDetails(sentinel, err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return passkey.WithDetails(sentinel, pe.Details)
	}
	return passkey.WithDetails(sentinel, "the credential response is malformed")
}

// parseAttestation parses a registration's credential (WebAuthn §5.1, PublicKeyCredential with an
// AuthenticatorAttestationResponse) as browsers' toJSON() and @github/webauthn-json send it; see
// decodeCredential. Errors wrap ErrInvalidAttestationResponse.
func parseAttestation(body []byte) (*protocol.ParsedCredentialCreationData, error) {
	var ccr protocol.CredentialCreationResponse
	if err := decodeCredential(body, &ccr, &ccr.ID); err != nil {
		return nil, passkey.WithDetails(ErrInvalidAttestationResponse, "Parse error for Registration: "+err.Error())
	}
	parsed, err := ccr.Parse()
	if err != nil {
		return nil, withProtocolDetails(ErrInvalidAttestationResponse, err)
	}
	return parsed, nil
}

// ParseAssertion parses a login's credential (WebAuthn §5.1, PublicKeyCredential with an
// AuthenticatorAssertionResponse) as browsers' toJSON() and @github/webauthn-json send it; see
// decodeCredential. Errors wrap ErrInvalidAssertionResponse.
func ParseAssertion(body []byte) (*protocol.ParsedCredentialAssertionData, error) {
	var car protocol.CredentialAssertionResponse
	if err := decodeCredential(body, &car, &car.ID); err != nil {
		return nil, passkey.WithDetails(ErrInvalidAssertionResponse, "Parse error for Assertion: "+err.Error())
	}
	parsed, err := car.Parse()
	if err != nil {
		return nil, withProtocolDetails(ErrInvalidAssertionResponse, err)
	}
	return parsed, nil
}

// decodeCredential decodes exactly one JSON value into v, whose id is *id. Every binary member may be
// base64url with or without "=" padding: go-webauthn accepts padding everywhere but in id, so the
// id's padding is dropped here (the id is compared as rawId's bytes anyway). Like every request body
// (see the transport layer), it must be UTF-8 without unpaired UTF-16 surrogate escapes, which a decoder
// would turn into U+FFFD (passkey.UnpairedSurrogate).
func decodeCredential(body []byte, v any, id *string) error {
	if !utf8.Valid(body) {
		return errors.New("the body is not valid UTF-8")
	}
	if at := passkey.UnpairedSurrogate(body); at >= 0 {
		return fmt.Errorf("the body has an unpaired UTF-16 surrogate escape at offset %d", at)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return errors.New("the body is not a JSON credential object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("the body must hold exactly one JSON value")
	}
	*id = strings.TrimRight(*id, "=")
	return nil
}

// encodeID encodes a credential id as base64url without padding.
func encodeID(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeID decodes a base64url credential id, with or without padding. Decoding is strict (unused
// trailing bits must be zero), so every id has exactly one text form and lookups by text are exact.
func decodeID(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "\r\n") { // the decoder skips line breaks; an id has none
		return nil, errors.New("credential id is not canonical base64url")
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}
