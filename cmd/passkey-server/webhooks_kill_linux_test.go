//go:build linux

package main

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to read River's jobs

	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/webhooks"
)

// Settings of the server processes of TestWebhooksSurviveKill: a short attempt timeout, so that the
// job timeout (it + db.WebhookRecordMargin = 17 s) and the rescue threshold above it stay short.
const (
	killAttemptTimeout = 2 * time.Second
	killRescueAfter    = 18 * time.Second
)

// serverChild is a passkey-server process: the test binary itself, made the server by serveChildEnv
// (TestMain), on free loopback ports.
type serverChild struct {
	*faultProcess
	admin string // base URL of its admin API
}

// startServerChild starts a server process with env (PASSKEY_* variables) and waits until it is
// ready. It is stopped with SIGTERM when the test ends, unless the test killed it first.
func startServerChild(t *testing.T, name string, env []string) *serverChild {
	t.Helper()
	admin := "http://" + freeAddr(t)
	client := &http.Client{Timeout: time.Second}
	p := &faultProcess{t: t, name: name, stopSignal: syscall.SIGTERM, out: &lockedBuffer{},
		// -test.run matches nothing: without serveChildEnv the child would run no test, not all of them.
		argv: []string{os.Args[0], "-test.run=^$"},
		env: append(append([]string{}, env...), serveChildEnv+"=1",
			"PASSKEY_PUBLIC_ADDRESS="+freeAddr(t), "PASSKEY_ADMIN_ADDRESS="+strings.TrimPrefix(admin, "http://")),
		ready: func() bool {
			resp, err := client.Get(admin + "/health/ready")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		}}
	p.start()
	t.Cleanup(p.stop)
	return &serverChild{faultProcess: p, admin: admin}
}

// kill sends SIGKILL to the process, by its PID, and waits until it has exited.
func (c *serverChild) kill() {
	c.t.Helper()
	c.signalAll(syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s still runs 10 s after SIGKILL", c.name)
	}
}

// TestWebhooksSurviveKill: a server process SIGKILLed between a change and its webhooks' delivery
// delivers them once restarted, from the new process, signed and with the same webhook-id: one whose
// attempt was under way (its River job stays running: the rescue threshold passes and the new leader
// schedules it again), and one whose first attempt failed (its retry is waiting for its time).
func TestWebhooksSurviveKill(t *testing.T) {
	dbURL := dbtest.PostgresURL(t)
	const token = "kill-test-admin-token-0123456789"
	env := []string{
		"PASSKEY_DATABASE_URL=" + dbURL,
		"PASSKEY_REDIS_URL=", // the in-process session store: one process at a time
		"PASSKEY_MASTER_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)),
		"PASSKEY_ADMIN_TOKENS=" + token,
		"PASSKEY_DATA_DIR=" + t.TempDir(),
		"PASSKEY_WEBHOOK_ALLOW_PRIVATE=true",
		"PASSKEY_WEBHOOK_ALLOW_HTTP=true",
		"PASSKEY_WEBHOOK_TIMEOUT=" + killAttemptTimeout.String(),
		"PASSKEY_WEBHOOK_RESCUE_AFTER=" + killRescueAfter.String(),
		"PASSKEY_SHUTDOWN_DRAIN=0",
		"PASSKEY_LOG_LEVEL=warn",
	}
	first := startServerChild(t, "first passkey-server", env)

	jobs, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = jobs.Close() })
	// job returns the state of the River job of the endpoint's one delivery ("" before it exists) and
	// the attempts recorded of the delivery.
	job := func(endpointID string) (state string, attempts int) {
		t.Helper()
		err := jobs.QueryRow(`SELECT j.state, d.attempts FROM river_job j JOIN webhook_deliveries d ON d.id = (j.args->>'delivery_id')::uuid
			WHERE d.endpoint_id = $1`, endpointID).Scan(&state, &attempts)
		if err != nil && err != sql.ErrNoRows {
			t.Fatalf("read the delivery's job: %v", err)
		}
		return state, attempts
	}

	admin := func(s *serverChild, method, path string, body any, want int) []byte {
		t.Helper()
		raw, _ := json.Marshal(body)
		if body == nil {
			raw = nil
		}
		st, resp := httpDo(t, method, s.admin+path, token, string(raw))
		if st != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, st, resp, want)
		}
		return []byte(resp)
	}
	var tenant struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(admin(first, "POST", "/tenants", json.RawMessage(tenantBody), 201), &tenant); err != nil || tenant.ID == "" {
		t.Fatalf("tenant %+v: %v", tenant, err)
	}
	// hanging holds its first request until the connection closes (the kill): the first process is
	// in the middle of that attempt when it dies. failing answers its first request 500: the delivery
	// waits for its retry (the schedule's 5 s) when the process dies.
	hanging := newReceiver(t, func(n int, _ http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-r.Context().Done()
		}
	})
	failing := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(500)
		}
	})
	endpoints := map[*receiver]httpapi.WebhookDTO{}
	for _, rc := range []*receiver{hanging, failing} {
		var ep httpapi.WebhookDTO
		body := map[string]any{"url": rc.srv.URL + "/hook", "events": []string{webhooks.APIKeyCreated}}
		if err := json.Unmarshal(admin(first, "POST", "/tenants/"+tenant.ID+"/webhooks", body, 201), &ep); err != nil || ep.Secret == "" {
			t.Fatalf("webhook %+v: %v", ep, err)
		}
		rc.mu.Lock()
		rc.secrets = []string{ep.Secret}
		rc.mu.Unlock()
		endpoints[rc] = ep
	}

	// The change: its deliveries are committed before the API answers.
	admin(first, "POST", "/tenants/"+tenant.ID+"/secrets/api", map[string]any{"name": "before the kill"}, 201)
	waitFor(t, "the hanging attempt and the failed one's retry", func() bool {
		// The failed attempt recorded, and its job snoozed until the retry's time (River keeps a job
		// due within 5 s available, a later one scheduled).
		state, attempts := job(endpoints[failing].ID.String())
		return hanging.hits.Load() == 1 && attempts == 1 && (state == "available" || state == "scheduled")
	})
	first.kill()
	if st, _ := job(endpoints[hanging].ID.String()); st != "running" {
		t.Fatalf("the job of the cut attempt is %q after the kill, want running (did the %s attempt time out first?)", st, killAttemptTimeout)
	}
	if hanging.hits.Load() != 1 || failing.hits.Load() != 1 {
		t.Fatalf("%d and %d requests before the restart, want 1 and 1", hanging.hits.Load(), failing.hits.Load())
	}

	// River's rescuer runs on the leader when it gains the lead, then every 30 s: start the second
	// process once the cut job is older than the rescue threshold (by the database's clock, which set
	// attempted_at), and so once the dead leader's lease (15 s) has run out, so that the first run
	// rescues it.
	eventually(t, killRescueAfter+15*time.Second, "the cut job to pass the rescue threshold", func() bool {
		var stuck bool
		err := jobs.QueryRow(`SELECT now() - j.attempted_at > $2 * interval '1 millisecond' FROM river_job j
			JOIN webhook_deliveries d ON d.id = (j.args->>'delivery_id')::uuid WHERE d.endpoint_id = $1 AND j.state = 'running'`,
			endpoints[hanging].ID.String(), killRescueAfter.Milliseconds()).Scan(&stuck)
		if err != nil {
			t.Fatalf("read the cut job: %v", err)
		}
		return stuck
	})
	if hanging.hits.Load() != 1 || failing.hits.Load() != 1 {
		t.Fatalf("%d and %d requests with no server running, want 1 and 1", hanging.hits.Load(), failing.hits.Load())
	}
	second := startServerChild(t, "second passkey-server", env)

	// Leadership at its start (the lease is out), then the rescue, River's scheduler (every 5 s) and
	// the fetch: a few seconds.
	eventually(t, 30*time.Second, "both deliveries from the second process", func() bool {
		return len(hanging.received()) >= 2 && len(failing.received()) >= 2
	})
	for _, rc := range []*receiver{hanging, failing} {
		name := map[*receiver]string{hanging: "cut attempt", failing: "pending retry"}[rc]
		var ds []httpapi.WebhookDeliveryDTO
		ep := endpoints[rc]
		if err := json.Unmarshal(admin(second, "GET", "/tenants/"+tenant.ID+"/webhooks/"+ep.ID.String()+"/deliveries", nil, 200), &ds); err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 || ds[0].Status != "succeeded" {
			t.Fatalf("%s: deliveries %+v, want one succeeded", name, ds)
		}
		// The receiver verified each request's signature with the endpoint's secret as it came.
		got := rc.received()
		if len(got) != 2 {
			t.Fatalf("%s: %d requests, want 2 (the first process's, then the second's)", name, len(got))
		}
		if got[0].ID == "" || got[1].ID != got[0].ID || got[1].ID != "msg_"+ds[0].ID.String() {
			t.Errorf("%s: webhook-id %q then %q, want msg_%s both times", name, got[0].ID, got[1].ID, ds[0].ID)
		}
		if p := got[1].Payload; p.Type != webhooks.APIKeyCreated || p.Data["tenant_id"] != tenant.ID {
			t.Errorf("%s: delivered %+v", name, p)
		}
		// The cut attempt was never recorded: the delivery shows the second process's one only.
		if want := map[*receiver]int{hanging: 1, failing: 2}[rc]; ds[0].Attempts != want {
			t.Errorf("%s: %d attempts recorded, want %d", name, ds[0].Attempts, want)
		}
	}
}
