package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/mfa"
	"github.com/passkey-server/passkey-server/tenant"
)

const testOrigin = "https://example.com"

// rp is one tenant of a test server, seen by an application: its id, its secret key and its routes.
type rp struct {
	s      *testServer
	t      testing.TB
	id     string
	secret string
	// base is the route prefix: "/{tenant_id}" (Hanko's family) or "" with keyScoped set.
	keyScoped bool
}

func newRP(t testing.TB, s *testServer, rpID string) *rp {
	id, secret := s.createTenant(rpID)
	return &rp{s: s, t: t, id: id, secret: secret}
}

func (r *rp) path(hanko, keyed string) string {
	if r.keyScoped {
		return keyed
	}
	return "/" + r.id + hanko
}

// keyHeaders are the headers of a call to a public route: the secret key in the form the family uses
// when withKey is set or the route family needs it, else none.
func (r *rp) keyHeaders(withKey bool) []string {
	switch {
	case r.keyScoped:
		return []string{"Authorization", "Bearer " + r.secret}
	case withKey:
		return []string{"apiKey", r.secret}
	}
	return nil
}

// post calls a public route; withKey adds the secret key.
func (r *rp) post(path string, body any, withKey bool) *http.Response {
	r.t.Helper()
	return call(r.t, r.s.public, "POST", path, body, r.keyHeaders(withKey)...)
}

func (r *rp) get(path string) *http.Response {
	r.t.Helper()
	return call(r.t, r.s.public, "GET", path, nil, r.keyHeaders(true)...)
}

func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// registrationOptions starts a registration for userID and returns the options JSON.
func (r *rp) registrationOptions(userID string) []byte {
	r.t.Helper()
	resp := r.post(r.path("/registration/initialize", "/credentials/register/initialize"), map[string]any{"user_id": userID, "username": userID + "@example.com"}, true)
	expectStatus(r.t, resp, 200, "")
	return readAll(r.t, resp)
}

func (r *rp) registrationFinalize(body []byte) *http.Response {
	r.t.Helper()
	return r.post(r.path("/registration/finalize", "/credentials/register/finalize"), body, false)
}

// register runs a whole registration and returns the token and the credential id.
func (r *rp) register(a *authenticatortest.Authenticator, userID string) (string, string) {
	r.t.Helper()
	att, err := a.Create(r.registrationOptions(userID), testOrigin)
	if err != nil {
		r.t.Fatal(err)
	}
	resp := r.registrationFinalize(att)
	expectStatus(r.t, resp, 200, "")
	var cred struct{ ID string }
	_ = json.Unmarshal(att, &cred)
	return decode[httpapi.TokenResponse](r.t, resp).Token, cred.ID
}

// loginOptions starts a login: discoverable when userID is empty.
func (r *rp) loginOptions(userID string) []byte {
	r.t.Helper()
	var body any
	if userID != "" {
		body = map[string]any{"user_id": userID}
	}
	resp := r.post(r.path("/login/initialize", "/credentials/login/initialize"), body, userID != "")
	expectStatus(r.t, resp, 200, "")
	return readAll(r.t, resp)
}

func (r *rp) loginFinalize(body []byte) *http.Response {
	r.t.Helper()
	return r.post(r.path("/login/finalize", "/credentials/login/finalize"), body, false)
}

// login runs a whole login and returns the token.
func (r *rp) login(a *authenticatortest.Authenticator, userID string) string {
	r.t.Helper()
	assertion, err := a.Get(r.loginOptions(userID), testOrigin)
	if err != nil {
		r.t.Fatal(err)
	}
	resp := r.loginFinalize(assertion)
	expectStatus(r.t, resp, 200, "")
	return decode[httpapi.TokenResponse](r.t, resp).Token
}

// claims verifies a token against the tenant's JWKS and returns its claims.
func (r *rp) claims(token string) map[string]any {
	r.t.Helper()
	resp := call(r.t, r.s.public, "GET", "/"+r.id+"/.well-known/jwks.json", nil)
	set, err := jwk.Parse(readAll(r.t, resp))
	if err != nil {
		r.t.Fatal(err)
	}
	tok, err := jwt.Parse([]byte(token), jwt.WithKeySet(set), jwt.WithValidate(true))
	if err != nil {
		r.t.Fatalf("token does not verify: %v", err)
	}
	m, err := tok.AsMap(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

func (r *rp) credential(id string) httpapi.CredentialResponse {
	r.t.Helper()
	resp := r.get(r.path("/credentials/"+id, "/credentials/"+id))
	expectStatus(r.t, resp, 200, "")
	return decode[httpapi.CredentialResponse](r.t, resp)
}

// eachFamily runs f once with Hanko's routes and once with the key-scoped routes.
func eachFamily(t *testing.T, s *testServer, rpID string, f func(t *testing.T, r *rp)) {
	for _, keyed := range []bool{false, true} {
		name := "hanko"
		if keyed {
			name = "keyscoped"
		}
		t.Run(name, func(t *testing.T) {
			r := newRP(t, s, rpID)
			r.keyScoped = keyed
			f(t, r)
		})
	}
}

func TestPasskeyRegistrationAndLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		eachFamily(t, s, "example.com", func(t *testing.T, r *rp) {
			for _, o := range []authenticatortest.Options{
				{},
				{Algorithm: authenticatortest.EdDSA, Attestation: "packed"},
				{Attestation: "packed", BackupEligible: true, BackupState: true, ZeroCounter: true},
				{Algorithm: authenticatortest.EdDSA},
			} {
				t.Run(fmt.Sprintf("alg%d-%s-be%v", o.Algorithm, o.Attestation, o.BackupEligible), func(t *testing.T) {
					r.t = t
					a := authenticatortest.New(o)
					user := fmt.Sprintf("user-%d-%s-%v", o.Algorithm, o.Attestation, o.BackupEligible)
					token, credID := r.register(a, user)
					c := r.claims(token)
					if c["sub"] != user || c["cred"] != credID || c["ceremony"] != "registration" || c["iss"] != "http://localhost:8000/"+r.id || c["jti"] == "" {
						t.Fatalf("registration claims %v", c)
					}
					if aud, _ := c["aud"].([]string); len(aud) != 1 || aud[0] != "example.com" {
						t.Fatalf("aud %v", c["aud"])
					}
					exp, iat := c["exp"].(time.Time), c["iat"].(time.Time)
					if exp.Sub(iat) != 300*time.Second {
						t.Fatalf("token lifetime %v", exp.Sub(iat))
					}

					// Usernameless login, then login naming the user.
					c = r.claims(r.login(a, ""))
					if c["sub"] != user || c["cred"] != credID || c["ceremony"] != "login" {
						t.Fatalf("login claims %v", c)
					}
					wantAMR := "hwk"
					if o.BackupEligible {
						wantAMR = "swk"
					}
					if amr, _ := c["amr"].([]any); len(amr) != 2 || amr[0] != wantAMR || amr[1] != "user" {
						t.Fatalf("amr %v", c["amr"])
					}
					options := r.loginOptions(user)
					var opts struct {
						PublicKey struct {
							AllowCredentials []struct {
								ID         string   `json:"id"`
								Transports []string `json:"transports"`
							} `json:"allowCredentials"`
						} `json:"publicKey"`
					}
					if err := json.Unmarshal(options, &opts); err != nil || len(opts.PublicKey.AllowCredentials) != 1 ||
						opts.PublicKey.AllowCredentials[0].ID != credID || len(opts.PublicKey.AllowCredentials[0].Transports) == 0 {
						t.Fatalf("allowCredentials: %s", options)
					}
					assertion, err := a.Get(options, testOrigin)
					if err != nil {
						t.Fatal(err)
					}
					expectStatus(t, r.loginFinalize(assertion), 200, "")

					cred := r.credential(credID)
					if cred.UserID != user || cred.IsMFA || len(cred.Transports) == 0 || cred.LastUsedAt == nil || !cred.UserVerified ||
						cred.BackupEligible != o.BackupEligible || cred.AttestationType != map[string]string{"": "none", "none": "none", "packed": "packed"}[o.Attestation] {
						t.Fatalf("credential %+v", cred)
					}
					stored, err := s.ceremonies.Get(context.Background(), mustSnapshot(t, s, r.id), credID)
					if err != nil {
						t.Fatal(err)
					}
					if wantCount := uint32(2); !o.ZeroCounter && stored.SignCount != wantCount {
						t.Fatalf("sign count %d, want %d", stored.SignCount, wantCount)
					}
				})
			}
		})
	})
}

func mustSnapshot(t *testing.T, s *testServer, id string) *tenant.Snapshot {
	t.Helper()
	snap, err := s.svc.directory.Resolve(context.Background(), uuidOf(t, id))
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestRegistrationRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		a := authenticatortest.New(authenticatortest.Options{})
		_, credID := r.register(a, "alice")

		// The next registration of the same user excludes the existing credential, so the same
		// authenticator refuses (as a browser does) while another one may add a second passkey.
		options := r.registrationOptions("alice")
		if !strings.Contains(string(options), credID) {
			t.Fatalf("excludeCredentials lacks %s: %s", credID, options)
		}
		if _, err := a.Create(options, testOrigin); err != authenticatortest.ErrExcluded {
			t.Fatalf("same authenticator: %v, want ErrExcluded", err)
		}
		second, err := authenticatortest.New(authenticatortest.Options{Attachment: authenticatortest.CrossPlatform}).Create(options, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		// Padded base64url, in the id too, is accepted.
		expectStatus(t, r.registrationFinalize(padBase64(t, second)), 200, "")

		// An attestation that does not verify is attestation_failed
		// (docs/hanko-compatibility.md#error-titles: "failed to validate attestation"); a user deleted
		// between initialize and finalize is user_not_found: the delete leaves the session in Redis,
		// and the finalize finds no user by the session's internal key.
		for _, tamper := range []authenticatortest.Tamper{
			{Origin: "https://evil.example.org"},
			{Type: "webauthn.get"},
		} {
			bad, err := authenticatortest.New(authenticatortest.Options{}).CreateWith(r.registrationOptions("mallory"), testOrigin, tamper)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.registrationFinalize(bad), 400, "attestation_failed")
		}
		gone, err := authenticatortest.New(authenticatortest.Options{}).Create(r.registrationOptions("gone"), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, s.adminCall("DELETE", "/tenants/"+r.id+"/users/gone", nil), 204, "")
		expectStatus(t, r.registrationFinalize(gone), 404, "user_not_found")
		// The same when the user is deleted in the database alone.
		late, err := authenticatortest.New(authenticatortest.Options{}).Create(r.registrationOptions("late"), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		store := db.NewCredentialStore(s.db)
		lateUser, err := store.UserByAppID(t.Context(), uuid.MustParse(r.id), "late")
		if err != nil {
			t.Fatal(err)
		}
		if err := store.DeleteUser(t.Context(), lateUser.TenantID, lateUser.Key); err != nil {
			t.Fatal(err)
		}
		expectStatus(t, r.registrationFinalize(late), 404, "user_not_found")

		// A credential id that is already registered is a 409, never a 500. With attestation "none" the
		// client data is not signed, so the same attestation object can be replayed with a fresh
		// session's challenge: everything verifies, and the id clash is what remains.
		first, err := authenticatortest.New(authenticatortest.Options{}).Create(r.registrationOptions("bob"), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, r.registrationFinalize(first), 200, "")
		expectStatus(t, r.registrationFinalize(first), 400, "session_not_found")
		expectStatus(t, r.registrationFinalize(withChallenge(t, first, "webauthn.create", challengeOf(t, r.registrationOptions("bob")))), 409, "credential_exists")

		// Validation of the initialize body (docs/hanko-compatibility.md#registration and more).
		cases := []struct {
			name string
			body any
			want string
		}{
			{"no user_id", map[string]any{"username": "x"}, "user_id is a required field"},
			{"no username", map[string]any{"user_id": "x"}, "username is a required field"},
			{"user_id over 64 bytes", map[string]any{"user_id": strings.Repeat("é", 33), "username": "x"}, "64 bytes"},
			{"username too long", map[string]any{"user_id": "x", "username": strings.Repeat("a", 129)}, "username cannot have more than 128"},
			{"empty icon", map[string]any{"user_id": "x", "username": "x", "icon": ""}, "icon must be a valid URL"},
			{"bad icon", map[string]any{"user_id": "x", "username": "x", "icon": "not a url"}, "icon must be a valid URL"},
			{"script icon", map[string]any{"user_id": "x", "username": "x", "icon": "javascript:alert(1)"}, "icon must be a valid URL"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e := expectStatus(t, r.post("/"+r.id+"/registration/initialize", c.body, true), 400, "invalid_request")
				if !strings.Contains(e.Details, c.want) {
					t.Fatalf("details %q lack %q", e.Details, c.want)
				}
			})
		}
		expectStatus(t, r.post("/"+r.id+"/registration/initialize", `{"user_id":1}`, true), 400, "invalid_body")
		// Error details name JSON types, never Go types.
		if e := expectStatus(t, r.post("/"+r.id+"/registration/initialize", `[]`, true), 400, "invalid_body"); strings.Contains(e.Details, "credentials.") {
			t.Errorf("details leak a Go type: %q", e.Details)
		}
		expectStatus(t, r.post("/"+r.id+"/registration/initialize", map[string]any{"user_id": "icon", "username": "x", "icon": "data:image/png;base64,iVBORw0KGgo="}, true), 200, "")
		expectStatus(t, r.post("/"+r.id+"/registration/initialize", map[string]any{"user_id": "x", "username": "x"}, false), 401, "api_key_missing")
		expectStatus(t, r.post("/"+r.id+"/registration/initialize", map[string]any{"user_id": strings.Repeat("a", 64), "username": "x"}, true), 200, "")

		// Finalize bodies that are not attestations.
		for _, body := range []string{`{}`, `[]`, `{"id":"x","type":"public-key"}`, `{"id":"a+b","rawId":"a+b","type":"public-key","response":{}}`, `garbage`} {
			expectStatus(t, r.registrationFinalize([]byte(body)), 400, "invalid_credential_response")
		}
	})
}

func TestLoginRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		a := authenticatortest.New(authenticatortest.Options{})
		_, credID := r.register(a, "alice")

		t.Run("initialize errors", func(t *testing.T) {
			login := "/" + r.id + "/login/initialize"
			expectStatus(t, r.post(login, map[string]any{"user_id": "alice"}, false), 401, "api_key_missing")
			expectStatus(t, call(t, s.public, "POST", login, map[string]any{"user_id": "alice"}, "apiKey", "sk_wrong"), 401, "invalid_api_key")
			expectStatus(t, r.post(login, map[string]any{"user_id": ""}, true), 400, "invalid_request")
			expectStatus(t, r.post(login, map[string]any{"user_id": "nobody"}, true), 404, "user_not_found")
			expectStatus(t, r.post(login, `[]`, false), 400, "invalid_body")
			expectStatus(t, r.post(login, `{}`, false), 200, "")
			expectStatus(t, call(t, s.public, "POST", login, nil, "apiKey", "anything at all"), 200, "")
			r.s.ceremonies.BeginRegistration(context.Background(), mustSnapshot(t, s, r.id), credentials.Registration,
				credentials.RegistrationRequest{AppUserID: "carol", Username: "carol"})
			expectStatus(t, r.post(login, map[string]any{"user_id": "carol"}, true), 400, "no_credentials")
		})

		t.Run("replay and concurrent finalize", func(t *testing.T) {
			assertion, err := a.Get(r.loginOptions(""), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			const n = 10
			statuses := make(chan int, n)
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					statuses <- r.loginFinalize(assertion).StatusCode
				}()
			}
			wg.Wait()
			close(statuses)
			ok := 0
			for st := range statuses {
				switch st {
				case 200:
					ok++
				case 401:
				default:
					t.Errorf("status %d", st)
				}
			}
			if ok != 1 {
				t.Fatalf("%d of %d concurrent finalizes succeeded, want exactly 1", ok, n)
			}
			expectStatus(t, r.loginFinalize(assertion), 401, "session_not_found")
		})

		t.Run("failed attempt burns the challenge", func(t *testing.T) {
			options := r.loginOptions("")
			bad, err := a.GetWith(options, testOrigin, authenticatortest.Tamper{Origin: "https://evil.example.org"})
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.loginFinalize(bad), 401, "assertion_failed")
			good, err := a.Get(options, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.loginFinalize(good), 401, "session_not_found")
		})

		t.Run("tampered assertions", func(t *testing.T) {
			for name, tamper := range map[string]authenticatortest.Tamper{
				"origin":     {Origin: "https://evil.example.org"},
				"type":       {Type: "webauthn.create"},
				"signature":  {CorruptSignature: true},
				"rp id":      {RPID: "evil.example.org"},
				"no UP":      {ClearFlags: authenticatortest.FlagUP},
				"no UV":      {ClearFlags: authenticatortest.FlagUV},
				"other user": {UserHandle: []byte("mallory")},
			} {
				t.Run(name, func(t *testing.T) {
					bad, err := a.GetWith(r.loginOptions(""), testOrigin, tamper)
					if err != nil {
						t.Fatal(err)
					}
					expectStatus(t, r.loginFinalize(bad), 401, "assertion_failed")
				})
			}
			// A challenge that was never issued.
			bad, err := a.GetWith(r.loginOptions(""), testOrigin, authenticatortest.Tamper{Challenge: base64.RawURLEncoding.EncodeToString([]byte("not issued by the server at all"))})
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.loginFinalize(bad), 401, "session_not_found")
			for _, body := range []string{`{}`, `{"id":"x","type":"public-key"}`, `"string"`} {
				expectStatus(t, r.loginFinalize([]byte(body)), 400, "invalid_credential_response")
			}
			// A body that is not UTF-8 is refused before its session is touched, even when the bad bytes
			// are in a member nobody reads; the same assertion without them then logs in.
			good, err := a.Get(r.loginOptions(""), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			notUTF8 := append(bytes.TrimSuffix(bytes.TrimSpace(bytes.Clone(good)), []byte("}")), []byte(",\"extra\":\"\xff\"}")...)
			expectStatus(t, r.loginFinalize(notUTF8), 400, "invalid_credential_response")
			expectStatus(t, r.loginFinalize(good), 200, "")
		})

		t.Run("padded base64url is accepted", func(t *testing.T) {
			assertion, err := a.Get(r.loginOptions(""), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.loginFinalize(padBase64(t, assertion)), 200, "")
		})

		t.Run("expired session", func(t *testing.T) {
			options := r.loginOptions("")
			expireSessions(t, s, r.id)
			assertion, err := a.Get(options, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.loginFinalize(assertion), 401, "session_not_found")
		})

		t.Run("ceremony kinds do not mix", func(t *testing.T) {
			// A live registration challenge cannot finish a login, and a live login challenge cannot
			// finish a registration.
			regChallenge := challengeOf(t, r.registrationOptions("dave"))
			crossed, err := a.GetWith(r.loginOptions(""), testOrigin, authenticatortest.Tamper{Challenge: regChallenge})
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.loginFinalize(crossed), 401, "session_not_found")
			att, err := authenticatortest.New(authenticatortest.Options{}).Create(r.registrationOptions("dave"), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.registrationFinalize(withChallenge(t, att, "webauthn.create", challengeOf(t, r.loginOptions("")))), 400, "session_not_found")
		})

		t.Run("counter regression", func(t *testing.T) {
			r.login(a, "alice")
			if err := a.SetCounter(credID, 0); err != nil {
				t.Fatal(err)
			}
			assertion, err := a.Get(r.loginOptions("alice"), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			stored := func() credentials.Credential {
				c, err := db.NewCredentialStore(s.db).Credential(context.Background(), uuidOf(t, r.id), credID)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			before := stored()
			expectStatus(t, r.loginFinalize(assertion), 401, "cloned_authenticator")
			after := stored()
			if !after.CloneWarning {
				t.Fatal("clone warning not recorded")
			}
			if after.SignCount != before.SignCount || !reflect.DeepEqual(after.LastUsedAt, before.LastUsedAt) {
				t.Errorf("a refused login changed the credential: counter %d → %d, last used %v → %v",
					before.SignCount, after.SignCount, before.LastUsedAt, after.LastUsedAt)
			}
			// One regression refuses that login only: the next one, with a counter above the stored
			// one, goes through (two tabs finishing out of order must not lock a user out).
			if err := a.SetCounter(credID, before.SignCount+10); err != nil {
				t.Fatal(err)
			}
			r.login(a, "alice")
			cfg := validConfig("example.com")
			cfg["webauthn"].(map[string]any)["allow_sign_count_regression"] = true
			expectStatus(t, s.adminCall("PUT", "/tenants/"+r.id+"/config", cfg), 204, "")
			if err := a.SetCounter(credID, 0); err != nil {
				t.Fatal(err)
			}
			r.login(a, "alice")
		})
	})
}

// padBase64 re-encodes every base64url member of a credential response with "=" padding, as some
// clients send it.
func padBase64(t *testing.T, body []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	pad := func(s string) string {
		for len(s)%4 != 0 {
			s += "="
		}
		return s
	}
	m["id"], m["rawId"] = pad(m["id"].(string)), pad(m["rawId"].(string))
	resp := m["response"].(map[string]any)
	for k, v := range resp {
		if s, ok := v.(string); ok {
			resp[k] = pad(s)
		}
	}
	out, _ := json.Marshal(m)
	return out
}

// expireSessions makes every live session of the tenant expire now, as the ceremony timeout would
// (Redis removes the key at its TTL).
func expireSessions(t *testing.T, s *testServer, tenantID string) {
	t.Helper()
	ctx := context.Background()
	keys, err := s.redis.Keys(ctx, s.redisPrefix+"session:{"+tenantID+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no session to expire")
	}
	for _, k := range keys {
		if err := s.redis.PExpire(ctx, k, time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
}

// challengeOf returns the challenge of initialize options.
func challengeOf(t *testing.T, options []byte) string {
	t.Helper()
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil || o.PublicKey.Challenge == "" {
		t.Fatalf("no challenge in %s", options)
	}
	return o.PublicKey.Challenge
}

// withChallenge replaces the client data of a credential response by one of the given type and
// challenge (valid where the client data is not signed: attestation "none").
func withChallenge(t *testing.T, body []byte, typ, challenge string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	cd, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": testOrigin, "crossOrigin": false})
	m["response"].(map[string]any)["clientDataJSON"] = base64.RawURLEncoding.EncodeToString(cd)
	out, _ := json.Marshal(m)
	return out
}

func TestMFACredentialsNeverLogInPlainly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		snap := mustSnapshot(t, s, r.id)
		key := authenticatortest.New(authenticatortest.Options{Attachment: authenticatortest.CrossPlatform})
		ctx := context.Background()
		creation, err := s.ceremonies.BeginRegistration(ctx, snap, mfa.Registration, credentials.RegistrationRequest{AppUserID: "erin", Username: "erin"})
		if err != nil {
			t.Fatal(err)
		}
		options, _ := json.Marshal(creation)
		att, err := key.Create(options, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ceremonies.FinishRegistration(ctx, snap, credentials.Registration, att); err == nil {
			t.Fatal("an MFA registration session finished a passkey registration")
		}
		creation, _ = s.ceremonies.BeginRegistration(ctx, snap, mfa.Registration, credentials.RegistrationRequest{AppUserID: "erin", Username: "erin"})
		options, _ = json.Marshal(creation)
		key = authenticatortest.New(authenticatortest.Options{Attachment: authenticatortest.CrossPlatform})
		att, _ = key.Create(options, testOrigin)
		res, err := s.ceremonies.FinishRegistration(ctx, snap, mfa.Registration, att)
		if err != nil {
			t.Fatal(err)
		}
		if !r.credential(res.Credential.ID).IsMFA {
			t.Fatal("not marked is_mfa")
		}
		// Plain login naming the user finds no usable credential.
		expectStatus(t, r.post("/"+r.id+"/login/initialize", map[string]any{"user_id": "erin"}, true), 400, "no_credentials")
		// With a passkey too, plain login offers only the passkey; an assertion of the MFA key, made for
		// that live login session, is refused.
		passkey := authenticatortest.New(authenticatortest.Options{})
		r.register(passkey, "erin")
		options = r.loginOptions("erin")
		if strings.Contains(string(options), res.Credential.ID) {
			t.Fatalf("plain login offers the MFA credential: %s", options)
		}
		forged := strings.Replace(string(options), `"allowCredentials":[`, `"allowCredentials":[{"type":"public-key","id":"`+res.Credential.ID+`"},`, 1)
		assertion, err := key.Get([]byte(forged), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, r.loginFinalize(assertion), 401, "assertion_failed")
	})
}

func TestCrossTenant(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		a, b := newRP(t, s, "example.com"), newRP(t, s, "example.com")
		auth := authenticatortest.New(authenticatortest.Options{})
		_, credID := a.register(auth, "alice")

		// B knows no alice, cannot see, rename or delete A's credential, and A's key does nothing on B.
		expectStatus(t, b.post("/"+b.id+"/login/initialize", map[string]any{"user_id": "alice"}, true), 404, "user_not_found")
		expectStatus(t, b.get("/"+b.id+"/credentials/"+credID), 404, "credential_not_found")
		expectStatus(t, call(t, s.public, "PATCH", "/"+b.id+"/credentials/"+credID, map[string]any{"name": "x"}, "apiKey", b.secret), 404, "credential_not_found")
		expectStatus(t, call(t, s.public, "DELETE", "/"+b.id+"/credentials/"+credID, nil, "apiKey", b.secret), 404, "credential_not_found")
		if list := decode[[]httpapi.CredentialResponse](t, b.get("/"+b.id+"/credentials")); len(list) != 0 {
			t.Fatalf("tenant B lists %d credentials", len(list))
		}
		expectStatus(t, call(t, s.public, "GET", "/"+b.id+"/credentials", nil, "apiKey", a.secret), 401, "invalid_api_key")
		expectStatus(t, call(t, s.public, "POST", "/"+b.id+"/registration/initialize", map[string]any{"user_id": "x", "username": "x"}, "apiKey", a.secret), 401, "invalid_api_key")

		// A's login challenge finalized at B: B has no such session; A's session is then gone too? No:
		// sessions are per tenant, so A's stays and still works.
		options := a.loginOptions("")
		assertion, err := auth.Get(options, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, b.loginFinalize(assertion), 401, "session_not_found")
		expectStatus(t, a.loginFinalize(assertion), 200, "")

		// A passkey of tenant A presented to B's own discoverable login is unknown there.
		assertion, err = auth.Get(b.loginOptions(""), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, b.loginFinalize(assertion), 401, "assertion_failed")
	})
}

func TestCredentialManagement(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		eachFamily(t, s, "example.com", func(t *testing.T, r *rp) {
			var ids []string
			for i := range 3 {
				a := authenticatortest.New(authenticatortest.Options{AAGUID: [16]byte{0xea, 0x9b, 0x8d, 0x66, 0x4d, 0x01, 0x1d, 0x21, 0x3c, 0xe4, 0xb6, 0xb4, 0x8c, 0xb5, 0x75, 0xd4}})
				_, id := r.register(a, fmt.Sprintf("user-%d", i%2))
				ids = append(ids, id)
			}
			list := r.path("/credentials", "/credentials")
			resp := r.get(list + "?per_page=2")
			page := decode[[]httpapi.CredentialResponse](t, resp)
			if len(page) != 2 || resp.Header.Get("X-Total-Count") != "3" || !strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
				t.Fatalf("page 1: %d items, total %q, link %q", len(page), resp.Header.Get("X-Total-Count"), resp.Header.Get("Link"))
			}
			if page[0].ID != ids[2] {
				t.Fatal("not newest first")
			}
			if page[0].AuthenticatorName != "Google Password Manager" || page[0].Name == nil {
				t.Fatalf("authenticator name %q, name %v", page[0].AuthenticatorName, page[0].Name)
			}
			asc := decode[[]httpapi.CredentialResponse](t, r.get(list+"?order=asc&user_id=user-0"))
			if len(asc) != 2 || asc[0].ID != ids[0] || asc[1].ID != ids[2] {
				t.Fatalf("user-0 ascending: %+v", asc)
			}
			expectStatus(t, r.get(list+"?order=sideways"), 400, "invalid_request")
			expectStatus(t, r.get(list+"?page=x"), 400, "invalid_request")
			// Text no database stores is a 400, never a 500.
			expectStatus(t, r.get(list+"?user_id=%00"), 400, "invalid_request")
			expectStatus(t, r.get(list+"?user_id=%FF"), 400, "invalid_request")

			one := r.path("/credentials/"+ids[1], "/credentials/"+ids[1])
			hdr := []string{"apiKey", r.secret}
			if r.keyScoped {
				hdr = []string{"Authorization", "Bearer " + r.secret}
			}
			expectStatus(t, call(t, s.public, "PATCH", one, map[string]any{"name": "Work laptop"}, hdr...), 204, "")
			if c := r.credential(ids[1]); c.Name == nil || *c.Name != "Work laptop" {
				t.Fatalf("rename: %+v", c.Name)
			}
			expectStatus(t, call(t, s.public, "PATCH", one, map[string]any{"name": " "}, hdr...), 400, "invalid_request")
			expectStatus(t, call(t, s.public, "PATCH", one, map[string]any{"name": strings.Repeat("n", 256)}, hdr...), 400, "invalid_request")
			expectStatus(t, call(t, s.public, "GET", one+"==", nil, hdr...), 200, "")
			expectStatus(t, call(t, s.public, "GET", one+"%3D%3D", nil, hdr...), 200, "")
			// A malformed escape, sent as raw bytes (Go's URL parser would refuse to build it).
			raw := httptest.NewRequest("GET", one, nil)
			raw.RequestURI = one + "%zz"
			raw.Header.Set(hdr[0], hdr[1])
			resp, err := s.public.Test(raw, -1)
			if err != nil {
				t.Fatal(err)
			}
			if e := expectStatus(t, resp, 400, "invalid_request"); !strings.Contains(e.Details, "credential_id") {
				t.Fatalf("malformed escape: details %q", e.Details)
			}
			expectStatus(t, call(t, s.public, "DELETE", one, nil, hdr...), 204, "")
			expectStatus(t, call(t, s.public, "DELETE", one, nil, hdr...), 404, "credential_not_found")
			expectStatus(t, call(t, s.public, "GET", one, nil), 401, "")
		})
	})
}

func TestDeletedCredentialCannotLogIn(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		a := authenticatortest.New(authenticatortest.Options{})
		_, id := r.register(a, "alice")
		expectStatus(t, call(t, s.public, "DELETE", "/"+r.id+"/credentials/"+id, nil, "apiKey", r.secret), 204, "")
		assertion, err := a.Get(r.loginOptions(""), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, r.loginFinalize(assertion), 401, "assertion_failed")
	})
}

func TestPublishableKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		resp := s.adminCall("POST", "/tenants/"+r.id+"/secrets/api", map[string]any{"name": "web", "kind": "publishable"})
		pk := decode[httpapi.APIKeyDTO](t, resp).Secret
		bearer := func(key string) []string { return []string{"Authorization", "Bearer " + key} }

		// The server registers with the secret key; the browser finishes with the publishable one.
		r.keyScoped = true
		a := authenticatortest.New(authenticatortest.Options{})
		att, err := a.Create(r.registrationOptions("alice"), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, call(t, s.public, "POST", "/credentials/register/finalize", att, bearer(pk)...), 200, "")
		resp = call(t, s.public, "POST", "/credentials/login/initialize", nil, bearer(pk)...)
		expectStatus(t, resp, 200, "")
		assertion, err := a.Get(readAll(t, resp), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, call(t, s.public, "POST", "/credentials/login/finalize", assertion, bearer(pk)...), 200, "")

		// Everything else needs the secret key.
		expectStatus(t, call(t, s.public, "POST", "/credentials/register/initialize", map[string]any{"user_id": "x", "username": "x"}, bearer(pk)...), 403, "secret_key_required")
		expectStatus(t, call(t, s.public, "POST", "/credentials/login/initialize", map[string]any{"user_id": "alice"}, bearer(pk)...), 403, "secret_key_required")
		expectStatus(t, call(t, s.public, "GET", "/credentials", nil, bearer(pk)...), 403, "secret_key_required")
		expectStatus(t, call(t, s.public, "GET", "/credentials/nope/extra/path", nil, bearer(r.secret)...), 404, "not_found")
		expectStatus(t, call(t, s.public, "POST", "/credentials/register/finalize", att), 401, "invalid_api_key")
	})
}

// TestHankoUserHandles checks the compatibility rule for credentials imported from Hanko's server
// (docs/hanko-compatibility.md#hanko-user-handles): Hanko stored a user id that parses as a UUID as its
// 16 raw bytes, so such a credential answers with that binary handle. It logs in both usernameless and
// with the user named, and the binary form of another user's id never does.
func TestHankoUserHandles(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newTestServer(t, d, newTestSealer(t))
		r := newRP(t, s, "example.com")
		userID := uuid.NewString()
		other := uuid.New()
		a := authenticatortest.New(authenticatortest.Options{})
		r.register(a, userID)
		r.register(authenticatortest.New(authenticatortest.Options{}), other.String())
		binary := uuid.MustParse(userID)

		for _, named := range []string{"", userID} {
			assertion, err := a.GetWith(r.loginOptions(named), testOrigin, authenticatortest.Tamper{UserHandle: binary[:]})
			if err != nil {
				t.Fatal(err)
			}
			resp := r.loginFinalize(assertion)
			expectStatus(t, resp, 200, "")
			if sub := r.claims(decode[httpapi.TokenResponse](t, resp).Token)["sub"]; sub != userID {
				t.Errorf("named %q: sub %v, want %s", named, sub, userID)
			}

			assertion, err = a.GetWith(r.loginOptions(named), testOrigin, authenticatortest.Tamper{UserHandle: other[:]})
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.loginFinalize(assertion), 401, "assertion_failed")
		}
	})
}
