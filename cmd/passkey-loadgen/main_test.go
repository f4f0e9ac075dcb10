package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestOnlyLoopback(t *testing.T) {
	for _, c := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8000", true},
		{"http://127.8.9.10:8000", true},
		{"http://localhost:8000", true},
		{"https://LOCALHOST", true},
		{"http://[::1]:8001/", true},
		{"http://[::ffff:127.0.0.1]:8000", true},
		{"http://10.0.0.1:8000", false},
		{"http://0.0.0.0:8000", false},
		{"http://[::]:8000", false},
		{"http://example.com", false},
		{"http://localhost.example.com", false},
		{"http://127.0.0.1.nip.io", false},
		{"http://user:pw@127.0.0.1", false},
		{"ftp://127.0.0.1", false},
		{"127.0.0.1:8000", false},
		{"", false},
	} {
		if err := checkLoopbackURL(c.url); (err == nil) != c.ok {
			t.Errorf("checkLoopbackURL(%q) = %v, want ok %v", c.url, err, c.ok)
		}
	}
}

func TestFlags(t *testing.T) {
	good := []string{"-admin-token", "x"}
	if c, err := parseFlags(good, io.Discard); err != nil || c.users != 100 || c.concurrency != 8 || c.duration != 10*time.Second ||
		c.mode != modeUser || c.public != "http://127.0.0.1:8000" || c.admin != "http://127.0.0.1:8001" || c.json || c.mark != "" {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for _, mode := range []string{modeUser, modeDiscoverable, modeRegister} {
		if c, err := parseFlags([]string{"-admin-token", "x", "-mode", mode, "-json", "-mark", "/bin/true"}, io.Discard); err != nil ||
			c.mode != mode || !c.json || c.mark != "/bin/true" {
			t.Errorf("-mode %s -json -mark: %+v, %v", mode, c, err)
		}
	}
	for _, args := range [][]string{
		{},
		{"-admin-token", "x", "-public", "http://192.168.1.1:8000"},
		{"-admin-token", "x", "-admin", "http://example.com"},
		{"-admin-token", "x", "-duration", "121s"},
		{"-admin-token", "x", "-duration", "0s"},
		{"-admin-token", "x", "-users", "4", "-concurrency", "8"},
		{"-admin-token", "x", "-concurrency", "0"},
		{"-admin-token", "x", "-requests", "-1"},
		{"-admin-token", "x", "-mode", "mfa"},
		{"-admin-token", "x", "extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

// TestClientRefusesOtherHosts checks the client's own guard, which holds even when a name resolves
// elsewhere or a server redirects.
func TestClientRefusesOtherHosts(t *testing.T) {
	// A listener on a non-loopback address of this machine, if it has one.
	var addr string
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				addr = n.IP.String()
				break
			}
		}
	}
	if addr == "" {
		addr = "192.0.2.1" // TEST-NET-1: refused before any packet is sent
	}
	c := newHTTPClient(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+":9/", nil)
	_, err := c.Do(req)
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("request to %s: %v, want a refusal", addr, err)
	}
}

func TestPercentile(t *testing.T) {
	d := make([]time.Duration, 100)
	for i := range d {
		d[i] = time.Duration(i+1) * time.Millisecond
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.9: 90 * time.Millisecond,
		0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := percentile(d, q); got != want {
			t.Errorf("percentile(%v) = %v, want %v", q, got, want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing")
	}
}

// TestJSONSummary checks the fields scripts/loadtest.sh reads from -json.
func TestJSONSummary(t *testing.T) {
	var r results
	for i := 1; i <= 100; i++ {
		d := time.Duration(i) * time.Millisecond
		r.add(timing{initialize: d / 2, finalize: d / 2, ceremony: d}, nil)
	}
	r.add(timing{initialize: time.Millisecond}, &stepError{step: "finalize", status: 401, body: "{}"})
	r.add(timing{}, &stepError{step: "initialize", err: errors.New("connection refused")})
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(summarize(config{mode: modeRegister, concurrency: 4}, &r, 2*time.Second)); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%s: %v", buf.Bytes(), err)
	}
	for k, want := range map[string]any{"mode": "register", "concurrency": 4.0, "ceremonies": 100.0, "failed": 2.0,
		"elapsed_s": 2.0, "per_second": 50.0, "p50_ms": 50.0, "p90_ms": 90.0, "p99_ms": 99.0, "max_ms": 100.0} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v in %s", k, got[k], want, buf.Bytes())
		}
	}
	if e, _ := got["errors"].(map[string]any); e["finalize 401"] != 1.0 || e["initialize transport"] != 1.0 {
		t.Errorf("errors = %v", got["errors"])
	}
	if f, _ := got["finalize"].(map[string]any); f["n"] != 100.0 || f["p50_ms"] != 25.0 {
		t.Errorf("finalize = %v", got["finalize"])
	}
}

// TestMark checks that -mark runs the program with the phase and that its failure stops the run.
func TestMark(t *testing.T) {
	dir := t.TempDir()
	out := dir + "/phases"
	script := dir + "/mark.sh"
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$1\" >> "+out+"\n[ \"$1\" != fail ]\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, phase := range []string{"start", "end"} {
		if err := mark(ctx, script, phase, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	if err := mark(ctx, script, "fail", io.Discard); err == nil {
		t.Error("a failing -mark program was not reported")
	}
	if err := mark(ctx, "", "start", io.Discard); err != nil {
		t.Errorf("no -mark: %v", err)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "start\nend\nfail\n" {
		t.Errorf("phases %q, %v", b, err)
	}
}
