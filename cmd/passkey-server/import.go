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
       passkey-server import hanko --from-database postgres://… [--tenant ID] [--dry-run]
ndjson imports a tenant's archive (GET /tenants/{tenant_id}/export) straight into the configured
database, without the HTTP body limit: into the archive's tenant id unless --tenant names another. A
tenant that does not exist is created (a new signing key; make API keys with passkey-server keys create).
hanko reads a Hanko Passkey API database (read only) and imports every tenant (or --tenant) with its
config, API keys, users, credentials and transactions; a second run changes nothing.
`

// importCommand runs `passkey-server import ndjson`: the archive goes through the same archive.Service as
// POST /tenants/{tenant_id}/import, on a database of its own (the running instances learn of the new
// or changed tenant from the change feed).
func importCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "hanko" {
		return importHanko(ctx, cfg, log, args[1:], stdout)
	}
	if len(args) == 0 || args[0] != "ndjson" {
		return errors.New("import needs a source: ndjson or hanko\n" + importUsage)
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

	svc, closeDB, err := importServices(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB()
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

// importServices opens and migrates the configured database and builds the services an import writes
// through, as serve does (the embedded mode's generated master key included).
func importServices(ctx context.Context, cfg Config, log *slog.Logger) (*services, func(), error) {
	if cfg.Embedded() {
		if err := ensureEmbeddedSecrets(&cfg, io.Discard); err != nil {
			return nil, nil, err
		}
	}
	sealer, err := newSealer(cfg)
	if err != nil {
		return nil, nil, err
	}
	d, err := openDatabase(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := d.MigrateUp(ctx); err != nil {
		d.Close()
		return nil, nil, err
	}
	svc := newServices(serviceInput{DB: d, Sessions: db.NewMemorySessions(time.Now), Sealer: sealer, PublicURL: cfg.PublicURL,
		KeyOverlap: cfg.KeyOverlap, KeyActivation: cfg.KeyActivation, CacheRefresh: cfg.CacheRefresh, TenantCache: cfg.TenantCache, Logger: log})
	return svc, func() { d.Close() }, nil
}

// importHanko runs `passkey-server import hanko`: every tenant of a Hanko database, one after another,
// a line of progress each, the rows left out listed under it. It fails (exit 1) when a tenant could
// not be imported, after trying all of them.
func importHanko(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("import hanko", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	from := fs.String("from-database", "", "the Hanko database, postgres://…")
	only := fs.String("tenant", "", "import this tenant only")
	dryRun := fs.Bool("dry-run", false, "check everything and write nothing")
	if pos, err := cliFlags(fs, args); err != nil || len(pos) != 0 || *from == "" {
		return errors.New("import hanko needs --from-database postgres://…\n" + importUsage)
	}
	var onlyID uuid.UUID
	if *only != "" {
		id, err := uuid.Parse(*only)
		if err != nil {
			return errors.New("--tenant must be a tenant id (a UUID)")
		}
		onlyID = id
	}
	src, err := db.OpenHanko(ctx, *from)
	if err != nil {
		return err
	}
	defer src.Close()
	svc, closeDB, err := importServices(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB()
	failed := 0
	err = svc.archive.ImportFrom(ctx, src, onlyID, *dryRun, func(n, total int, r archive.SourceReport) {
		if r.TenantID == uuid.Nil {
			for _, p := range r.Problems {
				fmt.Fprintf(stdout, "  left out: %s\n", p)
			}
			return
		}
		if r.Err != nil {
			failed++
			fmt.Fprintf(stdout, "[%d/%d] tenant %s: not imported: %v\n", n, total, r.TenantID, r.Err)
		} else {
			s := r.Summary
			fmt.Fprintf(stdout, "[%d/%d] tenant %s (%s): users %s; credentials %s; transactions %s\n", n, total, r.TenantID, s.Tenant,
				counts(s.Users), counts(s.Credentials), counts(s.Transactions))
		}
		for _, p := range r.Problems {
			fmt.Fprintf(stdout, "  left out: %s\n", p)
		}
	})
	if err != nil {
		return err
	}
	if *dryRun {
		fmt.Fprintln(stdout, "dry run: nothing was written")
	}
	if failed > 0 {
		return fmt.Errorf("%d tenant(s) not imported (see above)", failed)
	}
	return nil
}
