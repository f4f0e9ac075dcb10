// Command passkey-server runs the multi-tenant Passkey API: the public API (Hanko-compatible and
// key-scoped routes) and the admin API, plus maintenance subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `passkey-server: a multi-tenant Passkey API.

Usage:
  passkey-server [serve]              run the public and admin APIs (the default)
  passkey-server migrate up           apply pending database migrations
  passkey-server migrate down [N]     roll back the last N migrations (default 1)
  passkey-server migrate status       list migrations and whether they are applied
  passkey-server dev-credentials      print the development tenant's id, keys and the admin token (embedded mode)
  passkey-server import ndjson FILE   import a tenant's archive (GET /tenants/{id}/export); --dry-run, --on-conflict, --tenant
  passkey-server import hanko --from-database postgres://…   import every tenant of a Hanko Passkey API database; --dry-run, --tenant
  passkey-server healthcheck          exit 0 when the local admin API reports ready (for container health checks)
  passkey-server help                 this text

`

// usageConfig introduces the table of the server's environment variables.
const usageConfig = `Configuration comes from the environment only:

`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		fmt.Fprint(stdout, cliUsage+"\n")
		fmt.Fprint(stdout, usageConfig)
		writeConfigHelp(stdout)
		return 0
	}
	if cliCommands[cmd] {
		// The admin commands are clients of a running server: its configuration is not theirs to check.
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return runCLI(ctx, args, environment(), stdout, stderr)
	}
	cfg, err := loadConfig(environment())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	switch cmd {
	case "serve":
		err = serve(ctx, cfg, log, stdout)
	case "migrate":
		err = migrate(ctx, cfg, args[1:], stdout)
	case "dev-credentials":
		err = printDevCredentials(cfg, stdout)
	case "healthcheck":
		err = healthcheck(ctx, cfg)
	case "import":
		err = importCommand(ctx, cfg, log, args[1:], stdout)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s\n%s", cmd, usage, cliUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

func environment() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

func newLogger(cfg Config, w io.Writer) (*slog.Logger, error) {
	level, err := parseLogLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

func migrate(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("migrate needs up, down [N] or status")
	}
	d, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	switch args[0] {
	case "up":
		if err := d.MigrateUp(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "migrations applied")
	case "down":
		n := 1
		if len(args) > 1 {
			if n, err = strconv.Atoi(args[1]); err != nil || n < 1 {
				return fmt.Errorf("migrate down: %q is not a positive number", args[1])
			}
		}
		if err := d.MigrateDown(ctx, n); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rolled back %d migration(s)\n", n)
	case "status":
		states, err := d.MigrationStatus(ctx)
		if err != nil {
			return err
		}
		for _, s := range states {
			state := "pending"
			if s.Applied {
				state = "applied " + s.AppliedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%-50s %s\n", s.Name, state)
		}
	default:
		return fmt.Errorf("migrate: unknown action %q (up, down [N], status)", args[0])
	}
	return nil
}

// healthcheck asks the local admin API whether the instance is ready.
func healthcheck(ctx context.Context, cfg Config) error {
	addr := cfg.AdminAddress
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health/ready", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: not ready (%s)", resp.Status)
	}
	return nil
}
