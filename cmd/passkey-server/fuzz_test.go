package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/tenant"
)

// The fuzz targets post arbitrary bodies to the public ceremony routes of a real instance on SQLite.
// Whatever the body, the answer must be a 200 or a 4xx with a JSON error body that has a code: never a
// 5xx (a panic is recovered into one, so it is caught too).
//
// Their seeds are real finalize bodies that the software authenticator made for live initialize calls,
// and variants of them. The instance keeps sessions in replaySessions, so a mutated body that keeps a
// seed's challenge gets past the session lookup into verification (client data, authenticator data,
// attestation, signature, counter) instead of stopping at session_not_found. Sessions and credentials
// are made anew in every run, so a failing input saved under testdata/fuzz reproduces a failure in
// body parsing at any time, but one that needs a seed's session only in the run that found it: its
// test log holds the input and the server log.

// checkAnswer fails t unless the answer to body is a 200 with a token or options, or a 4xx with a JSON
// error body whose details leak nothing internal (database errors, the wrapping of store errors), and
// unless the answer matches openapi.yaml.
func checkAnswer(t *testing.T, r *rp, body []byte, req *http.Request, resp *http.Response) {
	t.Helper()
	answer := readAll(t, resp)
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	switch status := resp.StatusCode; {
	case status == 200:
		var ok struct {
			Token     string          `json:"token"`
			PublicKey json.RawMessage `json:"publicKey"`
		}
		if err := json.Unmarshal(answer, &ok); err != nil || (ok.Token == "" && len(ok.PublicKey) == 0) {
			t.Fatalf("status 200 without a token or options: %s\nbody: %q", answer, body)
		}
	case status >= 400 && status < 500:
		var e httpapi.ErrorBody
		if err := json.Unmarshal(answer, &e); err != nil || e.Code == "" || e.Status != status || e.Title == "" {
			t.Fatalf("status %d with a malformed error body: %s\nbody: %q", status, answer, body)
		}
		details := strings.ToLower(e.Details)
		for _, internal := range []string{r.id, "sql", "bun:", "redis"} {
			if strings.Contains(details, internal) {
				t.Fatalf("status %d whose details leak %q: %s\nbody: %q", status, internal, answer, body)
			}
		}
	default:
		t.Fatalf("status %d: %s\nbody: %q\nserver log:\n%s", status, answer, body, r.s.logs)
	}
	checkSpec(t, req, resp)
}

// replaySessions is a session store whose sessions can be consumed any number of times until they
// expire. It breaks the once-only rule on purpose, for the fuzz targets only (see the comment at the top).
type replaySessions struct {
	mu       sync.Mutex
	sessions map[string]credentials.Session
}

func (r *replaySessions) key(tenantID uuid.UUID, c string, challenge string) string {
	return tenantID.String() + "/" + string(c) + "/" + challenge
}

// Put stores s.
func (r *replaySessions) Put(_ context.Context, s credentials.Session) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sessions == nil {
		r.sessions = map[string]credentials.Session{}
	}
	s.Data = bytes.Clone(s.Data)
	r.sessions[r.key(s.TenantID, s.Ceremony, s.Challenge)] = s
	return nil
}

// Consume returns a live session and keeps it.
func (r *replaySessions) Consume(_ context.Context, tenantID uuid.UUID, c string, challenge string) (credentials.Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sessions[r.key(tenantID, c, challenge)]
	if !ok || !time.Now().Before(s.ExpiresAt) {
		return credentials.Session{}, credentials.ErrSessionNotFound
	}
	s.Data = bytes.Clone(s.Data)
	return s, nil
}

// DeleteTenant deletes the tenant's sessions.
func (r *replaySessions) DeleteTenant(_ context.Context, tenantID uuid.UUID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, s := range r.sessions {
		if s.TenantID == tenantID {
			delete(r.sessions, k)
		}
	}
	return nil
}

// newFuzzRP builds an instance on SQLite with replayable sessions and a tenant whose sessions live ten
// minutes (the longest timeout), so a seed's session outlives a fuzzing run of a few minutes.
func newFuzzRP(f *testing.F) *rp {
	f.Helper()
	d := dbtest.SQLite(f)
	s := newTestServer(f, d, newTestSealer(f), func(o *testOptions) {
		o.Sessions = &replaySessions{}
	})
	r := newRP(f, s, "example.com")
	cfg := validConfig("example.com")
	cfg["webauthn"].(map[string]any)["timeout"] = tenant.MaxTimeout
	expectStatus(f, s.adminCall("PUT", "/tenants/"+r.id+"/config", cfg), 204, "")
	return r
}

// Members of a response JSON that hold base64url (WebAuthn §5.1, RegistrationResponseJSON and
// AuthenticationResponseJSON).
var (
	base64Members         = []string{"id", "rawId"}
	base64ResponseMembers = []string{"clientDataJSON", "authenticatorData", "signature", "userHandle", "attestationObject", "publicKey"}
)

// editJSON decodes a response JSON object, lets edit change it and encodes it again.
func editJSON(tb testing.TB, body []byte, edit func(m, response map[string]any)) []byte {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		tb.Fatalf("%s: %v", body, err)
	}
	response, _ := m["response"].(map[string]any)
	edit(m, response)
	out, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// pad adds base64 padding to s.
func pad(s string) string { return s + strings.Repeat("=", (4-len(s)%4)%4) }

// addVariants adds body and the variants of it the fuzz targets start from: what real clients and
// libraries send (padding, extra members, null userHandle) and what broken ones do.
func addVariants(f *testing.F, body []byte) {
	f.Helper()
	variants := [][]byte{
		body,
		editJSON(f, body, func(m, r map[string]any) {
			for _, k := range base64Members {
				if s, ok := m[k].(string); ok {
					m[k] = pad(s)
				}
			}
			for _, k := range base64ResponseMembers {
				if s, ok := r[k].(string); ok {
					r[k] = pad(s)
				}
			}
		}),
		editJSON(f, body, func(m, _ map[string]any) { delete(m, "rawId") }),
		editJSON(f, body, func(m, _ map[string]any) { delete(m, "id") }),
		editJSON(f, body, func(_, r map[string]any) { r["userHandle"] = nil }),
		editJSON(f, body, func(_, r map[string]any) { r["userHandle"] = "" }),
		editJSON(f, body, func(m, r map[string]any) {
			m["extra"] = map[string]any{"nested": []any{1, "two", nil}}
			r["extra"] = true
			m["clientExtensionResults"] = map[string]any{"credProps": map[string]any{"rk": true}, "unknown": 1}
		}),
		editJSON(f, body, func(m, _ map[string]any) { m["type"] = "password" }),
		editJSON(f, body, func(m, _ map[string]any) { m["response"] = []any{m["response"]} }),
		editJSON(f, body, func(_, r map[string]any) { r["clientDataJSON"] = []any{1, 2, 3} }),
		editJSON(f, body, func(_, r map[string]any) { delete(r, "clientDataJSON") }),
		editJSON(f, body, func(m, _ map[string]any) { delete(m, "response") }),
		[]byte("[" + string(body) + "]"),
		[]byte("[" + string(body) + "," + string(body) + "]"),
		body[:len(body)/2],
	}
	for _, v := range variants {
		f.Add(v)
	}
}

// addJunk adds bodies that are not credential responses at all.
func addJunk(f *testing.F) {
	for _, s := range []string{"", " ", "{}", "[]", "null", "true", "0", `""`, "{", `{"id":null}`, `{"response":{}}`,
		`{"id":"","rawId":"","type":"public-key","response":{"clientDataJSON":"","authenticatorData":"","signature":""}}`,
		"\x00", "\xff\xfe"} {
		f.Add([]byte(s))
	}
}

func FuzzRegistrationFinalize(f *testing.F) {
	r := newFuzzRP(f)
	for i, o := range []authenticatortest.Options{
		{},
		{Algorithm: authenticatortest.EdDSA, Attestation: "packed", Attachment: authenticatortest.CrossPlatform},
		{BackupEligible: true, BackupState: true, ZeroCounter: true, SkipUserVerification: true},
	} {
		a := authenticatortest.New(o)
		options := func() []byte { return r.registrationOptions(fmt.Sprintf("fuzz-reg-%d-%s", i, uuid.NewString())) }
		body, err := a.Create(options(), testOrigin)
		if err != nil {
			f.Fatal(err)
		}
		addVariants(f, body)
		for _, tamper := range []authenticatortest.Tamper{
			{CorruptSignature: true},
			{Type: "webauthn.get"},
			{Origin: "http://evil.example"},
			{RPID: "evil.example.org"},
			{ClearFlags: authenticatortest.FlagUP},
			{ClearFlags: authenticatortest.FlagAT},
			{SetFlags: authenticatortest.FlagED},
		} {
			body, err := a.CreateWith(options(), testOrigin, tamper)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(body)
		}
	}
	addJunk(f)
	path := "/" + r.id + "/registration/finalize"
	f.Fuzz(func(t *testing.T, body []byte) {
		req, resp := send(t, r.s.public, "POST", path, body)
		checkAnswer(t, r, body, req, resp)
	})
}

func FuzzLoginFinalize(f *testing.F) {
	r := newFuzzRP(f)
	counting := authenticatortest.New(authenticatortest.Options{})
	synced := authenticatortest.New(authenticatortest.Options{Algorithm: authenticatortest.EdDSA, BackupEligible: true,
		BackupState: true, ZeroCounter: true})
	r.register(counting, "fuzz-user-0")
	r.register(synced, "fuzz-user-1")
	for _, c := range []struct {
		a      *authenticatortest.Authenticator
		userID string
	}{{counting, "fuzz-user-0"}, {counting, ""}, {synced, "fuzz-user-1"}, {synced, ""}} {
		body, err := c.a.Get(r.loginOptions(c.userID), testOrigin)
		if err != nil {
			f.Fatal(err)
		}
		addVariants(f, body)
		for _, tamper := range []authenticatortest.Tamper{
			{CorruptSignature: true},
			{Type: "webauthn.create"},
			{Origin: "http://evil.example"},
			{RPID: "evil.example.org"},
			{CrossOrigin: true},
			{ClearFlags: authenticatortest.FlagUP | authenticatortest.FlagUV},
			{SetFlags: authenticatortest.FlagAT | authenticatortest.FlagED},
			{UserHandle: []byte("fuzz-user-9")},
			{UserHandle: uuid.New().NodeID()},
			{UserHandle: []byte("a\x00b")},
			{UserHandle: []byte{0xff, 0xfe}},
		} {
			body, err := c.a.GetWith(r.loginOptions(c.userID), testOrigin, tamper)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(body)
		}
	}
	addJunk(f)
	path := "/" + r.id + "/login/finalize"
	f.Fuzz(func(t *testing.T, body []byte) {
		req, resp := send(t, r.s.public, "POST", path, body)
		checkAnswer(t, r, body, req, resp)
	})
}

func FuzzLoginInitialize(f *testing.F) {
	r := newFuzzRP(f)
	r.register(authenticatortest.New(authenticatortest.Options{}), "fuzz-user-0")
	for _, s := range []string{"", "{}", `{"user_id":"fuzz-user-0"}`, `{"user_id":"nobody"}`, `{"user_id":""}`,
		`{"user_id":null}`, `{"user_id":1}`, `{"user_id":["fuzz-user-0"]}`, `{"user_id":"fuzz-user-0","extra":{}}`,
		`{"user_id":"fuzz-user-0"} {}`, `{"user_id":"\ud800"}`, "[]", "null", "{",
		`{"user_id":"` + strings.Repeat("x", 300) + `"}`, "\xff"} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	path := "/" + r.id + "/login/initialize"
	f.Fuzz(func(t *testing.T, body []byte, withKey bool) {
		req, resp := send(t, r.s.public, "POST", path, body, r.keyHeaders(withKey)...)
		checkAnswer(t, r, body, req, resp)
	})
}
