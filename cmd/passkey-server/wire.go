package main

import (
	"context"
	"log/slog"
	"time"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/archive"
	"github.com/passkey-server/passkey-server/audit"
	"github.com/passkey-server/passkey-server/credentials"
	"github.com/passkey-server/passkey-server/db"
	"github.com/passkey-server/passkey-server/httpapi"
	"github.com/passkey-server/passkey-server/metrics"
	"github.com/passkey-server/passkey-server/signing"
	"github.com/passkey-server/passkey-server/tenant"
	"github.com/passkey-server/passkey-server/transactions"
)

// serviceInput is what the domain services are built from: the stores and the settings that are not
// the transport's.
type serviceInput struct {
	DB       *db.DB
	Sessions credentials.SessionStore
	Sealer   *signing.Sealer
	// AAGUIDs names authenticators (credentials.DefaultAAGUIDTable when nil).
	AAGUIDs *credentials.AAGUIDTable
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
	// sweeper deletes the sessions of deleted tenants after the admin request has answered.
	sweeper *credentials.SessionSweeper
}

// newServices builds the domain services on in's stores.
func newServices(in serviceInput) *services {
	if in.AAGUIDs == nil {
		in.AAGUIDs = credentials.DefaultAAGUIDTable()
	}
	auditStore := db.NewAuditStore(in.DB)
	s := &services{audit: audit.NewRecorder(auditStore, in.Logger), sweeper: credentials.NewSessionSweeper(in.Sessions, in.Logger, nil)}
	s.bus = passkey.NewBus(s.audit)
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
		AAGUIDs: in.AAGUIDs, Events: s.bus, Logger: in.Logger})
	s.transactions = transactions.NewService(db.NewTransactionStore(in.DB), s.credentials, time.Now)
	s.auditLog = audit.NewLog(auditStore, s.tenants)
	s.archive = archive.NewService(s.tenants, db.NewArchiveStore(in.DB), s.bus)
	return s
}

// http returns what the transport layer serves.
func (s *services) http() httpapi.Services {
	return httpapi.Services{Tenants: s.tenants, Directory: s.directory, Keys: s.keys, Credentials: s.credentials,
		Transactions: s.transactions, AuditLog: s.auditLog, Archive: s.archive, Events: s.bus}
}

// run runs the background work of the services until ctx ends (the directory's refresh, the API keys'
// last-use writes, the audit log's batched inserts, the sweep of deleted tenants' sessions) and closes
// the returned channel when all of it has stopped, after writing what was pending (a sweep in progress
// is cut short: what it leaves expires). Stop the HTTP servers first.
func (s *services) run(ctx context.Context) <-chan struct{} {
	const workers = 4
	done := make(chan struct{})
	stopped := make(chan struct{}, workers)
	go func() { s.directory.Run(ctx); stopped <- struct{}{} }()
	go func() { s.keys.Run(ctx); stopped <- struct{}{} }()
	go func() { s.audit.Run(ctx); stopped <- struct{}{} }()
	go func() { s.sweeper.Run(ctx); stopped <- struct{}{} }()
	go func() {
		for range workers {
			<-stopped
		}
		close(done)
	}()
	return done
}
