package webhooks

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	passkey "github.com/passkey-server/passkey-server"
)

// The Standard Webhooks specification's test vector, signed the way Sender signs.
func TestSignatureSpecVector(t *testing.T) {
	wh, err := standardwebhooks.NewWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil || sig != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("signature %q, %v", sig, err)
	}
}

func TestBlocked(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1", "fe80::1",
		"fc00::1", "0.0.0.0", "100.64.0.1", "::ffff:127.0.0.1", "224.0.0.1", "255.255.255.255", "240.0.0.1",
		"192.0.0.192", "198.18.0.1", "0.1.2.3", "fec0::1", "64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b:1::a9fe:a9fe",
		"2002:a00:1::1", "2002:7f00:1::1"} {
		if !Blocked(netip.MustParseAddr(a)) {
			t.Errorf("%s not blocked", a)
		}
	}
	for _, a := range []string{"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8", "64:ff9b::808:808",
		"2002:808:808::1"} {
		if Blocked(netip.MustParseAddr(a)) {
			t.Errorf("%s blocked", a)
		}
	}
}

// The guard runs at connect time: a loopback receiver is refused without AllowPrivate, whatever
// name led there.
func TestDialGuard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	guarded := NewSender(SenderOptions{})
	for _, url := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		_, _, err := guarded.send(context.Background(), url, Delivery{Payload: []byte("{}")}, time.Now(), "v1,x")
		if !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("%s: %v, want ErrBlockedAddress", url, err)
		}
	}
	open := NewSender(SenderOptions{AllowPrivate: true})
	if code, _, err := open.send(context.Background(), srv.URL, Delivery{Payload: []byte("{}")}, time.Now(), "v1,x"); err != nil || code != 200 {
		t.Errorf("with AllowPrivate: %d, %v", code, err)
	}
}

func TestNoRedirectsAndResponseCap(t *testing.T) {
	hit := false
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
			return
		}
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	s := NewSender(SenderOptions{AllowPrivate: true})
	code, _, err := s.send(context.Background(), srv.URL, Delivery{Payload: []byte("{}")}, time.Now(), "v1,x")
	if err != nil || code != http.StatusTemporaryRedirect || hit {
		t.Errorf("redirect: %d, %v, followed %v", code, err, hit)
	}
	if code, _, err := s.send(context.Background(), srv.URL+"/big", Delivery{Payload: []byte("{}")}, time.Now(), "v1,x"); err != nil || code != 200 {
		t.Errorf("big answer: %d, %v", code, err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		"-5":                            0,
		"999999999":                     maxRetryAfter,
		"Thu, 01 Jan 2026 00:01:00 GMT": time.Minute,
		"soon":                          0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestTypeOf(t *testing.T) {
	tenant := uuid.New()
	for _, tc := range []struct {
		e    passkey.Event
		want string
	}{
		{passkey.Event{Type: passkey.CeremonySucceeded, Ceremony: "registration"}, PasskeyRegistered},
		{passkey.Event{Type: passkey.CeremonySucceeded, Ceremony: "mfa_registration"}, MFARegistered},
		{passkey.Event{Type: passkey.CeremonySucceeded, Ceremony: "mfa_login"}, MFASucceeded},
		{passkey.Event{Type: passkey.CeremonyFailed, Ceremony: "mfa_login"}, LoginFailed},
		{passkey.Event{Type: passkey.CeremonyFailed, Ceremony: "registration"}, ""},
		{passkey.Event{Type: passkey.CeremonyStarted, Ceremony: "login"}, ""},
		{passkey.Event{Type: passkey.CredentialCloneFlagged}, CredentialCloneWarning},
		{passkey.Event{Type: passkey.CredentialBackupStateChanged}, CredentialBackupStateChanged},
		{passkey.Event{Type: passkey.TenantCreated}, ""},
	} {
		if got := TypeOf(tc.e); got != tc.want {
			t.Errorf("TypeOf(%s %s) = %q, want %q", tc.e.Type, tc.e.Ceremony, got, tc.want)
		}
	}
	// The data of the events the integration test cannot cause.
	m, err := NewMessage(CredentialBackupStateChanged, passkey.Event{Type: passkey.CredentialBackupStateChanged, TenantID: tenant,
		AppUserID: "alice", CredentialID: "cred", Details: map[string]string{"backup_state": "true"}, At: time.Unix(1, 0)})
	if err != nil || string(m.Payload) != `{"type":"credential.backup_state_changed","timestamp":"1970-01-01T00:00:01Z","data":{"backup_state":true,"credential_id":"cred","tenant_id":"`+tenant.String()+`","user_id":"alice"}}` {
		t.Errorf("payload %s, %v", m.Payload, err)
	}
	m, _ = NewMessage(LoginFailed, passkey.Event{Type: passkey.CeremonyFailed, Ceremony: "login", TenantID: tenant,
		Err: errors.New("pq: connection refused at 10.0.0.5")})
	if strings.Contains(string(m.Payload), "10.0.0.5") || !strings.Contains(string(m.Payload), `"error_code":"internal_error"`) {
		t.Errorf("an internal error leaks: %s", m.Payload)
	}
}

// TestDeliveryCursor: a cursor reads back as it was written (to the microsecond the stores keep),
// as 32 URL-safe characters; anything else is refused.
func TestDeliveryCursor(t *testing.T) {
	id := uuid.MustParse("01936f3e-5b7a-7cc1-8a2b-0123456789ab")
	for _, at := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
	} {
		c := DeliveryCursor{CreatedAt: at, ID: id}
		s := c.String()
		got, err := ParseDeliveryCursor(s)
		if err != nil || !got.CreatedAt.Equal(at) || got.ID != id || len(s) != 32 || strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Errorf("%v: %q read back as %+v, %v", at, s, got, err)
		}
	}
	good := DeliveryCursor{CreatedAt: time.Now(), ID: id}.String()
	far := DeliveryCursor{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), ID: id}.String()
	for _, bad := range []string{"", "x", good[:31], good + "A", good[:31] + "=", good[:16] + "\n" + good[16:31],
		strings.ReplaceAll(good, good[:1], "+"), far} {
		if _, err := ParseDeliveryCursor(bad); err == nil {
			t.Errorf("ParseDeliveryCursor(%q) accepted", bad)
		}
	}
}

// FuzzParseDeliveryCursor: whatever a client sends as a cursor, a cursor it accepts is written back
// exactly as sent, so a cursor has one spelling.
func FuzzParseDeliveryCursor(f *testing.F) {
	f.Add(DeliveryCursor{CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), ID: uuid.New()}.String())
	f.Add("AAZh6azQQ2R1xu5I7sJOCrz_wFEbolxB")
	f.Add("////////////////////////////////")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseDeliveryCursor(s)
		if err != nil {
			return
		}
		if got := c.String(); got != s {
			t.Fatalf("ParseDeliveryCursor(%q) = %+v, written back as %q", s, c, got)
		}
		if y := c.CreatedAt.Year(); y < 1 || y > 9999 {
			t.Fatalf("ParseDeliveryCursor(%q) accepted the year %d", s, y)
		}
	})
}

// TestDeliveryFilterValidate: known statuses and page sizes up to DefaultDeliveryLimit pass; every
// problem is reported at once, as passkey.ErrInvalidRequest.
func TestDeliveryFilterValidate(t *testing.T) {
	for _, f := range []DeliveryFilter{{}, {Limit: -1}, {Limit: DefaultDeliveryLimit}, {Statuses: Statuses}} {
		if err := f.Validate(); err != nil {
			t.Errorf("%+v: %v", f, err)
		}
	}
	err := DeliveryFilter{Statuses: []Status{StatusFailed, "done", "\x00"}, Limit: DefaultDeliveryLimit + 1}.Validate()
	var v *passkey.ValidationError
	if !errors.Is(err, passkey.ErrInvalidRequest) || !errors.As(err, &v) || len(v.Problems) != 3 {
		t.Fatalf("Validate = %v, want three problems", err)
	}
	if !strings.Contains(v.Problems[0], `"done"`) || strings.Contains(v.Problems[1], "\x00") {
		t.Errorf("problems %q", v.Problems)
	}
}
