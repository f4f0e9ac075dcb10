//go:build linux

// Linux only (faults_more_test.go too, which builds on these helpers): the children die with the test
// binary (Pdeathsig), and signalAll finds a process's children in /proc.

package main

// The fault suite: each test starts its own redis-server or PostgreSQL on a free loopback port, makes it
// fail under live requests through the real HTTP stack (SIGSTOP freezes it, SIGKILL or an immediate
// shutdown stops it), and checks that valid ceremonies get 503 service_unavailable with Retry-After,
// never a 4xx or a 500, that the service recovers once the dependency is back, and that the start waits
// for a dependency and then reports. Only the processes a test started are signalled, by their PID;
// the shared services on 5432 and 6379 are never touched.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/metrics"
)

// faultProcess is a redis-server, postgres or passkey-server this test started.
type faultProcess struct {
	t    testing.TB
	name string
	// argv starts the process; cred runs it as another user (PostgreSQL refuses to run as root); env
	// is added to the test's environment.
	argv []string
	cred *syscall.Credential
	env  []string
	// ready reports whether the process answers.
	ready func() bool
	// stopSignal stops it: SIGKILL for Redis, SIGQUIT (immediate shutdown, which also ends the
	// backends) for the postmaster.
	stopSignal syscall.Signal

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedBuffer
}

// start starts the process and waits until it answers (at most 20 s).
func (p *faultProcess) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if p.env != nil {
		cmd.Env = append(os.Environ(), p.env...) // the last of a duplicated variable wins
	}
	// Pdeathsig: the process dies with the test binary, even one killed at its timeout (PostgreSQL's
	// backends end when they see their postmaster gone).
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	for deadline := time.Now().Add(20 * time.Second); !p.ready(); time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			p.t.Fatalf("%s exited at start:\n%s", p.name, p.out)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s does not answer after 20 s:\n%s", p.name, p.out)
		}
	}
}

// signalAll sends sig to the process and to the processes it forked (PostgreSQL's backends, which
// leave its process group), each by its PID, the parent first so that it forks no new child meanwhile.
func (p *faultProcess) signalAll(sig syscall.Signal) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	pid := p.cmd.Process.Pid
	if err := syscall.Kill(pid, sig); err != nil {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
	for _, child := range childPIDs(pid) {
		_ = syscall.Kill(child, sig)
	}
}

// childPIDs returns the PIDs of the processes whose parent is pid, from /proc.
func childPIDs(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			pids = append(pids, n)
		}
	}
	return pids
}

// freeze stops the process and its children in their tracks (SIGSTOP): connections stay open, nothing
// is answered.
func (p *faultProcess) freeze() { p.signalAll(syscall.SIGSTOP) }

// thaw lets a frozen process run again.
func (p *faultProcess) thaw() { p.signalAll(syscall.SIGCONT) }

// stop stops the process and waits until it has exited.
func (p *faultProcess) stop() {
	p.t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	// A frozen process cannot act on SIGQUIT, nor its backends on the postmaster's.
	_ = cmd.Process.Signal(syscall.SIGCONT)
	for _, child := range childPIDs(cmd.Process.Pid) {
		_ = syscall.Kill(child, syscall.SIGCONT)
	}
	_ = cmd.Process.Signal(p.stopSignal)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// freePort returns a loopback port nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// answers reports whether something accepts TCP connections on addr and answers probe's bytes.
func answers(addr string, probe, want []byte) bool {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := conn.Write(probe); err != nil {
		return false
	}
	buf := make([]byte, len(want))
	n, _ := conn.Read(buf)
	return bytes.Equal(buf[:n], want)
}

// startRedis starts a redis-server of the test's own, without persistence, on a free loopback port.
func startRedis(t testing.TB) (*faultProcess, string) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("the fault suite needs redis-server on PATH: %v", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	_, port, _ := net.SplitHostPort(addr)
	p := &faultProcess{t: t, name: "redis-server " + addr, stopSignal: syscall.SIGKILL, out: &lockedBuffer{},
		argv: []string{bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", t.TempDir(), "--protected-mode", "no"},
		ready: func() bool { return answers(addr, []byte("PING\r\n"), []byte("+PONG")) }}
	p.start()
	t.Cleanup(p.stop)
	return p, "redis://" + addr + "/0"
}

// postgresBinDir finds PostgreSQL's initdb and postgres: on PATH, or the newest under
// /usr/lib/postgresql (Debian's layout).
func postgresBinDir(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	t.Fatal("the fault suite needs PostgreSQL's initdb and postgres (on PATH or under /usr/lib/postgresql/*/bin)")
	return ""
}

// postgresCredential returns the user PostgreSQL runs as: the current one, or the "postgres" user when
// the tests run as root (the postmaster refuses root).
func postgresCredential(t testing.TB) (*syscall.Credential, int, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, os.Getuid(), os.Getgid()
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("the tests run as root, and PostgreSQL needs a non-root user to run as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid
}

// startPostgres initializes a cluster of the test's own (trust authentication, no fsync: a stopped
// process loses nothing the kernel holds, and commits stay synchronous) and starts it
// on a free loopback port. It returns the process and the URL of its postgres database.
func startPostgres(t testing.TB) (*faultProcess, string) {
	t.Helper()
	bin := postgresBinDir(t)
	cred, uid, gid := postgresCredential(t)
	// t.TempDir is private to root; the cluster's user must own its directory.
	dir, err := os.MkdirTemp("", "passkey-faults-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := strconv.Itoa(freePort(t))
	addr := "127.0.0.1:" + port
	// An SSLRequest: a PostgreSQL that answers says 'N' (no TLS here).
	sslRequest := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
	p := &faultProcess{t: t, name: "postgres " + addr, cred: cred, stopSignal: syscall.SIGQUIT, out: &lockedBuffer{},
		argv: []string{filepath.Join(bin, "postgres"), "-D", data, "-p", port, "-k", dir,
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"},
		ready: func() bool { return answers(addr, sslRequest, []byte("N")) }}
	p.start()
	t.Cleanup(p.stop)
	return p, "postgres://postgres@" + addr + "/postgres?sslmode=disable"
}

// faultServer is a test server on a PostgreSQL of the test's own, with short timeouts.
func faultServer(t *testing.T, pgURL string, options ...func(*testOptions)) *testServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The postmaster answers before it accepts sessions ("starting up"): wait as the start does.
	d, err := retryStartup(ctx, discardLog(), 20*time.Second, "database", func(ctx context.Context) (*db.DB, error) {
		return db.OpenWith(ctx, pgURL, db.Options{ConnectTimeout: time.Second, StatementTimeout: 5 * time.Second, CallTimeout: 3 * time.Second})
	})
	if err != nil {
		t.Fatalf("open the test's PostgreSQL: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	return newTestServer(t, d, newTestSealer(t), options...)
}

// expectUnavailable checks that resp is 503 service_unavailable with Retry-After and a title that
// names the kind of dependency (kind, or "" for any).
func expectUnavailable(t testing.TB, resp *http.Response, kind string) {
	t.Helper()
	e := expectStatus(t, resp, 503, "service_unavailable")
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	if kind != "" && !strings.Contains(e.Title, kind) {
		t.Errorf("title %q does not name %q", e.Title, kind)
	}
	if strings.Contains(e.Title+e.Details, "127.0.0.1") {
		t.Errorf("error body names an address: %+v", e)
	}
}

// eventually calls f until it reports true or within has passed, and fails the test then.
func eventually(t testing.TB, within time.Duration, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !f(); time.Sleep(25 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
	}
}

// loginStarts reports whether a login initialize of user answers 200 (any other status but 503 fails
// the test).
func (r *rp) loginStarts(user string) bool {
	r.t.Helper()
	_, resp := send(r.t, r.s.public, "POST", r.path("/login/initialize", "/credentials/login/initialize"),
		map[string]any{"user_id": user}, r.keyHeaders(true)...)
	if resp.StatusCode != 200 && resp.StatusCode != 503 {
		r.t.Fatalf("login initialize answered %d during recovery: %s", resp.StatusCode, readAll(r.t, resp))
	}
	return resp.StatusCode == 200
}

// TestFaultRedisOutage: with the session store frozen, then killed, valid logins get 503
// service_unavailable with Retry-After (never a 4xx or a 500), and the service recovers within about a
// second of Redis answering again.
func TestFaultRedisOutage(t *testing.T) {
	t.Parallel()
	redisProc, redisURL := startRedis(t)
	client, err := db.OpenRedis(context.Background(), redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	sessions := db.NewRedisSessions(client, "passkeyfaults:")
	sessions.SetCallTimeout(300 * time.Millisecond)
	s := newTestServer(t, dbtest.Postgres(t), newTestSealer(t), func(o *testOptions) { o.Sessions = sessions })
	r := newRP(t, s, "example.com")
	a := authenticatortest.New(authenticatortest.Options{})
	r.register(a, "alice")
	r.login(a, "alice")

	for _, outage := range []struct {
		name  string
		begin func()
		end   func()
	}{
		{"frozen", redisProc.freeze, redisProc.thaw},
		{"stopped", redisProc.stop, redisProc.start},
	} {
		t.Run(outage.name, func(t *testing.T) {
			r.t = t
			// A ceremony begun before the outage, finalized during it.
			assertion, err := a.Get(r.loginOptions("alice"), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			outage.begin()
			expectUnavailable(t, r.post(r.path("/login/initialize", "/credentials/login/initialize"), map[string]any{"user_id": "alice"}, true), "session store")
			expectUnavailable(t, r.post(r.path("/login/initialize", "/credentials/login/initialize"), nil, false), "session store")
			expectUnavailable(t, r.loginFinalize(assertion), "session store")
			outage.end()
			eventually(t, time.Second, "login initialize after Redis is back", func() bool { return r.loginStarts("alice") })
			r.login(a, "alice")
		})
	}
}

// TestFaultPostgresOutage: with PostgreSQL stopped, a login initialize naming a user and the admin API
// get 503 service_unavailable, and so must a login finalize (not 401 assertion_failed); the service
// recovers when PostgreSQL is back.
func TestFaultPostgresOutage(t *testing.T) {
	t.Parallel()
	pg, pgURL := startPostgres(t)
	s := faultServer(t, pgURL)
	r := newRP(t, s, "example.com")
	a := authenticatortest.New(authenticatortest.Options{})
	r.register(a, "alice")
	r.login(a, "alice")
	assertion, err := a.Get(r.loginOptions("alice"), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	discoverable, err := a.Get(r.loginOptions(""), testOrigin)
	if err != nil {
		t.Fatal(err)
	}

	pg.stop()
	expectUnavailable(t, r.post(r.path("/login/initialize", "/credentials/login/initialize"), map[string]any{"user_id": "alice"}, true), "database")
	expectUnavailable(t, s.adminCall("GET", "/tenants", nil), "database")
	expectUnavailable(t, s.adminCall("GET", "/tenants/"+r.id+"/users", nil), "database")
	finalizeDuringOutage := func(name string, body []byte) {
		t.Run(name, func(t *testing.T) {
			r.t = t
			_, resp := send(t, s.public, "POST", r.path("/login/finalize", "/credentials/login/finalize"), body)
			expectUnavailable(t, resp, "database")
		})
	}
	finalizeDuringOutage("finalize", assertion)
	finalizeDuringOutage("discoverable finalize", discoverable)
	r.t = t

	pg.start()
	eventually(t, 5*time.Second, "admin API after PostgreSQL is back", func() bool {
		_, resp := send(t, s.admin, "GET", "/tenants", nil, "Authorization", "Bearer "+testToken)
		if resp.StatusCode != 200 && resp.StatusCode != 503 {
			t.Fatalf("GET /tenants answered %d during recovery: %s", resp.StatusCode, readAll(t, resp))
		}
		return resp.StatusCode == 200
	})
	r.login(a, "alice")
}

// TestFaultPostgresFrozen: a PostgreSQL that accepts but never answers ends requests at their deadline
// (PASSKEY_REQUEST_TIMEOUT) with 503, not after the database comes back, and the service recovers when
// it answers again.
func TestFaultPostgresFrozen(t *testing.T) {
	t.Parallel()
	pg, pgURL := startPostgres(t)
	const requestTimeout = 700 * time.Millisecond
	s := faultServer(t, pgURL, func(o *testOptions) { o.HTTP.RequestTimeout = requestTimeout })
	r := newRP(t, s, "example.com")
	a := authenticatortest.New(authenticatortest.Options{})
	r.register(a, "alice")

	pg.freeze()
	thawed := false
	defer func() {
		if !thawed {
			pg.thaw()
		}
	}()
	for _, c := range []struct {
		name string
		do   func() *http.Response
	}{
		{"admin list tenants", func() *http.Response { return s.adminCall("GET", "/tenants", nil) }},
		{"login initialize", func() *http.Response {
			return r.post(r.path("/login/initialize", "/credentials/login/initialize"), map[string]any{"user_id": "alice"}, true)
		}},
	} {
		start := time.Now()
		resp := c.do()
		took := time.Since(start)
		expectUnavailable(t, resp, "")
		// The deadline, not the thaw, ended the request (generous margin for a loaded machine).
		if took > requestTimeout+3*time.Second {
			t.Errorf("%s took %s with a request deadline of %s", c.name, took, requestTimeout)
		}
	}
	pg.thaw()
	thawed = true
	eventually(t, 5*time.Second, "login initialize after PostgreSQL thaws", func() bool { return r.loginStarts("alice") })
	r.login(a, "alice")
}

// TestFaultStartupWaits: the start retries a database or Redis that does not answer, logging each
// attempt, and succeeds when it comes up in time; after PASSKEY_STARTUP_TIMEOUT it reports which
// dependency did not answer.
func TestFaultStartupWaits(t *testing.T) {
	t.Parallel()
	baseConfig := func(t *testing.T) Config {
		cfg, err := loadConfig(map[string]string{"PASSKEY_DATA_DIR": t.TempDir(), "PASSKEY_STARTUP_TIMEOUT": "1500ms",
			"PASSKEY_DATABASE_CONNECT_TIMEOUT": "300ms"})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	t.Run("database never answers", func(t *testing.T) {
		t.Parallel()
		cfg := baseConfig(t)
		cfg.DatabaseURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", freePort(t))
		var logs lockedBuffer
		start := time.Now()
		st, err := openStores(context.Background(), cfg, newTextLogger(&logs), metrics.New())
		if err == nil {
			st.close()
			t.Fatal("openStores succeeded without a database")
		}
		if took := time.Since(start); took < cfg.StartupTimeout {
			t.Errorf("gave up after %s, before PASSKEY_STARTUP_TIMEOUT (%s)", took, cfg.StartupTimeout)
		}
		if !strings.Contains(err.Error(), "the database did not answer within 1.5s") {
			t.Errorf("error %q does not say which dependency did not answer", err)
		}
		if n := strings.Count(logs.String(), "the database does not answer yet"); n < 3 {
			t.Errorf("%d attempts logged, want several:\n%s", n, &logs)
		}
	})

	t.Run("wrong URL is not retried", func(t *testing.T) {
		t.Parallel()
		cfg := baseConfig(t)
		cfg.DatabaseURL = "postgres://postgres@127.0.0.1:1/postgres?sslmode=bogus"
		start := time.Now()
		if _, err := openStores(context.Background(), cfg, discardLog(), metrics.New()); err == nil {
			t.Fatal("openStores succeeded with an invalid URL")
		}
		if took := time.Since(start); took >= cfg.StartupTimeout {
			t.Errorf("an invalid URL was retried for %s", took)
		}
	})

	t.Run("Redis comes up late", func(t *testing.T) {
		t.Parallel()
		cfg := baseConfig(t)
		cfg.StartupTimeout = 20 * time.Second
		port := freePort(t)
		cfg.RedisURL = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
		var logs lockedBuffer
		type result struct {
			st  *stores
			err error
		}
		done := make(chan result, 1)
		go func() {
			st, err := openStores(context.Background(), cfg, newTextLogger(&logs), metrics.New())
			done <- result{st, err}
		}()
		eventually(t, 10*time.Second, "a logged attempt", func() bool {
			return strings.Contains(logs.String(), "the session store (Redis) does not answer yet")
		})
		// Start a Redis on the very port the service waits for.
		bin, err := exec.LookPath("redis-server")
		if err != nil {
			t.Fatal(err)
		}
		p := &faultProcess{t: t, name: "late redis-server", stopSignal: syscall.SIGKILL, out: &lockedBuffer{},
			argv: []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()},
			ready: func() bool {
				return answers(fmt.Sprintf("127.0.0.1:%d", port), []byte("PING\r\n"), []byte("+PONG"))
			}}
		p.start()
		t.Cleanup(p.stop)
		select {
		case res := <-done:
			if res.err != nil {
				t.Fatalf("openStores: %v\n%s", res.err, &logs)
			}
			res.st.close()
		case <-time.After(15 * time.Second):
			t.Fatal("openStores still waits after Redis came up")
		}
	})
}

// TestFaultClosedRedisClient: a session store whose client is closed is passkey.ErrUnavailable too.
func TestFaultClosedRedisClient(t *testing.T) {
	t.Parallel()
	_, redisURL := startRedis(t)
	client, err := db.OpenRedis(context.Background(), redisURL)
	if err != nil {
		t.Fatal(err)
	}
	sessions := db.NewRedisSessions(client, "passkeyfaults:")
	_ = client.Close()
	if err := sessions.Ping(context.Background()); err == nil || !errors.Is(err, passkey.ErrUnavailable) {
		t.Fatalf("Ping on a closed client: %v, want passkey.ErrUnavailable", err)
	}
}
