package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// ConfigSource is where the edge learns its configuration: the controller's
// device API (device.Client) in production, a fake in tests.
type ConfigSource interface {
	DeviceConfig(ctx context.Context) (api.DeviceConfig, error)
}

// edgeApplier is the part of the Engine the Syncer drives.
type edgeApplier interface {
	Apply(api.DeviceConfig) error
	Revoke(reason string)
}

// Syncer polls a ConfigSource and applies what changed. When the source is
// unreachable it keeps the last known configuration; when the credential is
// revoked or the key reset it tears the tunnel down and stops.
type Syncer struct {
	Source   ConfigSource
	Engine   edgeApplier
	Save     func(api.DeviceConfig) error // persists a newly applied config; may be nil
	Interval time.Duration
	Timeout  time.Duration
	Logger   *slog.Logger
	Now      func() time.Time

	mu     sync.Mutex
	status SyncStatus
	gen    uint64
	done   bool
	// unsaved is an applied configuration Save could not write (a full
	// or read-only disk): saved again at every poll until it succeeds.
	unsaved *api.DeviceConfig
}

// NewSyncer returns a Syncer starting from the configuration currently
// applied (generation gen).
func NewSyncer(src ConfigSource, eng edgeApplier, gen uint64) *Syncer {
	return &Syncer{Source: src, Engine: eng, gen: gen, Interval: 5 * time.Second, Timeout: 10 * time.Second,
		status: SyncStatus{Mode: "controller", State: SyncStarting, Generation: gen, SavedGeneration: gen}}
}

// Status returns the sync state.
func (s *Syncer) Status() SyncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Run polls until ctx ends or the device is revoked.
func (s *Syncer) Run(ctx context.Context) {
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		if !s.Once(ctx) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once does one poll and reports whether syncing should go on.
func (s *Syncer) Once(ctx context.Context) bool {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, s.Timeout)
	cfg, err := s.Source.DeviceConfig(cctx)
	cancel()
	at := now()

	// The engine is called without s.mu held: Engine.Status reads the
	// sync status while holding its own lock.
	var ae *api.Error
	if errors.As(err, &ae) && (ae.Code == api.CodeRevoked || ae.Code == api.CodeKeyReset || ae.Code == api.CodeReleased) {
		state, why := SyncRevoked, "the controller revoked this device"
		switch ae.Code {
		case api.CodeKeyReset:
			state, why = SyncKeyReset, "the device key was reset on the controller; register again (vcpe register)"
		case api.CodeReleased:
			state, why = SyncReleased, "this device gave its registration back (vcpe uninstall); install again to rejoin"
		}
		if ae.Message != "" {
			why += ": " + ae.Message
		}
		log.Warn("tunnel torn down", "reason", why)
		s.Engine.Revoke(why)
		s.mu.Lock()
		s.status.LastAttempt, s.status.State, s.status.LastError, s.done = at, state, ae.Error(), true
		s.mu.Unlock()
		return false
	}
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status.State != SyncUnreachable {
			log.Warn("controller sync failed; keeping the last known configuration", "err", err)
		}
		s.status.LastAttempt, s.status.State, s.status.LastError = at, SyncUnreachable, err.Error()
		return true
	}
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	if cfg.Generation != gen {
		if err := s.Engine.Apply(cfg); err != nil {
			log.Error("apply device config", "generation", cfg.Generation, "err", err)
			s.mu.Lock()
			s.status.LastAttempt, s.status.State, s.status.LastError = at, SyncApplyFailed, err.Error()
			s.mu.Unlock()
			return true
		}
		log.Info("applied device config", "generation", cfg.Generation, "routes", len(cfg.Routes))
		s.mu.Lock()
		s.unsaved = &cfg
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.gen = cfg.Generation
	unsaved := s.unsaved
	s.mu.Unlock()
	var saveErr error
	if unsaved != nil && s.Save != nil {
		if saveErr = s.Save(*unsaved); saveErr != nil {
			log.Error("save device config; the running configuration is newer than the state file", "generation", unsaved.Generation, "err", saveErr)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.LastAttempt, s.status.Generation = at, s.gen
	if saveErr != nil {
		s.status.State = SyncSaveFailed
		s.status.LastError = fmt.Sprintf("%v: the tunnel runs generation %d but the state file holds %d; it is saved again at every poll (free space in the state dir)",
			saveErr, unsaved.Generation, s.status.SavedGeneration)
		return true
	}
	if unsaved != nil {
		s.status.SavedGeneration = unsaved.Generation
		if s.unsaved == unsaved {
			s.unsaved = nil
		}
	}
	s.status.State, s.status.LastError = SyncOK, ""
	s.status.LastSuccess = at
	return true
}
