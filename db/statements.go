package db

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

	passkey "github.com/passkey-server/passkey-server"
)

// Statement is one statement a request ran, as StatementLog records it.
type Statement struct {
	// RequestID is the passkey.Request of the statement's context.
	RequestID string
	// Query is the statement's text; BEGIN, COMMIT and ROLLBACK are statements too.
	Query string
}

// StatementLog records the statements that requests run on a DB, so that a test can hold each
// ceremony to its budget of statements (README, "Performance"). Statements outside a request (the
// audit writer, the tenant cache refresh, API key last use) are not recorded.
type StatementLog struct {
	mu   sync.Mutex
	list []Statement
}

// RecordStatements starts recording the statements of requests on d. Call it before d is used
// concurrently: Bun's hooks are not meant to be added while queries run.
func (d *DB) RecordStatements() *StatementLog {
	l := &StatementLog{}
	d.bun.AddQueryHook(l)
	d.statements.Store(l)
	return l
}

// Take returns the statements recorded since the last Take, oldest first, and forgets them.
func (l *StatementLog) Take() []Statement {
	l.mu.Lock()
	defer l.mu.Unlock()
	list := l.list
	l.list = nil
	return list
}

// BeforeQuery implements bun.QueryHook.
func (l *StatementLog) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

// AfterQuery implements bun.QueryHook.
func (l *StatementLog) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	l.add(ctx, e.Query)
}

// add records query if it runs for a request.
func (l *StatementLog) add(ctx context.Context, query string) {
	r := passkey.RequestOf(ctx)
	if r.ID == "" {
		return
	}
	l.mu.Lock()
	l.list = append(l.list, Statement{RequestID: r.ID, Query: query})
	l.mu.Unlock()
}

// RecordRedisCommands starts recording the commands that requests send through client, each command
// of a pipeline or MULTI/EXEC counted (MULTI and EXEC included), in the same form as RecordStatements.
// Call it before client is used concurrently.
func RecordRedisCommands(client redis.UniversalClient) *StatementLog {
	l := &StatementLog{}
	client.AddHook(redisRecorder{l})
	return l
}

// redisRecorder is the go-redis hook of RecordRedisCommands.
type redisRecorder struct{ log *StatementLog }

func (h redisRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.record(ctx, cmd)
		return next(ctx, cmd)
	}
}

func (h redisRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.record(ctx, cmd)
		}
		return next(ctx, cmds)
	}
}

func (h redisRecorder) record(ctx context.Context, cmd redis.Cmder) {
	h.log.add(ctx, cmd.Name())
}
