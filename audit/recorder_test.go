package audit_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/audit"
)

// countingStore is an audit.Store that keeps events in memory and counts Insert calls. It exists to
// observe how the Recorder batches; the database store has its own conformance suite in db/, and
// TestRecorderSQLite runs the Recorder against it.
type countingStore struct {
	mu      sync.Mutex
	events  []audit.Event
	batches []int
	// block, when not nil, makes Insert wait until it is closed or the insert's context ends.
	block chan struct{}
	// fail makes Insert fail as an outage does; refuse as a store that will never take the events.
	fail    bool
	refuse  bool
	cutoffs []time.Time
}

func (s *countingStore) Insert(ctx context.Context, events []audit.Event) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return passkey.WithDetails(passkey.ErrUnavailable, "database unavailable")
	}
	if s.refuse {
		return errors.New("value out of range")
	}
	s.events = append(s.events, events...) // copies the elements: the Recorder reuses its slice
	s.batches = append(s.batches, len(events))
	return nil
}

func (s *countingStore) List(context.Context, audit.Filter) ([]audit.Event, int, error) {
	return nil, 0, errors.New("not implemented")
}

func (s *countingStore) DeleteBefore(_ context.Context, t time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutoffs = append(s.cutoffs, t)
	return 0, nil
}

func (s *countingStore) snapshot() (events []audit.Event, batches []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]audit.Event(nil), s.events...), append([]int(nil), s.batches...)
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start runs rec until the test ends and returns a function that stops it and waits for Run to
// return.
func start(t *testing.T, rec *audit.Recorder) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		rec.Run(ctx)
		close(done)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// flush calls rec.Flush with a generous bound, so a broken Recorder fails the test instead of
// hanging it.
func flush(t *testing.T, rec *audit.Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rec.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func event(i int) audit.Event {
	return audit.Event{Type: "webauthn_credential_updated", RequestID: strings.Repeat("r", i%7)}
}

// TestRecorderBatches records many events and checks that they are stored in a few full batches.
func TestRecorderBatches(t *testing.T) {
	store := &countingStore{}
	// No timer flushes: batches are cut by size and by Flush only, so the count is exact.
	rec := audit.NewRecorder(store, discardLog(), audit.WithFlushInterval(time.Hour))
	for i := range 1000 {
		rec.Record(event(i))
	}
	start(t, rec)
	flush(t, rec)
	events, batches := store.snapshot()
	if len(events) != 1000 {
		t.Fatalf("stored %d events, want 1000", len(events))
	}
	want := []int{200, 200, 200, 200, 200}
	if len(batches) != len(want) {
		t.Fatalf("batches = %v, want %v", batches, want)
	}
	for i := range want {
		if batches[i] != want[i] {
			t.Fatalf("batches = %v, want %v", batches, want)
		}
	}
	seen := map[uuid.UUID]bool{}
	for i, e := range events {
		if e.ID == uuid.Nil || seen[e.ID] || e.CreatedAt.IsZero() {
			t.Fatalf("event %d has no unique id or no time: %+v", i, e)
		}
		seen[e.ID] = true
		if e.RequestID != event(i).RequestID {
			t.Fatalf("event %d out of order or changed: %+v", i, e)
		}
	}

	// A partial batch is stored by Flush in one insert.
	for i := range 7 {
		rec.Record(event(i))
	}
	flush(t, rec)
	if _, batches := store.snapshot(); len(batches) != 6 || batches[5] != 7 {
		t.Fatalf("batches after a partial flush = %v, want a sixth of 7", batches)
	}
}

// TestRecorderInterval checks that a partial batch is stored without Flush once the interval passes.
func TestRecorderInterval(t *testing.T) {
	store := &countingStore{}
	rec := audit.NewRecorder(store, discardLog(), audit.WithFlushInterval(5*time.Millisecond))
	start(t, rec)
	for i := range 3 {
		rec.Record(event(i))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if events, _ := store.snapshot(); len(events) == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a partial batch was never stored")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRecorderDropsWhenFull checks that Record never blocks: with the buffer full and the store
// stuck, events are dropped, counted and warned about once.
func TestRecorderDropsWhenFull(t *testing.T) {
	store := &countingStore{block: make(chan struct{})}
	logs := &logBuffer{}
	rec := audit.NewRecorder(store, slog.New(slog.NewTextHandler(logs, nil)),
		audit.WithBufferSize(10), audit.WithBatchSize(5), audit.WithFlushInterval(time.Hour))
	start(t, rec)

	done := make(chan struct{})
	go func() {
		for i := range 1000 {
			rec.Record(event(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Record blocked with the buffer full")
	}
	// At most: one batch held by the stuck insert, and a full buffer.
	if d := rec.Dropped(); d < 1000-5-10 || d > 1000 {
		t.Errorf("Dropped = %d, want between %d and 1000", d, 1000-15)
	}
	if n := strings.Count(logs.String(), "event buffer full"); n < 1 || n > 2 {
		t.Errorf("%d warnings about the full buffer, want one (at most one a second):\n%s", n, logs)
	}

	close(store.block)
	flush(t, rec)
	events, _ := store.snapshot()
	if uint64(len(events))+rec.Dropped() != 1000 {
		t.Errorf("stored %d + dropped %d, want 1000", len(events), rec.Dropped())
	}
}

// TestRecorderShutdown checks that ending Run's context stores what is still queued.
func TestRecorderShutdown(t *testing.T) {
	store := &countingStore{}
	rec := audit.NewRecorder(store, discardLog(), audit.WithFlushInterval(time.Hour))
	stop := start(t, rec)
	for i := range 450 {
		rec.Record(event(i))
	}
	stop()
	events, batches := store.snapshot()
	if len(events) != 450 {
		t.Fatalf("stored %d events at shutdown, want 450 (batches %v)", len(events), batches)
	}
}

// TestRecorderShutdownTimeout checks that a store that does not answer cannot hold shutdown beyond
// the shutdown timeout, and that the lost events are counted.
func TestRecorderShutdownTimeout(t *testing.T) {
	store := &countingStore{block: make(chan struct{})}
	defer close(store.block)
	rec := audit.NewRecorder(store, discardLog(), audit.WithFlushInterval(time.Hour),
		audit.WithShutdownTimeout(50*time.Millisecond))
	for i := range 30 {
		rec.Record(event(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() {
		rec.Run(ctx)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the shutdown timeout")
	}
	if rec.Failed() != 30 {
		t.Errorf("Failed = %d, want 30", rec.Failed())
	}
}

// TestRecorderStoreFailure checks that a failing store loses the batch, counts it and goes on.
// TestRecorderStoreFailure checks that events the store refuses are kept, in order, and written when
// it answers again: an outage loses nothing that fits the buffer.
func TestRecorderStoreFailure(t *testing.T) {
	store := &countingStore{fail: true}
	logs := &logBuffer{}
	rec := audit.NewRecorder(store, slog.New(slog.NewTextHandler(logs, nil)), audit.WithFlushInterval(time.Hour), audit.WithBatchSize(7))
	start(t, rec)
	for i := range 50 {
		rec.Record(numbered(i))
	}
	flush(t, rec)
	if rec.Failed() != 0 || rec.Pending() != 50 || !strings.Contains(logs.String(), "database unavailable") {
		t.Errorf("during the outage: Failed = %d, Pending = %d, log %q", rec.Failed(), rec.Pending(), logs)
	}
	store.mu.Lock()
	store.fail = false
	store.mu.Unlock()
	rec.Record(numbered(50))
	flush(t, rec)
	events, _ := store.snapshot()
	if len(events) != 51 || rec.Pending() != 0 || rec.Failed() != 0 {
		t.Fatalf("after the store recovered: %d stored, Pending %d, Failed %d; want 51, 0, 0", len(events), rec.Pending(), rec.Failed())
	}
	for i, e := range events {
		if e.ActorUserID != numbered(i).ActorUserID {
			t.Fatalf("event %d is %q: the order was not kept", i, e.ActorUserID)
		}
	}
}

// TestRecorderOutageLongerThanBuffer checks that an outage that outlasts the buffer costs events, all
// of them counted: stored + dropped + failed is everything recorded.
func TestRecorderOutageLongerThanBuffer(t *testing.T) {
	store := &countingStore{fail: true}
	rec := audit.NewRecorder(store, discardLog(), audit.WithBufferSize(10), audit.WithBatchSize(5), audit.WithFlushInterval(time.Hour))
	start(t, rec)
	for i := range 40 {
		rec.Record(numbered(i))
		if i%5 == 4 {
			flush(t, rec)
		}
	}
	store.mu.Lock()
	store.fail = false
	store.mu.Unlock()
	flush(t, rec)
	events, _ := store.snapshot()
	if got := uint64(len(events)) + rec.Dropped() + rec.Failed(); got != 40 || rec.Failed() == 0 || len(events) != 10 {
		t.Fatalf("stored %d + dropped %d + failed %d = %d; want 10 stored (the newest) and every event counted", len(events), rec.Dropped(), rec.Failed(), got)
	}
	if events[0].ActorUserID != numbered(30).ActorUserID {
		t.Errorf("the oldest kept event is %q, want the 31st", events[0].ActorUserID)
	}
}

// TestRecorderRefusedEvents checks that events the store refuses for good (not an outage) are
// counted and dropped, so they do not hold up the events after them.
func TestRecorderRefusedEvents(t *testing.T) {
	store := &countingStore{refuse: true}
	rec := audit.NewRecorder(store, discardLog(), audit.WithFlushInterval(time.Hour))
	start(t, rec)
	rec.Record(numbered(1))
	flush(t, rec)
	if rec.Failed() != 1 || rec.Pending() != 0 {
		t.Fatalf("Failed = %d, Pending = %d; want 1, 0", rec.Failed(), rec.Pending())
	}
	store.mu.Lock()
	store.refuse = false
	store.mu.Unlock()
	rec.Record(numbered(2))
	flush(t, rec)
	if events, _ := store.snapshot(); len(events) != 1 || events[0].ActorUserID != "2" {
		t.Fatalf("stored %+v, want only the event after the refused one", events)
	}
}

// numbered returns an event that says its number, to check order.
func numbered(i int) audit.Event {
	return audit.Event{Type: "webauthn_credential_updated", ActorUserID: strconv.Itoa(i)}
}

func TestRecorderFlushNeedsRun(t *testing.T) {
	rec := audit.NewRecorder(&countingStore{}, discardLog())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := rec.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush without Run = %v, want the context's error", err)
	}
}

func TestRecorderNil(t *testing.T) {
	var rec *audit.Recorder
	rec.Record(event(1))
	if err := rec.Flush(context.Background()); err != nil || rec.Dropped() != 0 {
		t.Errorf("nil Recorder: Flush = %v, Dropped = %d", err, rec.Dropped())
	}
}

// TestRecorderCleansValues checks that Record stores text every database accepts, bounded, and
// copies strings that point into memory the caller reuses (as Fiber's do).
func TestRecorderCleansValues(t *testing.T) {
	store := &countingStore{}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	rec := audit.NewRecorder(store, discardLog())
	start(t, rec)

	buf := []byte("reused-request-id")
	reused := unsafe.String(&buf[0], len(buf))
	tenantID := uuid.New()
	e := audit.Event{
		TenantID:    &tenantID,
		Type:        "webauthn_credential_updated",
		RequestID:   reused,
		UserAgent:   strings.Repeat("é", 600) + "tail", // 1,200 bytes
		ActorUserID: "ali\x00ce\xff",
		Details:     map[string]any{"name": "a\x00b", "list": []any{"x\xffy"}},
		CreatedAt:   at,
	}
	rec.Record(e)
	copy(buf, "XXXXXXXXXXXXXXXXX") // the caller reuses its buffer
	tenantID = uuid.Nil            // and its variables
	flush(t, rec)

	events, _ := store.snapshot()
	got := events[0]
	if got.RequestID != "reused-request-id" {
		t.Errorf("RequestID = %q: not copied", got.RequestID)
	}
	if got.TenantID == nil || *got.TenantID == uuid.Nil {
		t.Errorf("TenantID = %v: not copied", got.TenantID)
	}
	if len(got.UserAgent) > 1024 || !utf8.ValidString(got.UserAgent) || !strings.HasPrefix(got.UserAgent, "éé") {
		t.Errorf("UserAgent not cut to 1,024 bytes at a character boundary: %d bytes", len(got.UserAgent))
	}
	if got.ActorUserID != "alice\uFFFD" {
		t.Errorf("ActorUserID = %q, want NUL dropped and invalid UTF-8 replaced", got.ActorUserID)
	}
	if got.Details["name"] != "ab" || got.Details["list"].([]any)[0] != "x\uFFFDy" {
		t.Errorf("Details = %#v, want cleaned strings", got.Details)
	}
	if !got.CreatedAt.Equal(at) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v in UTC", got.CreatedAt, at)
	}
}

func TestRunRetention(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	store := &countingStore{}
	rec := audit.NewRecorder(store, discardLog(), audit.WithClock(func() time.Time { return now }))

	// keep 0 keeps everything: RunRetention returns at once and deletes nothing.
	rec.RunRetention(context.Background(), 0, time.Millisecond)
	if len(store.cutoffs) != 0 {
		t.Fatalf("keep 0 deleted events: %v", store.cutoffs)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		rec.RunRetention(ctx, 90*24*time.Hour, time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		store.mu.Lock()
		n := len(store.cutoffs)
		store.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("RunRetention did not run twice")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	store.mu.Lock()
	defer store.mu.Unlock()
	if want := now.Add(-90 * 24 * time.Hour); !store.cutoffs[0].Equal(want) {
		t.Errorf("cutoff = %v, want %v", store.cutoffs[0], want)
	}
}
