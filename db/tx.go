package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"
)

// A change and the events it causes commit together (passkey.Bus.Commit): the bus runs the change's
// writes and the webhook outbox's inserts in one transaction that DB.Atomically opens and puts in the
// context. Every store runs its statements with conn(ctx, …), on that transaction when the context
// carries one and on the pool otherwise, so that a store method needs no variant for each case. On
// SQLite the pool is one connection (openSQLite): a statement outside the open transaction would wait
// for it forever.

// txKey is the context key of the transaction of Atomically.
type txKey struct{}

// Atomically implements passkey.Transactor: fn's store calls run in one transaction, committed when
// fn returns nil. Called with a context that carries a transaction, it runs fn in that one.
func (d *DB) Atomically(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if _, ok := ctx.Value(txKey{}).(bun.Tx); ok {
		return fn(ctx)
	}
	ctx, done := d.call(ctx, &err)
	defer done()
	err = d.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return fn(context.WithValue(ctx, txKey{}, tx))
	})
	if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
		// database/sql rolled the transaction back when the deadline passed, so the COMMIT found it
		// done: the deadline is the cause (a 503), not a misuse of the transaction.
		return fmt.Errorf("commit: %w", ctx.Err())
	}
	return err
}

// conn returns what a store call runs its statements on: the transaction of ctx, or db.
func conn(ctx context.Context, db *bun.DB) bun.IDB {
	if tx, ok := ctx.Value(txKey{}).(bun.Tx); ok {
		return tx
	}
	return db
}

// runInTx runs fn in the transaction of ctx, or in a new one (as bun.DB.RunInTx) when ctx has none:
// a store method whose statements must commit together joins the change it is part of.
func runInTx(ctx context.Context, db *bun.DB, fn func(ctx context.Context, tx bun.Tx) error) error {
	if tx, ok := ctx.Value(txKey{}).(bun.Tx); ok {
		return fn(ctx, tx)
	}
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return fn(context.WithValue(ctx, txKey{}, tx), tx)
	})
}

// sqlConn is conn for statements that go to database/sql directly (hot.go).
func sqlConn(ctx context.Context, db *bun.DB) interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
} {
	if tx, ok := ctx.Value(txKey{}).(bun.Tx); ok {
		return tx.Tx
	}
	return db.DB
}
