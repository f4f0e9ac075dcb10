package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// cliUsage documents the operator's commands, which call a running server's admin API.
const cliUsage = `Admin commands (they call a running server's admin API):
  passkey-server tenants list                                  list tenants
  passkey-server tenants create --name N --rp-id ID --origin URL [--origin URL ...] [--api-key]
  passkey-server tenants create --name N --config config.json [--api-key]
  passkey-server tenants show TENANT                           a tenant and its config
  passkey-server tenants delete TENANT                         delete a tenant and everything it holds
  passkey-server keys list TENANT                              API keys, masked
  passkey-server keys create TENANT --name N [--publishable] [--expires 2027-01-01T00:00:00Z]
  passkey-server keys revoke TENANT KEY_ID
  passkey-server signing-keys list TENANT
  passkey-server signing-keys rotate TENANT [--overlap 24h] [--revoke-previous]
Each takes --json to print the API's JSON instead of a table.
  PASSKEY_ADMIN_URL    the admin API (default: PASSKEY_ADMIN_ADDRESS on this machine, else http://127.0.0.1:8001)
  PASSKEY_ADMIN_TOKEN  an admin token (default: the first of PASSKEY_ADMIN_TOKENS, else the embedded
                       mode's generated token in PASSKEY_DATA_DIR, ./data by default)
`

// cliCommands are the first words of the admin commands.
var cliCommands = map[string]bool{"tenants": true, "keys": true, "signing-keys": true}

// adminClient calls the admin API for the CLI.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

// newAdminClient takes the admin URL and token from environ: the CLI runs beside the server (or
// where its admin port is reachable), so its defaults are those of the embedded mode on this machine.
func newAdminClient(environ map[string]string) (*adminClient, error) {
	base := strings.TrimRight(environ["PASSKEY_ADMIN_URL"], "/")
	if base == "" {
		// Beside the server, its own listen address says where the admin API is.
		base = "http://127.0.0.1:8001"
		if host, port, err := net.SplitHostPort(environ["PASSKEY_ADMIN_ADDRESS"]); err == nil {
			if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
				host = "127.0.0.1"
			}
			base = "http://" + net.JoinHostPort(host, port)
		}
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("PASSKEY_ADMIN_URL must be an http(s) URL such as http://127.0.0.1:8001")
	}
	token := strings.TrimSpace(environ["PASSKEY_ADMIN_TOKEN"])
	if token == "" {
		if first, _, _ := strings.Cut(environ["PASSKEY_ADMIN_TOKENS"], ","); strings.TrimSpace(first) != "" {
			token = strings.TrimSpace(first)
		}
	}
	if token == "" {
		dir := environ["PASSKEY_DATA_DIR"]
		if dir == "" {
			dir = "./data"
		}
		if b, err := os.ReadFile(filepath.Join(dir, adminTokenFile)); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	if token == "" {
		return nil, errors.New("no admin token: set PASSKEY_ADMIN_TOKEN (or run where the embedded mode's data dir is)")
	}
	return &adminClient{base: base, token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// apiError is an error answer of the admin API.
type apiError struct {
	Status  int    `json:"status"`
	Title   string `json:"title"`
	Details string `json:"details"`
	Code    string `json:"code"`
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%s (%d %s)", e.Title, e.Status, e.Code)
	if e.Details != "" {
		s += ": " + e.Details
	}
	return s
}

// do sends one request and returns the body of a 2xx answer; any other answer is an *apiError.
func (c *adminClient) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Title == "" {
			e.Title = http.StatusText(resp.StatusCode)
		}
		return nil, e
	}
	return b, nil
}

// cliFlags parses args with fs, letting flags come before, between or after the positional
// arguments (`tenants show ID --json`), and returns the positional ones.
func cliFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// runCLI runs one admin command and returns the exit status: 0, 1 when the API refused or failed, 2
// on a usage error.
func runCLI(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int {
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, format+"\n\n%s", append(a, cliUsage)...)
		return 2
	}
	if len(args) < 2 {
		return usageErr("%s needs an action", args[0])
	}
	fs := flag.NewFlagSet(args[0]+" "+args[1], flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	var (
		name, rpID, configFile, expires *string
		origins                         stringList
		apiKey, publishable, revoke     *bool
		overlap                         *time.Duration
	)
	want := 0 // positional arguments after the action
	switch args[0] + " " + args[1] {
	case "tenants list":
	case "tenants create":
		name = fs.String("name", "", "display name (required)")
		rpID = fs.String("rp-id", "", "relying party id, e.g. shop.example.com")
		fs.Var(&origins, "origin", "an origin of the relying party, e.g. https://shop.example.com (repeatable)")
		configFile = fs.String("config", "", "a JSON file with the whole config instead of --rp-id and --origin")
		apiKey = fs.Bool("api-key", false, "also create a secret API key (shown once)")
	case "tenants show", "tenants delete", "keys list", "signing-keys list":
		want = 1
	case "keys create":
		want = 1
		name = fs.String("name", "", "key name (required)")
		publishable = fs.Bool("publishable", false, "a publishable key (pk_) instead of a secret one (sk_)")
		expires = fs.String("expires", "", "expiry time, RFC 3339")
	case "keys revoke":
		want = 2
	case "signing-keys rotate":
		want = 1
		overlap = fs.Duration("overlap", 0, "how long the previous key stays in the JWKS (default: the server's)")
		revoke = fs.Bool("revoke-previous", false, "emergency: sign with the new key at once and drop every previous key")
	default:
		return usageErr("unknown command %q", args[0]+" "+args[1])
	}
	pos, err := cliFlags(fs, args[2:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(pos) != want {
		return usageErr("%s %s takes %d argument(s), got %d", args[0], args[1], want, len(pos))
	}
	c, err := newAdminClient(environ)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 2
	}
	out := &cliOutput{w: stdout, json: *asJSON}
	switch args[0] + " " + args[1] {
	case "tenants list":
		err = out.call(ctx, c, "GET", "/tenants", nil, func(b []byte) error {
			var ts []struct{ ID, DisplayName string }
			if err := jsonSnake(b, &ts); err != nil {
				return err
			}
			return out.table([]string{"ID", "NAME"}, func(row func(...string)) {
				for _, t := range ts {
					row(t.ID, t.DisplayName)
				}
			})
		})
	case "tenants create":
		err = createTenantCLI(ctx, c, out, *name, *rpID, origins, *configFile, *apiKey)
	case "tenants show":
		err = out.call(ctx, c, "GET", "/tenants/"+url.PathEscape(pos[0]), nil, func(b []byte) error {
			var t struct {
				ID, DisplayName string
				CreatedAt       time.Time
				Config          json.RawMessage
			}
			if err := jsonSnake(b, &t); err != nil {
				return err
			}
			cfg, _ := json.MarshalIndent(t.Config, "", "  ")
			fmt.Fprintf(out.w, "id:       %s\nname:     %s\ncreated:  %s\nconfig:\n%s\n", t.ID, t.DisplayName, t.CreatedAt.Format(time.RFC3339), cfg)
			return nil
		})
	case "tenants delete":
		err = out.call(ctx, c, "DELETE", "/tenants/"+url.PathEscape(pos[0]), nil, func([]byte) error {
			fmt.Fprintf(out.w, "deleted tenant %s\n", pos[0])
			return nil
		})
	case "keys list":
		err = out.call(ctx, c, "GET", "/tenants/"+url.PathEscape(pos[0])+"/secrets/api", nil, func(b []byte) error {
			var keys []apiKeyRow
			if err := jsonSnake(b, &keys); err != nil {
				return err
			}
			return out.table([]string{"ID", "NAME", "KIND", "KEY", "CREATED", "LAST USED", "EXPIRES"}, func(row func(...string)) {
				for _, k := range keys {
					row(k.ID, k.Name, k.Kind, k.Hint, when(&k.CreatedAt), when(k.LastUsedAt), when(k.ExpiresAt))
				}
			})
		})
	case "keys create":
		err = createKeyCLI(ctx, c, out, pos[0], *name, *publishable, *expires)
	case "keys revoke":
		err = out.call(ctx, c, "DELETE", "/tenants/"+url.PathEscape(pos[0])+"/secrets/api/"+url.PathEscape(pos[1]), nil, func([]byte) error {
			fmt.Fprintf(out.w, "revoked API key %s\n", pos[1])
			return nil
		})
	case "signing-keys list":
		err = out.call(ctx, c, "GET", "/tenants/"+url.PathEscape(pos[0])+"/signing_keys", nil, out.signingKeys)
	case "signing-keys rotate":
		body := map[string]any{"overlap_seconds": int64(overlap.Seconds()), "revoke_previous": *revoke}
		err = out.call(ctx, c, "POST", "/tenants/"+url.PathEscape(pos[0])+"/signing_keys", body, func(b []byte) error {
			return out.signingKeys(append(append([]byte("["), b...), ']'))
		})
	}
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

// cliOutput prints answers as tables, or as the API's JSON with --json.
type cliOutput struct {
	w    io.Writer
	json bool
}

// call sends a request and prints its answer: the JSON as is with --json, else through table.
func (o *cliOutput) call(ctx context.Context, c *adminClient, method, path string, body any, table func([]byte) error) error {
	b, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	if o.json {
		if len(bytes.TrimSpace(b)) == 0 {
			b = []byte("{}") // 204: still one JSON value for scripts
		}
		var v bytes.Buffer
		if err := json.Indent(&v, b, "", "  "); err != nil {
			return err
		}
		fmt.Fprintln(o.w, v.String())
		return nil
	}
	return table(b)
}

func (o *cliOutput) table(header []string, rows func(row func(...string))) error {
	tw := tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	rows(func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) })
	return tw.Flush()
}

func (o *cliOutput) signingKeys(b []byte) error {
	var keys []struct {
		KID, Algorithm       string
		Active               bool
		CreatedAt            time.Time
		ActivatesAt          time.Time
		RetiredAt, ExpiresAt *time.Time
	}
	if err := jsonSnake(b, &keys); err != nil {
		return err
	}
	return o.table([]string{"KID", "ALG", "ACTIVE", "CREATED", "SIGNS FROM", "RETIRED", "EXPIRES"}, func(row func(...string)) {
		for _, k := range keys {
			row(k.KID, k.Algorithm, fmt.Sprint(k.Active), when(&k.CreatedAt), when(&k.ActivatesAt), when(k.RetiredAt), when(k.ExpiresAt))
		}
	})
}

// apiKeyRow is an API key as the admin API lists it.
type apiKeyRow struct {
	ID, Name, Kind, Hint, Secret string
	CreatedAt                    time.Time
	LastUsedAt, ExpiresAt        *time.Time
}

func createTenantCLI(ctx context.Context, c *adminClient, out *cliOutput, name, rpID string, origins []string, configFile string, apiKey bool) error {
	var config any
	switch {
	case configFile != "" && (rpID != "" || len(origins) > 0):
		return errors.New("give --config or --rp-id with --origin, not both")
	case configFile != "":
		b, err := os.ReadFile(configFile)
		if err != nil {
			return err
		}
		config = json.RawMessage(b)
	default:
		// The rest of the config gets the server's defaults (timeout, CORS = these origins, MFA).
		config = map[string]any{"webauthn": map[string]any{"relying_party": map[string]any{
			"id": rpID, "display_name": name, "origins": origins}}}
	}
	body := map[string]any{"display_name": name, "config": config, "create_api_key": apiKey}
	return out.call(ctx, c, "POST", "/tenants", body, func(b []byte) error {
		var r struct {
			ID     string
			APIKey *apiKeyRow
		}
		if err := jsonSnake(b, &r); err != nil {
			return err
		}
		fmt.Fprintf(out.w, "created tenant %s\n", r.ID)
		if r.APIKey != nil {
			fmt.Fprintf(out.w, "secret API key (shown once): %s\n", r.APIKey.Secret)
		}
		return nil
	})
}

func createKeyCLI(ctx context.Context, c *adminClient, out *cliOutput, tenantID, name string, publishable bool, expires string) error {
	body := map[string]any{"name": name, "kind": "secret"}
	if publishable {
		body["kind"] = "publishable"
	}
	if expires != "" {
		t, err := time.Parse(time.RFC3339, expires)
		if err != nil {
			return fmt.Errorf("--expires: %w", err)
		}
		body["expires_at"] = t
	}
	return out.call(ctx, c, "POST", "/tenants/"+url.PathEscape(tenantID)+"/secrets/api", body, func(b []byte) error {
		var k apiKeyRow
		if err := jsonSnake(b, &k); err != nil {
			return err
		}
		fmt.Fprintf(out.w, "created %s API key %s (%s)\nkey (shown once): %s\n", k.Kind, k.ID, k.Name, k.Secret)
		return nil
	})
}

// jsonSnake decodes the admin API's snake_case JSON into structs with Go-named fields: the CLI reads
// only what it prints, and encoding/json matches display_name to DisplayName once the underscores
// are gone.
func jsonSnake(b []byte, v any) error {
	var raw any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	b, _ = json.Marshal(unsnake(raw))
	return json.Unmarshal(b, v)
}

func unsnake(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			if k == "config" {
				m[k] = x // shown as is
				continue
			}
			m[strings.ReplaceAll(k, "_", "")] = unsnake(x)
		}
		return m
	case []any:
		for i, x := range v {
			v[i] = unsnake(x)
		}
		return v
	}
	return v
}

func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
