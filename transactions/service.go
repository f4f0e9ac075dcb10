package transactions

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
)

// MaxDataBytes bounds the canonical transaction data: what a person confirms fits easily, and the data
// is stored and hashed on every ceremony.
const MaxDataBytes = 32 << 10

// maxIdentifierRunes bounds transaction ids (Hanko's limit).
const maxIdentifierRunes = 128

// Service runs transaction signing: a login ceremony whose challenge is bound to the data the user
// confirms (PSD2 dynamic linking).
type Service struct {
	store  Store
	creds  *credentials.Service
	events *passkey.Bus
	now    func() time.Time
}

// NewService returns a transaction service on top of the credentials ceremonies. It emits its events
// where the credentials service does.
func NewService(store Store, creds *credentials.Service, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, creds: creds, events: creds.Events(), now: now}
}

// InitRequest is the body of transaction/initialize (docs/hanko-compatibility.md#transactions).
type InitRequest struct {
	AppUserID       string          `json:"user_id"`
	TransactionID   string          `json:"transaction_id"`
	TransactionData json.RawMessage `json:"transaction_data"`
}

// Signing is the transaction signing ceremony: an assertion by a named user with one of their
// passkeys (MFA credentials cannot sign, as in Hanko), whose challenge is bound to the data.
var Signing = credentials.Ceremony{Name: "transaction", NamedUser: true, Accepts: credentials.Passkeys, AMR: credentials.Methods}

// Begin records a pending transaction and starts its ceremony. The challenge is 32 random bytes
// followed by SHA-256(transaction_id ‖ canonical data), so the assertion signs exactly this data.
func (s *Service) Begin(ctx context.Context, snap *tenant.Snapshot, req InitRequest) (*protocol.CredentialAssertion, error) {
	assertion, err := s.begin(ctx, snap, req)
	s.events.Emit(ctx, stepEvent(snap, passkey.StepInitialize, err, Transaction{AppUserID: req.AppUserID, Identifier: req.TransactionID}))
	return assertion, err
}

func (s *Service) begin(ctx context.Context, snap *tenant.Snapshot, req InitRequest) (*protocol.CredentialAssertion, error) {
	var p passkey.Problems
	if req.AppUserID == "" {
		p.Add("user_id is a required field")
	}
	p.Text("user_id", req.AppUserID)
	p.Text("transaction_id", req.TransactionID)
	if req.TransactionID == "" {
		p.Add("transaction_id is a required field")
	} else if utf8.RuneCountInString(req.TransactionID) > maxIdentifierRunes {
		p.Add("transaction_id cannot have more than %d entries", maxIdentifierRunes)
	}
	var canonical []byte
	if zeroJSON(req.TransactionData) {
		p.Add("transaction_data is a required field")
	} else if !jsonObject(req.TransactionData) {
		// An object also keeps the binding unambiguous: with scalar data, id "c" and data 12 would
		// hash like id "c1" and data 2.
		p.Add("transaction_data must be a JSON object")
	} else {
		var err error
		if canonical, err = Canonicalize(req.TransactionData); err != nil {
			p.Add("%s", err.Error())
		}
	}
	if err := p.Err(passkey.ErrInvalidRequest); err != nil {
		return nil, err
	}
	if len(canonical) > MaxDataBytes {
		return nil, passkey.WithDetails(ErrDataTooLarge, fmt.Sprintf("transaction_data may have at most %d bytes", MaxDataBytes))
	}

	user, err := s.creds.User(ctx, snap, req.AppUserID)
	if err != nil {
		return nil, err
	}
	binding := sha256.Sum256(append([]byte(req.TransactionID), canonical...))
	challenge := make([]byte, 32, 64)
	if _, err := rand.Read(challenge); err != nil {
		return nil, err
	}
	challenge = append(challenge, binding[:]...)
	// The ceremony first: it checks that the user has a credential to sign with. A transaction id that
	// turns out to be taken leaves only a session that nothing can finish (finalize needs a pending
	// transaction with its challenge).
	assertion, err := s.creds.StartAssertion(ctx, snap, Signing, req.AppUserID, challenge)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	dataHash := sha256.Sum256(canonical)
	err = s.store.Create(ctx, Transaction{
		ID: uuid.New(), TenantID: snap.ID, UserKey: user.Key, AppUserID: user.AppUserID,
		Identifier: req.TransactionID, Data: string(canonical), DataHash: dataHash[:],
		Challenge: base64.RawURLEncoding.EncodeToString(challenge), Status: StatusPending,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Duration(snap.Config.WebAuthn.Timeout) * time.Millisecond),
	})
	if err != nil {
		return nil, err
	}
	return assertion, nil
}

// zeroJSON reports whether a transaction_data value is absent or "zero" (null, false, 0, ""), which
// Hanko rejects as missing.
func zeroJSON(raw json.RawMessage) bool {
	v := bytes.TrimSpace(raw)
	switch string(v) {
	case "", "null", "false", "0", `""`:
		return true
	}
	return false
}

// jsonObject reports whether raw is a JSON object (its first byte after whitespace is "{").
func jsonObject(raw json.RawMessage) bool {
	v := bytes.TrimSpace(raw)
	return len(v) > 0 && v[0] == '{'
}

// Finish verifies the assertion of a pending transaction as a login of the user named at initialize
// (not of the assertion's user handle, so non-discoverable credentials work), marks the transaction
// confirmed or failed, and returns a token whose "trans" is the transaction id and "trans_hash" the
// base64url SHA-256 of the canonical data.
//
// It also returns the transaction whenever one matched the challenge, also with an error, so that the
// caller can say which transaction failed.
func (s *Service) Finish(ctx context.Context, snap *tenant.Snapshot, body []byte) (string, Transaction, error) {
	token, tx, err := s.finishBody(ctx, snap, body)
	if err != nil {
		s.events.Emit(ctx, stepEvent(snap, passkey.StepFinalize, err, tx))
	}
	return token, tx, err
}

// stepEvent returns the event of one step of tx's ceremony that ended with err: emitted for a start
// or a failure, committed with the confirmation for a finalize's success.
func stepEvent(snap *tenant.Snapshot, step string, err error, tx Transaction) passkey.Event {
	e := passkey.Event{TenantID: snap.ID, Ceremony: Signing.Name, Step: step, Err: err, Type: passkey.StepType(step, err),
		AppUserID: tx.AppUserID, TransactionID: tx.Identifier}
	if tx.CredentialID != nil {
		e.CredentialID = *tx.CredentialID
	}
	return e
}

func (s *Service) finishBody(ctx context.Context, snap *tenant.Snapshot, body []byte) (string, Transaction, error) {
	parsed, err := credentials.ParseAssertion(body)
	if err != nil {
		return "", Transaction{}, passkey.WithDetails(ErrInvalidResponse, passkey.Details(err))
	}
	tx, err := s.store.ByChallenge(ctx, snap.ID, parsed.Response.CollectedClientData.Challenge)
	if errors.Is(err, ErrNotFound) {
		return "", Transaction{}, passkey.WithDetails(ErrNotFound, ErrNotFound.Error())
	}
	if err != nil {
		return "", Transaction{}, err
	}
	token, err := s.finish(ctx, snap, &tx, body)
	return token, tx, err
}

// finish verifies the assertion of tx and records the outcome in the store and in tx.
func (s *Service) finish(ctx context.Context, snap *tenant.Snapshot, tx *Transaction, body []byte) (string, error) {
	now := s.now().UTC()
	if st := tx.EffectiveStatus(now); st != StatusPending {
		return "", passkey.WithDetails(ErrNotFound, "the transaction is "+string(st))
	}
	res, login, err := s.creds.VerifyAssertion(ctx, snap, Signing, body)
	if err != nil && !errors.Is(err, credentials.ErrAssertionFailed) && !errors.Is(err, credentials.ErrClonedAuthenticator) {
		// The session was consumed by a concurrent finalize or expired, or the database or Redis
		// failed: the user's assertion was not refused, so the transaction is not failed for it.
		return "", err
	}
	if err != nil {
		if ferr := s.store.Finish(ctx, snap.ID, tx.ID, StatusFailed, nil, now); ferr != nil && !errors.Is(ferr, ErrNotFound) {
			return "", errors.Join(err, ferr)
		}
		tx.Status, tx.UpdatedAt = StatusFailed, now
		return "", err
	}
	if res.User.Key != tx.UserKey {
		return "", passkey.WithDetails(credentials.ErrAssertionFailed, "the transaction belongs to another user")
	}
	token, err := s.creds.Token(snap, Signing, res, func(c *signing.Claims) {
		c.TransactionID = tx.Identifier
		c.TransactionHash = base64.RawURLEncoding.EncodeToString(tx.DataHash)
	})
	if err != nil {
		return "", err
	}
	// The login and the confirmation are one change, reported with the login's events and the
	// signature's.
	confirmed := *tx
	confirmed.Status, confirmed.CredentialID, confirmed.ConfirmedAt, confirmed.UpdatedAt = StatusConfirmed, &res.Credential.ID, &now, now
	err = s.events.Commit(ctx, func(ctx context.Context) error {
		if err := s.creds.RecordLogin(login)(ctx); err != nil {
			return err
		}
		return s.store.Finish(ctx, snap.ID, tx.ID, StatusConfirmed, &res.Credential.ID, now)
	}, append(login.Events, stepEvent(snap, passkey.StepFinalize, nil, confirmed))...)
	if err != nil {
		return "", err
	}
	*tx = confirmed
	return token, nil
}

// List returns one page of a user's transactions. The user is named by the application's user id or,
// for compatibility with Hanko (docs/hanko-compatibility.md#internal-user-ids), by our internal id
// (credentials.Service.UserByRef). An unknown user has none.
func (s *Service) List(ctx context.Context, snap *tenant.Snapshot, user string, page passkey.Page) ([]Transaction, int, error) {
	u, err := s.creds.UserByRef(ctx, snap, user)
	if errors.Is(err, credentials.ErrUserNotFound) {
		return []Transaction{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	return s.store.List(ctx, snap.ID, ListFilter{UserKey: u.Key, Page: page})
}

// OfUser returns a user's newest transactions, at most passkey.MaxPerPage: the admin user detail. The
// user is already resolved in the tenant (credentials.Service.UserByRef).
func (s *Service) OfUser(ctx context.Context, snap *tenant.Snapshot, u credentials.User) ([]Transaction, error) {
	txs, _, err := s.store.List(ctx, snap.ID, ListFilter{UserKey: u.Key, Page: passkey.Page{Number: 1, Size: passkey.MaxPerPage}})
	return txs, err
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }
