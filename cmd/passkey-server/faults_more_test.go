//go:build linux

package main

// More of the fault suite (issue 12), on the helpers of faults_test.go; each test says what it proves.
// Like faults_test.go, every process, proxy and listener is the test's own, on loopback; the shared
// PostgreSQL and Redis are used only through dbtest and testRedisSessions (a database and a key prefix
// of the test's own), and never signalled.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/redis/go-redis/v9"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/metrics"
)

// delayProxy is a TCP proxy on loopback that forwards what the client sends at once and holds each
// chunk of the server's replies for a delay: a slow server, not a frozen one. It can also lose the
// reply to a request that losable picks (a Redis session command, an INSERT) after the server ran it,
// by closing the client's connection instead: the case in which a client that retries runs a command
// twice.
type delayProxy struct {
	ln       net.Listener
	upstream string
	// losable returns, for each new connection, what tells the requests sent on it whose replies may be
	// lost (it sees every chunk the client sends, in order).
	losable func() func(request []byte) bool
	// loseReplies is how many replies to losable requests to lose from now on.
	loseReplies atomic.Int32

	mu    sync.Mutex
	delay func() time.Duration
	conns []net.Conn
	wg    sync.WaitGroup
}

// startDelayProxy proxies a new loopback port to upstream, with no delay until setDelay. losable picks
// the requests whose replies loseReplies may lose.
func startDelayProxy(t testing.TB, upstream string, losable func() func(request []byte) bool) *delayProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{ln: ln, upstream: upstream, losable: losable, delay: func() time.Duration { return 0 }}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *delayProxy) addr() string { return p.ln.Addr().String() }

// setDelay sets how long each reply chunk is held from now on.
func (p *delayProxy) setDelay(delay func() time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = delay
}

func (p *delayProxy) nextDelay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delay()
}

func (p *delayProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.wg.Add(2)
		p.mu.Unlock()
		// waiting is set while a losable request waits for its reply.
		var waiting atomic.Bool
		losable := p.losable()
		go func() {
			defer p.wg.Done()
			defer server.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := client.Read(buf)
				if n > 0 {
					waiting.Store(losable(buf[:n]))
					if _, err := server.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		go func() {
			defer p.wg.Done()
			defer client.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := server.Read(buf)
				if n > 0 {
					time.Sleep(p.nextDelay())
					if waiting.Load() && p.takeLoss() {
						_ = server.Close()
						return
					}
					if _, err := client.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// takeLoss reports whether to lose this reply, counting it.
func (p *delayProxy) takeLoss() bool {
	for {
		n := p.loseReplies.Load()
		if n <= 0 {
			return false
		}
		if p.loseReplies.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (p *delayProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// endpoint is where a goroutine sends its requests: a Fiber app in process (app.Test), or a base URL.
// Unlike call and send it never fails the test, so goroutines may use it.
type endpoint struct {
	app  *fiber.App
	base string
	hc   *http.Client
}

// reply is a response read to its end.
type reply struct {
	status     int
	body       []byte
	requestID  string
	retryAfter string
}

func (e endpoint) do(method, path string, body []byte, headers ...string) (reply, error) {
	var req *http.Request
	if e.app != nil {
		req = httptest.NewRequest(method, path, bytes.NewReader(body))
	} else {
		var err error
		if req, err = http.NewRequest(method, e.base+path, bytes.NewReader(body)); err != nil {
			return reply{}, err
		}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	var resp *http.Response
	var err error
	if e.app != nil {
		resp, err = e.app.Test(req, -1)
	} else {
		resp, err = e.hc.Do(req)
	}
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return reply{status: resp.StatusCode, body: b, requestID: resp.Header.Get("X-Request-Id"), retryAfter: resp.Header.Get("Retry-After")}, nil
}

// ceremonyError is a ceremony step that did not answer 200.
type ceremonyError struct {
	step   string
	status int
	code   string
	body   []byte
}

func (e *ceremonyError) Error() string {
	return fmt.Sprintf("%s answered %d (%s): %s", e.step, e.status, e.code, e.body)
}

func stepError(step string, r reply) error {
	var b httpapi.ErrorBody
	_ = json.Unmarshal(r.body, &b)
	return &ceremonyError{step: step, status: r.status, code: b.Code, body: r.body}
}

// loginTenant is what a client of one tenant needs to log in: its id and secret key.
type loginTenant struct{ id, secret string }

// startLogin runs a login initialize for user and returns the options.
func (lt loginTenant) startLogin(e endpoint, user string) ([]byte, reply, error) {
	r, err := e.do("POST", "/"+lt.id+"/login/initialize", []byte(`{"user_id":"`+user+`"}`), "apiKey", lt.secret)
	if err != nil {
		return nil, r, err
	}
	if r.status != 200 {
		return nil, r, stepError("login initialize", r)
	}
	return r.body, r, nil
}

// finishLogin sends an assertion to login finalize and returns the token.
func (lt loginTenant) finishLogin(e endpoint, assertion []byte) (string, reply, error) {
	r, err := e.do("POST", "/"+lt.id+"/login/finalize", assertion)
	if err != nil {
		return "", r, err
	}
	if r.status != 200 {
		return "", r, stepError("login finalize", r)
	}
	var tok httpapi.TokenResponse
	if err := json.Unmarshal(r.body, &tok); err != nil || tok.Token == "" {
		return "", r, fmt.Errorf("login finalize: no token in %s", r.body)
	}
	return tok.Token, r, nil
}

// login runs a whole login ceremony: initialize on one endpoint, finalize on another (or the same).
func (lt loginTenant) login(initialize, finalize endpoint, a *authenticatortest.Authenticator, user string) (string, error) {
	options, _, err := lt.startLogin(initialize, user)
	if err != nil {
		return "", err
	}
	assertion, err := a.Get(options, testOrigin)
	if err != nil {
		return "", err
	}
	token, _, err := lt.finishLogin(finalize, assertion)
	return token, err
}

// redisCalls returns how many times Redis ran each command since its last CONFIG RESETSTAT, from
// INFO commandstats.
func redisCalls(t testing.TB, client redis.UniversalClient) map[string]int {
	t.Helper()
	info, err := client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		// cmdstat_getdel:calls=3,usec=...
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		calls[name] = n
	}
	return calls
}

// TestFaultSlowRedis: a Redis whose replies take 20–150 ms, well below the session store's call timeout
// (db.DefaultRedisCallTimeout, 1 s), fails no valid login: 16 concurrent ceremonies all succeed, and
// Redis ran each session command exactly once per request (no retry, which would fail a valid ceremony
// with "a live session already uses this challenge" or session_not_found). Replies slower than the
// timeout give 503 service_unavailable, never a 4xx or a 500, and still no command runs twice; the
// service recovers when Redis is fast again.
func TestFaultSlowRedis(t *testing.T) {
	t.Parallel()
	const ceremonies = 16
	_, redisURL := startRedis(t)
	redisAddr := strings.TrimSuffix(strings.TrimPrefix(redisURL, "redis://"), "/0")
	direct, err := db.OpenRedis(context.Background(), redisURL) // for INFO, past the proxy
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = direct.Close() })
	// The session commands: SET NX and GETDEL, the only commands on a session key.
	proxy := startDelayProxy(t, redisAddr, func() func([]byte) bool {
		return func(req []byte) bool { return bytes.Contains(req, []byte("passkeyslow:session:")) }
	})
	client, err := db.OpenRedis(context.Background(), "redis://"+proxy.addr()+"/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	// The default call timeout, as serve uses it.
	sessions := db.NewRedisSessions(client, "passkeyslow:")
	s := newTestServer(t, dbtest.Postgres(t), newTestSealer(t), func(o *testOptions) { o.Sessions = sessions })
	r := newRP(t, s, "example.com")
	lt := loginTenant{r.id, r.secret}
	keys := make([]*authenticatortest.Authenticator, ceremonies)
	for i := range keys {
		keys[i] = authenticatortest.New(authenticatortest.Options{})
		r.register(keys[i], fmt.Sprintf("user-%d", i))
	}
	app := endpoint{app: s.public}

	// loginAll runs the ceremonies concurrently and fails the test for each that fails.
	loginAll := func(t *testing.T, what string) {
		errs := make(chan error, ceremonies)
		var wg sync.WaitGroup
		for i := range ceremonies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := lt.login(app, app, keys[i], fmt.Sprintf("user-%d", i))
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("a valid login failed %s: %v", what, err)
			}
		}
	}

	t.Run("slow", func(t *testing.T) {
		// Fill the client's pool first: a new connection's handshake (HELLO) is a round trip of its own.
		loginAll(t, "before Redis is slowed")
		// 20–150 ms a reply: slow, yet leaving room under the 1 s call timeout on a loaded machine, where
		// a request also waits for the CPU and for a connection from the pool.
		proxy.setDelay(func() time.Duration { return 20*time.Millisecond + rand.N(130*time.Millisecond) })
		if err := direct.ConfigResetStat(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		loginAll(t, "with a slow Redis")
		// One SET NX per initialize, one GETDEL per finalize, and nothing else: nothing ran twice.
		calls := redisCalls(t, direct)
		if calls["set"] != ceremonies || calls["getdel"] != ceremonies || calls["exec"] != 0 {
			t.Errorf("Redis ran set %d, getdel %d, exec %d times for %d ceremonies, want once, once, never", calls["set"], calls["getdel"], calls["exec"], ceremonies)
		}
		t.Logf("%d concurrent logins with 20–150 ms Redis replies took %s", ceremonies, time.Since(start).Round(time.Millisecond))
	})

	t.Run("slower than the timeout", func(t *testing.T) {
		proxy.setDelay(func() time.Duration { return 0 })
		const n = 4
		assertions := make([][]byte, n)
		for i := range assertions {
			a, err := keys[i].Get(r.loginOptions(fmt.Sprintf("user-%d", i)), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			assertions[i] = a
		}
		if err := direct.ConfigResetStat(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		proxy.setDelay(func() time.Duration { return 1500 * time.Millisecond })
		replies := make(chan reply, 2*n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, rep, err := lt.startLogin(app, fmt.Sprintf("user-%d", i))
				if rep.status == 0 {
					t.Errorf("login initialize: %v", err)
				}
				replies <- rep
			}()
			go func() {
				defer wg.Done()
				_, rep, err := lt.finishLogin(app, assertions[i])
				if rep.status == 0 {
					t.Errorf("login finalize: %v", err)
				}
				replies <- rep
			}()
		}
		wg.Wait()
		close(replies)
		for rep := range replies {
			expectUnavailableReply(t, "a step with Redis slower than the timeout", rep)
		}
		// A command may not have been sent at all (a new connection's handshake timed out first),
		// but none was sent twice.
		calls := redisCalls(t, direct)
		if calls["set"] > n || calls["getdel"] > n {
			t.Errorf("Redis ran set %d and getdel %d times for %d requests each: a command was retried", calls["set"], calls["getdel"], n)
		}

		proxy.setDelay(func() time.Duration { return 0 })
		eventually(t, 5*time.Second, "a login once Redis is fast again", func() bool {
			_, err := lt.login(app, app, keys[0], "user-0")
			var ce *ceremonyError
			if err != nil && (!errors.As(err, &ce) || ce.status != 503) {
				t.Fatalf("login after Redis is fast again: %v", err)
			}
			return err == nil
		})
	})

	// The reply to a command Redis ran is lost (the connection drops): a client that retried would run
	// the SET NX or the GETDEL a second time, and the valid ceremony would fail with a 4xx or a 500.
	t.Run("reply lost", func(t *testing.T) {
		proxy.setDelay(func() time.Duration { return 0 })
		const n = 4
		if err := direct.ConfigResetStat(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			user := fmt.Sprintf("user-%d", i)
			assertion, err := keys[i].Get(r.loginOptions(user), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			proxy.loseReplies.Store(1)
			_, rep, _ := lt.startLogin(app, user)
			expectUnavailableReply(t, "login initialize", rep)
			proxy.loseReplies.Store(1)
			_, rep, _ = lt.finishLogin(app, assertion)
			expectUnavailableReply(t, "login finalize", rep)
			if left := proxy.loseReplies.Load(); left != 0 {
				t.Fatalf("no reply to a session command was lost (%d left)", left)
			}
		}
		// n initializes before the losses, n after; n finalizes.
		if calls := redisCalls(t, direct); calls["set"] != 2*n || calls["getdel"] != n {
			t.Errorf("Redis ran set %d and getdel %d times for %d initializes and %d finalizes: a command was retried", calls["set"], calls["getdel"], 2*n, n)
		}
		r.login(keys[0], "user-0")
	})
}

// expectUnavailableReply fails the test unless rep is 503 service_unavailable with Retry-After.
func expectUnavailableReply(t testing.TB, step string, rep reply) {
	t.Helper()
	var e httpapi.ErrorBody
	_ = json.Unmarshal(rep.body, &e)
	if rep.status != 503 || e.Code != "service_unavailable" || rep.retryAfter == "" {
		t.Errorf("%s of a valid ceremony answered %d %s (Retry-After %q), want 503 service_unavailable with Retry-After",
			step, rep.status, rep.body, rep.retryAfter)
	}
}

// TestFaultAuditOutage: no audit event is lost to a 10 s PostgreSQL outage. Logins run just before
// the outage, during it (a named login answers 503, a discoverable initialize still 200, finalizes
// begun before answer 503) and after; the audit recorder keeps what the database refused and writes it
// when the database is back, so the audit log API shows every request's event exactly once, by request
// id, and passkey_audit_events_failed_total and passkey_audit_events_dropped_total stay 0.
func TestFaultAuditOutage(t *testing.T) {
	t.Parallel()
	const outage = 10 * time.Second
	pg, pgURL := startPostgres(t)
	s := faultServer(t, pgURL)
	m := metrics.New()
	if err := registerCounters(m, s.audit, &storeErrors{}, nil); err != nil {
		t.Fatal(err)
	}
	r := newRP(t, s, "example.com")
	lt := loginTenant{r.id, r.secret}
	app := endpoint{app: s.public}
	a := authenticatortest.New(authenticatortest.Options{})
	r.register(a, "alice")

	var requestIDs []string
	track := func(rep reply) {
		t.Helper()
		if rep.requestID == "" {
			t.Fatalf("response %d without X-Request-Id", rep.status)
		}
		requestIDs = append(requestIDs, rep.requestID)
	}
	fullLogin := func() {
		t.Helper()
		options, rep, err := lt.startLogin(app, "alice")
		if err != nil {
			t.Fatal(err)
		}
		track(rep)
		assertion, err := a.Get(options, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		_, rep, err = lt.finishLogin(app, assertion)
		if err != nil {
			t.Fatal(err)
		}
		track(rep)
	}

	// Ceremonies begun before the outage, to finalize during it.
	var pending [][]byte
	for range 20 {
		options, rep, err := lt.startLogin(app, "alice")
		if err != nil {
			t.Fatal(err)
		}
		track(rep)
		assertion, err := a.Get(options, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, assertion)
	}
	// Logins just before: their events are still in the recorder's queue when PostgreSQL stops.
	for range 5 {
		fullLogin()
	}
	pg.stop()
	var during, unavailable int
	for start := time.Now(); time.Since(start) < outage; time.Sleep(100 * time.Millisecond) {
		_, rep, err := lt.startLogin(app, "alice")
		if rep.status != 503 {
			t.Fatalf("named login initialize during the outage: %v, want 503", err)
		}
		track(rep)
		rep, err = app.do("POST", "/"+r.id+"/login/initialize", nil)
		if err != nil || rep.status != 200 {
			t.Fatalf("discoverable login initialize during the outage: %d %s %v", rep.status, rep.body, err)
		}
		track(rep)
		during += 2
		unavailable++
		if len(pending) > 0 {
			_, rep, err := lt.finishLogin(app, pending[0])
			if rep.status != 503 {
				t.Fatalf("login finalize during the outage: %v, want 503", err)
			}
			track(rep)
			pending = pending[1:]
			during++
			unavailable++
		}
	}
	waiting := s.audit.Pending()
	pg.start()
	// 30 s: a restart under parallel load (recovery, then the pool's reconnect) can take a while.
	eventually(t, 30*time.Second, "a login after PostgreSQL is back", func() bool { return r.loginStarts("alice") })
	for range 5 {
		fullLogin()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.audit.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.audit.Pending(); n != 0 {
		t.Fatalf("%d audit events still wait after the database is back", n)
	}
	expectAuditedOnce(t, app, lt, requestIDs)
	scrape := httptest.NewRecorder()
	m.Handler().ServeHTTP(scrape, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{"passkey_audit_events_failed_total 0", "passkey_audit_events_dropped_total 0"} {
		if !strings.Contains(scrape.Body.String(), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	t.Logf("%d requests checked in the audit log: %d during a %s outage (%d answered 503), %d events waiting for the database when it came back",
		len(requestIDs), during, outage, unavailable, waiting)
	if waiting == 0 {
		t.Error("no event waited for the database: the outage did not test the recorder")
	}
}

// expectAuditedOnce reads the tenant's whole audit log through the API and fails the test unless each
// of requestIDs has exactly one event.
func expectAuditedOnce(t testing.TB, app endpoint, lt loginTenant, requestIDs []string) {
	t.Helper()
	seen := map[string]int{}
	for page := 1; ; page++ {
		rep, err := app.do("GET", fmt.Sprintf("/%s/audit_logs?per_page=1000&page=%d", lt.id, page), nil, "apiKey", lt.secret)
		if err != nil || rep.status != 200 {
			t.Fatalf("audit log: %d %s %v", rep.status, rep.body, err)
		}
		var entries []httpapi.AuditEntry
		if err := json.Unmarshal(rep.body, &entries); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			seen[e.RequestID]++
		}
		if len(entries) < 1000 {
			break
		}
	}
	for _, id := range requestIDs {
		if seen[id] != 1 {
			t.Errorf("request %s has %d audit events, want 1", id, seen[id])
		}
	}
}

// TestFaultAuditReplyLost: when PostgreSQL stores a batch of audit events but the reply is lost (the
// connection drops after the commit), the recorder writes the batch again; that second write must not
// fail on the events already stored, or the batch, and every event behind it, would wait forever.
// Every request's event is in the log exactly once, nothing stays pending and nothing is counted lost.
func TestFaultAuditReplyLost(t *testing.T) {
	t.Parallel()
	_, pgURL := startPostgres(t)
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	// The store sends statements with the simple protocol ('Q': the text and its run in one message,
	// db.openPostgres). A prepared statement (Parse with its text, then Bind and Execute) is lost at its
	// Bind, and one pgx keeps prepared under a name is run by a Bind naming it, with no SQL text. The
	// reply lost is the run's, which PostgreSQL sends after the commit, and database/sql must not send
	// the INSERT again by itself (db.noReplayConnector): the recorder sees the failure.
	proxy := startDelayProxy(t, u.Host, func() func([]byte) bool {
		prepared := false
		named := map[string]bool{} // statements of this connection that are the audit INSERT
		return func(req []byte) bool {
			insert := bytes.Contains(req, []byte(`INSERT INTO "audit_logs"`)) || bytes.Contains(req, []byte(`INSERT INTO audit_logs`))
			switch {
			case insert && req[0] == 'Q':
				return true
			case insert:
				if req[0] == 'P' && len(req) > 5 {
					// Parse: type, length (4 bytes), the statement's name, its text.
					if name, _, ok := bytes.Cut(req[5:], []byte{0}); ok && len(name) > 0 {
						named[string(name)] = true
					}
				}
				prepared = true
				return false
			case req[0] == 'B' && len(req) > 5:
				// Bind: type, length, the portal's name, the statement's name.
				_, rest, _ := bytes.Cut(req[5:], []byte{0})
				name, _, _ := bytes.Cut(rest, []byte{0})
				if prepared || named[string(name)] {
					prepared = false
					return true
				}
			}
			return false
		}
	})
	u.Host = proxy.addr()
	s := faultServer(t, u.String())
	r := newRP(t, s, "example.com")
	lt := loginTenant{r.id, r.secret}
	app := endpoint{app: s.public}
	a := authenticatortest.New(authenticatortest.Options{})
	r.register(a, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.audit.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	var requestIDs []string
	for range 3 {
		options, rep, err := lt.startLogin(app, "alice")
		if err != nil {
			t.Fatal(err)
		}
		requestIDs = append(requestIDs, rep.requestID)
		assertion, err := a.Get(options, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		if _, rep, err = lt.finishLogin(app, assertion); err != nil {
			t.Fatal(err)
		}
		requestIDs = append(requestIDs, rep.requestID)
	}
	proxy.loseReplies.Store(1)
	if err := s.audit.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := proxy.loseReplies.Load(); n != 0 {
		t.Fatal("the reply to no audit INSERT was lost")
	}
	if s.audit.Pending() == 0 {
		t.Fatalf("no audit event waits after the lost reply: the recorder did not see the failure (failed %d, dropped %d)", s.audit.Failed(), s.audit.Dropped())
	}
	eventually(t, 5*time.Second, "the audit events kept after the lost reply written", func() bool {
		if err := s.audit.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		return s.audit.Pending() == 0
	})
	expectAuditedOnce(t, app, lt, requestIDs)
	if n := s.audit.Failed() + s.audit.Dropped(); n != 0 {
		t.Errorf("%d audit events counted lost", n)
	}
}

// retryProxy is a reverse proxy in front of instances that tries another instance when one cannot be
// reached: a login initialize on any connection error (it only starts a ceremony), a finalize only
// when the connection was refused (the request never reached an instance, so it cannot have consumed
// its session). Like a load balancer, it sends nothing to a backend taken out of rotation (drain).
type retryProxy struct {
	backends  []string
	next      atomic.Uint64
	retries   atomic.Int64
	transport *http.Transport
	// inFlight counts the requests each backend is answering now; out marks the backends out of
	// rotation.
	inFlight []atomic.Int64
	out      []atomic.Bool
}

// drain takes backend b out of rotation and waits, up to timeout, until it answers no request; it
// returns how many it was answering when taken out, and whether it got to none. The proxy counts a
// request in flight before it looks at out, so once drain has seen none, no request goes to b.
func (p *retryProxy) drain(b int, timeout time.Duration) (int64, bool) {
	p.out[b].Store(true)
	n := p.inFlight[b].Load()
	for deadline := time.Now().Add(timeout); p.inFlight[b].Load() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return n, false
		}
	}
	return n, true
}

// neverReached reports whether err means that no instance saw the request: the dial failed.
func neverReached(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (p *retryProxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	retryAny := strings.HasSuffix(req.URL.Path, "/initialize")
	first := p.next.Add(1)
	var lastErr error
	for i := range uint64(3 * len(p.backends)) {
		b := (first + i) % uint64(len(p.backends))
		backend := p.backends[b]
		out, err := http.NewRequestWithContext(req.Context(), req.Method, "http://"+backend+req.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out.Header = req.Header.Clone()
		p.inFlight[b].Add(1)
		if p.out[b].Load() {
			p.inFlight[b].Add(-1)
			lastErr = fmt.Errorf("%s is out of rotation", backend)
			continue
		}
		resp, err := p.transport.RoundTrip(out)
		if err != nil {
			p.inFlight[b].Add(-1)
			lastErr = err
			if !retryAny && !neverReached(err) {
				break
			}
			p.retries.Add(1)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		_ = resp.Body.Close()
		p.inFlight[b].Add(-1)
		return
	}
	http.Error(w, "proxy: "+lastErr.Error(), http.StatusBadGateway)
}

// TestFaultRollingRestart: three instances share a database and a session store behind a proxy that
// retries on another instance what never reached one; clients log in continuously while each instance
// in turn is taken out of the proxy's rotation and drained (as a load balancer does before a restart),
// shuts down gracefully (app.ShutdownWithTimeout, as serve does), and a new one starts on its address
// and goes back into rotation. Ceremonies keep succeeding throughout, and none fails. (Without the
// drain, a finalize whose connection the kernel had already accepted is reset by the shutdown, and
// the proxy rightly does not retry it: it may have consumed its session.)
func TestFaultRollingRestart(t *testing.T) {
	t.Parallel()
	const clients = 4
	d := dbtest.Postgres(t)
	sealer := newTestSealer(t)
	sessions, _, _ := testRedisSessions(t)
	shared := func(o *testOptions) { o.Sessions = sessions }

	type instance struct {
		app    *fiber.App
		addr   string
		served chan struct{}
	}
	start := func(addr string) *instance {
		t.Helper()
		s := newTestServer(t, d, sealer, shared)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		in := &instance{app: s.public, addr: ln.Addr().String(), served: make(chan struct{})}
		go func() { _ = in.app.Listener(ln); close(in.served) }()
		t.Cleanup(func() { _ = in.app.Shutdown(); <-in.served })
		return in
	}
	instances := make([]*instance, 3)
	for i := range instances {
		instances[i] = start("127.0.0.1:0")
	}
	first := newTestServer(t, d, sealer, shared)
	r := newRP(t, first, "example.com")
	lt := loginTenant{r.id, r.secret}
	keys := make([]*authenticatortest.Authenticator, clients)
	for i := range keys {
		keys[i] = authenticatortest.New(authenticatortest.Options{})
		r.register(keys[i], fmt.Sprintf("user-%d", i))
	}

	proxy := &retryProxy{transport: &http.Transport{DisableKeepAlives: true}, inFlight: make([]atomic.Int64, len(instances)),
		out: make([]atomic.Bool, len(instances))}
	for _, in := range instances {
		proxy.backends = append(proxy.backends, in.addr)
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	e := endpoint{base: front.URL, hc: front.Client()}

	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var failures sync.Map
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := lt.login(e, e, keys[i], fmt.Sprintf("user-%d", i)); err != nil {
					failed.Add(1)
					failures.Store(err.Error(), true)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	// Stop the clients when the test ends early, too.
	stopClients := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopClients)
	progress := func() {
		t.Helper()
		before := ok.Load()
		eventually(t, 10*time.Second, "ceremonies through the proxy", func() bool { return ok.Load() >= before+10 })
	}
	progress()
	var inFlightAtDrain int64
	for i, in := range instances {
		select {
		case <-stop:
			t.Fatal("the clients stopped before the restarts")
		default:
		}
		n, drained := proxy.drain(i, 10*time.Second)
		if !drained {
			t.Fatalf("instance %d still answers %d requests 10 s after it left the rotation", i, proxy.inFlight[i].Load())
		}
		inFlightAtDrain += n
		if err := in.app.ShutdownWithTimeout(5 * time.Second); err != nil {
			t.Errorf("shutdown of instance %d: %v", i, err)
		}
		<-in.served
		progress() // the instance is down: the others carry the clients
		instances[i] = start(in.addr)
		proxy.out[i].Store(false)
		progress()
	}
	stopClients()
	failures.Range(func(k, _ any) bool { t.Errorf("failed ceremony: %s", k); return true })
	if failed.Load() != 0 {
		t.Errorf("%d of %d ceremonies failed during the rolling restart", failed.Load(), failed.Load()+ok.Load())
	}
	t.Logf("%d ceremonies through 3 restarts (%d requests in flight when instances left the rotation), %d requests retried on another instance",
		ok.Load(), inFlightAtDrain, proxy.retries.Load())
}

// TestFaultRotatedKeyEveryInstance: a signing key rotated through one of three instances verifies on
// every instance from its first token. The other instances learn of it by their own directory refresh;
// a client's JWKS fetched from each instance before the switch (and cached for max-age, JWKSMaxAge)
// verifies every token any instance signs after the activation delay, including each instance's first,
// for ceremonies begun on one instance and finished on another.
func TestFaultRotatedKeyEveryInstance(t *testing.T) {
	t.Parallel()
	const activation = 2 * time.Minute
	d := dbtest.Postgres(t)
	clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}
	sealer := newTestSealer(t)
	sessions, _, _ := testRedisSessions(t)
	opts := func(o *testOptions) {
		o.Now, o.KeyActivation, o.CacheRefresh, o.Sessions = clock.Now, activation, 100*time.Millisecond, sessions
	}
	servers := []*testServer{newTestServer(t, d, sealer, opts), newTestServer(t, d, sealer, opts), newTestServer(t, d, sealer, opts)}
	r := newRP(t, servers[0], "example.com")
	lt := loginTenant{r.id, r.secret}
	a := authenticatortest.New(authenticatortest.Options{})
	r.register(a, "alice")

	kidOf := func(token string) string {
		t.Helper()
		msg, err := jws.Parse([]byte(token))
		if err != nil {
			t.Fatal(err)
		}
		return msg.Signatures()[0].ProtectedHeaders().KeyID()
	}
	// login runs a ceremony begun on servers[i] and finished on servers[j].
	login := func(i, j int) string {
		t.Helper()
		token, err := lt.login(endpoint{app: servers[i].public}, endpoint{app: servers[j].public}, a, "alice")
		if err != nil {
			t.Fatalf("login begun on instance %d, finished on %d: %v", i, j, err)
		}
		return token
	}
	old := kidOf(login(1, 2))

	clock.Add(time.Second)
	resp := servers[0].adminCall("POST", "/tenants/"+r.id+"/signing_keys", nil)
	expectStatus(t, resp, 201, "")
	next := decode[httpapi.SigningKeyDTO](t, resp)
	// Each instance publishes the next key by its own refresh; a client caches what it serves.
	cached := make([]jwk.Set, len(servers))
	for i, s := range servers {
		eventually(t, 5*time.Second, fmt.Sprintf("instance %d publishing %s", i, next.KID), func() bool {
			return len(kidsOf(jwksOf(t, s, r.id))) == 2
		})
		cached[i] = jwksOf(t, s, r.id)
	}
	// Before the switch every instance still signs with the old key.
	for i := range servers {
		if kid := kidOf(login(i, (i+1)%len(servers))); kid != old {
			t.Fatalf("instance %d signs with %s before the activation, want %s", i, kid, old)
		}
	}

	clock.Add(activation)
	tokens := 0
	for j := range servers { // each instance's first token of the new key comes first
		for k := range servers {
			i := (j + k) % len(servers)
			token := login(i, j)
			if kid := kidOf(token); kid != next.KID {
				t.Fatalf("instance %d signs with %s after the activation, want %s", j, kid, next.KID)
			}
			for c, set := range cached {
				if _, err := jwt.Parse([]byte(token), jwt.WithKeySet(set), jwt.WithValidate(true)); err != nil {
					t.Errorf("token %d of instance %d does not verify with the JWKS instance %d served before the switch: %v", k+1, j, c, err)
				}
			}
			tokens++
		}
	}
	t.Logf("%d tokens of the rotated key, from 3 instances, verified against 3 JWKS fetched before the switch", tokens)
}
