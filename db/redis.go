package db

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// The URL schemes of PASSKEY_REDIS_URL beyond go-redis's own redis://, rediss:// and unix:// (one
// server). A "+cluster" URL lists seed nodes of a Redis Cluster, a "+sentinel" URL the Sentinels that
// know the master.
const (
	schemeCluster     = "redis+cluster"
	schemeClusterTLS  = "rediss+cluster"
	schemeSentinel    = "redis+sentinel"
	schemeSentinelTLS = "rediss+sentinel"
)

// redisOptions is a parsed Redis URL: exactly one of its fields is set.
type redisOptions struct {
	single   *redis.Options
	cluster  *redis.ClusterOptions
	sentinel *redis.FailoverOptions
}

// CheckRedisURL reports whether rawURL is a Redis URL that OpenRedis accepts, without connecting. The
// error never contains the URL, which may hold a password.
func CheckRedisURL(rawURL string) error {
	_, err := parseRedisURL(rawURL)
	return err
}

// parseRedisURL parses the three forms of Redis URL:
//
//	redis://[[user]:password@]host[:port][/db][?option=value...]     one server (rediss:// for TLS)
//	unix://[[user]:password@]/path/to/redis.sock[?db=N]              one server on a Unix socket
//	redis+cluster://[[user]:password@]host:port[,host:port...][?option=value...]
//	                                                                  Redis Cluster (rediss+cluster:// for TLS)
//	redis+sentinel://[[user]:password@]host:port[,host:port...]/master-name[/db][?option=value...]
//	                                                                  Sentinel (rediss+sentinel:// for TLS)
//
// The options are go-redis's (dial_timeout=2s, pool_size=20, ...). For a cluster the hosts are seed
// nodes (one is enough; the others are found through CLUSTER SLOTS) and the database can only be 0. For
// Sentinel the hosts are Sentinels, the user and password are the master's and replicas', and the
// Sentinels' own credentials, if any, are the options sentinel_username and sentinel_password.
func parseRedisURL(rawURL string) (redisOptions, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return redisOptions{}, errors.New("parse Redis URL: no scheme (want redis://, rediss://, unix://, redis+cluster:// or redis+sentinel://)")
	}
	switch scheme {
	case "redis", "rediss", "unix":
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return redisOptions{}, fmt.Errorf("parse Redis URL: %w", urlCause(err))
		}
		return redisOptions{single: opts}, nil
	case schemeCluster, schemeClusterTLS, schemeSentinel, schemeSentinelTLS:
	default:
		return redisOptions{}, fmt.Errorf("parse Redis URL: unknown scheme %q (want redis://, rediss://, unix://, redis+cluster:// or redis+sentinel://)", scheme)
	}
	// The authority lists several hosts, which net/url does not parse (an IPv6 address among them would
	// fail): split them off, and give go-redis a URL with the first host and the others as addr options.
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	var userinfo string
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo, authority = authority[:at+1], authority[at+1:]
	}
	hosts := strings.Split(authority, ",")
	for i, h := range hosts {
		if host, port, err := net.SplitHostPort(h); err != nil || host == "" || port == "" {
			return redisOptions{}, fmt.Errorf("parse Redis URL: address %d of %s:// is not host:port", i+1, scheme)
		}
	}
	base, _, _ := strings.Cut(scheme, "+")
	u, err := url.Parse(base + "://" + userinfo + hosts[0] + tail)
	if err != nil {
		return redisOptions{}, fmt.Errorf("parse Redis URL: %w", urlCause(err))
	}
	if u.Fragment != "" {
		return redisOptions{}, errors.New("parse Redis URL: a fragment (#...) is not allowed")
	}
	q := u.Query()
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	if strings.HasSuffix(scheme, "+cluster") {
		if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
			return redisOptions{}, errors.New("parse Redis URL: a Redis Cluster has database 0 only (remove the path)")
		}
		u.Path, u.RawQuery = "", q.Encode()
		opts, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return redisOptions{}, fmt.Errorf("parse Redis URL: %w", urlCause(err))
		}
		return redisOptions{cluster: opts}, nil
	}
	// Sentinel: go-redis's own form takes the Sentinels' credentials from the user info and the master's
	// from options; this form is the other way round, so the usual user info is the data's.
	path := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
	if len(path) < 1 || len(path) > 2 {
		return redisOptions{}, errors.New("parse Redis URL: redis+sentinel:// needs the master name as its path, then optionally the database: /mymaster/0")
	}
	q.Set("master_name", path[0])
	if len(path) == 2 {
		if _, err := strconv.Atoi(path[1]); err != nil {
			return redisOptions{}, fmt.Errorf("parse Redis URL: invalid database number %q", path[1])
		}
		q.Set("db", path[1])
	}
	if u.User != nil {
		if name := u.User.Username(); name != "" {
			q.Set("username", name)
		}
		if pw, ok := u.User.Password(); ok {
			q.Set("password", pw)
		}
	}
	sentinelUser, sentinelPassword := q.Get("sentinel_username"), q.Get("sentinel_password")
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	u.User, u.Path, u.RawQuery = nil, "", q.Encode()
	opts, err := redis.ParseFailoverURL(u.String())
	if err != nil {
		return redisOptions{}, fmt.Errorf("parse Redis URL: %w", urlCause(err))
	}
	opts.SentinelUsername, opts.SentinelPassword = sentinelUser, sentinelPassword
	return redisOptions{sentinel: opts}, nil
}

// urlCause returns err without the URL a *url.Error repeats, password included.
func urlCause(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}

// OpenRedis connects to the Redis at rawURL (one server, a Redis Cluster or a Sentinel-managed master;
// see parseRedisURL for the forms) and checks that it answers. The client is a *redis.Client for one
// server and for Sentinel, a *redis.ClusterClient for a cluster.
//
// The returned error never contains the URL, which may hold a password; an error that means Redis cannot
// answer matches passkey.ErrUnavailable, so that a caller may retry. The caller closes the client.
//
// The client never sends a command a second time when the first may have run (MaxRetries -1, whatever
// the URL says): a retry after a read timeout would send SET NX or GETDEL a second time while the first
// may have run, and a valid ceremony would then fail ("a live session already uses this challenge", or
// its session gone). Every command of this service either is idempotent or must run at most once, and
// callers bound each call with a context deadline. A cluster client still follows MOVED and ASK
// redirects (the node refused the command, so it did not run) and retries a failed dial, but a
// connection that broke after a command was written is reported, not retried (clusterNoResend).
func OpenRedis(ctx context.Context, rawURL string) (redis.UniversalClient, error) {
	opts, err := parseRedisURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open redis: %w", err)
	}
	// Callers bound their Redis calls with context deadlines (readiness 2 s, rate limits 250 ms); without
	// ContextTimeoutEnabled, go-redis ignores them and waits out its own 3 s read timeout on a hung server.
	var client redis.UniversalClient
	var addr string
	switch {
	case opts.cluster != nil:
		o := opts.cluster
		o.ContextTimeoutEnabled, o.MaxRetries = true, -1
		var cluster *redis.ClusterClient
		o.NewClient = func(no *redis.Options) *redis.Client {
			c := redis.NewClient(no)
			c.AddHook(clusterNoResend{reload: func() { cluster.ReloadState(context.Background()) }})
			return c
		}
		cluster = redis.NewClusterClient(o)
		client, addr = cluster, strings.Join(o.Addrs, ",")
	case opts.sentinel != nil:
		o := opts.sentinel
		o.ContextTimeoutEnabled, o.MaxRetries = true, -1
		client, addr = redis.NewFailoverClient(o), "sentinel "+o.MasterName+" at "+strings.Join(o.SentinelAddrs, ",")
	default:
		o := opts.single
		o.ContextTimeoutEnabled, o.MaxRetries = true, -1
		client, addr = redis.NewClient(o), o.Addr
	}
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("open redis: ping %s: %w", addr, unavailable(kindSessions, err))
	}
	return client, nil
}

// clusterNoResend is a hook on each node client of a cluster client. go-redis's cluster client sends a
// command again, to the same node and then another, after an error it deems transient, a broken
// connection or a read timeout included, whatever MaxRetries says; for SET NX or GETDEL that may have run
// already, that second send could fail a valid ceremony. The hook hides such an error behind
// errMaybeRan, which go-redis does not retry. After any error that means a node cannot answer, it asks
// for a reload of the slot map, so that the next command goes to the replica promoted in a failover
// (go-redis alone reloads on MOVED, or every minute). Redis errors (MOVED, ASK, ...) and failed dials
// pass unchanged: the command did not run.
type clusterNoResend struct{ reload func() }

func (h clusterNoResend) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h clusterNoResend) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil || !isUnavailable(err) {
			return err
		}
		// The reload itself runs CLUSTER SLOTS through this hook: a node it cannot reach must not
		// ask for one more reload.
		if cmd.Name() != "cluster" {
			h.reload() // the node may have been replaced; go-redis coalesces reloads
		}
		if !mayHaveRun(err) {
			return err
		}
		err = &errMaybeRan{what: "redis: the command", cause: err}
		cmd.SetErr(err)
		return err
	}
}

func (h clusterNoResend) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	// go-redis does not resend a MULTI/EXEC whose replies it could not read; a plain pipeline holds only
	// idempotent commands here (DEL, UNLINK). Only the reload is needed.
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err != nil && isUnavailable(err) {
			h.reload()
		}
		return err
	}
}

// mayHaveRun reports whether err is a connection failure after the command may have reached Redis: a
// broken or reset connection, or a timeout other than the caller's deadline (which go-redis does not
// retry). A failed dial is not one.
func mayHaveRun(err error) bool {
	var redisErr redis.Error
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.As(err, &redisErr), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// errMaybeRan is a connection failure after which a command or statement may or may not have run. It
// deliberately has no Unwrap: go-redis retries what unwraps to io.EOF or a net.Error, and database/sql
// what unwraps to driver.ErrBadConn. isUnavailable knows it.
type errMaybeRan struct {
	what  string // "redis: the command", "postgres: the statement"
	cause error
}

func (e *errMaybeRan) Error() string {
	return e.what + " may have run, the connection failed: " + e.cause.Error()
}

// RedisPoolStats is a snapshot of a Redis client's connection pool: the fields of go-redis's
// PoolStats as plain numbers, so that whoever exports them (cmd, to metrics) needs no go-redis.
type RedisPoolStats struct {
	Hits     uint32 // times a free connection was found in the pool
	Misses   uint32 // times a free connection was not found in the pool
	Timeouts uint32 // times a wait for a connection timed out
	Total    uint32 // connections in the pool
	Idle     uint32 // idle connections in the pool
	Stale    uint32 // stale connections removed from the pool
}

// ReadRedisPoolStats returns the current connection pool statistics of client; for a cluster client,
// the sum over its node clients.
func ReadRedisPoolStats(client redis.UniversalClient) RedisPoolStats {
	s := client.PoolStats()
	return RedisPoolStats{Hits: s.Hits, Misses: s.Misses, Timeouts: s.Timeouts, Total: s.TotalConns, Idle: s.IdleConns, Stale: s.StaleConns}
}
