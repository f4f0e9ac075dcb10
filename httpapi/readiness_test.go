package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// pinger answers at once, or (slow) not before its context ends, or (stuck, when non-nil) not before
// the channel is closed, whatever its context says; tests close it in t.Cleanup, so no goroutine leaks.
type pinger struct {
	slow  bool
	stuck chan struct{}
}

func (p pinger) Ping(ctx context.Context) error {
	switch {
	case p.stuck != nil:
		<-p.stuck // ignores its context
		return errors.New("released")
	case p.slow:
		<-ctx.Done()
		return ctx.Err()
	}
	return ctx.Err() // a probe given no time of its own fails too
}

// TestReadinessBlamesOnlyTheSlowDependency: each dependency is asked with its own deadline, so a slow
// one is reported alone, whichever is asked first; one that ignores its deadline does not hold the
// answer up either.
func TestReadinessBlamesOnlyTheSlowDependency(t *testing.T) {
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) }) // after the parallel subtests: releases the stuck pinger's goroutine
	for _, c := range []struct {
		name string
		deps map[string]Pinger
		want map[string]string
	}{
		{"redis slow", map[string]Pinger{"database": pinger{}, "redis": pinger{slow: true}}, map[string]string{"redis": "not answering"}},
		{"database slow", map[string]Pinger{"database": pinger{slow: true}, "redis": pinger{}}, map[string]string{"database": "not answering"}},
		{"redis stuck", map[string]Pinger{"database": pinger{}, "redis": pinger{stuck: stuck}}, map[string]string{"redis": "not answering"}},
		{"both slow", map[string]Pinger{"database": pinger{slow: true}, "redis": pinger{slow: true}},
			map[string]string{"database": "not answering", "redis": "not answering"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			app := fiber.New()
			app.Get("/ready", Readiness(c.deps))
			resp, err := app.Test(httptest.NewRequest("GET", "/ready", nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			var body struct {
				Ready  bool              `json:"ready"`
				Failed map[string]string `json:"failed"`
			}
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if resp.StatusCode != 503 || body.Ready || !reflect.DeepEqual(body.Failed, c.want) {
				t.Fatalf("got %d %s, want 503 failed %v", resp.StatusCode, b, c.want)
			}
		})
	}
	app := fiber.New()
	app.Get("/ready", Readiness(map[string]Pinger{"database": pinger{}, "redis": pinger{}}))
	if resp, err := app.Test(httptest.NewRequest("GET", "/ready", nil), -1); err != nil || resp.StatusCode != 200 {
		t.Fatalf("both answer: %v %v", resp, err)
	}
}

// TestReadinessWhileDraining: once the instance drains, /health/ready answers 503 with draining true,
// and every response asks its client to close the connection.
func TestReadinessWhileDraining(t *testing.T) {
	drain := &Drain{}
	app := NewAdmin(Services{}, Options{Drain: drain, Ready: map[string]Pinger{"database": pinger{}}})
	if resp, _ := app.Test(httptest.NewRequest("GET", "/health/ready", nil), -1); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("before draining: %d, close %v", resp.StatusCode, resp.Close)
	}
	drain.Start()
	resp, err := app.Test(httptest.NewRequest("GET", "/health/ready", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || string(b) != `{"draining":true,"failed":{},"ready":false}` || !resp.Close {
		t.Fatalf("while draining: %d %s, close %v", resp.StatusCode, b, resp.Close)
	}
	if resp, _ := app.Test(httptest.NewRequest("GET", "/health/alive", nil), -1); resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("alive while draining: %d, close %v", resp.StatusCode, resp.Close)
	}
}
