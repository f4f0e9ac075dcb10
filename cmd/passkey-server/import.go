package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/archive"
	"github.com/passkey-server/passkey-server/db"
)

const importUsage = `Usage: passkey-server import ndjson [--tenant ID] [--dry-run] [--on-conflict skip|replace|fail] FILE|-
Imports a tenant's archive (GET /tenants/{tenant_id}/export) straight into the configured database,
without the HTTP body limit: into the archive's tenant id unless --tenant names another. A tenant that
does not exist is created (a new signing key; make API keys with passkey-server keys create).
`

// importCommand runs `passkey-server import ndjson`: the archive goes through the same archive.Service as
// POST /tenants/{tenant_id}/import, on a database of its own (the running instances learn of the new
// or changed tenant from the change feed).
func importCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "ndjson" {
		return errors.New("import needs a format: ndjson (import from Hanko's database is not available yet)\n" + importUsage)
	}
	fs := flag.NewFlagSet("import ndjson", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tenantFlag := fs.String("tenant", "", "the tenant to import into (default: the archive's)")
	dryRun := fs.Bool("dry-run", false, "check everything and write nothing")
	onConflict := fs.String("on-conflict", "fail", "skip, replace or fail")
	pos, err := cliFlags(fs, args[1:])
	if err != nil || len(pos) != 1 {
		return errors.New("import ndjson takes one file (- for stdin)\n" + importUsage)
	}
	var in io.Reader = os.Stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	// The first line names the tenant; it is read ahead and put back.
	br := bufio.NewReader(in)
	first, err := br.ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	tenantID, err := uuid.Parse(*tenantFlag)
	if *tenantFlag == "" {
		var head struct {
			ID uuid.UUID `json:"id"`
		}
		err = json.Unmarshal(first, &head)
		tenantID = head.ID
	}
	if err != nil || tenantID == uuid.Nil {
		return errors.New("no tenant id: give --tenant, or an archive whose first line is its tenant")
	}

	if cfg.Embedded() {
		if err := ensureEmbeddedSecrets(&cfg, io.Discard); err != nil {
			return err
		}
	}
	sealer, err := newSealer(cfg)
	if err != nil {
		return err
	}
	d, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.MigrateUp(ctx); err != nil {
		return err
	}
	svc := newServices(serviceInput{DB: d, Sessions: db.NewMemorySessions(time.Now), Sealer: sealer, PublicURL: cfg.PublicURL,
		KeyOverlap: cfg.KeyOverlap, KeyActivation: cfg.KeyActivation, CacheRefresh: cfg.CacheRefresh, TenantCache: cfg.TenantCache, Logger: log})
	sum, err := svc.archive.Import(ctx, tenantID, io.MultiReader(bytes.NewReader(first), br),
		archive.ImportOptions{OnConflict: archive.Conflict(*onConflict), DryRun: *dryRun})
	if err != nil {
		return err
	}
	verb := "imported"
	if sum.DryRun {
		verb = "dry run, nothing written; would have imported"
	}
	fmt.Fprintf(stdout, "%s tenant %s (%s): users %s, credentials %s, transactions %s\n", verb, tenantID, sum.Tenant,
		counts(sum.Users), counts(sum.Credentials), counts(sum.Transactions))
	return nil
}

func counts(c archive.Counts) string {
	return fmt.Sprintf("%d created, %d replaced, %d skipped", c.Created, c.Replaced, c.Skipped)
}
