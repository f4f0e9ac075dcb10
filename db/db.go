// Package db is everything that talks to PostgreSQL, SQLite and Redis: the Bun models, the embedded
// migrations, the stores that implement the small interfaces the feature packages declare, and the
// ceremony session stores.
//
// One schema, written once per dialect, serves both databases; the conformance suite in this
// directory runs every store method against PostgreSQL and SQLite alike.
package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver: static builds need no cgo

	passkey "github.com/passkey-server/passkey-server"
)

// The dialects Open accepts, as reported by DB.Dialect.
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

// Connection pool settings for PostgreSQL. Requests hold a connection only for single short queries,
// so a modest pool serves many concurrent requests; recycling connections lets a failover or a
// PgBouncer restart heal without restarting the service.
const (
	postgresMaxOpenConns    = 25
	postgresMaxIdleConns    = postgresMaxOpenConns // idle = open: no connection churn under bursts
	postgresConnMaxLifetime = 30 * time.Minute
	postgresConnMaxIdleTime = 5 * time.Minute
)

// sqlitePragmas are applied to every SQLite connection. Foreign keys are off by default in SQLite,
// and the schema relies on them for ON DELETE CASCADE. WAL lets readers proceed during a write, and
// busy_timeout makes a second process wait for a lock instead of failing at once. _txlock=immediate
// takes the write lock when a transaction begins, so two writers never deadlock on a lock upgrade.
const sqlitePragmas = "_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate"

// Options bound the time the database may take. The zero value of a field means its default.
type Options struct {
	// ConnectTimeout bounds opening one PostgreSQL connection, TLS and authentication included
	// (DefaultConnectTimeout). A connect_timeout in the URL takes precedence.
	ConnectTimeout time.Duration
	// StatementTimeout is PostgreSQL's statement_timeout for this service's connections
	// (DefaultStatementTimeout): the server cancels a statement that runs longer. A statement_timeout
	// in the URL's options takes precedence.
	StatementTimeout time.Duration
	// CallTimeout bounds each store call (DefaultCallTimeout): waiting for a pool connection, the
	// statements and their round trips. A call also ends at its context's deadline (a request's).
	CallTimeout time.Duration
}

// The defaults of Options.
const (
	DefaultConnectTimeout   = 3 * time.Second
	DefaultStatementTimeout = 5 * time.Second
	DefaultCallTimeout      = 5 * time.Second
)

func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = DefaultStatementTimeout
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	return o
}

// DB is an open PostgreSQL or SQLite database. It is safe for concurrent use.
type DB struct {
	bun     *bun.DB
	dialect string
	bound
	// statements is set by RecordStatements (tests).
	statements atomic.Pointer[StatementLog]
	// prepared is whether the hot path's statements (hot.go) may be kept prepared on the connections:
	// PostgreSQL, unless the URL chose an exec mode or turned pgx's statement cache off (as behind
	// PgBouncer in transaction mode, where a prepared statement does not survive the transaction).
	prepared bool
}

// bound is what every store call gets: a deadline of its own, and its failures marked as
// passkey.ErrUnavailable when they mean that the database cannot answer.
type bound struct {
	timeout time.Duration
}

// call returns ctx bounded by the call timeout, and the function to defer: it releases the deadline and
// marks *err (see unavailable). Every exported store method starts with it:
//
//	ctx, done := s.call(ctx, &err)
//	defer done()
func (b bound) call(ctx context.Context, err *error) (context.Context, func()) {
	ctx, cancel := withCallTimeout(ctx, b.timeout)
	return ctx, func() {
		cancel()
		*err = unavailable(kindDatabase, *err)
	}
}

// withCallTimeout bounds ctx by timeout (none when 0). A context that already ends sooner, such as a
// request's (its deadline is the request timeout), is returned as it is: on the request path a second
// timer per store call would change nothing and cost an allocation and a timer.
func withCallTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return ctx, func() {}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, timeout)
}

// Open connects to the database at url and checks that it answers. It does not migrate; call
// MigrateUp.
//
// url is one of:
//   - postgres://user:password@host:5432/name?sslmode=... (or postgresql://), any URL pgx accepts;
//   - sqlite://path/to/file.db (relative), sqlite:///abs/path/file.db (absolute), or sqlite://:memory:
//     (also sqlite::memory:) for a private in-memory database.
//
// Errors never contain the URL, which may hold a password. An error that means the database cannot
// answer (refused, timed out) matches passkey.ErrUnavailable, so that a caller may retry.
func Open(ctx context.Context, url string) (*DB, error) {
	return OpenWith(ctx, url, Options{})
}

// OpenWith is Open with timeouts other than the defaults.
func OpenWith(ctx context.Context, url string, o Options) (*DB, error) {
	o = o.withDefaults()
	var (
		d   *DB
		err error
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		d, err = openPostgres(url, o)
	case strings.HasPrefix(url, "sqlite:"):
		d, err = openSQLite(url)
	default:
		return nil, errors.New("open database: the URL must start with postgres://, postgresql:// or sqlite://")
	}
	if err != nil {
		return nil, err
	}
	d.bound = bound{timeout: o.CallTimeout}
	if err := d.Ping(ctx); err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	return d, nil
}

func openPostgres(url string, o Options) (*DB, error) {
	// pgx redacts the password from its parse errors.
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres database: %w", err)
	}
	// Without a connect timeout, a server that accepts the connection but never answers holds the
	// caller until its own deadline, or forever at startup.
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = o.ConnectTimeout
	}
	// Bun writes every value into the statement's text, so no two statements share a text and pgx's
	// default (prepare each new text and cache it per connection) cost a Parse round trip and a plan
	// per call and held megabytes of statement texts per connection (issue 11). Statements without
	// parameters need none of the extended protocol: the simple protocol sends each in one message.
	// A default_query_exec_mode in the URL takes precedence.
	urlMode := strings.Contains(url, "default_query_exec_mode")
	if !urlMode {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	prepared := !urlMode && cfg.StatementCacheCapacity > 0
	if _, ok := cfg.RuntimeParams["statement_timeout"]; !ok {
		cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	}
	sqldb := sql.OpenDB(noReplayConnector{stdlib.GetConnector(*cfg)})
	sqldb.SetMaxOpenConns(postgresMaxOpenConns)
	sqldb.SetMaxIdleConns(postgresMaxIdleConns)
	sqldb.SetConnMaxLifetime(postgresConnMaxLifetime)
	sqldb.SetConnMaxIdleTime(postgresConnMaxIdleTime)
	return &DB{bun: bun.NewDB(sqldb, pgdialect.New()), dialect: DialectPostgres, prepared: prepared}, nil
}

// noReplayConnector makes pgx connections whose statements database/sql never sends twice. pgx's
// database/sql adapter reports a connection lost while a statement waited for its reply as
// driver.ErrBadConn ("conn closed", which it deems safe to retry), and database/sql then runs the
// statement again on another connection: a lost reply after a commit would insert a credential twice
// (the second attempt answering "credential exists") or count an event twice. A statement whose
// connection was already closed before it was sent is still retried.
type noReplayConnector struct{ driver.Connector }

// Connect implements driver.Connector.
func (c noReplayConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return noReplayConn{conn.(*stdlib.Conn)}, nil
}

// noReplayConn is a pgx connection whose Exec and Query hide driver.ErrBadConn behind errMaybeRan once
// the statement may have been sent; every other method is pgx's.
type noReplayConn struct{ *stdlib.Conn }

// ExecContext implements driver.ExecerContext.
func (c noReplayConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.Conn.Conn().IsClosed() {
		return nil, driver.ErrBadConn // nothing was sent: database/sql may take another connection
	}
	res, err := c.Conn.ExecContext(ctx, query, args)
	return res, maybeRan(err)
}

// QueryContext implements driver.QueryerContext.
func (c noReplayConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.Conn.Conn().IsClosed() {
		return nil, driver.ErrBadConn
	}
	rows, err := c.Conn.QueryContext(ctx, query, args)
	return rows, maybeRan(err)
}

func maybeRan(err error) error {
	if errors.Is(err, driver.ErrBadConn) {
		return &errMaybeRan{what: "postgres: the statement", cause: err}
	}
	return err
}

func openSQLite(url string) (*DB, error) {
	path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//")
	switch {
	case path == "":
		return nil, errors.New("open sqlite database: the URL has no file path (sqlite://path/to/file.db)")
	case strings.ContainsAny(path, "?#"):
		// The driver reads everything after '?' as its own parameters.
		return nil, errors.New("open sqlite database: the file path must not contain '?' or '#'")
	}
	sqldb, err := sql.Open("sqlite", path+"?"+sqlitePragmas)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database: %w", err)
	}
	// One connection: SQLite allows one writer at a time anyway, and a single connection rules out
	// SQLITE_BUSY between connections of this process. It also keeps a :memory: database alive, as
	// each connection to :memory: is a database of its own.
	sqldb.SetMaxOpenConns(1)
	sqldb.SetMaxIdleConns(1)
	sqldb.SetConnMaxLifetime(0)
	sqldb.SetConnMaxIdleTime(0)
	return &DB{bun: bun.NewDB(sqldb, sqlitedialect.New()), dialect: DialectSQLite}, nil
}

// Close closes the database's connections.
func (d *DB) Close() error {
	if err := d.bun.Close(); err != nil {
		return fmt.Errorf("close %s database: %w", d.dialect, err)
	}
	return nil
}

// Ping checks that the database answers, within the call timeout.
func (d *DB) Ping(ctx context.Context) (err error) {
	ctx, done := d.call(ctx, &err)
	defer done()
	if err := d.bun.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s database: %w", d.dialect, err)
	}
	return nil
}

// Dialect returns DialectPostgres or DialectSQLite.
func (d *DB) Dialect() string { return d.dialect }

// dbTime returns t as stored: in UTC, at the microsecond precision both PostgreSQL and the SQLite
// text encoding keep. Truncating before writing makes both dialects return identical values.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// dbTimePtr is dbTime for optional times.
func dbTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := dbTime(*t)
	return &v
}

// SQL returns the connection pool, for pool statistics (metrics).
func (d *DB) SQL() *sql.DB { return d.bun.DB }

// listPage answers every paged list of the stores: it returns the page p of the rows q selects, in
// q's order, each converted by convert, and the number of rows q selects on all pages. q selects one
// model, (*R)(nil), with its conditions and its ORDER BY, but no LIMIT or OFFSET; listPage adds them.
// p is normalized first (page 1, passkey.DefaultPerPage); it is not bounded here: the transport
// enforces passkey.MaxPerPage. A page beyond the end is an empty, non-nil list, read without a
// second statement.
//
// The count runs first, as q with count(*) for its columns and without its order, so it can be
// answered from an index alone; then, when the page holds any row, the page itself, which an index in
// q's order serves with no sort. On PostgreSQL this beats one statement with count(*) OVER (), which
// must read and sort every matching row whatever the page (about 3x slower on 200,000 audit events),
// and beats Bun's ScanAndCount, which runs the same two statements on two connections at once and
// cannot skip the page after an empty count. The two statements see different snapshots, so a
// concurrent change can make them disagree by the rows it added or removed.
func listPage[R, T any](ctx context.Context, q *bun.SelectQuery, p passkey.Page, convert func(R) (T, error)) ([]T, int, error) {
	count, err := q.Count(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("count: %w", err)
	}
	total := int(count)
	limit, offset, ok := pageWindow(p, total)
	if !ok {
		return []T{}, total, nil
	}
	var rows []R
	if err := q.Limit(limit).Offset(offset).Scan(ctx, &rows); err != nil {
		return nil, 0, fmt.Errorf("read page %d: %w", p.Normalized().Number, err)
	}
	list := make([]T, 0, len(rows))
	for _, row := range rows {
		v, err := convert(row)
		if err != nil {
			return nil, 0, err
		}
		list = append(list, v)
	}
	return list, total, nil
}

// pageWindow turns p into LIMIT and OFFSET. ok is false when the page holds no row: it starts at or
// past total, or its offset does not even fit an int64.
func pageWindow(p passkey.Page, total int) (limit, offset int64, ok bool) {
	p = p.Normalized()
	if int64(p.Number-1) > (math.MaxInt64-int64(p.Size))/int64(p.Size) {
		return 0, 0, false
	}
	off := int64(p.Number-1) * int64(p.Size)
	if off >= int64(total) {
		return 0, 0, false
	}
	return int64(p.Size), off, true
}
