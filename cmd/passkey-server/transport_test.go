package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
)

// TestOversizedBodyIsRead413 posts 8 MiB to login finalize with net/http's client, which writes the
// whole body before it reads: it reads 413 body_too_large (not a connection reset), told to close the
// connection, with a known length and chunked.
func TestOversizedBodyIsRead413(t *testing.T) {
	s := newTestServer(t, dbtest.Postgres(t), newTestSealer(t))
	id, _ := s.createTenant("example.com")
	base := listenTest(t, s.public)
	const size = 8 << 20
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			// Written in pieces as a client on a real network would, so that the server's answer
			// arrives while the client still writes.
			var body io.Reader = &pacedReader{r: bytes.NewReader(bytes.Repeat([]byte(" "), size))}
			req, err := http.NewRequest("POST", base+"/"+id+"/login/finalize", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if !chunked {
				req.ContentLength = size
			} // else no length known: Transfer-Encoding: chunked
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("8 MiB body: %v", err)
			}
			defer resp.Body.Close()
			expectStatus(t, resp, 413, "body_too_large")
			if !resp.Close {
				t.Fatalf("no Connection: close on the 413: %v", resp.Header)
			}
		})
	}
	// A client that writes the whole body before it reads (as curl and many others do) is not reset.
	t.Run("write all, then read", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(conn, "POST /%s/login/finalize HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", id, size)
		piece := bytes.Repeat([]byte(" "), 64<<10)
		for written := 0; written < size; written += len(piece) {
			if _, err := conn.Write(piece); err != nil {
				t.Fatalf("writing the body after %d bytes: %v", written, err)
			}
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		defer resp.Body.Close()
		expectStatus(t, resp, 413, "body_too_large")
	})
	// The instance still serves.
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	expectStatus(t, resp, 200, "")
}

// pacedReader reads at most 64 KiB at a time, pausing a millisecond before each read.
type pacedReader struct{ r io.Reader }

func (p *pacedReader) Read(b []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return p.r.Read(b[:min(len(b), 64<<10)])
}

// TestMaxConnsPerIP: with PASSKEY_MAX_CONNS_PER_IP 2, a third connection from the same address is
// refused while two are open, and accepted again once one of them closed.
func TestMaxConnsPerIP(t *testing.T) {
	s := newTestServer(t, dbtest.Postgres(t), newTestSealer(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.public.Listener(httpapi.LimitConnsPerIP(ln, 2)) }()
	t.Cleanup(func() { _ = s.public.Shutdown() })
	addr := ln.Addr().String()
	get := func(c net.Conn) (*http.Response, error) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
		return http.ReadResponse(bufio.NewReader(c), nil)
	}
	var open []net.Conn
	for i := range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		open = append(open, c)
		if resp, err := get(c); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", i+1, resp, err)
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp, err := get(c); err == nil {
		t.Fatalf("a third connection from the same address was served: %d", resp.StatusCode)
	}
	open[0].Close()
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := get(c)
		c.Close()
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection accepted after one of two closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShutdownDrains: after SIGTERM (ctx ends), for PASSKEY_SHUTDOWN_DRAIN, /health/ready answers 503
// while the public API still answers 200 (asking clients to close their connections); then serve
// returns.
func TestShutdownDrains(t *testing.T) {
	// A drain long enough that the checks below run inside it even on a loaded machine.
	cfg, _, stop := startServer(t, map[string]string{"PASSKEY_DATA_DIR": t.TempDir(), "PASSKEY_SHUTDOWN_DRAIN": "10s"})
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	// stop reports serve's error with t.Errorf: wait for it on every way out of the test (t.Fatal
	// included), so it never reports after the test has ended.
	defer func() { <-stopped }()

	var ready int
	var readyBody string
	for deadline := time.Now().Add(10 * time.Second); ready != 503 && time.Now().Before(deadline); {
		if ready, readyBody = httpDo(t, "GET", "http://"+cfg.AdminAddress+"/health/ready", "", ""); ready != 503 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if ready != 503 || !strings.Contains(readyBody, `"draining":true`) {
		t.Fatalf("readiness while draining: %d %s", ready, readyBody)
	}
	resp, err := http.Get("http://" + cfg.PublicAddress + "/")
	if err != nil {
		t.Fatalf("public API while draining: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("public API while draining: %d, close %v", resp.StatusCode, resp.Close)
	}
	select {
	case <-stopped:
		t.Fatal("serve returned before the checks ran: the drain period did not hold")
	default:
	}
	<-stopped
	if _, err := http.Get("http://" + cfg.PublicAddress + "/"); err == nil {
		t.Fatal("the public API still answers after shutdown")
	}
}
