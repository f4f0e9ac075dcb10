//go:build linux

// Linux only: the redis-server children die with the test binary (Pdeathsig), and a node's start is
// confirmed through /proc.

package db

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/ratelimit"
)

// redisNode is one redis-server process a test started.
type redisNode struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
}

// stop kills the node's process (by its PID, never by name) and waits until it is reaped.
func (n *redisNode) stop() {
	_ = n.cmd.Process.Kill()
	<-n.done
}

// listensOn reports whether process pid holds a listening TCP socket on 127.0.0.1:port (from /proc):
// proof that the node answering on port is this one, not another test's that took the port.
func listensOn(pid, port int) bool {
	table, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return false
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(table), "\n")[1:] {
		// sl local_address rem_address st ... inode: st 0A is LISTEN.
		if f := strings.Fields(line); len(f) > 9 && f[1] == local && f[3] == "0A" {
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[target] {
			return true
		}
	}
	return false
}

// redisFreePort returns a loopback port that is free, and whose cluster bus port (port + 10000) is free
// too.
func redisFreePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		_ = bus.Close()
		return port
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

// redisStartNode starts redis-server on a free loopback port with its files in dir and the extra
// arguments args, waits until it answers, and stops it when the test ends.
func redisStartNode(t *testing.T, dir string, args ...string) *redisNode {
	t.Helper()
	return redisStartNodeConf(t, dir, "", args...)
}

// redisStartNodeConf is redisStartNode with a config file (none if conf is empty), which redis-server
// wants as its first argument.
func redisStartNodeConf(t *testing.T, dir, conf string, args ...string) *redisNode {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (scripts/test.sh installs it): %v", err)
	}
	// A port found free can be taken (by another test's process) before redis-server binds it: then
	// the node exits at start, and is started again on new ports (a few times at most).
	var n *redisNode
	for attempt := 1; n == nil; attempt++ {
		n = redisTryStartNode(t, dir, conf, attempt < 5, args...)
	}
	c := redis.NewClient(&redis.Options{Addr: n.addr, MaxRetries: -1})
	defer c.Close()
	redisWait(t, 10*time.Second, "redis-server on "+n.addr+" to answer", func(ctx context.Context) error {
		var redisErr redis.Error
		if err := c.Ping(ctx).Err(); err != nil && !errors.As(err, &redisErr) { // NOAUTH is an answer
			return err
		}
		return nil
	})
	return n
}

// redisTryStartNode starts redis-server on a free port pair and waits until the process listens on it.
// If it exits at start because the port was taken meanwhile, it returns nil when retry is true.
func redisTryStartNode(t *testing.T, dir, conf string, retry bool, args ...string) *redisNode {
	t.Helper()
	port := redisFreePort(t)
	nodeDir := filepath.Join(dir, strconv.Itoa(port))
	if err := os.MkdirAll(nodeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(nodeDir, "redis.log")
	args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", nodeDir,
		"--save", "", "--appendonly", "no", "--logfile", logFile}, args...)
	if conf != "" {
		args = append([]string{conf}, args...)
	}
	cmd := exec.Command("redis-server", args...)
	// The node dies with the test binary, even one killed at its timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	n := &redisNode{addr: "127.0.0.1:" + strconv.Itoa(port), cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(n.done) }()
	t.Cleanup(n.stop)
	for deadline := time.Now().Add(10 * time.Second); !listensOn(cmd.Process.Pid, port); time.Sleep(20 * time.Millisecond) {
		select {
		case <-n.done:
			log, _ := os.ReadFile(logFile)
			if retry && strings.Contains(string(log), "already in use") {
				t.Logf("redis-server on %s: its port was taken, trying other ports", n.addr)
				return nil
			}
			t.Fatalf("redis-server on %s exited at start:\n%s", n.addr, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s does not listen after 10 s", n.addr)
		}
	}
	return n
}

// redisWait calls check until it returns nil, failing the test after timeout.
func redisWait(t *testing.T, timeout time.Duration, what string, check func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %v for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redisTestCluster is a Redis Cluster of three masters with one replica each, on loopback ports.
type redisTestCluster struct {
	nodes map[string]*redisNode // by address
	url   string                // redis+cluster:// URL listing two of the masters
}

// redisStartCluster starts a cluster of 3 masters and 3 replicas with redis-server --cluster-enabled and
// redis-cli --cluster create, in a temporary directory removed when the test ends.
func redisStartCluster(t *testing.T) *redisTestCluster {
	t.Helper()
	dir := t.TempDir()
	c := &redisTestCluster{nodes: map[string]*redisNode{}}
	var addrs []string
	for range 6 {
		// A node timeout of 1 s makes a failover take about two seconds.
		n := redisStartNode(t, dir, "--cluster-enabled", "yes", "--cluster-node-timeout", "1000",
			"--cluster-config-file", "nodes.conf")
		c.nodes[n.addr] = n
		addrs = append(addrs, n.addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	create := exec.CommandContext(ctx, "redis-cli", append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "1", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Every node agrees that the cluster is up and sees 3 masters, each with a replica.
	for _, addr := range addrs {
		node := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		redisWait(t, 20*time.Second, "cluster state ok on "+addr, func(ctx context.Context) error {
			info, err := node.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return errors.New("cluster_state is not ok")
			}
			shards, err := node.ClusterSlots(ctx).Result()
			if err != nil {
				return err
			}
			if len(shards) != 3 {
				return fmt.Errorf("%d slot ranges, want 3", len(shards))
			}
			for _, s := range shards {
				if len(s.Nodes) != 2 {
					return fmt.Errorf("slots %d-%d have %d nodes, want a master and a replica", s.Start, s.End, len(s.Nodes))
				}
			}
			return nil
		})
		_ = node.Close()
	}
	c.url = "redis+cluster://" + addrs[0] + "," + addrs[1]
	return c
}

// TestSessionCluster runs the session store against a real Redis Cluster of 3 masters (with a replica
// each): the conformance suite, the hash-tag slots, DeleteTenant over every master, and a failover.
func TestSessionCluster(t *testing.T) {
	cluster := redisStartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	universal, err := OpenRedis(ctx, cluster.url)
	if err != nil {
		t.Fatalf("OpenRedis(%s): %v", cluster.url, err)
	}
	t.Cleanup(func() { _ = universal.Close() })
	client, ok := universal.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("OpenRedis(%s) returned a %T, want a *redis.ClusterClient", cluster.url, universal)
	}
	// -1 is what the node clients get, and there means no retries.
	if o := client.Options(); o.MaxRetries != -1 || !o.ContextTimeoutEnabled {
		t.Errorf("MaxRetries %d, ContextTimeoutEnabled %v; want -1 (no retries) and true", o.MaxRetries, o.ContextTimeoutEnabled)
	}

	t.Run("conformance", func(t *testing.T) {
		sessionConformance(t, func(tb testing.TB, now func() time.Time) credentials.SessionStore {
			s := NewRedisSessions(client, sessionTestPrefix(tb, client))
			s.now = now
			return s
		})
	})

	t.Run("hash tags", func(t *testing.T) {
		store := NewRedisSessions(client, sessionTestPrefix(t, client))
		slot := func(key string) int64 {
			t.Helper()
			n, err := client.ClusterKeySlot(t.Context(), key).Result()
			if err != nil {
				t.Fatalf("CLUSTER KEYSLOT %s: %v", key, err)
			}
			return n
		}
		masters := map[string]bool{}
		for range 30 {
			s := sessionTestSession(time.Now(), time.Minute)
			sessionMustPut(t, store, s)
			want := slot("{" + s.TenantID.String() + "}")
			for _, key := range []string{store.key(s.TenantID, s.Ceremony, s.Challenge), store.key(s.TenantID, "registration", "other")} {
				if got := slot(key); got != want {
					t.Fatalf("CLUSTER KEYSLOT %s = %d, want %d, the slot of the tenant's hash tag", key, got, want)
				}
			}
			node, err := client.MasterForKey(t.Context(), store.key(s.TenantID, s.Ceremony, s.Challenge))
			if err != nil {
				t.Fatal(err)
			}
			masters[node.Options().Addr] = true
			if _, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge); err != nil {
				t.Fatalf("Consume: %v", err)
			}
		}
		if len(masters) < 2 {
			t.Errorf("the sessions of 30 tenants are on %d master(s), want them spread over the cluster", len(masters))
		}
	})

	t.Run("delete tenant", func(t *testing.T) {
		store := NewRedisSessions(client, sessionTestPrefix(t, client))
		gone, kept := uuid.New(), uuid.New()
		for i := range 300 {
			for _, tenantID := range []uuid.UUID{gone, kept} {
				s := sessionTestSession(time.Now(), time.Minute)
				s.TenantID = tenantID
				if i%3 == 0 {
					s.Ceremony = "registration"
				}
				sessionMustPut(t, store, s)
			}
		}
		if err := store.DeleteTenant(t.Context(), gone); err != nil {
			t.Fatalf("DeleteTenant: %v", err)
		}
		count := func(tenantID uuid.UUID) int {
			var n atomic.Int64
			err := client.ForEachMaster(t.Context(), func(ctx context.Context, node *redis.Client) error {
				keys, err := node.Keys(ctx, store.prefix+"*{"+tenantID.String()+"}*").Result()
				n.Add(int64(len(keys)))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return int(n.Load())
		}
		if n := count(gone); n != 0 {
			t.Errorf("%d keys of the deleted tenant left", n)
		}
		if n := count(kept); n != 300 {
			t.Errorf("%d keys of the other tenant, want its 300 sessions", n)
		}
	})

	// The rate limiter's keys need no hash tag: each check is one script call on one key.
	t.Run("rate limiter", func(t *testing.T) {
		limiter := ratelimit.New(client, sessionTestPrefix(t, client), ratelimit.Rules{Limits: ratelimit.Limits{
			PerTenantPublic: ratelimit.PerMinute(2), PerIP: ratelimit.PerMinute(100), PerKey: ratelimit.PerMinute(100)}})
		limiter.OnError = func(err error) { t.Errorf("rate limiter on the cluster: %v", err) }
		keys := ratelimit.Keys{Tenant: uuid.NewString(), IP: "192.0.2.1", APIKey: "secret"}
		for i, want := range []bool{true, true, false} {
			if d := limiter.Allow(t.Context(), keys); !d.Checked || d.Allowed != want {
				t.Errorf("request %d: %+v, want checked and allowed %v", i+1, d, want)
			}
		}
	})

	// Last: it kills a master.
	t.Run("failover", func(t *testing.T) {
		store := NewRedisSessions(client, sessionTestPrefix(t, client))
		s := sessionTestSession(time.Now(), time.Minute)
		sessionMustPut(t, store, s)
		key := store.key(s.TenantID, s.Ceremony, s.Challenge)
		master, err := client.MasterForKey(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		killed := master.Options().Addr
		keySlot, err := client.ClusterKeySlot(t.Context(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		cluster.nodes[killed].stop()

		// A surviving node reports another master for the slot once the replica took over.
		var survivor string
		for addr := range cluster.nodes {
			if addr != killed {
				survivor = addr
				break
			}
		}
		observer := redis.NewClient(&redis.Options{Addr: survivor, MaxRetries: -1})
		defer observer.Close()
		redisWait(t, 30*time.Second, "a replica to take over slot "+strconv.FormatInt(keySlot, 10), func(ctx context.Context) error {
			if info, err := observer.ClusterInfo(ctx).Result(); err != nil || !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("cluster not ok: %v", err)
			}
			slots, err := observer.ClusterSlots(ctx).Result()
			if err != nil {
				return err
			}
			for _, r := range slots {
				if int64(r.Start) <= keySlot && keySlot <= int64(r.End) {
					if r.Nodes[0].Addr == killed {
						return errors.New("the killed master still owns the slot")
					}
					return nil
				}
			}
			return errors.New("no node owns the slot")
		})

		// The client learns the new master; until it does, a call fails as unavailable, never otherwise.
		next := sessionTestSession(time.Now(), time.Minute)
		next.TenantID = s.TenantID
		redisWait(t, 10*time.Second, "a ceremony session on the promoted replica", func(ctx context.Context) error {
			err := store.Put(ctx, next)
			if err != nil && !errors.Is(err, passkey.ErrUnavailable) {
				t.Fatalf("Put during the failover: %v, want passkey.ErrUnavailable", err)
			}
			return err
		})
		got, err := store.Consume(t.Context(), next.TenantID, next.Ceremony, next.Challenge)
		if err != nil {
			t.Fatalf("Consume after the failover: %v", err)
		}
		sessionAssertEqual(t, got, next)
		if err := store.DeleteTenant(t.Context(), s.TenantID); err != nil {
			t.Errorf("DeleteTenant after the failover: %v", err)
		}
		if err := store.Ping(t.Context()); err != nil {
			t.Errorf("Ping after the failover: %v", err)
		}
	})
}

// TestSessionSentinel runs the session store through Sentinel: one master, one Sentinel that monitors it,
// reached with a redis+sentinel:// URL.
func TestSessionSentinel(t *testing.T) {
	dir := t.TempDir()
	master := redisStartNode(t, dir, "--requirepass", "s3cr3t")
	host, port, _ := net.SplitHostPort(master.addr)
	conf := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites it
	if err := os.WriteFile(conf, []byte("sentinel monitor mymaster "+host+" "+port+" 1\nsentinel auth-pass mymaster s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel := redisStartNodeConf(t, dir, conf, "--sentinel")
	rawURL := "redis+sentinel://:s3cr3t@" + sentinel.addr + "/mymaster/0"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := OpenRedis(ctx, rawURL)
	if err != nil {
		t.Fatalf("OpenRedis(%s): %v", rawURL, err)
	}
	t.Cleanup(func() { _ = client.Close() })
	store := NewRedisSessions(client, sessionTestPrefix(t, client))
	s := sessionTestSession(time.Now(), time.Minute)
	sessionMustPut(t, store, s)
	got, err := store.Consume(t.Context(), s.TenantID, s.Ceremony, s.Challenge)
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	sessionAssertEqual(t, got, s)
	if err := store.DeleteTenant(t.Context(), s.TenantID); err != nil {
		t.Errorf("DeleteTenant: %v", err)
	}
	// The master's password is required: without it, the client reaches the master but cannot use it.
	noAuth, err := OpenRedis(ctx, "redis+sentinel://"+sentinel.addr+"/mymaster")
	if err == nil {
		_ = noAuth.Close()
		t.Error("OpenRedis without the master's password succeeded")
	}
}
