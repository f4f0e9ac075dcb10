package httpapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
)

func TestCheckMembers(t *testing.T) {
	type inner struct {
		Mode string `json:"mode"`
	}
	type embedded struct {
		Promoted string `json:"promoted"`
	}
	type body struct {
		embedded
		UserID  string            `json:"user_id"`
		Inner   *inner            `json:"inner"`
		List    []inner           `json:"list"`
		Labels  map[string]string `json:"labels"`
		Any     any               `json:"any"`
		When    *time.Time        `json:"when"`
		Skipped string            `json:"-"`
		NoTag   string
		Kind    string `json:"kind"`
	}
	for _, tc := range []struct {
		name   string
		body   string
		strict bool
		want   []string // problems, in order; nil: none
	}{
		{"exact", `{"user_id":"a","inner":{"mode":"x"},"list":[{"mode":"y"}],"labels":{"A":"1","a":"2"},"promoted":"p","NoTag":"n"}`, true, nil},
		{"unknown ignored when lenient", `{"user_id":"a","extra":{"user_id":1,"user_id":2},"inner":{"other":1}}`, false, nil},
		{"unknown named when strict", `{"user_id":"a","extra":1,"inner":{"mood":"x"},"list":[{},{"mode":"y","x":1}],"Skipped":"s"}`, true,
			[]string{"extra is not a known member", "inner.mood is not a known member", "list[1].x is not a known member", "Skipped is not a known member"}},
		{"duplicates", `{"user_id":"a","user_id":"b","inner":{"mode":"x","mode":"y"},"labels":{"k":"1","k":"2"},"any":{"z":[{"q":1,"q":2}]}}`, false,
			[]string{"user_id appears more than once", "inner.mode appears more than once", "labels.k appears more than once", "any.z[0].q appears more than once"}},
		{"letter case", `{"User_ID":"a","inner":{"MODE":"x"},"notag":"n"}`, false,
			[]string{"User_ID must be written user_id (member names are case-sensitive)", "inner.MODE must be written inner.mode (member names are case-sensitive)",
				"notag must be written NoTag (member names are case-sensitive)"}},
		{"the Kelvin sign folds to k", "{\"\u212aind\":\"x\"}", false, []string{"\"\u212aind\" must be written kind (member names are case-sensitive)"}},
		{"odd names are quoted", "{\"a\\u0000b\":1,\"" + strings.Repeat("n", 70) + "\":2}", true,
			[]string{`"a\x00b" is not a known member`, `"` + strings.Repeat("n", 64) + `…" is not a known member`}},
		{"self-decoding values are their owners'", `{"when":"2026-01-01T00:00:00Z"}`, true, nil},
		{"many problems are cut short", `{"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1,"k":1,"l":1}`, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v body
			if err := json.Unmarshal([]byte(tc.body), &v); err != nil {
				t.Fatal(err)
			}
			got := checkMembers([]byte(tc.body), reflect.TypeOf(&v), tc.strict)
			if tc.name == "many problems are cut short" {
				if len(got) != maxMemberProblems+1 || got[maxMemberProblems] != "further problems are not listed" {
					t.Fatalf("problems %q", got)
				}
				return
			}
			if len(got) != len(tc.want) || (len(got) > 0 && !reflect.DeepEqual([]string(got), tc.want)) {
				t.Fatalf("problems\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestCheckMembersOfRequests runs the check over the request types of the API: a tenant config with a
// misspelt nested member, and transaction data, whose members are the transaction's to check.
func TestCheckMembersOfRequests(t *testing.T) {
	cfg := `{"display_name":"x","config":{"cors":{"allowed_origins":["*"]},"webauthn":{"relying_party":{"id":"a.b","display_name":"x","origins":["https://a.b"],"icon":null},` +
		`"timeout":60000,"user_verfication":"discouraged","attachment":"platform"},"mfa":{"timeout":60000,"Attachment":"platform"}}}`
	got := checkMembers([]byte(cfg), reflect.TypeOf(&CreateTenantRequest{}), true)
	want := []string{"config.webauthn.user_verfication is not a known member", "config.mfa.Attachment must be written config.mfa.attachment (member names are case-sensitive)"}
	if !reflect.DeepEqual([]string(got), want) {
		t.Fatalf("problems %q", got)
	}
	if got := checkMembers([]byte(`{"config":{"cors":{}}}`), reflect.TypeOf(&tenant.Config{}), true); len(got) != 1 {
		t.Fatalf("a config body is not a create body: %q", got)
	}
	tx := `{"user_id":"a","transaction_id":"t","transaction_data":{"a":1,"a":2,"B":3}}`
	if got := checkMembers([]byte(tx), reflect.TypeOf(&transactions.InitRequest{}), true); len(got) != 0 {
		t.Fatalf("transaction data checked here: %q", got)
	}
}
