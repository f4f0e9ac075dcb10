package db

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	passkey "github.com/passkey-server/passkey-server"
)

// TestRedisURL checks the three forms of Redis URL and that errors never repeat a password.
func TestRedisURL(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		o, err := parseRedisURL("rediss://u:pw@redis.example:6380/2?dial_timeout=2s")
		if err != nil || o.single == nil || o.single.Addr != "redis.example:6380" || o.single.DB != 2 ||
			o.single.Username != "u" || o.single.Password != "pw" || o.single.TLSConfig == nil {
			t.Fatalf("got %+v, %v", o.single, err)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		o, err := parseRedisURL("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002/?pool_size=7")
		if err != nil || o.cluster == nil {
			t.Fatalf("got %+v, %v", o, err)
		}
		if got := strings.Join(o.cluster.Addrs, " "); got != "10.0.0.1:7000 10.0.0.2:7001 [::1]:7002" {
			t.Errorf("Addrs %s", got)
		}
		if o.cluster.Password != "pw" || o.cluster.PoolSize != 7 || o.cluster.TLSConfig != nil {
			t.Errorf("got %+v", o.cluster)
		}
		if o, err := parseRedisURL("rediss+cluster://a:7000/0"); err != nil || o.cluster == nil || o.cluster.TLSConfig == nil {
			t.Errorf("rediss+cluster with /0: %+v, %v", o, err)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		o, err := parseRedisURL("redis+sentinel://app:pw@s1:26379,s2:26380/mymaster/3?sentinel_password=spw&dial_timeout=1s")
		if err != nil || o.sentinel == nil {
			t.Fatalf("got %+v, %v", o, err)
		}
		s := o.sentinel
		if s.MasterName != "mymaster" || s.DB != 3 || s.Username != "app" || s.Password != "pw" ||
			s.SentinelPassword != "spw" || strings.Join(s.SentinelAddrs, " ") != "s1:26379 s2:26380" {
			t.Errorf("got %+v", s)
		}
		if o, err := parseRedisURL("redis+sentinel://s1:26379/mymaster"); err != nil || o.sentinel.DB != 0 || o.sentinel.Password != "" {
			t.Errorf("without database and password: %+v, %v", o.sentinel, err)
		}
	})
	for _, rawURL := range []string{
		"",
		"localhost:6379",
		"http://u:s3cr3t@localhost:6379/0",
		"redis://u:s3cr3t@[::1",
		"redis://u:s3cr3t@localhost:6379/x",
		"redis+cluster://u:s3cr3t@a:7000,b/",           // no port
		"redis+cluster://u:s3cr3t@a:7000/1",            // cluster has database 0 only
		"redis+cluster://u:s3cr3t@a:7000/?nonsense=1",  // unknown option
		"redis+sentinel://u:s3cr3t@s1:26379",           // no master name
		"redis+sentinel://u:s3cr3t@s1:26379/m/x",       // bad database
		"redis+sentinel://u:s3cr3t@s1:26379/m/0/extra", // too long a path
		"redis+sentinel://u:s3cr3t@s1:26379/m#frag",
	} {
		err := CheckRedisURL(rawURL)
		if err == nil {
			t.Errorf("CheckRedisURL(%q) = nil, want an error", rawURL)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("CheckRedisURL(%q) error leaks the password: %v", rawURL, err)
		}
	}
}

// TestRedisMayHaveRun checks which errors the cluster client must not resend: those after which the
// command may have reached Redis, and not a failed dial, a Redis error reply or the caller's deadline.
func TestRedisMayHaveRun(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, false},
		{redis.Nil, false},
		{errors.New("plain"), false},
	} {
		if got := mayHaveRun(c.err); got != c.want {
			t.Errorf("mayHaveRun(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	err := unavailable(kindSessions, &errMaybeRan{what: "redis: the command", cause: io.EOF})
	if !errors.Is(err, passkey.ErrUnavailable) || errors.Is(err, io.EOF) {
		t.Errorf("errMaybeRan: %v; want passkey.ErrUnavailable, and no io.EOF for go-redis to retry", err)
	}
}
