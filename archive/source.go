package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
)

// SourceTenant is a tenant of another server as a Source reads it.
type SourceTenant struct {
	Tenant tenant.Tenant
	// APIKeys are its keys as this server stores them (hashes): the applications keep their secrets.
	APIKeys []tenant.APIKey
}

// Source is another server's database (Hanko's Passkey API), read tenant by tenant. Its Each methods
// call fn per record, reading in batches; a row that cannot be read as one of ours goes to problem
// (with its table and key) and is left out, so that one bad row stops nothing.
type Source interface {
	Tenants(ctx context.Context, problem func(string)) ([]SourceTenant, error)
	EachUser(ctx context.Context, tenantID uuid.UUID, fn func(credentials.User) error, problem func(string)) error
	EachCredential(ctx context.Context, tenantID uuid.UUID, fn func(credentials.Credential) error, problem func(string)) error
	EachTransaction(ctx context.Context, tenantID uuid.UUID, fn func(transactions.Transaction) error, problem func(string)) error
}

// SourceReport is the outcome of importing one tenant of a Source.
type SourceReport struct {
	TenantID uuid.UUID
	Summary  Summary
	// Problems are the rows left out, or why the tenant was not imported (Err).
	Problems []string
	Err      error
}

// ImportFrom imports every tenant of src (or only the one named by only, when not uuid.Nil), each as an
// archive through Import with on_conflict=skip: a second run changes nothing, and what the tenants
// gained here since is kept. A tenant that cannot be imported is reported and the next one goes on.
// progress is told of each tenant as it is done (n of total).
func (s *Service) ImportFrom(ctx context.Context, src Source, only uuid.UUID, dryRun bool, progress func(n, total int, r SourceReport)) error {
	var problems []string
	tenants, err := src.Tenants(ctx, func(p string) { problems = append(problems, p) })
	if err != nil {
		return fmt.Errorf("read tenants: %w", err)
	}
	if len(problems) > 0 {
		progress(0, len(tenants), SourceReport{Problems: problems})
	}
	for i, st := range tenants {
		if only != uuid.Nil && st.Tenant.ID != only {
			continue
		}
		r := s.importSource(ctx, src, st, dryRun)
		progress(i+1, len(tenants), r)
	}
	return nil
}

func (s *Service) importSource(ctx context.Context, src Source, st SourceTenant, dryRun bool) SourceReport {
	t := st.Tenant
	r := SourceReport{TenantID: t.ID}
	problem := func(p string) { r.Problems = append(r.Problems, p) }
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	end := endLine{Type: "end"}
	if err := enc.Encode(tenantLine{Type: "tenant", Version: Version, ID: t.ID, DisplayName: t.DisplayName, Config: t.Config, CreatedAt: t.CreatedAt.UTC()}); err != nil {
		r.Err = err
		return r
	}
	users := map[string]bool{}
	err := src.EachUser(ctx, t.ID, func(u credentials.User) error {
		users[u.AppUserID] = true
		end.Users++
		return enc.Encode(userRecord(u))
	}, problem)
	if err == nil {
		err = src.EachCredential(ctx, t.ID, func(c credentials.Credential) error {
			if !users[c.AppUserID] {
				problem(fmt.Sprintf("credential %s: its user %q was left out", c.ID, c.AppUserID))
				return nil
			}
			end.Credentials++
			return enc.Encode(credentialRecord(c))
		}, problem)
	}
	if err == nil {
		timeout := time.Duration(t.Config.WebAuthn.Timeout) * time.Millisecond
		err = src.EachTransaction(ctx, t.ID, func(tx transactions.Transaction) error {
			if !users[tx.AppUserID] || !json.Valid([]byte(tx.Data)) {
				problem(fmt.Sprintf("transaction %s: no user, or its data is not JSON", tx.Identifier))
				return nil
			}
			// Hanko keeps no state of a transaction: it was pending for the tenant's timeout, and is
			// over now (it reads as expired).
			sum := sha256.Sum256([]byte(tx.Data))
			tx.DataHash, tx.Status, tx.ExpiresAt = sum[:], transactions.StatusPending, tx.CreatedAt.Add(timeout)
			end.Transactions++
			return enc.Encode(transactionRecord(tx))
		}, problem)
	}
	if err == nil {
		err = enc.Encode(end)
	}
	if err != nil {
		r.Err = err
		return r
	}
	r.Summary, r.Err = s.Import(ctx, t.ID, &buf, ImportOptions{OnConflict: Skip, DryRun: dryRun, APIKeys: st.APIKeys})
	return r
}
