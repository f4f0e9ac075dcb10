package db

import (
	"context"
	"database/sql"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"
)

// hotQuery is a statement of the ceremony hot path (README, "What a ceremony costs"), written once with
// Bun's ? placeholders. On PostgreSQL it runs with bind parameters ($1, $2, …) as a statement that pgx
// prepares once per connection, so PostgreSQL parses and plans it once per connection instead of on
// every call: with the values in the text (Bun's way), parsing and planning cost PostgreSQL about
// 0.1 ms a statement, more than running it. On SQLite, a library in the process, Bun writes the values
// into the text as everywhere else.
type hotQuery struct {
	bun string // ? placeholders, for Bun
	pg  string // $n placeholders, for pgx
}

// newHotQuery returns the statement q, whose only question marks are its placeholders.
func newHotQuery(q string) hotQuery {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return hotQuery{bun: q, pg: b.String()}
}

// hot runs the statements of the hot path for a store.
type hot struct {
	db *bun.DB
	// bind is whether the statements go to PostgreSQL with bind parameters ($n), and cached is
	// whether pgx may keep them prepared (DB.prepared); without it pgx puts the values into the text
	// itself, as behind PgBouncer in transaction mode.
	bind, cached bool
	// statements is where RecordStatements records what the prepared statements run (Bun's hook sees
	// only what Bun runs).
	statements *atomic.Pointer[StatementLog]
}

func newHot(d *DB) hot {
	return hot{db: d.bun, bind: d.dialect == DialectPostgres, cached: d.prepared, statements: &d.statements}
}

// scan runs q with args and scans its rows into dest (a pointer to a slice of row structs).
func (h hot) scan(ctx context.Context, q hotQuery, dest any, args ...any) error {
	if !h.bind {
		return conn(ctx, h.db).NewRaw(q.bun, args...).Scan(ctx, dest)
	}
	h.record(ctx, q.pg)
	rows, err := sqlConn(ctx, h.db).QueryContext(ctx, q.pg, h.modeArgs(args)...)
	if err != nil {
		return err
	}
	return h.db.ScanRows(ctx, rows, dest)
}

// exec runs q with args.
func (h hot) exec(ctx context.Context, q hotQuery, args ...any) (sql.Result, error) {
	if !h.bind {
		return conn(ctx, h.db).NewRaw(q.bun, args...).Exec(ctx)
	}
	h.record(ctx, q.pg)
	return sqlConn(ctx, h.db).ExecContext(ctx, q.pg, h.modeArgs(args)...)
}

func (h hot) record(ctx context.Context, query string) {
	if l := h.statements.Load(); l != nil {
		l.add(ctx, query)
	}
}

// modeArgs puts pgx's per-query mode first when the statement may be kept prepared: the
// connections' default is the simple protocol (openPostgres), right for Bun's statements, whose texts
// never repeat.
func (h hot) modeArgs(args []any) []any {
	if !h.cached {
		return args
	}
	return append([]any{pgx.QueryExecModeCacheStatement}, args...)
}

// insertOf returns the INSERT of every column of model's table (not the scan-only ones) in the
// order of its fields, and the function that lists a row's values in that order: a column added to
// the model is written without touching the statement.
func insertOf[T any](d *bun.DB, suffix string) (hotQuery, func(*T) []any) {
	table := d.Table(reflect.TypeFor[T]())
	var (
		fields []*schema.Field
		cols   []string
	)
	for _, f := range table.Fields {
		if f.Tag.HasOption("scanonly") {
			continue
		}
		fields = append(fields, f)
		cols = append(cols, f.Name)
	}
	q := "INSERT INTO " + table.Name + " (" + strings.Join(cols, ", ") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")" + suffix
	values := func(row *T) []any {
		v := reflect.ValueOf(row).Elem()
		args := make([]any, len(fields))
		for i, f := range fields {
			args[i] = f.Value(v).Interface()
		}
		return args
	}
	return newHotQuery(q), values
}
