package attestation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// SourceOptions configure a Source. At least one of File and URL is needed for any metadata; a Source
// with neither holds none, and every attestation is judged without it.
type SourceOptions struct {
	// File is the path of a blob (air-gapped installs copy it there); URL is where to fetch one (the
	// FIDO Alliance's is https://mds3.fidoalliance.org/). With both, the blob with the higher number
	// of those that verify wins.
	File string
	URL  string
	// Root is the trust anchor of the blob's signing chain, base64 DER or PEM (ProductionRoot when
	// empty); tests configure their own.
	Root string
	// Client fetches URL (a client with a 30-second timeout when nil).
	Client *http.Client
	// MaxAge bounds the time between two refreshes of a current blob (default 24h): the FIDO Alliance
	// publishes at its nextUpdate, usually a month ahead, but may publish a revocation sooner.
	MaxAge time.Duration
	// RetryInterval is the wait after a failed refresh (default 1h).
	RetryInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
}

// maxBlobBytes bounds a blob read from a file or the network: the production blob is about 5 MB.
const maxBlobBytes = 64 << 20

// Source holds the current metadata and replaces it, whole, when a refresh finds a newer blob that
// verifies. A failed refresh keeps the previous blob. It is safe for concurrent use; requests read the
// current blob with one atomic load.
//
// Each instance refreshes on its own: the blob is public and signed, so any instance verifies it alike,
// and sharing the parsed result through the database would only move the trust to the database. Two
// instances may disagree for the time between their refreshes (at most MaxAge, usually minutes).
type Source struct {
	o       SourceOptions
	current atomic.Pointer[Metadata]

	mu     sync.Mutex // guards the refresh state below and serializes refreshes
	status RefreshStatus

	refreshes, failures atomic.Uint64
}

// RefreshStatus is the outcome of the latest refreshes, for readiness details and the admin API.
type RefreshStatus struct {
	// LastAttempt and LastSuccess are the times of the latest refresh and of the latest one that
	// loaded or confirmed a blob; zero when none happened.
	LastAttempt, LastSuccess time.Time
	// LastError is why the latest refresh failed, "" when it succeeded.
	LastError string
	// Failures counts the refreshes that failed in a row.
	Failures int
}

// NewSource returns a Source without metadata; call Refresh to load the first blob and Run to keep it
// fresh.
func NewSource(o SourceOptions) *Source {
	if o.Root == "" {
		o.Root = ProductionRoot
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Source{o: o}
}

// Configured reports whether the source has a file or URL to load from.
func (s *Source) Configured() bool { return s != nil && (s.o.File != "" || s.o.URL != "") }

// Current returns the metadata in use, or nil when none was ever loaded (and for a nil Source).
func (s *Source) Current() *Metadata {
	if s == nil {
		return nil
	}
	return s.current.Load()
}

// Status returns the outcome of the latest refreshes.
func (s *Source) Status() RefreshStatus {
	if s == nil {
		return RefreshStatus{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Refreshes counts the refreshes that succeeded since start, for metrics (0 for a nil Source).
func (s *Source) Refreshes() uint64 {
	if s == nil {
		return 0
	}
	return s.refreshes.Load()
}

// Failures counts the refreshes that failed since start (0 for a nil Source).
func (s *Source) Failures() uint64 {
	if s == nil {
		return 0
	}
	return s.failures.Load()
}

// Refresh loads the configured file and fetches the URL, verifies what they hold, and swaps in the
// blob with the highest number when it is at least as new as the one in use. It returns why no blob
// was taken; the blob in use then stays. A blob older than the one in use is refused: replaying an
// old blob would undo a revocation.
func (s *Source) Refresh(ctx context.Context) error {
	if !s.Configured() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Now()
	best, err := s.load(ctx, now)
	if err == nil {
		if cur := s.current.Load(); cur != nil && best.Number < cur.Number {
			err = fmt.Errorf("%w: number %d is older than the blob in use (%d)", ErrInvalidBlob, best.Number, cur.Number)
		} else if cur == nil || best.Number > cur.Number || best.NextUpdate.After(cur.NextUpdate) {
			s.current.Store(best)
			s.o.Logger.Info("FIDO metadata loaded", "number", best.Number, "next_update", best.NextUpdate.Format(time.DateOnly),
				"entries", best.Len(), "skipped_entries", best.Skipped, "origin", best.Origin)
		}
	}
	s.status.LastAttempt = now
	if err != nil {
		s.status.LastError = err.Error()
		s.status.Failures++
		s.failures.Add(1)
		s.o.Logger.Warn("FIDO metadata refresh failed; the previous blob stays in use", "error", err,
			"failures_in_a_row", s.status.Failures, "loaded", s.current.Load() != nil)
		return err
	}
	s.status.LastSuccess, s.status.LastError, s.status.Failures = now, "", 0
	s.refreshes.Add(1)
	return nil
}

// load reads every configured origin and returns the verified blob with the highest number, or the
// errors of all of them.
func (s *Source) load(ctx context.Context, now time.Time) (*Metadata, error) {
	var (
		best *Metadata
		errs []error
	)
	try := func(origin string, read func() ([]byte, error)) {
		blob, err := read()
		if err == nil {
			var m *Metadata
			if m, err = Parse(blob, s.o.Root, now); err == nil {
				m.Origin = origin
				if best == nil || m.Number > best.Number {
					best = m
				}
				return
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", origin, err))
	}
	if s.o.File != "" {
		try(s.o.File, func() ([]byte, error) { return readFile(s.o.File) })
	}
	if s.o.URL != "" {
		try(s.o.URL, func() ([]byte, error) { return s.fetch(ctx) })
	}
	if best == nil {
		return nil, errors.Join(errs...)
	}
	return best, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f)
}

func (s *Source) fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.o.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return readLimited(resp.Body)
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBlobBytes+1))
	if err == nil && len(b) > maxBlobBytes {
		err = fmt.Errorf("larger than %d bytes", maxBlobBytes)
	}
	return b, err
}

// NextRefresh is when Run refreshes next: after a failure (or with nothing loaded) RetryInterval after
// the attempt; else at the blob's nextUpdate, but no later than MaxAge after the last success.
func (s *Source) NextRefresh() time.Time {
	st := s.Status()
	cur := s.Current()
	if cur == nil || st.LastError != "" {
		return st.LastAttempt.Add(s.o.RetryInterval)
	}
	next := cur.NextUpdate
	if limit := st.LastSuccess.Add(s.o.MaxAge); limit.Before(next) {
		next = limit
	}
	return next
}

// Run refreshes the metadata in the background until ctx ends (see NextRefresh for when). It does not
// load the first blob: call Refresh at start, so that a bad file is reported before serving.
func (s *Source) Run(ctx context.Context) {
	if !s.Configured() {
		return
	}
	for {
		wait := max(s.NextRefresh().Sub(s.o.Now()), time.Second)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		_ = s.Refresh(ctx) // logged and kept in Status
	}
}
