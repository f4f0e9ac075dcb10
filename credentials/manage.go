package credentials

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/tenant"
)

// maxCredentialNameRunes bounds credential names.
const maxCredentialNameRunes = 255

// List returns one page of the tenant's credentials and the total count.
func (s *Service) List(ctx context.Context, snap *tenant.Snapshot, f ListFilter) ([]Credential, int, error) {
	var p passkey.Problems
	p.Text("user_id", f.AppUserID)
	if err := p.Err(passkey.ErrInvalidRequest); err != nil {
		return nil, 0, err
	}
	return s.store.ListCredentials(ctx, snap.ID, f)
}

// Get returns one credential of the tenant.
func (s *Service) Get(ctx context.Context, snap *tenant.Snapshot, id string) (Credential, error) {
	id, err := checkID(id)
	if err != nil {
		return Credential{}, err
	}
	return s.store.Credential(ctx, snap.ID, id)
}

// Rename sets a credential's name (1 to 255 characters).
func (s *Service) Rename(ctx context.Context, snap *tenant.Snapshot, id, name string) error {
	cred, err := s.Get(ctx, snap, id)
	if err != nil {
		return err
	}
	name = strings.TrimSpace(name)
	var p passkey.Problems
	p.Text("name", name)
	if name == "" {
		p.Add("name is a required field")
	} else if utf8.RuneCountInString(name) > maxCredentialNameRunes {
		p.Add("name cannot have more than %d entries", maxCredentialNameRunes)
	}
	if err := p.Err(passkey.ErrInvalidRequest); err != nil {
		return err
	}
	return s.events.Commit(ctx, func(ctx context.Context) error { return s.store.RenameCredential(ctx, snap.ID, cred.ID, name) },
		changeEvent(passkey.CredentialRenamed, snap, cred))
}

// Delete removes a credential: it can never log in again.
func (s *Service) Delete(ctx context.Context, snap *tenant.Snapshot, id string) error {
	cred, err := s.Get(ctx, snap, id)
	if err != nil {
		return err
	}
	return s.events.Commit(ctx, func(ctx context.Context) error { return s.store.DeleteCredential(ctx, snap.ID, cred.ID) },
		changeEvent(passkey.CredentialDeleted, snap, cred))
}

// changeEvent is the event of a change of a credential; its owner is the event's user, so the user's
// audit trail shows the renaming and deletion of their passkeys.
func changeEvent(typ passkey.EventType, snap *tenant.Snapshot, cred Credential) passkey.Event {
	return passkey.Event{Type: typ, TenantID: snap.ID, AppUserID: cred.AppUserID, CredentialID: cred.ID,
		Details: map[string]string{"credential_id": cred.ID}}
}

// Authenticator returns the name and icons of a credential's authenticator model, from the AAGUID table.
func (s *Service) Authenticator(c Credential) (Authenticator, bool) {
	return s.aaguids.Lookup(c.AAGUID)
}

// checkID accepts a credential id with or without base64 padding and returns its canonical form; an id
// that is not base64url is one no credential has.
func checkID(id string) (string, error) {
	id = strings.TrimRight(id, "=")
	if _, err := decodeID(id); err != nil || id == "" {
		return "", ErrCredentialNotFound
	}
	return id, nil
}

// User returns the tenant's user with the application's user id, or ErrUserNotFound.
func (s *Service) User(ctx context.Context, snap *tenant.Snapshot, appUserID string) (User, error) {
	if !passkey.StorableText(appUserID) {
		return User{}, ErrUserNotFound
	}
	return s.store.UserByAppID(ctx, snap.ID, appUserID)
}

// UserByKey returns the tenant's user with our internal id, or ErrUserNotFound.
func (s *Service) UserByKey(ctx context.Context, snap *tenant.Snapshot, id uuid.UUID) (User, error) {
	return s.store.UserByKey(ctx, snap.ID, id)
}
