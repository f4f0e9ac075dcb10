package main

import (
	"context"
	"strings"
	"testing"

	"github.com/passkey-server/passkey-server/credentials/authenticatortest"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/db/dbtest"
)

// The statement budget of each ceremony step (README, "Performance"): what one step may cost the
// database and Redis on the hot path. A step over budget fails here, on PostgreSQL and SQLite alike,
// so that a change that adds a round trip is seen in review, not in production. BEGIN and COMMIT
// count as statements. Work done outside the request (the batched audit and API-key writes) is not
// the request's.
type stepBudget struct {
	step  string
	sql   int // statements, BEGIN/COMMIT included
	redis int // Redis commands, each command of a pipeline counted
	do    func(t *testing.T, r *rp, a *authenticatortest.Authenticator, state *budgetState)
}

// budgetState carries a ceremony from its initialize to its finalize.
type budgetState struct {
	options []byte
}

func TestCeremonyStatementBudget(t *testing.T) {
	finishLogin := func(t *testing.T, r *rp, a *authenticatortest.Authenticator, st *budgetState) {
		assertion, err := a.Get(st.options, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		expectStatus(t, r.loginFinalize(assertion), 200, "")
	}
	steps := []stepBudget{
		{step: "registration initialize", sql: 2, redis: 1, do: func(t *testing.T, r *rp, a *authenticatortest.Authenticator, st *budgetState) {
			st.options = r.registrationOptions("budget-user")
		}},
		{step: "registration finalize", sql: 1, redis: 1, do: func(t *testing.T, r *rp, a *authenticatortest.Authenticator, st *budgetState) {
			att, err := a.Create(st.options, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			expectStatus(t, r.registrationFinalize(att), 200, "")
		}},
		{step: "login initialize, known user", sql: 1, redis: 1, do: func(t *testing.T, r *rp, a *authenticatortest.Authenticator, st *budgetState) {
			st.options = r.loginOptions("budget-user")
		}},
		{step: "login finalize, known user", sql: 2, redis: 1, do: finishLogin},
		{step: "login initialize, discoverable", sql: 0, redis: 1, do: func(t *testing.T, r *rp, a *authenticatortest.Authenticator, st *budgetState) {
			st.options = r.loginOptions("")
		}},
		{step: "login finalize, discoverable", sql: 2, redis: 1, do: finishLogin},
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		statements := d.RecordStatements()
		s := newTestServer(t, d, newTestSealer(t))
		commands := db.RecordRedisCommands(s.redis)
		r := newRP(t, s, "example.com")
		// A first ceremony of another user loads the tenant into the instance's cache: the budget is
		// that of a tenant in use.
		r.register(authenticatortest.New(authenticatortest.Options{}), "warm-up")
		statements.Take()
		commands.Take()

		a := authenticatortest.New(authenticatortest.Options{})
		var st budgetState
		for _, step := range steps {
			r.t = t
			step.do(t, r, a, &st)
			sql, cmds := statements.Take(), commands.Take()
			if len(sql) > step.sql {
				t.Errorf("%s ran %d SQL statements, budget %d:\n%s", step.step, len(sql), step.sql, queries(sql))
			}
			if len(cmds) > step.redis {
				t.Errorf("%s ran %d Redis commands, budget %d:\n%s", step.step, len(cmds), step.redis, queries(cmds))
			}
			t.Logf("%s: %d SQL statements, %d Redis commands", step.step, len(sql), len(cmds))
			if d.Dialect() == db.DialectPostgres {
				// Stable texts with bind parameters, which pgx prepares once per connection: a text
				// holding the tenant's id would be a new statement, parsed and planned, on every call.
				for _, q := range sql {
					if strings.Contains(q.Query, r.id) {
						t.Errorf("%s sent a statement with its values in the text:\n%s", step.step, queries([]db.Statement{q}))
					}
				}
			}
		}
	})
}

// queries lists statements one per line, each cut to its first 200 bytes.
func queries(list []db.Statement) string {
	var b strings.Builder
	for _, s := range list {
		q := s.Query
		if len(q) > 200 {
			q = q[:200] + "…"
		}
		b.WriteString("  " + q + "\n")
	}
	return b.String()
}

// TestCeremoniesWithoutStatementCache: behind PgBouncer in transaction mode a prepared statement does
// not outlive its transaction, so operators turn pgx's statement cache off in the URL. The hot path's
// statements then go with their values interpolated by pgx, and every ceremony and the audit log still
// work.
func TestCeremoniesWithoutStatementCache(t *testing.T) {
	ctx := context.Background()
	url := dbtest.PostgresURL(t) + "&statement_cache_capacity=0"
	d, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, d, newTestSealer(t))
	r := newRP(t, s, "example.com")
	a := authenticatortest.New(authenticatortest.Options{})
	r.register(a, "alice")
	r.login(a, "alice")
	r.login(a, "")
	var types []string
	for _, e := range r.auditLog("") {
		types = append(types, e.Type)
	}
	if len(types) < 6 {
		t.Errorf("audit log = %v, want the six ceremony steps", types)
	}
}
