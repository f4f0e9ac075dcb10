package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/archive"
)

// exportTimeout bounds the streaming of one export. The request's own deadline (RequestTimeout) has
// passed long before a large tenant is written to a slow client; each page read still has the
// database call timeout.
const exportTimeout = 30 * time.Minute

// exportTenant streams the tenant's archive as NDJSON (archive.Service.Export). The tenant is looked up
// first, so that a wrong id is a 404 and not an empty 200; a failure later can only cut the stream
// short, which the archive's missing end line shows.
func (s *server) exportTenant(c *fiber.Ctx) error {
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	if _, err := s.Tenants.Load(c.UserContext(), id); err != nil {
		return err
	}
	ctx := context.WithoutCancel(c.UserContext())
	c.Set(fiber.HeaderContentType, "application/x-ndjson")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="tenant-`+id.String()+`.ndjson"`)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		ctx, cancel := context.WithTimeout(ctx, exportTimeout)
		defer cancel()
		if err := s.Archive.Export(ctx, id, w); err != nil {
			s.log.Error("export cut short", "tenant", id, "error", err)
		}
		_ = w.Flush()
	})
	return nil
}

// importTenant reads an archive (the body, application/x-ndjson) into the tenant, creating it when it
// does not exist. Query: dry_run (true/false), on_conflict (skip, replace, fail; default fail).
func (s *server) importTenant(c *fiber.Ctx) error {
	refused := func(err error) error { return &retitled{err, "unable to import tenant"} }
	id, err := parseTenantID(c)
	if err != nil {
		return err
	}
	if ct := strings.ToLower(c.Get(fiber.HeaderContentType)); !strings.HasPrefix(ct, "application/x-ndjson") && !strings.HasPrefix(ct, "application/jsonl") {
		return passkey.WithDetails(ErrUnsupportedMediaType, "the body must be an archive (Content-Type: application/x-ndjson)")
	}
	opts := archive.ImportOptions{OnConflict: archive.Conflict(c.Query("on_conflict", "fail"))}
	switch c.Query("dry_run", "false") {
	case "true", "1":
		opts.DryRun = true
	case "false", "0":
	default:
		return refused(passkey.Invalid("dry_run must be true or false"))
	}
	// The body is copied: Fiber reuses its buffer once the handler returns, and parsing keeps strings.
	sum, err := s.Archive.Import(c.UserContext(), id, bytes.NewReader(bytes.Clone(c.Body())), opts)
	if err != nil {
		return refused(err)
	}
	return c.JSON(sum)
}
