package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/archive"
	"github.com/passkey-server/passkey-server/attestation"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/metrics"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
	"github.com/passkey-server/passkey-server/webhooks"
)

// serviceInput is what the domain services are built from: the stores and the settings that are not
// the transport's.
type serviceInput struct {
	DB       *db.DB
	Sessions credentials.SessionStore
	Sealer   *signing.Sealer
	// AAGUIDs names authenticators (credentials.DefaultAAGUIDTable when nil).
	AAGUIDs *credentials.AAGUIDTable
	// Metadata is the FIDO metadata (nil: none).
	Metadata *attestation.Source
	// PublicURL is the base of the tokens' issuer.
	PublicURL string
	// KeyOverlap, KeyActivation and CacheRefresh: see tenant.Options.RotationOverlap and
	// KeyActivation and tenant.DirectoryOptions.RefreshInterval (their defaults when zero).
	KeyOverlap    time.Duration
	KeyActivation time.Duration
	CacheRefresh  time.Duration
	// TenantCache is the most tenants the directory keeps (tenant.DirectoryOptions.CacheSize).
	TenantCache int
	// Now is the clock of the tenants and their directory (time.Now when nil), for tests of what
	// changes with time (signing key activation and expiry).
	Now func() time.Time
	// Metrics counts the ceremonies of the event bus when not nil.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Webhooks are the webhook delivery settings.
	Webhooks webhookSettings
}

// webhookSettings configure webhook delivery (zero values: the defaults of the webhooks and db
// packages).
type webhookSettings struct {
	// AllowPrivate and AllowHTTP: PASSKEY_WEBHOOK_ALLOW_PRIVATE and PASSKEY_WEBHOOK_ALLOW_HTTP.
	AllowPrivate bool
	AllowHTTP    bool
	// Timeout bounds one attempt (PASSKEY_WEBHOOK_TIMEOUT); Schedule is the wait before each attempt
	// (tests shorten both).
	Timeout  time.Duration
	Schedule []time.Duration
	// RescueAfter: PASSKEY_WEBHOOK_RESCUE_AFTER, how long an attempt whose instance died holds its
	// delivery (zero: db.DefaultWebhookRescueAfter of Timeout).
	RescueAfter time.Duration
	// TLS is the delivery client's TLS configuration (tests trust their receiver's certificate).
	TLS *tls.Config
	// PollInterval: how often the queue looks for jobs; Refresh: how often the subscriptions reload.
	PollInterval time.Duration
	Refresh      time.Duration
	// InstanceID names the instance in River's tables (tests run several in one process).
	InstanceID string
}

// services are the domain services of one instance, wired to one event bus that the audit log and
// metrics subscribe to. serve and the tests build them with newServices.
type services struct {
	bus          *passkey.Bus
	audit        *audit.Recorder
	directory    *tenant.Directory
	keys         *tenant.Keys
	tenants      *tenant.Service
	credentials  *credentials.Service
	transactions *transactions.Service
	auditLog     *audit.Log
	archive      *archive.Service
	metadata     *attestation.Source
	// sweeper deletes the sessions of deleted tenants after the admin request has answered.
	sweeper *credentials.SessionSweeper
	// Webhooks: the admin service, the bus subscriber that queues deliveries, the store whose River
	// client works the queue.
	webhooks      *webhooks.Service
	webhookIndex  *webhooks.Index
	webhookStore  *db.WebhookStore
	webhookSender *webhooks.Sender
	log           *slog.Logger
}

// newServices builds the domain services on in's stores.
func newServices(in serviceInput) *services {
	if in.AAGUIDs == nil {
		in.AAGUIDs = credentials.DefaultAAGUIDTable()
	}
	auditStore := db.NewAuditStore(in.DB)
	s := &services{audit: audit.NewRecorder(auditStore, in.Logger), metadata: in.Metadata, sweeper: credentials.NewSessionSweeper(in.Sessions, in.Logger, nil)}
	s.bus = passkey.NewBus(s.audit)
	// A change whose events the webhook outbox wants commits with its deliveries (passkey.Bus.Commit).
	s.bus.UseTransactions(in.DB)
	if in.Metrics != nil {
		s.bus.Subscribe(in.Metrics)
	}
	tenantStore := db.NewTenantStore(in.DB)
	s.directory = tenant.NewDirectory(tenant.DirectoryOptions{Store: tenantStore, Sealer: in.Sealer, Now: in.Now,
		RefreshInterval: in.CacheRefresh, CacheSize: in.TenantCache, PublicURL: in.PublicURL, Logger: in.Logger})
	s.keys = tenant.NewKeys(s.directory, tenantStore, nil, in.Logger)
	s.tenants = tenant.NewService(tenant.Options{Store: tenantStore, Sealer: in.Sealer, Directory: s.directory,
		Now: in.Now, Events: s.bus, RotationOverlap: in.KeyOverlap, KeyActivation: in.KeyActivation, OnDelete: s.sweeper.DeleteTenant, Logger: in.Logger})
	s.credentials = credentials.NewService(credentials.Options{Store: db.NewCredentialStore(in.DB), Sessions: in.Sessions,
		AAGUIDs: in.AAGUIDs, Metadata: in.Metadata, Events: s.bus, Logger: in.Logger})
	s.transactions = transactions.NewService(db.NewTransactionStore(in.DB), s.credentials, time.Now)
	s.auditLog = audit.NewLog(auditStore, s.tenants)
	s.archive = archive.NewService(s.tenants, db.NewArchiveStore(in.DB), s.bus)
	s.wireWebhooks(in)
	return s
}

// wireWebhooks builds the webhook services and subscribes the index to the bus.
func (s *services) wireWebhooks(in serviceInput) {
	w := in.Webhooks
	s.log = in.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	store, err := db.NewWebhookStore(in.DB, db.WebhookOptions{PollInterval: w.PollInterval, AttemptTimeout: w.Timeout,
		RescueAfter: w.RescueAfter, ID: w.InstanceID, Logger: in.Logger})
	if err != nil {
		panic(err) // only a River configuration this code makes can fail (the settings are validated)
	}
	s.webhookStore = store
	s.webhookIndex = webhooks.NewIndex(store, w.Refresh, in.Logger)
	s.bus.Subscribe(s.webhookIndex)
	so := webhooks.SenderOptions{Store: store, Sealer: in.Sealer, Events: s.bus, AllowPrivate: w.AllowPrivate,
		Timeout: w.Timeout, Schedule: w.Schedule, TLS: w.TLS, Logger: in.Logger}
	if in.Metrics != nil {
		so.Observer = in.Metrics
		_ = in.Metrics.RegisterWebhookQueue(func(ctx context.Context) (metrics.WebhookQueueStats, error) {
			st, err := store.QueueStats(ctx)
			return metrics.WebhookQueueStats{Pending: st.Pending, OldestPending: st.OldestPending}, err
		})
	}
	s.webhookSender = webhooks.NewSender(so)
	store.SetSender(s.webhookSender)
	s.webhooks = webhooks.NewService(webhooks.Options{Store: store, Sealer: in.Sealer, Tenants: tenantExists{s.tenants},
		Index: s.webhookIndex, AllowPrivate: w.AllowPrivate, AllowHTTP: w.AllowHTTP, Now: in.Now, Logger: in.Logger})
}

// tenantExists adapts tenant.Service to webhooks.Tenants.
type tenantExists struct{ s *tenant.Service }

func (t tenantExists) Exists(ctx context.Context, id uuid.UUID) error {
	_, err := t.s.Get(ctx, id)
	return err
}

// http returns what the transport layer serves.
func (s *services) http() httpapi.Services {
	return httpapi.Services{Tenants: s.tenants, Directory: s.directory, Keys: s.keys, Credentials: s.credentials,
		Transactions: s.transactions, AuditLog: s.auditLog, Metadata: s.metadata, Events: s.bus, Webhooks: s.webhooks, Archive: s.archive}
}

// run runs the background work of the services until ctx ends (the directory's refresh, the API keys'
// last-use writes, the audit log's batched inserts, the sweep of deleted tenants' sessions, the webhook
// subscriptions' reload and the webhook queue's workers) and closes
// the returned channel when all of it has stopped, after writing what was pending (a sweep in progress
// is cut short: what it leaves expires), and the refresh of the FIDO metadata. Stop the HTTP servers
// first.
func (s *services) run(ctx context.Context) <-chan struct{} {
	const workers = 7
	done := make(chan struct{})
	stopped := make(chan struct{}, workers)
	go func() { s.directory.Run(ctx); stopped <- struct{}{} }()
	go func() { s.keys.Run(ctx); stopped <- struct{}{} }()
	go func() { s.audit.Run(ctx); stopped <- struct{}{} }()
	go func() { s.sweeper.Run(ctx); stopped <- struct{}{} }()
	go func() { s.webhookIndex.Run(ctx); stopped <- struct{}{} }()
	go func() {
		// Attempts under way get a few seconds to finish; the rest run again on the next start.
		if err := s.webhookStore.Run(ctx, 5*time.Second); err != nil {
			s.log.Error("webhook queue", "error", err)
		}
		stopped <- struct{}{}
	}()
	go func() { s.metadata.Run(ctx); stopped <- struct{}{} }()
	go func() {
		for range workers {
			<-stopped
		}
		close(done)
	}()
	return done
}
