package controller

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller/store"
)

// Replicas. With a shared store (PostgreSQL) several controller processes
// serve one database. Each keeps the whole state in memory as a cache of
// the store, at a store revision (s.rev):
//
//   - Every decision runs under lockWrite: the store's cluster-wide write
//     lock, then s.mu, then the changes since s.rev, so it is made on the
//     latest committed state by one replica at a time, and written before
//     the lock is released. Releasing it records the store's revision as
//     the cache's (what was written under the lock is in memory too), so a
//     replica making many decisions in a row reads one number each time,
//     not its own changes. Only settings the cache does not use (the
//     overlay, the shared identity) are written outside the lock.
//   - Reads (device and hub configurations, admin lists) answer from the
//     cache. The store announces every commit (LISTEN/NOTIFY); the watch
//     loop catches up at once, so a change made through one replica
//     reaches the others' caches, and their long-polling devices, within
//     milliseconds. While the announcement channel is down, every read
//     asks the store for its revision first, so a revoked credential is
//     never honoured on stale state.
//   - A SQLite store has one process: the cache is the state, lockWrite is
//     s.mu, and there is nothing to catch up on.

// lockWrite takes the cluster-wide write lock and s.mu, and brings the
// cache up to date. unlock releases both.
func (s *Server) lockWrite(ctx context.Context) (unlock func(), err error) {
	if !s.store.Shared() {
		s.mu.Lock()
		return s.mu.Unlock, nil
	}
	unlockStore, err := s.store.Lock(ctx)
	if err != nil {
		return nil, internal(err)
	}
	s.mu.Lock()
	if err := s.catchUpLocked(ctx); err != nil {
		s.mu.Unlock()
		unlockStore()
		return nil, internal(err)
	}
	return func() {
		// Nobody else wrote while we held the lock, and our own writes are
		// in memory: the cache is the store at its current revision, so
		// the next catch-up has nothing to read.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if rev, err := s.store.Revision(rctx); err == nil && rev > s.rev {
			s.rev = rev
		}
		cancel()
		s.mu.Unlock()
		unlockStore()
	}, nil
}

// freshen brings the cache up to date before a read when the store's
// announcements may have been missed (shared store, watch not live).
func (s *Server) freshen(ctx context.Context) error {
	if !s.store.Shared() || s.live.Load() {
		return nil
	}
	rev, err := s.store.Revision(ctx)
	if err != nil {
		return internal(err)
	}
	s.mu.RLock()
	cur := s.rev
	s.mu.RUnlock()
	if rev == cur {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.catchUpLocked(ctx); err != nil {
		return internal(err)
	}
	return nil
}

// knowDevice catches up when sn is not in the cache of a shared store: it
// may have been created through another replica a moment ago.
func (s *Server) knowDevice(ctx context.Context, sn string) error {
	if !s.store.Shared() {
		return nil
	}
	s.mu.RLock()
	_, ok := s.devices[sn]
	s.mu.RUnlock()
	if ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.catchUpLocked(ctx); err != nil {
		return internal(err)
	}
	return nil
}

// catchUpLocked applies the store's changes since s.rev.
func (s *Server) catchUpLocked(ctx context.Context) error {
	if rev, err := s.store.Revision(ctx); err != nil {
		return err
	} else if rev == s.rev {
		return nil
	}
	ch, err := s.store.Changes(ctx, s.rev)
	if err != nil {
		return err
	}
	if ch.Rev == s.rev {
		return nil
	}
	gen := s.gen
	s.applyLocked(ch)
	if s.gen != gen {
		s.watch.notify()
		s.pub.poke()
	}
	return nil
}

// watchStore follows the store's announcements until ctx ends.
func (s *Server) watchStore(ctx context.Context) {
	kick := make(chan struct{}, 1)
	go s.store.Watch(ctx, func(live bool) {
		s.live.Store(live)
		if live {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	})
	if !s.store.Shared() {
		return
	}
	// A safety net: catch up every few seconds even without an
	// announcement.
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-t.C:
		}
		s.mu.Lock()
		if err := s.catchUpLocked(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("catch up with the store", "err", err)
		}
		s.mu.Unlock()
	}
}

// applyLocked applies a snapshot (Full: replacing everything) or the
// changes since s.rev to the cache.
func (s *Server) applyLocked(snap *store.Snapshot) {
	if snap.Full {
		s.instances = map[string]*store.Instance{}
		s.instByName = map[string]string{}
		s.devices = map[string]*store.Device{}
		s.instDevices = map[string][]string{}
		s.ccns = map[string]*store.CCN{}
		s.ccnByName = map[string]string{}
		s.members = map[string]map[string]bool{}
		s.creds = map[[32]byte]*store.Credential{}
		s.validCred = map[string][32]byte{}
		s.byPubKey = map[api.Key]string{}
		s.overlayUsed = map[netip.Addr]bool{}
		s.hubs = map[string]*store.Hub{}
	}
	s.invalidateGroupLocked()
	for k, v := range snap.Meta {
		if k == "generation" {
			if g, err := strconv.ParseUint(v, 10, 64); err == nil && g > s.gen {
				s.gen = g
			}
		}
		if name, ok := strings.CutPrefix(k, hubCredPrefix); ok {
			s.setHubCredLocked(name, v)
		}
		if id, ok := strings.CutPrefix(k, activeMetaPrefix); ok {
			if s.activeOverride == nil {
				s.activeOverride = map[string]string{}
			}
			s.activeOverride[id] = v
		}
	}
	for i := range snap.CCNs {
		c := snap.CCNs[i]
		s.ccns[c.ID] = &c
		s.ccnByName[c.Name] = c.ID
		if s.members[c.ID] == nil {
			s.members[c.ID] = map[string]bool{}
		}
	}
	for _, id := range snap.Deleted {
		// Its credentials answer "revoked", as on the replica that
		// deleted it.
		s.dropInstanceLocked(id, store.CredRevoked)
	}
	for i := range snap.Instances {
		s.dropInstanceLocked(snap.Instances[i].ID, "")
	}
	for i := range snap.Instances {
		in := snap.Instances[i]
		s.instances[in.ID] = &in
		s.instByName[in.Name] = in.ID
		if in.CCN != "" {
			if s.members[in.CCN] == nil {
				s.members[in.CCN] = map[string]bool{}
			}
			s.members[in.CCN][in.ID] = true
		}
	}
	for i := range snap.Devices {
		d := snap.Devices[i]
		s.devices[d.SN] = &d
		s.instDevices[d.InstanceID] = append(s.instDevices[d.InstanceID], d.SN)
		s.overlayUsed[d.Overlay] = true
		s.seq = max(s.seq, d.RegisteredSeq)
		if !d.PublicKey.IsZero() {
			s.byPubKey[d.PublicKey] = d.SN
		}
	}
	s.applyHubsLocked(snap)
	if snap.Full || s.credsBySN == nil {
		s.credsBySN = map[string][][32]byte{}
	}
	for i := range snap.Credentials {
		c := snap.Credentials[i]
		s.creds[[32]byte(c.Hash)] = &c
		s.credsBySN[c.SN] = append(s.credsBySN[c.SN], [32]byte(c.Hash))
		if c.State == store.CredValid {
			s.validCred[c.SN] = [32]byte(c.Hash)
		}
	}
	s.rev = snap.Rev
}

// dropInstanceLocked removes an instance and its devices from the cache;
// their credentials are forgotten (credState "") or marked credState.
func (s *Server) dropInstanceLocked(id, credState string) {
	in := s.instances[id]
	if in == nil {
		return
	}
	for _, sn := range s.instDevices[id] {
		d := s.devices[sn]
		if d == nil {
			continue
		}
		delete(s.overlayUsed, d.Overlay)
		if s.byPubKey[d.PublicKey] == sn {
			delete(s.byPubKey, d.PublicKey)
		}
		delete(s.devices, sn)
		if credState != "" {
			s.dropCredsLocked(sn, credState)
			continue
		}
		// Reloaded: forget its credentials without a pass over all of
		// them (the store's rows come back with the instance).
		if h, ok := s.validCred[sn]; ok {
			delete(s.creds, h)
			delete(s.validCred, sn)
		}
		for _, h := range s.credsBySN[sn] {
			if c := s.creds[h]; c != nil && c.SN == sn {
				delete(s.creds, h)
			}
		}
		delete(s.credsBySN, sn)
	}
	delete(s.instDevices, id)
	delete(s.instances, id)
	if s.instByName[in.Name] == id {
		delete(s.instByName, in.Name)
	}
	if in.CCN != "" {
		delete(s.members[in.CCN], id)
	}
}
