package tenant

import (
	"errors"
	"strings"
	"testing"
)

func TestAttestationPolicyValidation(t *testing.T) {
	const a = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
	for _, tc := range []struct {
		name   string
		policy AttestationPolicy
		want   string // a problem the details must name; "" for a valid policy
	}{
		{"enforce", AttestationPolicy{Mode: "enforce", MinCertification: "FIDO_CERTIFIED_L2", AllowedAAGUIDs: []string{strings.ToUpper(a)}}, ""},
		{"unknown mode", AttestationPolicy{Mode: "strict"}, "webauthn.attestation_policy.mode must be one of"},
		{"unknown level", AttestationPolicy{Mode: "monitor", MinCertification: "FIDO_CERTIFIED_L4"}, "min_certification must be one of"},
		{"invalid AAGUID", AttestationPolicy{Mode: "monitor", DeniedAAGUIDs: []string{"not-a-uuid"}}, `denied_aaguids: "not-a-uuid" is not an AAGUID`},
		{"zero AAGUID", AttestationPolicy{Mode: "monitor", AllowedAAGUIDs: []string{"00000000-0000-0000-0000-000000000000"}}, "is not an AAGUID"},
		{"allowed and denied", AttestationPolicy{Mode: "enforce", AllowedAAGUIDs: []string{a}, DeniedAAGUIDs: []string{strings.ToUpper(a)}}, a + " is both allowed and denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{CORS: CORSConfig{AllowedOrigins: []string{"https://example.com"}}, WebAuthn: WebAuthnConfig{
				RelyingParty: RelyingParty{ID: "example.com", DisplayName: "Example", Origins: []string{"https://example.com"}},
				Timeout:      60000, AttestationPolicy: &tc.policy}}
			c.Normalize()
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.WebAuthn.AttestationPolicy.AllowedAAGUIDs[0] != a {
					t.Fatal("AAGUIDs are not normalized to lower case")
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
