package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/uptrace/bun"

	"github.com/passkey-server/passkey-server/webhooks"
)

// Webhook deliveries are queued with River (github.com/riverqueue/river): a job queue kept in the
// same database, so a delivery and its job are inserted in one transaction, several instances share
// the jobs without running one twice (SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL), and a job
// whose instance died is rescued by another. River's database/sql driver runs on Bun's pool
// (PostgreSQL through pgx's stdlib adapter), its SQLite driver on the embedded database.

// webhookQueue is the River queue of webhook deliveries.
const webhookQueue = "webhooks"

// deliveryArgs are the arguments of a delivery job: which delivery to attempt. The delivery row holds
// everything else, so the job table never holds a payload or a URL.
type deliveryArgs struct {
	TenantID   uuid.UUID `json:"tenant_id"`
	DeliveryID uuid.UUID `json:"delivery_id"`
}

// Kind implements river.JobArgs.
func (deliveryArgs) Kind() string { return "webhook_delivery" }

// InsertOpts implements river.JobArgsWithInsertOpts. The retry schedule is the webhooks package's
// (it snoozes the job between attempts, which River does not count); River's own attempts only
// count failures to reach the database, retried with River's backoff.
func (deliveryArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: webhookQueue, MaxAttempts: 25}
}

// Attempter makes one attempt of a delivery (webhooks.Sender).
type Attempter interface {
	Attempt(ctx context.Context, tenantID, deliveryID uuid.UUID) (webhooks.Result, error)
}

// WebhookRecordMargin is how long a delivery job may run beyond its attempt's timeout: reading the
// delivery, its endpoint and secrets before the request, and recording the attempt after it.
const WebhookRecordMargin = 15 * time.Second

// DefaultWebhookRescueAfter is WebhookOptions.RescueAfter's default for an attempt timeout: the job
// timeout (the attempt timeout + WebhookRecordMargin) + 1 min. A job still running after its timeout
// belongs to an instance that died (SIGKILL, OOM, a lost machine) or stopped dead (frozen, cut off
// from the database): a live instance cancels the attempt at the timeout and records it within the
// margin. The minute is slack for what can delay a live instance past that without it being dead
// (a stop-the-world pause, a slow database, clocks of the instances and the database that differ),
// where a rescue would send the message twice; a dead instance's delivery waits that much longer
// (and up to River's 30 s between two rescues), not River's default hour.
func DefaultWebhookRescueAfter(attemptTimeout time.Duration) time.Duration {
	return attemptTimeout + WebhookRecordMargin + time.Minute
}

// WebhookOptions configure the webhook store's queue. Zero values mean the defaults.
type WebhookOptions struct {
	// Workers is how many deliveries one instance attempts at once (default 20).
	Workers int
	// PollInterval is how often an instance looks for jobs other instances inserted or whose time
	// came (default 1 s; River's minimum is 1 ms). Jobs this instance inserts are fetched at once.
	PollInterval time.Duration
	// AttemptTimeout is the sender's bound of one attempt (webhooks.SenderOptions.Timeout; default
	// webhooks.DefaultTimeout): a delivery job may run it + WebhookRecordMargin.
	AttemptTimeout time.Duration
	// RescueAfter is how long a delivery job may stay running before the queue's leader takes its
	// instance for dead and schedules it again, for any instance (River's RescueStuckJobsAfter). It
	// must exceed the job timeout (default DefaultWebhookRescueAfter(AttemptTimeout)).
	RescueAfter time.Duration
	// ID names this instance in River's tables (default: River's own, host name and time).
	ID     string
	Logger *slog.Logger
}

// WebhookStore implements webhooks.Store, and runs the queue's workers (Run).
type WebhookStore struct {
	db *bun.DB
	bound
	client  *river.Client[*sql.Tx]
	sender  atomic.Pointer[Attempter]
	running atomic.Bool
	// jobTimeout bounds a delivery job: the attempt timeout + WebhookRecordMargin.
	jobTimeout time.Duration
}

// NewWebhookStore returns the webhook store of d with its River client. Nothing is delivered until
// SetSender and Run.
func NewWebhookStore(d *DB, o WebhookOptions) (*WebhookStore, error) {
	if o.Workers <= 0 {
		o.Workers = 20
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = webhooks.DefaultTimeout
	}
	if o.RescueAfter <= 0 {
		o.RescueAfter = DefaultWebhookRescueAfter(o.AttemptTimeout)
	}
	jobTimeout := o.AttemptTimeout + WebhookRecordMargin
	if o.RescueAfter <= jobTimeout {
		// River's rescuer would retry jobs of live instances: every slow attempt sent twice.
		return nil, fmt.Errorf("webhook queue: rescue after %s must exceed the job timeout %s (attempt timeout + %s)",
			o.RescueAfter, jobTimeout, WebhookRecordMargin)
	}
	s := &WebhookStore{db: d.bun, bound: d.bound, jobTimeout: jobTimeout}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &deliveryWorker{store: s}); err != nil {
		return nil, err
	}
	cfg := &river.Config{
		ID:                o.ID,
		Queues:            map[string]river.QueueConfig{webhookQueue: {MaxWorkers: o.Workers}},
		Workers:           workers,
		FetchPollInterval: o.PollInterval,
		FetchCooldown:     min(o.PollInterval, river.FetchCooldownDefault),
		// A job whose instance died while attempting it stays running until the leader's rescuer
		// (every 30 s) finds it older than RescueStuckJobsAfter and schedules it again (River's
		// default, an hour, held such a delivery that long). River requires it to be at least
		// JobTimeout, and its rescuer skips jobs younger than their worker's Timeout: both are the
		// job timeout here.
		JobTimeout:           jobTimeout,
		RescueStuckJobsAfter: o.RescueAfter,
		// River logs at info every start, stop and leader election: warnings are enough.
		Logger: o.Logger.With("component", "river"),
		// Finished jobs are kept a day (River's default); the deliveries table is the history.
		CompletedJobRetentionPeriod: 24 * time.Hour,
	}
	var err error
	if d.dialect == DialectPostgres {
		s.client, err = river.NewClient(riverdatabasesql.New(d.bun.DB), cfg)
	} else {
		s.client, err = river.NewClient[*sql.Tx](riversqlite.New(d.bun.DB), cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("webhook queue: %w", err)
	}
	return s, nil
}

// SetSender sets what attempts the deliveries; its attempts must end within the options'
// AttemptTimeout. Call it before Run.
func (s *WebhookStore) SetSender(a Attempter) { s.sender.Store(&a) }

// Run works the queue until ctx ends, then stops: it waits up to grace for the attempts under way and
// cancels those still running (their jobs run again at once on the next start, or on another
// instance).
func (s *WebhookStore) Run(ctx context.Context, grace time.Duration) error {
	if err := s.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start webhook queue: %w", err)
	}
	s.running.Store(true)
	<-ctx.Done()
	stop, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := s.client.Stop(stop); err != nil {
		hard, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return s.client.StopAndCancel(hard)
	}
	return nil
}

// deliveryWorker works delivery jobs.
type deliveryWorker struct {
	river.WorkerDefaults[deliveryArgs]
	store *WebhookStore
}

// Work implements river.Worker: one attempt; a retry is a snooze until the schedule's next time.
func (w *deliveryWorker) Work(ctx context.Context, job *river.Job[deliveryArgs]) error {
	a := w.store.sender.Load()
	if a == nil {
		return river.JobSnooze(time.Second)
	}
	res, err := (*a).Attempt(ctx, job.Args.TenantID, job.Args.DeliveryID)
	if err != nil {
		if ctx.Err() != nil {
			return river.JobSnooze(0) // shutting down: again at once, on the next start
		}
		return err
	}
	if res.Outcome == webhooks.Retry {
		return river.JobSnooze(res.Delay)
	}
	return nil
}

// Timeout implements river.Worker: the attempt's own timeout and time to record it.
func (w *deliveryWorker) Timeout(*river.Job[deliveryArgs]) time.Duration { return w.store.jobTimeout }

// migrateRiver applies River's own migrations (its job, leader and queue tables) after ours.
func (d *DB) migrateRiver(ctx context.Context) error {
	var err error
	if d.dialect == DialectPostgres {
		var m *rivermigrate.Migrator[*sql.Tx]
		if m, err = rivermigrate.New(riverdatabasesql.New(d.bun.DB), nil); err == nil {
			_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		}
	} else {
		var m *rivermigrate.Migrator[*sql.Tx]
		if m, err = rivermigrate.New[*sql.Tx](riversqlite.New(d.bun.DB), nil); err == nil {
			_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		}
	}
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	return nil
}

// webhookEndpointRow is a row of webhook_endpoints.
type webhookEndpointRow struct {
	bun.BaseModel `bun:"table:webhook_endpoints"`

	TenantID       uuid.UUID  `bun:"tenant_id,pk"`
	ID             uuid.UUID  `bun:"id,pk"`
	URL            string     `bun:"url"`
	Events         string     `bun:"events"`
	Description    string     `bun:"description"`
	Enabled        bool       `bun:"enabled"`
	DisabledReason string     `bun:"disabled_reason"`
	Secret         []byte     `bun:"secret"`
	PreviousSecret []byte     `bun:"previous_secret"`
	PreviousUntil  *time.Time `bun:"previous_until"`
	CreatedAt      time.Time  `bun:"created_at"`
	UpdatedAt      time.Time  `bun:"updated_at"`
}

func (r webhookEndpointRow) endpoint() (webhooks.Endpoint, error) {
	ep := webhooks.Endpoint{ID: r.ID, TenantID: r.TenantID, URL: r.URL, Description: r.Description, Enabled: r.Enabled,
		DisabledReason: r.DisabledReason, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if err := json.Unmarshal([]byte(r.Events), &ep.Events); err != nil {
		return ep, fmt.Errorf("decode events of webhook %s: %w", r.ID, err)
	}
	return ep, nil
}

// webhookDeliveryRow is a row of webhook_deliveries.
type webhookDeliveryRow struct {
	bun.BaseModel `bun:"table:webhook_deliveries"`

	TenantID       uuid.UUID `bun:"tenant_id,pk"`
	ID             uuid.UUID `bun:"id,pk"`
	EndpointID     uuid.UUID `bun:"endpoint_id"`
	EventType      string    `bun:"event_type"`
	Payload        string    `bun:"payload"`
	Status         string    `bun:"status"`
	Attempts       int       `bun:"attempts"`
	LastStatusCode int       `bun:"last_status_code"`
	LastError      string    `bun:"last_error"`
	CreatedAt      time.Time `bun:"created_at"`
	UpdatedAt      time.Time `bun:"updated_at"`
}

func (r webhookDeliveryRow) delivery() webhooks.Delivery {
	return webhooks.Delivery{ID: r.ID, TenantID: r.TenantID, EndpointID: r.EndpointID, EventType: r.EventType,
		Payload: []byte(r.Payload), Status: webhooks.Status(r.Status), Attempts: r.Attempts,
		LastStatusCode: r.LastStatusCode, LastError: r.LastError, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// CreateEndpoint implements webhooks.Store.
func (s *WebhookStore) CreateEndpoint(ctx context.Context, ep webhooks.Endpoint, secrets webhooks.Secrets) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	events, err := json.Marshal(ep.Events)
	if err != nil {
		return err
	}
	row := webhookEndpointRow{TenantID: ep.TenantID, ID: ep.ID, URL: ep.URL, Events: string(events), Description: ep.Description,
		Enabled: ep.Enabled, DisabledReason: ep.DisabledReason, Secret: secrets.Current, CreatedAt: dbTime(ep.CreatedAt), UpdatedAt: dbTime(ep.UpdatedAt)}
	return runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			return fmt.Errorf("insert webhook endpoint: %w", translate(err))
		}
		return bumpSubscriptions(ctx, tx)
	})
}

// ListEndpoints implements webhooks.Store.
func (s *WebhookStore) ListEndpoints(ctx context.Context, tenantID uuid.UUID) (_ []webhooks.Endpoint, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var rows []webhookEndpointRow
	if err := conn(ctx, s.db).NewSelect().Model(&rows).ExcludeColumn("secret", "previous_secret").
		Where("tenant_id = ?", tenantID).Order("created_at", "id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	out := make([]webhooks.Endpoint, 0, len(rows))
	for _, r := range rows {
		ep, err := r.endpoint()
		if err != nil {
			return nil, err
		}
		out = append(out, ep)
	}
	return out, nil
}

func (s *WebhookStore) endpointRow(ctx context.Context, tenantID, id uuid.UUID) (webhookEndpointRow, error) {
	var row webhookEndpointRow
	err := conn(ctx, s.db).NewSelect().Model(&row).Where("tenant_id = ? AND id = ?", tenantID, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return row, webhooks.ErrNotFound
	}
	if err != nil {
		return row, fmt.Errorf("get webhook endpoint: %w", err)
	}
	return row, nil
}

// GetEndpoint implements webhooks.Store.
func (s *WebhookStore) GetEndpoint(ctx context.Context, tenantID, id uuid.UUID) (_ webhooks.Endpoint, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	row, err := s.endpointRow(ctx, tenantID, id)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	return row.endpoint()
}

// UpdateEndpoint implements webhooks.Store.
func (s *WebhookStore) UpdateEndpoint(ctx context.Context, ep webhooks.Endpoint) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	events, err := json.Marshal(ep.Events)
	if err != nil {
		return err
	}
	return runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*webhookEndpointRow)(nil)).
			Set("url = ?", ep.URL).Set("events = ?", string(events)).Set("description = ?", ep.Description).
			Set("enabled = ?", ep.Enabled).Set("disabled_reason = ?", ep.DisabledReason).Set("updated_at = ?", dbTime(ep.UpdatedAt)).
			Where("tenant_id = ? AND id = ?", ep.TenantID, ep.ID).Exec(ctx)
		if err := affectedOne(res, err, webhooks.ErrNotFound, "update webhook endpoint"); err != nil {
			return err
		}
		return bumpSubscriptions(ctx, tx)
	})
}

// DeleteEndpoint implements webhooks.Store.
func (s *WebhookStore) DeleteEndpoint(ctx context.Context, tenantID, id uuid.UUID) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	return runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*webhookEndpointRow)(nil)).Where("tenant_id = ? AND id = ?", tenantID, id).Exec(ctx)
		if err := affectedOne(res, err, webhooks.ErrNotFound, "delete webhook endpoint"); err != nil {
			return err
		}
		return bumpSubscriptions(ctx, tx)
	})
}

// EndpointSecrets implements webhooks.Store.
func (s *WebhookStore) EndpointSecrets(ctx context.Context, tenantID, id uuid.UUID) (_ webhooks.Secrets, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	row, err := s.endpointRow(ctx, tenantID, id)
	if err != nil {
		return webhooks.Secrets{}, err
	}
	out := webhooks.Secrets{Current: row.Secret, Previous: row.PreviousSecret}
	if row.PreviousUntil != nil {
		out.PreviousUntil = row.PreviousUntil.UTC()
	}
	return out, nil
}

// RotateSecret implements webhooks.Store: one UPDATE, whose previous_secret = secret reads the row
// as it was before the statement (SQL's rule, PostgreSQL and SQLite alike).
func (s *WebhookStore) RotateSecret(ctx context.Context, tenantID, id uuid.UUID, current []byte, previousUntil time.Time) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	res, err := conn(ctx, s.db).NewUpdate().Model((*webhookEndpointRow)(nil)).
		Set("previous_secret = secret").Set("previous_until = ?", dbTime(previousUntil)).Set("secret = ?", current).
		Where("tenant_id = ? AND id = ?", tenantID, id).Exec(ctx)
	return affectedOne(res, err, webhooks.ErrNotFound, "rotate webhook secret")
}

// Subscriptions implements webhooks.Store.
func (s *WebhookStore) Subscriptions(ctx context.Context) (_ []webhooks.Subscription, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var rows []webhookEndpointRow
	if err := conn(ctx, s.db).NewSelect().Model(&rows).Column("tenant_id", "id", "events").Where("enabled").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list webhook subscriptions: %w", err)
	}
	out := make([]webhooks.Subscription, 0, len(rows))
	for _, r := range rows {
		sub := webhooks.Subscription{TenantID: r.TenantID, EndpointID: r.ID}
		if err := json.Unmarshal([]byte(r.Events), &sub.Events); err != nil {
			return nil, fmt.Errorf("decode events of webhook %s: %w", r.ID, err)
		}
		out = append(out, sub)
	}
	return out, nil
}

// SubscriptionsRevision implements webhooks.Store.
func (s *WebhookStore) SubscriptionsRevision(ctx context.Context) (_ int64, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var rev int64
	if err := conn(ctx, s.db).NewRaw("SELECT revision FROM webhook_subscriptions_revision WHERE id = 1").Scan(ctx, &rev); err != nil {
		return 0, fmt.Errorf("read webhook subscriptions revision: %w", err)
	}
	return rev, nil
}

// bumpSubscriptions counts the subscriptions' revision up, in the transaction of the change of the
// endpoints (migration 000012).
func bumpSubscriptions(ctx context.Context, tx bun.Tx) error {
	if _, err := tx.NewRaw("UPDATE webhook_subscriptions_revision SET revision = revision + 1 WHERE id = 1").Exec(ctx); err != nil {
		return fmt.Errorf("count the webhook subscriptions revision up: %w", err)
	}
	return nil
}

// Enqueue implements webhooks.Store: the deliveries and their jobs in one transaction, the one of
// ctx when it carries one (DB.Atomically: the change that caused the event), so that they exist, and
// will be sent, exactly when it commits.
func (s *WebhookStore) Enqueue(ctx context.Context, tenantID uuid.UUID, endpointIDs []uuid.UUID, eventType string, payload []byte) (_ []webhooks.Delivery, err error) {
	if len(endpointIDs) == 0 {
		return nil, nil
	}
	ctx, done := s.call(ctx, &err)
	defer done()
	var out []webhooks.Delivery
	err = runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		// The caller's list comes from its in-memory index, which may be a refresh interval old.
		var enabled []uuid.UUID
		if err := tx.NewSelect().Model((*webhookEndpointRow)(nil)).Column("id").
			Where("tenant_id = ? AND enabled AND id IN (?)", tenantID, bun.In(endpointIDs)).Scan(ctx, &enabled); err != nil {
			return fmt.Errorf("select webhook endpoints: %w", err)
		}
		if len(enabled) == 0 {
			return nil
		}
		now := dbTime(time.Now())
		rows := make([]webhookDeliveryRow, len(enabled))
		params := make([]river.InsertManyParams, len(enabled))
		out = make([]webhooks.Delivery, len(enabled))
		for i, ep := range enabled {
			rows[i] = webhookDeliveryRow{TenantID: tenantID, ID: newDeliveryID(), EndpointID: ep, EventType: eventType,
				Payload: string(payload), Status: string(webhooks.StatusPending), CreatedAt: now, UpdatedAt: now}
			params[i] = river.InsertManyParams{Args: deliveryArgs{TenantID: tenantID, DeliveryID: rows[i].ID}}
			out[i] = rows[i].delivery()
		}
		if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
			return fmt.Errorf("insert webhook deliveries: %w", translate(err))
		}
		if _, err := s.client.InsertManyTx(ctx, tx.Tx, params); err != nil {
			return fmt.Errorf("queue webhook deliveries: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListDeliveries implements webhooks.Store. webhook_deliveries_list_idx (tenant_id, endpoint_id,
// status, created_at, id) answers each status with a range scan already in the listing's order that
// stops after the page: one SELECT for one status, and for several (or all) the union of one such
// SELECT per status, each limited to the page, merged and cut to the page. So a page costs about
// a page's rows per status however long the endpoint's history, and a rare status (failed among
// thousands of successes) is found without reading the others; an index without status would have
// to read past every delivery of the other statuses.
func (s *WebhookStore) ListDeliveries(ctx context.Context, tenantID, endpointID uuid.UUID, f webhooks.DeliveryFilter) (_ []webhooks.Delivery, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	idb := conn(ctx, s.db)
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = webhooks.Statuses
	}
	branch := func(st webhooks.Status) *bun.SelectQuery {
		q := idb.NewSelect().Model((*webhookDeliveryRow)(nil)).
			Where("tenant_id = ? AND endpoint_id = ? AND status = ?", tenantID, endpointID, string(st))
		if f.After != nil {
			// A row value comparison: PostgreSQL and SQLite both take it as one range of the index.
			q = q.Where("(created_at, id) < (?, ?)", dbTime(f.After.CreatedAt), f.After.ID)
		}
		return q.OrderExpr("created_at DESC, id DESC").Limit(int64(f.Limit))
	}
	var rows []webhookDeliveryRow
	if len(statuses) == 1 {
		err = branch(statuses[0]).Scan(ctx, &rows)
	} else {
		// SELECT * FROM (…) AS s0 UNION ALL SELECT * FROM (…) AS s1 … ORDER BY … LIMIT: each branch
		// in a subquery, as neither dialect takes ORDER BY or LIMIT on a bare member of a UNION.
		union := ""
		args := make([]any, 0, len(statuses)+1)
		for i, st := range statuses {
			if i > 0 {
				union += " UNION ALL "
			}
			union += fmt.Sprintf("SELECT * FROM (?) AS s%d", i)
			args = append(args, branch(st))
		}
		union += " ORDER BY created_at DESC, id DESC LIMIT ?"
		err = idb.NewRaw(union, append(args, f.Limit)...).Scan(ctx, &rows)
	}
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	out := make([]webhooks.Delivery, len(rows))
	for i, r := range rows {
		out[i] = r.delivery()
	}
	return out, nil
}

// GetDelivery implements webhooks.Store.
func (s *WebhookStore) GetDelivery(ctx context.Context, tenantID, id uuid.UUID) (_ webhooks.Delivery, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var row webhookDeliveryRow
	err = conn(ctx, s.db).NewSelect().Model(&row).Where("tenant_id = ? AND id = ?", tenantID, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return webhooks.Delivery{}, webhooks.ErrDeliveryNotFound
	}
	if err != nil {
		return webhooks.Delivery{}, fmt.Errorf("get webhook delivery: %w", err)
	}
	return row.delivery(), nil
}

// Redeliver implements webhooks.Store: the delivery pending again, from a first attempt, and a new
// job, in one transaction.
func (s *WebhookStore) Redeliver(ctx context.Context, tenantID, id uuid.UUID) (_ webhooks.Delivery, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var row webhookDeliveryRow
	err = runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*webhookDeliveryRow)(nil)).
			Set("status = ?", string(webhooks.StatusPending)).Set("attempts = 0").Set("updated_at = ?", dbTime(time.Now())).
			Where("tenant_id = ? AND id = ? AND status <> ?", tenantID, id, string(webhooks.StatusPending)).Exec(ctx)
		if err := affectedOne(res, err, webhooks.ErrDeliveryNotFound, "redeliver webhook"); err != nil {
			return err
		}
		if err := tx.NewSelect().Model(&row).Where("tenant_id = ? AND id = ?", tenantID, id).Scan(ctx); err != nil {
			return err
		}
		_, err = s.client.InsertTx(ctx, tx.Tx, deliveryArgs{TenantID: tenantID, DeliveryID: id}, nil)
		return err
	})
	if err != nil {
		return webhooks.Delivery{}, err
	}
	return row.delivery(), nil
}

// RecordAttempt implements webhooks.Store.
func (s *WebhookStore) RecordAttempt(ctx context.Context, tenantID, id uuid.UUID, a webhooks.Attempt) (err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	_, err = conn(ctx, s.db).NewUpdate().Model((*webhookDeliveryRow)(nil)).
		Set("status = ?", string(a.Status)).Set("attempts = ?", a.Attempts).Set("last_status_code = ?", a.StatusCode).
		Set("last_error = ?", a.Error).Set("updated_at = ?", dbTime(a.At)).
		Where("tenant_id = ? AND id = ?", tenantID, id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("record webhook attempt: %w", err)
	}
	return nil
}

// DeleteFinishedBefore implements webhooks.Store. Deployment-wide, like the audit log's retention.
func (s *WebhookStore) DeleteFinishedBefore(ctx context.Context, before time.Time) (_ int64, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	res, err := conn(ctx, s.db).NewDelete().Model((*webhookDeliveryRow)(nil)).
		Where("status <> ? AND updated_at < ?", string(webhooks.StatusPending), dbTime(before)).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("delete old webhook deliveries: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete old webhook deliveries: %w", err)
	}
	return n, nil
}

// DisableEndpoint implements webhooks.Store.
func (s *WebhookStore) DisableEndpoint(ctx context.Context, tenantID, id uuid.UUID, reason string) (_ bool, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var changed bool
	err = runInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*webhookEndpointRow)(nil)).
			Set("enabled = ?", false).Set("disabled_reason = ?", reason).Set("updated_at = ?", dbTime(time.Now())).
			Where("tenant_id = ? AND id = ? AND enabled", tenantID, id).Exec(ctx)
		if err != nil {
			return fmt.Errorf("disable webhook endpoint: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil || n != 1 {
			return err
		}
		changed = true
		return bumpSubscriptions(ctx, tx)
	})
	return changed && err == nil, err
}

// SucceededSince implements webhooks.Store.
func (s *WebhookStore) SucceededSince(ctx context.Context, tenantID, endpointID uuid.UUID, since time.Time) (_ bool, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	return conn(ctx, s.db).NewSelect().Model((*webhookDeliveryRow)(nil)).
		Where("tenant_id = ? AND endpoint_id = ? AND status = ? AND updated_at > ?", tenantID, endpointID, string(webhooks.StatusSucceeded), dbTime(since)).
		Exists(ctx)
}

// QueueStats implements webhooks.Store.
func (s *WebhookStore) QueueStats(ctx context.Context) (_ webhooks.QueueStats, err error) {
	ctx, done := s.call(ctx, &err)
	defer done()
	var out struct {
		N      int        `bun:"n"`
		Oldest *time.Time `bun:"oldest"`
	}
	if err := conn(ctx, s.db).NewSelect().Model((*webhookDeliveryRow)(nil)).ColumnExpr("count(*) AS n, min(created_at) AS oldest").
		Where("status = ?", string(webhooks.StatusPending)).Scan(ctx, &out); err != nil {
		return webhooks.QueueStats{}, fmt.Errorf("webhook queue stats: %w", err)
	}
	st := webhooks.QueueStats{Pending: out.N}
	if out.Oldest != nil {
		st.OldestPending = out.Oldest.UTC()
	}
	return st, nil
}

// affectedOne turns an UPDATE or DELETE of one row by key into notFound when no row matched.
func affectedOne(res sql.Result, err error, notFound error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return notFound
	}
	return nil
}

func newDeliveryID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}
