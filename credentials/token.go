package credentials

import (
	"fmt"

	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// Token signs the token of a finished ceremony (docs/hanko-compatibility.md#tokens, plus iss, jti,
// ceremony and amr); extra, when not nil, adds to the claims (a transaction's trans and trans_hash).
func (s *Service) Token(snap *tenant.Snapshot, ceremony Ceremony, res Result, extra func(*signing.Claims)) (string, error) {
	claims := signing.Claims{
		Issuer:       snap.Issuer,
		Subject:      res.User.AppUserID,
		Audience:     []string{snap.Config.WebAuthn.RelyingParty.ID},
		CredentialID: res.Credential.ID,
		Ceremony:     ceremony.Name,
		AMR:          ceremony.amr(res.Credential),
		IssuedAt:     s.now(),
	}
	if extra != nil {
		extra(&claims)
	}
	token, err := snap.Signer.Sign(claims)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return token, nil
}
