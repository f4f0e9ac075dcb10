// Command passkey-loadgen measures a passkey-server running on this machine: it creates a tenant
// through the admin API, registers users with software authenticators, runs full login ceremonies
// (initialize, the authenticator's assertion, finalize) from concurrent workers for a while, prints the
// throughput, the errors by status and the latencies, and deletes its tenant. With -mode register each
// ceremony is a registration of a new user instead (initialize, the authenticator's new credential,
// finalize).
//
//	passkey-loadgen -admin-token "$TOKEN" -concurrency 32 -duration 20s
//
// With -json it prints one JSON object on stdout (the progress goes to stderr), for scripts such as
// scripts/loadtest.sh; -mark names a program it runs with the argument start just before the measured
// ceremonies and end just after them, so that a script samples CPU and memory counters over exactly
// that window and not over the setup.
//
// The server's rate limits apply to it like to any client: to measure capacity, run the server with
// PASSKEY_RATE_LIMIT_IP=off PASSKEY_RATE_LIMIT_TENANT=off PASSKEY_RATE_LIMIT_TENANT_PUBLIC=off PASSKEY_RATE_LIMIT_KEY=off.
//
// It only talks to loopback addresses (127.0.0.0/8, ::1, localhost): it is for load-testing a server on
// the machine it runs on, never someone else's.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
)

// origin is the origin of every ceremony, and localhost the RP ID of the tenant loadgen creates.
const origin = "http://localhost:3000"

// maxDuration bounds a run.
const maxDuration = 120 * time.Second

// The modes: which ceremony a worker repeats.
const (
	modeUser         = "user"         // login: initialize names the user (secret key), allowCredentials lists its passkey
	modeDiscoverable = "discoverable" // login: initialize without key or user, the passkey names the user
	modeRegister     = "register"     // registration of a new user each time, with a new authenticator
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is what the flags say.
type config struct {
	public, admin, adminToken string
	users, concurrency        int
	duration                  time.Duration
	requests                  int
	mode                      string
	json                      bool
	mark                      string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("passkey-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.public, "public", "http://127.0.0.1:8000", "base URL of the public API (loopback only)")
	fs.StringVar(&c.admin, "admin", "http://127.0.0.1:8001", "base URL of the admin API (loopback only)")
	fs.StringVar(&c.adminToken, "admin-token", "", "an admin token of the server (PASSKEY_ADMIN_TOKENS); required")
	fs.IntVar(&c.users, "users", 100, "users to register, one authenticator each; at least -concurrency")
	fs.IntVar(&c.concurrency, "concurrency", 8, "concurrent workers, each running one ceremony at a time")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to run ceremonies (at most 120s)")
	fs.IntVar(&c.requests, "requests", 0, "stop after this many ceremonies (0: run for -duration)")
	fs.StringVar(&c.mode, "mode", modeUser, "ceremony: user (login, initialize with user_id and the secret key), discoverable (login) or register (a new user each time)")
	fs.BoolVar(&c.json, "json", false, "print the results as one JSON object on stdout, the progress on stderr")
	fs.StringVar(&c.mark, "mark", "", "a program run with the argument start just before the measured ceremonies and end just after them; the run waits for it")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var problems []string
	for _, u := range []struct{ name, url string }{{"-public", c.public}, {"-admin", c.admin}} {
		if err := checkLoopbackURL(u.url); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", u.name, err))
		}
	}
	if c.adminToken == "" {
		problems = append(problems, "-admin-token is required")
	}
	if c.concurrency < 1 {
		problems = append(problems, "-concurrency must be at least 1")
	}
	// A user is only ever in one worker's hands: two concurrent logins with one counting authenticator
	// could reach the server out of order and be refused as a cloned authenticator (WebAuthn §6.1.1).
	if c.users < c.concurrency {
		problems = append(problems, "-users must be at least -concurrency")
	}
	if c.duration <= 0 || c.duration > maxDuration {
		problems = append(problems, fmt.Sprintf("-duration must be more than 0 and at most %s", maxDuration))
	}
	if c.requests < 0 {
		problems = append(problems, "-requests must not be negative")
	}
	if c.mode != modeUser && c.mode != modeDiscoverable && c.mode != modeRegister {
		problems = append(problems, "-mode must be user, discoverable or register")
	}
	if len(problems) > 0 {
		return c, errors.New(strings.Join(problems, "\n"))
	}
	c.public, c.admin = strings.TrimRight(c.public, "/"), strings.TrimRight(c.admin, "/")
	return c, nil
}

// checkLoopbackURL accepts an http(s) URL whose host is localhost or a loopback address.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("%q is not an http(s) base URL", raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%q is not this machine: only localhost, 127.0.0.0/8 and ::1 may be load-tested", u.Hostname())
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// newHTTPClient returns a client that connects to loopback addresses only, whatever a name resolves to,
// never uses a proxy and never follows a redirect.
func newHTTPClient(conns int) *http.Client {
	dialer := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !ap.Addr().Unmap().IsLoopback() {
				return fmt.Errorf("refusing to connect to %s: not a loopback address", address)
			}
			return nil
		},
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dialer.DialContext,
			MaxIdleConns:        2 * conns,
			MaxIdleConnsPerHost: 2 * conns,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// client calls the server.
type client struct {
	http *http.Client
	cfg  config
}

// stepError is a failed request: a transport error (status 0) or an answer other than the expected one.
type stepError struct {
	step   string
	status int
	body   string
	err    error
}

func (e *stepError) Error() string {
	if e.status == 0 {
		return fmt.Sprintf("%s: %v", e.step, e.err)
	}
	return fmt.Sprintf("%s: status %d: %s", e.step, e.status, e.body)
}

func (e *stepError) Unwrap() error { return e.err }

// do sends a request and returns the body of an answer with the wanted status.
func (c *client) do(ctx context.Context, step, method, url string, body []byte, want int, headers ...string) ([]byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &stepError{step: step, err: err}
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &stepError{step: step, err: fmt.Errorf("read body: %w", err)}
	}
	if resp.StatusCode != want {
		return nil, &stepError{step: step, status: resp.StatusCode, body: strings.TrimSpace(string(out))}
	}
	return out, nil
}

func (c *client) admin(ctx context.Context, step, method, path string, body []byte, want int) ([]byte, error) {
	return c.do(ctx, step, method, c.cfg.admin+path, body, want, "Authorization", "Bearer "+c.cfg.adminToken)
}

// tenant is the tenant of a run.
type tenant struct {
	ID     string
	Secret string
}

func (c *client) createTenant(ctx context.Context) (tenant, error) {
	req, err := json.Marshal(map[string]any{
		"display_name":   "passkey-loadgen " + time.Now().UTC().Format(time.RFC3339),
		"create_api_key": true,
		"config": map[string]any{
			"cors": map[string]any{"allowed_origins": []string{origin}},
			"webauthn": map[string]any{
				"relying_party": map[string]any{"id": "localhost", "display_name": "passkey-loadgen", "origins": []string{origin}},
				"timeout":       60000,
			},
		},
	})
	if err != nil {
		return tenant{}, err
	}
	out, err := c.admin(ctx, "create tenant", "POST", "/tenants", req, http.StatusCreated)
	if err != nil {
		return tenant{}, err
	}
	var resp struct {
		ID     string `json:"id"`
		APIKey *struct {
			Secret string `json:"secret"`
		} `json:"api_key"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || resp.ID == "" || resp.APIKey == nil || resp.APIKey.Secret == "" {
		return tenant{}, fmt.Errorf("create tenant: unexpected answer %s", out)
	}
	return tenant{ID: resp.ID, Secret: resp.APIKey.Secret}, nil
}

// user is a registered user and its authenticator.
type user struct {
	id   string
	auth *authenticatortest.Authenticator
}

// timing is what one ceremony took. Only steps that succeeded are measured; the others are zero.
type timing struct {
	initialize, finalize, ceremony time.Duration
}

// register runs one registration ceremony: the user is new, its authenticator creates the credential.
// The steps are named like those of a login so that -mode register reports the same rows.
func (c *client) register(ctx context.Context, t tenant, u user) (timing, error) {
	var tm timing
	req, err := json.Marshal(map[string]string{"user_id": u.id, "username": u.id + "@loadgen.invalid"})
	if err != nil {
		return tm, err
	}
	base := c.cfg.public + "/" + t.ID
	start := time.Now()
	options, err := c.do(ctx, "initialize", "POST", base+"/registration/initialize", req, http.StatusOK, "apiKey", t.Secret)
	if err != nil {
		return tm, err
	}
	tm.initialize = time.Since(start)
	resp, err := u.auth.Create(options, origin)
	if err != nil {
		return tm, fmt.Errorf("authenticator create: %w", err)
	}
	fin := time.Now()
	if _, err = c.do(ctx, "finalize", "POST", base+"/registration/finalize", resp, http.StatusOK); err != nil {
		return tm, err
	}
	tm.finalize = time.Since(fin)
	tm.ceremony = time.Since(start)
	return tm, nil
}

// login runs one login ceremony.
func (c *client) login(ctx context.Context, t tenant, u user) (timing, error) {
	var tm timing
	base := c.cfg.public + "/" + t.ID
	start := time.Now()
	var (
		options []byte
		err     error
	)
	if c.cfg.mode == modeDiscoverable {
		options, err = c.do(ctx, "initialize", "POST", base+"/login/initialize", nil, http.StatusOK)
	} else {
		var req []byte
		if req, err = json.Marshal(map[string]string{"user_id": u.id}); err != nil {
			return tm, err
		}
		options, err = c.do(ctx, "initialize", "POST", base+"/login/initialize", req, http.StatusOK, "apiKey", t.Secret)
	}
	if err != nil {
		return tm, err
	}
	tm.initialize = time.Since(start)
	resp, err := u.auth.Get(options, origin)
	if err != nil {
		return tm, fmt.Errorf("authenticator get: %w", err)
	}
	fin := time.Now()
	_, err = c.do(ctx, "finalize", "POST", base+"/login/finalize", resp, http.StatusOK)
	if err != nil {
		return tm, err
	}
	tm.finalize = time.Since(fin)
	tm.ceremony = time.Since(start)
	return tm, nil
}

// results collects what the workers measured.
type results struct {
	mu                             sync.Mutex
	initialize, finalize, ceremony []time.Duration
	ok                             int
	errors                         map[string]int
	examples                       map[string]string
}

func (r *results) add(tm timing, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if tm.initialize > 0 {
		r.initialize = append(r.initialize, tm.initialize)
	}
	if tm.finalize > 0 {
		r.finalize = append(r.finalize, tm.finalize)
	}
	if err == nil {
		r.ok++
		r.ceremony = append(r.ceremony, tm.ceremony)
		return
	}
	key := "authenticator"
	var se *stepError
	if errors.As(err, &se) {
		key = fmt.Sprintf("%s %d", se.step, se.status)
		if se.status == 0 {
			key = se.step + " transport"
		}
	}
	if r.errors == nil {
		r.errors, r.examples = map[string]int{}, map[string]string{}
	}
	r.errors[key]++
	if _, ok := r.examples[key]; !ok {
		r.examples[key] = err.Error()
	}
}

// percentile returns the q-quantile (nearest rank) of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &client{http: newHTTPClient(cfg.concurrency), cfg: cfg}

	t, err := c.createTenant(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "passkey-loadgen:", err)
		return 1
	}
	defer func() {
		// The run may have been interrupted: delete the tenant with a context of its own.
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.admin(dctx, "delete tenant", "DELETE", "/tenants/"+t.ID, nil, http.StatusNoContent); err != nil {
			fmt.Fprintf(stderr, "passkey-loadgen: tenant %s was not deleted: %v\n", t.ID, err)
		}
	}()

	// With -json, stdout carries the one result object and nothing else.
	progress := stdout
	if cfg.json {
		progress = stderr
	}
	var users []user
	if cfg.mode != modeRegister {
		fmt.Fprintf(progress, "tenant %s: registering %d users with %d workers\n", t.ID, cfg.users, cfg.concurrency)
		users = make([]user, cfg.users)
		for i := range users {
			users[i] = user{id: fmt.Sprintf("loadgen-user-%d", i), auth: authenticatortest.New(authenticatortest.Options{})}
		}
		regStart := time.Now()
		if err := forEachWorker(cfg.concurrency, func(w int) error {
			for i := w; i < len(users); i += cfg.concurrency {
				if _, err := c.register(ctx, t, users[i]); err != nil {
					return fmt.Errorf("register %s: %w", users[i].id, err)
				}
			}
			return nil
		}); err != nil {
			fmt.Fprintln(stderr, "passkey-loadgen:", err)
			return 1
		}
		fmt.Fprintf(progress, "registered %d users in %s\n", len(users), time.Since(regStart).Round(time.Millisecond))
	}

	limit := fmt.Sprintf("for %s", cfg.duration)
	if cfg.requests > 0 {
		limit = fmt.Sprintf("for %s or %d ceremonies", cfg.duration, cfg.requests)
	}
	if cfg.mode == modeRegister {
		fmt.Fprintf(progress, "tenant %s: registration ceremonies with %d workers %s\n", t.ID, cfg.concurrency, limit)
	} else {
		fmt.Fprintf(progress, "login ceremonies (mode %s) with %d workers %s\n", cfg.mode, cfg.concurrency, limit)
	}
	if err := mark(ctx, cfg.mark, "start", stderr); err != nil {
		fmt.Fprintln(stderr, "passkey-loadgen:", err)
		return 1
	}
	var (
		res     results
		started atomic.Int64
	)
	begin := time.Now()
	deadline := begin.Add(cfg.duration)
	_ = forEachWorker(cfg.concurrency, func(w int) error {
		// Worker w owns users w, w+concurrency, …: a user's ceremonies never overlap.
		for i, n := w, 0; ctx.Err() == nil && time.Now().Before(deadline); i, n = i+cfg.concurrency, n+1 {
			if cfg.requests > 0 && started.Add(1) > int64(cfg.requests) {
				return nil
			}
			if cfg.mode == modeRegister {
				// A new user id and a new authenticator each time: the server sees a first registration,
				// and the authenticator's list of credentials does not grow over the run.
				u := user{id: fmt.Sprintf("loadgen-new-%d-%d", w, n), auth: authenticatortest.New(authenticatortest.Options{})}
				res.add(c.register(ctx, t, u))
				continue
			}
			if i >= len(users) {
				i = w
			}
			res.add(c.login(ctx, t, users[i]))
		}
		return nil
	})
	elapsed := time.Since(begin)
	if err := mark(ctx, cfg.mark, "end", stderr); err != nil {
		fmt.Fprintln(stderr, "passkey-loadgen:", err)
		return 1
	}
	if cfg.json {
		if err := json.NewEncoder(stdout).Encode(summarize(cfg, &res, elapsed)); err != nil {
			fmt.Fprintln(stderr, "passkey-loadgen:", err)
			return 1
		}
	} else {
		report(stdout, cfg.mode, &res, elapsed)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "passkey-loadgen: interrupted")
		return 1
	}
	return 0
}

// mark runs the -mark program, if any, with the phase as its argument, and waits for it: what it
// samples then belongs to the measured window only.
func mark(ctx context.Context, program, phase string, stderr io.Writer) error {
	if program == "" {
		return nil
	}
	cmd := exec.CommandContext(ctx, program, phase)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("-mark %s %s: %w", program, phase, err)
	}
	return nil
}

// forEachWorker runs fn(0) … fn(n-1) concurrently and returns the first error.
func forEachWorker(n int, fn func(w int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = fn(w)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func report(w io.Writer, mode string, r *results, elapsed time.Duration) {
	failed := 0
	for _, n := range r.errors {
		failed += n
	}
	fmt.Fprintf(w, "\nceremonies: %d ok, %d failed in %s: %.1f ceremonies/s\n",
		r.ok, failed, elapsed.Round(time.Millisecond), float64(r.ok)/elapsed.Seconds())
	if failed == 0 {
		fmt.Fprintln(w, "errors: none")
	} else {
		fmt.Fprintln(w, "errors by status:")
		keys := make([]string, 0, len(r.errors))
		for k := range r.errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %-24s %6d  e.g. %.200s\n", k, r.errors[k], r.examples[k])
		}
	}
	for k := range r.errors {
		if strings.HasSuffix(k, " 429") {
			fmt.Fprintln(w, "hint: the server's rate limits answered 429; to measure its capacity, run it with",
				"PASSKEY_RATE_LIMIT_IP=off PASSKEY_RATE_LIMIT_TENANT=off PASSKEY_RATE_LIMIT_TENANT_PUBLIC=off PASSKEY_RATE_LIMIT_KEY=off")
			break
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency\tn\tp50\tp90\tp99\tmax\t")
	for _, row := range []struct {
		name string
		d    []time.Duration
	}{{"initialize", r.initialize}, {"finalize", r.finalize}, {"ceremony", r.ceremony}} {
		slices.Sort(row.d)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", row.name, len(row.d), ms(percentile(row.d, 0.50)),
			ms(percentile(row.d, 0.90)), ms(percentile(row.d, 0.99)), ms(percentile(row.d, 1)))
	}
	tw.Flush()
	if mode == modeRegister {
		fmt.Fprintln(w, "(ceremony = initialize + the authenticator's new credential + finalize, as a client sees it)")
	} else {
		fmt.Fprintln(w, "(ceremony = initialize + the authenticator's assertion + finalize, as a client sees it)")
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// latencies are the quantiles of one step, in milliseconds, for -json.
type latencies struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func quantiles(d []time.Duration) latencies {
	slices.Sort(d)
	f := func(q float64) float64 { return float64(percentile(d, q)) / float64(time.Millisecond) }
	return latencies{N: len(d), P50: f(0.5), P90: f(0.9), P99: f(0.99), Max: f(1)}
}

// summary is the -json output: the ceremony's figures at the top, as a script reads them, the steps
// below.
type summary struct {
	Mode        string  `json:"mode"`
	Concurrency int     `json:"concurrency"`
	Ceremonies  int     `json:"ceremonies"`
	Failed      int     `json:"failed"`
	ElapsedS    float64 `json:"elapsed_s"`
	PerSecond   float64 `json:"per_second"`
	latencies
	Initialize latencies         `json:"initialize"`
	Finalize   latencies         `json:"finalize"`
	Errors     map[string]int    `json:"errors"`
	Examples   map[string]string `json:"error_examples,omitempty"`
}

func summarize(cfg config, r *results, elapsed time.Duration) summary {
	s := summary{
		Mode: cfg.mode, Concurrency: cfg.concurrency, Ceremonies: r.ok, ElapsedS: elapsed.Seconds(),
		PerSecond: float64(r.ok) / elapsed.Seconds(), latencies: quantiles(r.ceremony),
		Initialize: quantiles(r.initialize), Finalize: quantiles(r.finalize),
		Errors: map[string]int{}, Examples: r.examples,
	}
	for k, n := range r.errors {
		s.Errors[k] = n
		s.Failed += n
	}
	return s
}
