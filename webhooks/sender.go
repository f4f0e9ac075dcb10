package webhooks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	passkey "github.com/passkey-server/passkey-server"
)

// Delivery policy defaults.
const (
	// DefaultTimeout bounds one attempt: connecting, sending and reading the answer.
	DefaultTimeout = 10 * time.Second
	// ResponseLimit is the most of an answer's body that is read (so that the connection can be
	// reused); it is not kept.
	ResponseLimit = 1024
	// maxRetryAfter caps how long a Retry-After may hold a delivery back.
	maxRetryAfter = 24 * time.Hour
	// lastErrorLimit bounds the error text stored with a delivery.
	lastErrorLimit = 512
)

// DefaultSchedule is the wait before each attempt: the first at once, then retries with growing
// waits over about three days (Svix's schedule). Each wait but the first is jittered by ±10 %, so
// that the retries of a burst of failures do not arrive together.
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}

// Outcome is what the queue does with a delivery after an attempt.
type Outcome int

const (
	// Done: the delivery is finished (delivered, or given up); its job completes.
	Done Outcome = iota
	// Retry: try again after Result.Delay.
	Retry
)

// Result is the outcome of Sender.Attempt.
type Result struct {
	Outcome Outcome
	Delay   time.Duration
}

// Observer counts delivery attempts by outcome ("succeeded", "failed", "retry", "gone",
// "abandoned"); metrics.Metrics implements it.
type Observer interface {
	WebhookAttempt(outcome string)
}

// SenderOptions configure a Sender. Store and Sealer are required.
type SenderOptions struct {
	Store  Store
	Sealer Sealer
	// Events receives passkey.WebhookEndpointDisabled.
	Events passkey.Sink
	// Observer counts attempts; nil counts none.
	Observer Observer
	// AllowPrivate lets deliveries reach private, loopback and link-local addresses
	// (PASSKEY_WEBHOOK_ALLOW_PRIVATE).
	AllowPrivate bool
	// Timeout bounds one attempt (DefaultTimeout).
	Timeout time.Duration
	// Schedule is the wait before each attempt (DefaultSchedule); its length is the number of attempts.
	Schedule []time.Duration
	// TLS is the client's TLS configuration (tests trust their receiver's certificate); nil: the
	// system's roots.
	TLS    *tls.Config
	Now    func() time.Time
	Logger *slog.Logger
}

// Sender makes delivery attempts. It is what the queue's worker calls.
type Sender struct {
	o      SenderOptions
	client *http.Client
}

// NewSender returns a Sender.
func NewSender(o SenderOptions) *Sender {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if len(o.Schedule) == 0 {
		o.Schedule = DefaultSchedule
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	dialer := &net.Dialer{Timeout: o.Timeout, Control: dialControl(o.AllowPrivate)}
	transport := &http.Transport{
		// No proxy from the environment: the address guard must see the receiver's address.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       o.TLS,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   o.Timeout,
		// A redirect is an answer, not followed: following it would let a receiver send the
		// signed request, or make the service call, anywhere (an internal address included).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Sender{o: o, client: client}
}

// MaxAttempts returns how many attempts a delivery gets.
func (s *Sender) MaxAttempts() int { return len(s.o.Schedule) }

// Timeout returns the bound of one attempt.
func (s *Sender) Timeout() time.Duration { return s.o.Timeout }

// Attempt makes one attempt of a delivery and records it. A 2xx answer delivers it; a 410 disables
// the endpoint and gives up; any other answer or a network failure is retried on the schedule (no
// sooner than a 429 or 503's Retry-After) until the schedule runs out, when the delivery fails and
// the endpoint, unless it delivered something since, is disabled. A delivery whose endpoint was
// deleted or disabled is given up. An error means the attempt could not be made or recorded (the
// database failed); the queue tries again.
func (s *Sender) Attempt(ctx context.Context, tenantID, deliveryID uuid.UUID) (Result, error) {
	d, err := s.o.Store.GetDelivery(ctx, tenantID, deliveryID)
	if errors.Is(err, ErrDeliveryNotFound) {
		return Result{Outcome: Done}, nil // its tenant or endpoint was deleted
	}
	if err != nil {
		return Result{}, err
	}
	if d.Status != StatusPending {
		return Result{Outcome: Done}, nil
	}
	ep, err := s.o.Store.GetEndpoint(ctx, tenantID, d.EndpointID)
	if errors.Is(err, ErrNotFound) {
		return Result{Outcome: Done}, nil
	}
	if err != nil {
		return Result{}, err
	}
	now := s.o.Now()
	if !ep.Enabled {
		s.observe("abandoned")
		return Result{Outcome: Done}, s.record(ctx, d, Attempt{Status: StatusFailed, Attempts: d.Attempts, Error: "endpoint disabled", At: now})
	}
	signature, err := s.sign(ctx, ep, d, now)
	if err != nil {
		return Result{}, err
	}
	code, retryAfter, sendErr := s.send(ctx, ep.URL, d, now, signature)
	a := Attempt{Attempts: d.Attempts + 1, StatusCode: code, At: s.o.Now()}
	switch {
	case sendErr == nil && code >= 200 && code < 300:
		a.Status = StatusSucceeded
		s.observe("succeeded")
		return Result{Outcome: Done}, s.record(ctx, d, a)
	case sendErr == nil && code == http.StatusGone:
		a.Status, a.Error = StatusFailed, "410 Gone: endpoint disabled"
		s.observe("gone")
		if err := s.record(ctx, d, a); err != nil {
			return Result{}, err
		}
		return Result{Outcome: Done}, s.disable(ctx, ep, DisabledGone)
	}
	if sendErr != nil {
		a.Error = sendErr.Error()
	} else {
		a.Error = "HTTP " + strconv.Itoa(code)
	}
	if a.Attempts >= len(s.o.Schedule) {
		a.Status = StatusFailed
		s.observe("failed")
		if err := s.record(ctx, d, a); err != nil {
			return Result{}, err
		}
		return Result{Outcome: Done}, s.disableIfFailing(ctx, ep, d)
	}
	a.Status = StatusPending
	s.observe("retry")
	delay := jitter(s.o.Schedule[a.Attempts])
	if retryAfter > delay {
		delay = retryAfter
	}
	return Result{Outcome: Retry, Delay: delay}, s.record(ctx, d, a)
}

func (s *Sender) observe(outcome string) {
	if s.o.Observer != nil {
		s.o.Observer.WebhookAttempt(outcome)
	}
}

func (s *Sender) record(ctx context.Context, d Delivery, a Attempt) error {
	if len(a.Error) > lastErrorLimit {
		a.Error = truncate(a.Error, lastErrorLimit)
	}
	if err := s.o.Store.RecordAttempt(ctx, d.TenantID, d.ID, a); err != nil {
		return fmt.Errorf("record webhook attempt: %w", err)
	}
	return nil
}

// disableIfFailing disables an endpoint whose delivery failed every attempt, unless a delivery to it
// succeeded since that one was made: an endpoint that has failed for days, not one message it refuses.
func (s *Sender) disableIfFailing(ctx context.Context, ep Endpoint, d Delivery) error {
	ok, err := s.o.Store.SucceededSince(ctx, ep.TenantID, ep.ID, d.CreatedAt)
	if err != nil || ok {
		return err
	}
	return s.disable(ctx, ep, DisabledFailing)
}

func (s *Sender) disable(ctx context.Context, ep Endpoint, reason string) error {
	changed, err := s.o.Store.DisableEndpoint(ctx, ep.TenantID, ep.ID, reason)
	if err != nil {
		return fmt.Errorf("disable webhook endpoint: %w", err)
	}
	if changed {
		s.o.Logger.Warn("webhooks: endpoint disabled", "tenant", ep.TenantID, "endpoint", ep.ID, "reason", reason)
		if s.o.Events != nil {
			s.o.Events.Emit(ctx, passkey.Event{Type: passkey.WebhookEndpointDisabled, TenantID: ep.TenantID,
				Details: map[string]string{"webhook_id": ep.ID.String(), "reason": reason}})
		}
	}
	return nil
}

// sign returns the webhook-signature header: one v1 signature per secret in use (two during a
// rotation's overlap).
func (s *Sender) sign(ctx context.Context, ep Endpoint, d Delivery, at time.Time) (string, error) {
	secrets, err := s.o.Store.EndpointSecrets(ctx, ep.TenantID, ep.ID)
	if err != nil {
		return "", err
	}
	keys := [][]byte{secrets.Current}
	if secrets.Previous != nil && at.Before(secrets.PreviousUntil) {
		keys = append(keys, secrets.Previous)
	}
	sigs := make([]string, 0, len(keys))
	for _, sealed := range keys {
		key, err := s.o.Sealer.Open(sealed, secretAD(ep.ID))
		if err != nil {
			return "", fmt.Errorf("open webhook secret: %w", err)
		}
		wh, err := standardwebhooks.NewWebhookRaw(key)
		if err != nil {
			return "", err
		}
		sig, err := wh.Sign(messageID(d.ID), at, d.Payload)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// messageID is a delivery's webhook-id: the same for every attempt and redelivery, so receivers can
// drop repeats.
func messageID(id uuid.UUID) string { return "msg_" + id.String() }

// send posts a delivery. It returns the status code, the Retry-After of a 429 or 503, or why no
// answer came.
func (s *Sender) send(ctx context.Context, url string, d Delivery, at time.Time, signature string) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(d.Payload)))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "passkey-server-webhooks/1")
	req.Header.Set(standardwebhooks.HeaderWebhookID, messageID(d.ID))
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, signature)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, 0, describeSendError(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, ResponseLimit))
	var retryAfter time.Duration
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), s.o.Now())
	}
	return resp.StatusCode, retryAfter, nil
}

// describeSendError says why an attempt got no answer, without the URL (it is the admin's own, but
// errors are shorter without it).
func describeSendError(err error) error {
	switch {
	case errors.Is(err, ErrBlockedAddress):
		return ErrBlockedAddress
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return errors.New("timeout")
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap()
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date, capped at maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		d = time.Duration(secs) * time.Second
		if secs > int64(maxRetryAfter/time.Second) {
			d = maxRetryAfter
		}
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, maxRetryAfter))
}

// jitter returns d ±10 %.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// dialControl refuses connections to addresses deliveries may not reach. It runs on the resolved
// address of each connection, so a name that resolves to a private address (DNS rebinding included)
// is refused as surely as a literal one.
func dialControl(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || Blocked(ip) {
			return ErrBlockedAddress
		}
		return nil
	}
}

// specialPurpose are the blocks of the IANA special-purpose registries that are not public unicast
// and that the netip predicates do not name: shared address space (RFC 6598), IETF protocol
// assignments (192.0.0.0/24, where some clouds put metadata services), benchmarking, reserved
// (240/4, with the limited broadcast), "this network", documentation ranges and the deprecated IPv6
// site-local block.
var specialPurpose = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("fec0::/10"),
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64 (RFC 8215): where the IPv4 sits is the network's choice
}

// Translation prefixes embed an IPv4 address that a gateway reaches on the sender's behalf: the
// well-known NAT64 prefix (RFC 6052) in the low 32 bits, 6to4 (RFC 3056) in bits 16-47. The embedded
// address is checked as well.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Blocked reports whether ip is an address deliveries may not reach unless private addresses are
// allowed: anything but public unicast — loopback, private (RFC 1918, RFC 4193), link-local (cloud
// metadata services live there), unspecified, multicast, the special-purpose blocks above — and IPv6
// addresses that embed such an IPv4 address for a NAT64 or 6to4 gateway.
func Blocked(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return true
	}
	for _, p := range specialPurpose {
		if p.Contains(ip) {
			return true
		}
	}
	b := ip.As16()
	if nat64.Contains(ip) {
		return Blocked(netip.AddrFrom4([4]byte(b[12:16])))
	}
	if sixToFour.Contains(ip) {
		return Blocked(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return false
}

// secretAD is the additional data that binds a sealed secret to its endpoint: a sealed secret copied
// to another endpoint's row does not open.
func secretAD(endpointID uuid.UUID) []byte { return []byte("webhook-secret:" + endpointID.String()) }

// truncate cuts s to at most n bytes at a character boundary and makes it valid UTF-8.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return strings.ReplaceAll(s, "\x00", "")
}
