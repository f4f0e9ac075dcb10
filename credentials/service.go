package credentials

import (
	"log/slog"
	"time"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/attestation"
)

// Options configure a Service.
type Options struct {
	Store    Store
	Sessions SessionStore
	// AAGUIDs names new credentials (nil: no names).
	AAGUIDs *AAGUIDTable
	// Metadata is the FIDO metadata that registrations are judged against and logins checked with
	// (nil: none; attestations are still judged, without it).
	Metadata *attestation.Source
	// Events receives the ceremony steps and changes, each change with its events
	// (passkey.Bus.Commit); nil drops them.
	Events *passkey.Bus
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service runs registration and login ceremonies and manages credentials and users.
type Service struct {
	store    Store
	sessions SessionStore
	aaguids  *AAGUIDTable
	metadata *attestation.Source
	events   *passkey.Bus
	now      func() time.Time
	log      *slog.Logger
}

// NewService returns a ceremony service.
func NewService(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{store: o.Store, sessions: o.Sessions, aaguids: o.AAGUIDs, metadata: o.Metadata, events: o.Events, now: o.Now, log: o.Logger}
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// Events is the bus the service emits to, for services that compose its ceremonies (transactions).
func (s *Service) Events() *passkey.Bus { return s.events }
