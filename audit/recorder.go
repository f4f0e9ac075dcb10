package audit

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	passkey "github.com/passkey-server/passkey-server"
)

// Defaults of a Recorder.
const (
	// DefaultBufferSize is how many events may wait to be stored before new ones are dropped.
	DefaultBufferSize = 10000
	// DefaultBatchSize is the most events one INSERT stores.
	DefaultBatchSize = 200
	// DefaultFlushInterval is the longest an event waits in a partial batch.
	DefaultFlushInterval = 200 * time.Millisecond
	// DefaultShutdownTimeout bounds storing what is left when Run's context ends.
	DefaultShutdownTimeout = 5 * time.Second
)

// Limits on what an event stores, so that no header or value a client controls can make an insert
// fail or grow the table without bound.
const (
	maxUserAgent = 1024
	maxText      = 1024
	maxType      = 128
	maxDetail    = 4096
)

// Timing of the writes. A batch the store cannot take (passkey.ErrUnavailable: an outage) is kept and
// tried again, first after retryFirst, then after twice as long each time up to retryMost, until the
// store answers; while it fails, each attempt waits at most retryInsertTimeout.
const (
	insertTimeout      = 5 * time.Second
	retryInsertTimeout = time.Second
	retryFirst         = 250 * time.Millisecond
	retryMost          = 5 * time.Second
	warnEvery          = time.Second
)

// Option configures a Recorder.
type Option func(*Recorder)

// WithBufferSize sets how many events may wait to be stored (default DefaultBufferSize).
func WithBufferSize(n int) Option {
	return func(r *Recorder) {
		if n > 0 {
			r.bufferSize = n
		}
	}
}

// WithBatchSize sets the most events one INSERT stores (default DefaultBatchSize).
func WithBatchSize(n int) Option {
	return func(r *Recorder) {
		if n > 0 {
			r.batchSize = n
		}
	}
}

// WithFlushInterval sets the longest an event waits in a partial batch (default
// DefaultFlushInterval).
func WithFlushInterval(d time.Duration) Option {
	return func(r *Recorder) {
		if d > 0 {
			r.interval = d
		}
	}
}

// WithShutdownTimeout bounds storing what is left when Run's context ends (default
// DefaultShutdownTimeout).
func WithShutdownTimeout(d time.Duration) Option {
	return func(r *Recorder) {
		if d > 0 {
			r.shutdownTimeout = d
		}
	}
}

// WithClock sets the clock that stamps events and computes the retention cutoff (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(r *Recorder) {
		if now != nil {
			r.now = now
		}
	}
}

// item is one element of the queue: an event, or a flush marker (flushed is not nil) that Run closes
// once everything queued before it is stored.
type item struct {
	event   Event
	flushed chan struct{}
}

// Recorder stores audit events in the background. Record never blocks and never fails: events wait
// in a bounded buffer, and Run stores them in batches of one INSERT each, so a request pays for no
// database round trip or commit. When the buffer is full, events are dropped (and counted) rather
// than making requests wait: an audit log must not become a way to slow the service down.
//
// A nil *Recorder records nothing.
type Recorder struct {
	store           Store
	log             *slog.Logger
	now             func() time.Time
	bufferSize      int
	batchSize       int
	interval        time.Duration
	shutdownTimeout time.Duration
	queue           chan item

	dropped  atomic.Uint64
	failed   atomic.Uint64
	pending  atomic.Uint64
	lastWarn atomic.Int64
}

// NewRecorder returns a Recorder that stores events in store. Nothing is stored until Run runs.
func NewRecorder(store Store, log *slog.Logger, opts ...Option) *Recorder {
	if log == nil {
		log = slog.Default()
	}
	r := &Recorder{
		store:           store,
		log:             log,
		now:             time.Now,
		bufferSize:      DefaultBufferSize,
		batchSize:       DefaultBatchSize,
		interval:        DefaultFlushInterval,
		shutdownTimeout: DefaultShutdownTimeout,
	}
	for _, o := range opts {
		o(r)
	}
	r.queue = make(chan item, r.bufferSize)
	return r
}

// Record queues e to be stored. It gives e an ID and a CreatedAt when it has none, and copies every
// string (so callers may pass strings that point into Fiber's reused buffers), replacing invalid
// UTF-8, dropping NUL characters and bounding lengths, so that no value can make the insert fail. It
// never blocks: when the buffer is full, e is dropped, counted (Dropped) and a warning is logged at
// most once per second.
func (r *Recorder) Record(e Event) {
	if r == nil {
		return
	}
	e = r.prepare(e)
	select {
	case r.queue <- item{event: e}:
	default:
		r.drop()
	}
}

// Dropped returns how many events were dropped because the buffer was full.
func (r *Recorder) Dropped() uint64 {
	if r == nil {
		return 0
	}
	return r.dropped.Load()
}

// Failed returns how many events were lost because the store failed to insert them.
func (r *Recorder) Failed() uint64 {
	if r == nil {
		return 0
	}
	return r.failed.Load()
}

// Flush waits until every event recorded before the call has been written, or, when the store fails,
// kept to be written again (Pending counts those). It needs Run to be running; ctx bounds the wait. It is meant for tests and for
// callers that must see their events in queries at once.
func (r *Recorder) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	done := make(chan struct{})
	select {
	case r.queue <- item{flushed: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run stores queued events until ctx ends: a batch is written when it has the batch size (default
// 200) or when the flush interval (default 200 ms) has passed, whichever comes first. When the store
// fails (a database outage), the events are kept, in order, and written when it answers again: they
// wait in the queue and a retry buffer, both bounded by the buffer size, so an outage costs events only
// when it outlasts that much traffic (counted by Dropped and Failed). When ctx ends, Run writes what is
// still queued or waiting, for at most the shutdown timeout (default 5 s), and returns. Stop the HTTP
// servers before ending ctx, so that no request records an event after Run has returned.
func (r *Recorder) Run(ctx context.Context) {
	if r == nil {
		return
	}
	ticker := time.NewTicker(r.interval)
	defer ticker.Stop()
	w := &writer{r: r, base: context.WithoutCancel(ctx), backoff: retryFirst}
	batch := make([]Event, 0, r.batchSize)
	write := func(force bool) {
		w.write(batch, force)
		clear(batch) // drop references to the events' strings and maps
		batch = batch[:0]
	}
	handle := func(it item) {
		if it.flushed != nil {
			write(true)
			close(it.flushed)
			return
		}
		batch = append(batch, it.event)
		if len(batch) >= r.batchSize {
			write(false)
		}
	}
	for {
		select {
		case it := <-r.queue:
			handle(it)
		case <-ticker.C:
			write(false)
		case <-ctx.Done():
			w.deadline = time.Now().Add(r.shutdownTimeout)
			for {
				if time.Now().After(w.deadline) {
					if n := len(batch) + len(r.queue) + len(w.waiting); n > 0 {
						r.failed.Add(uint64(n))
						r.log.Error("audit: shutdown timeout, events not stored", "events", n)
					}
					return
				}
				select {
				case it := <-r.queue:
					handle(it)
				default:
					write(true)
					if len(w.waiting) == 0 {
						return
					}
					time.Sleep(min(w.backoff, time.Until(w.deadline)))
				}
			}
		}
	}
}

// Pending returns how many events wait to be written again after a store failure.
func (r *Recorder) Pending() uint64 {
	if r == nil {
		return 0
	}
	return r.pending.Load()
}

// writer writes batches for Run and keeps, in order, the events the store refused.
type writer struct {
	r        *Recorder
	base     context.Context
	deadline time.Time // zero while running; set at shutdown
	waiting  []Event   // refused events, oldest first, at most the buffer size
	retryAt  time.Time
	backoff  time.Duration
}

// write stores what waits from earlier failures and then batch. While the store is failing, batch
// joins the waiting events without an attempt until the next retry is due, or force (a Flush, the
// shutdown) asks for one now.
func (w *writer) write(batch []Event, force bool) {
	w.waiting = append(w.waiting, batch...)
	if over := len(w.waiting) - w.r.bufferSize; over > 0 {
		// The outage outlasted the buffer: the oldest events go, counted.
		w.r.failed.Add(uint64(over))
		w.r.warn("audit: store unavailable too long, oldest events dropped", "events", over)
		clear(w.waiting[:over])
		w.waiting = w.waiting[over:]
	}
	defer func() { w.r.pending.Store(uint64(len(w.waiting))) }()
	if len(w.waiting) == 0 || !force && time.Now().Before(w.retryAt) {
		return
	}
	for len(w.waiting) > 0 {
		n := min(len(w.waiting), w.r.batchSize)
		err := w.insert(w.waiting[:n])
		switch {
		case err == nil:
		case errors.Is(err, passkey.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded):
			w.retryAt = time.Now().Add(w.backoff)
			w.backoff = min(2*w.backoff, retryMost)
			w.r.warn("audit: store events failed; they are kept and written when the store answers", "error", err, "waiting", len(w.waiting))
			return
		default:
			// Not an outage: the store refuses these events and would refuse them again, so trying
			// them forever would hold up every later event. They are counted and logged.
			w.r.failed.Add(uint64(n))
			w.r.log.Error("audit: the store refused events", "error", err, "events", n)
		}
		clear(w.waiting[:n])
		w.waiting = w.waiting[n:]
	}
	w.waiting = nil // let the array go after an outage
	w.retryAt, w.backoff = time.Time{}, retryFirst
}

// insert runs one INSERT, bounded by insertTimeout and, at shutdown, by the deadline. It does not stop
// when Run's context ends: that is when the last batches are written.
func (w *writer) insert(events []Event) error {
	var (
		ctx    context.Context
		cancel context.CancelFunc
	)
	if w.deadline.IsZero() {
		timeout := insertTimeout
		if !w.retryAt.IsZero() {
			// The store is failing (it may be frozen): a short wait keeps Run taking events in.
			timeout = retryInsertTimeout
		}
		ctx, cancel = context.WithTimeout(w.base, timeout)
	} else {
		ctx, cancel = context.WithDeadline(w.base, w.deadline)
	}
	defer cancel()
	return w.r.store.Insert(ctx, events)
}

// RunRetention deletes events older than keep, once at the start and then every every (default one
// hour), until ctx ends. keep 0 (or below) keeps events forever and returns at once. Errors are
// logged; the next round tries again.
func (r *Recorder) RunRetention(ctx context.Context, keep, every time.Duration) {
	if r == nil || keep <= 0 {
		return
	}
	if every <= 0 {
		every = time.Hour
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		cutoff := r.now().Add(-keep)
		n, err := r.store.DeleteBefore(ctx, cutoff)
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.Error("audit: delete old events", "error", err, "before", cutoff)
		case n > 0:
			r.log.Info("audit: deleted old events", "events", n, "before", cutoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// drop counts a dropped event and warns at most once per warnEvery.
func (r *Recorder) drop() {
	n := r.dropped.Add(1)
	r.warn("audit: event buffer full, dropping events", "dropped_total", n, "buffer_size", r.bufferSize)
}

// warn logs a warning at most once per warnEvery, so that an outage is a few lines, not one a request.
func (r *Recorder) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := r.lastWarn.Load()
	if now-last >= int64(warnEvery) && r.lastWarn.CompareAndSwap(last, now) {
		r.log.Warn(msg, args...)
	}
}

// prepare gives e an ID and a time and makes a clean, independent copy of its values.
func (r *Recorder) prepare(e Event) Event {
	if e.ID == uuid.Nil {
		// Version 7: ids grow with time, so inserts append to the primary key's index.
		id, err := uuid.NewV7()
		if err != nil {
			id = uuid.New()
		}
		e.ID = id
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = r.now()
	}
	e.CreatedAt = e.CreatedAt.UTC()
	if e.TenantID != nil {
		id := *e.TenantID
		e.TenantID = &id
	}
	e.Type = clean(e.Type, maxType)
	e.Ceremony = clean(e.Ceremony, maxType)
	e.Error = clean(e.Error, maxText)
	e.RequestID = clean(e.RequestID, maxText)
	e.SourceIP = clean(e.SourceIP, maxText)
	e.UserAgent = clean(e.UserAgent, maxUserAgent)
	e.ActorUserID = clean(e.ActorUserID, maxText)
	e.TransactionID = clean(e.TransactionID, maxText)
	if e.Details != nil {
		e.Details = cleanValue(e.Details).(map[string]any)
	}
	return e
}

// clean returns a new copy of s, at most max bytes long (cut at a character boundary), with invalid
// UTF-8 replaced by U+FFFD and NUL characters left out: text every supported database stores (PostgreSQL
// rejects NUL in text and jsonb, and invalid UTF-8). The copy never shares memory with s.
func clean(s string, max int) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(min(len(s), max))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == 0 {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r) // writes U+FFFD for an invalid byte (r == utf8.RuneError)
	}
	return b.String()
}

// cleanValue deep-copies a details value, cleaning every string in it.
func cleanValue(v any) any {
	switch v := v.(type) {
	case string:
		return clean(v, maxDetail)
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[clean(k, maxType)] = cleanValue(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = cleanValue(x)
		}
		return s
	case []string:
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = clean(x, maxDetail)
		}
		return s
	case []byte:
		return clean(string(v), maxDetail)
	default:
		return v
	}
}
