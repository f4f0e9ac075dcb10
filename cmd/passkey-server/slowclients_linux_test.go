package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/passkey-server/passkey-server/db/dbtest"
)

// TestSlowBodiesBoundedMemory opens 2,000 connections to the public API, each sending its headers and
// 1 KiB of a 60 KB body, then nothing: together they must add at most 50 MiB to the process (server
// and client side both live in it). Without streamed bodies each held a buffer of its Content-Length.
func TestSlowBodiesBoundedMemory(t *testing.T) {
	// 50 MiB for 2,000 clients (25.6 KiB each). If the hard limit of open files cannot hold 2,000 (each
	// takes two descriptors, the client's and the server's, plus about 1,000 for the rest of the
	// process), the test runs fewer clients with the bound lowered in proportion, rather than failing.
	const wantClients, wantBound = 2000, 50 << 20
	clients := int(min(uint64(wantClients), (max(raiseFileLimit(t, 2*wantClients+1000), 1000)-1000)/2))
	if clients < 200 {
		// Too few to measure anything: a failure says why, rather than a skip nobody reads.
		t.Fatalf("the hard limit of open files allows only %d slow clients; raise it (ulimit -Hn) to run this test", clients)
	}
	bound := int64(wantBound) * int64(clients) / wantClients
	// A read timeout well past the test: the server's ReadTimeout (10 s by default) starts at accept, and
	// on a loaded machine the first connections could be dropped before the last is counted.
	s := newTestServer(t, dbtest.Postgres(t), newTestSealer(t), func(o *testOptions) { o.HTTP.ReadTimeout = time.Minute })
	id, _ := s.createTenant("example.com")
	addr := strings.TrimPrefix(listenTest(t, s.public), "http://")
	before, heapBefore := residentBytes(t), goBytes()

	head := fmt.Sprintf("POST /%s/login/finalize HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n%s",
		id, strings.Repeat(" ", 1024))
	conns := make([]net.Conn, 0, clients)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range clients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the server holds every connection (bounded, well within the minute of ReadTimeout).
	for deadline := time.Now().Add(30 * time.Second); s.public.Server().GetOpenConnectionsCount() < int32(clients); {
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %d of %d connections", s.public.Server().GetOpenConnectionsCount(), clients)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let every connection read what was sent
	after, heapAfter := residentBytes(t), goBytes()
	added := heapAfter - heapBefore
	t.Logf("%d slow clients: Go heap and stacks +%.1f MiB (%.1f KiB each); RSS %d → %d MiB (+%.1f MiB)", clients,
		float64(added)/(1<<20), float64(added)/1024/float64(clients), before>>20, after>>20, float64(after-before)/(1<<20))
	// The race detector's shadow memory, several times what it watches, is in the RSS but not in the Go
	// runtime's counts: without it the RSS is held to the bound too.
	if raceEnabled {
		after, before = heapAfter, heapBefore
	}
	if added > bound || after-before > bound {
		t.Fatalf("%d slow clients added %d MiB, more than %d MiB", clients, max(added, after-before)>>20, bound>>20)
	}
}

// goBytes returns the memory of the Go heap and goroutine stacks in use, after a garbage collection.
func goBytes() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// residentBytes returns the process's resident set size (VmRSS) after a garbage collection that returns
// freed memory to the OS (runtime.GC alone leaves the peak heap resident until the scavenger runs).
func residentBytes(t *testing.T) int64 {
	t.Helper()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("resident memory: %v (the test needs Linux's /proc)", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// raiseFileLimit raises the soft limit of open files to at least n, or to the hard limit if that is
// lower, and returns the soft limit it leaves.
func raiseFileLimit(t *testing.T, n uint64) uint64 {
	t.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if l.Cur >= n {
		return l.Cur
	}
	l.Cur = min(n, l.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	return l.Cur
}
