package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
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
	const clients, bound = 2000, 50 << 20
	raiseFileLimit(t, 2*clients+1000)
	s := newTestServer(t, dbtest.Postgres(t), newTestSealer(t))
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
	// Wait until the server holds every connection (bounded: they have seconds before ReadTimeout).
	for deadline := time.Now().Add(5 * time.Second); s.public.Server().GetOpenConnectionsCount() < clients; {
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %d of %d connections", s.public.Server().GetOpenConnectionsCount(), clients)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let every connection read what was sent
	after, heapAfter := residentBytes(t), goBytes()
	added := heapAfter - heapBefore
	t.Logf("%d slow clients: Go heap and stacks +%.1f MiB (%.1f KiB each); RSS %d → %d MiB (+%.1f MiB)", clients,
		float64(added)/(1<<20), float64(added)/1024/clients, before>>20, after>>20, float64(after-before)/(1<<20))
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

// residentBytes returns the process's resident set size (VmRSS) after a garbage collection.
func residentBytes(t *testing.T) int64 {
	t.Helper()
	runtime.GC()
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

// raiseFileLimit raises the soft limit of open files to at least n, up to the hard limit.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if l.Cur >= n {
		return
	}
	if l.Max < n {
		t.Fatalf("the hard limit of open files is %d; the test needs %d", l.Max, n)
	}
	l.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
}
