package controller

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller/store"
)

// HubConfig returns the hub dataplane's desired state now: every registered
// device that is not revoked, with its key and overlay /32, plus the
// instance's advertised prefixes for the active device of each instance.
//
// It is the view of the hub the controller runs itself (Options.HubName)
// when hubs have registered; see HubConfigFor.
func (s *Server) HubConfig() api.HubConfig {
	name := ""
	if s.opts.EmbeddedHub {
		name = s.opts.HubName
	}
	return s.HubConfigFor(name)
}

func (s *Server) hubConfigUnsorted() api.HubConfig {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.baseHubConfigLocked(s.groupLocked())
}

// baseHubConfigLocked is the hub configuration with every peer, seen
// from no hub in particular.
func (s *Server) baseHubConfigLocked(g *hubGroup) api.HubConfig {
	hc := api.HubConfig{
		Generation:     s.gen,
		Overlay:        s.opts.Overlay,
		HubOverlayAddr: s.hubAddr,
		CloudPrefixes:  slices.Clone(s.opts.CloudPrefixes),
		Peers:          []api.HubPeer{},
	}
	for id, in := range s.instances {
		active := s.activeLocked(id)
		for _, sn := range s.instDevices[id] {
			d := s.devices[sn]
			if d.Status != store.StatusRegistered {
				continue
			}
			p := api.HubPeer{
				SN: d.SN, InstanceID: id, CCN: in.CCN, PublicKey: d.PublicKey,
				OverlayAddr: d.Overlay, AllowedIPs: []netip.Prefix{netip.PrefixFrom(d.Overlay, 32)},
				Active: sn == active, Hubs: g.assign[id],
			}
			// An instance in no CCN gets nothing routed: only its overlay
			// address reaches the hub.
			if p.Active && in.CCN != "" {
				p.AllowedIPs = append(p.AllowedIPs, in.Advertised...)
			}
			hc.Peers = append(hc.Peers, p)
		}
	}
	s.dropSharedPrefixesLocked(hc.Peers)
	return hc
}

// dropSharedPrefixesLocked keeps every routed prefix on one peer only.
// The controller refuses overlapping advertisements, so this only acts on
// state stored before that check existed: the device that registered
// first keeps an overlapping prefix, the other loses it (logged), rather
// than the hub's single AllowedIPs trie moving it to whichever peer it
// configured last.
func (s *Server) dropSharedPrefixesLocked(peers []api.HubPeer) {
	order := make([]int, len(peers))
	for i := range order {
		order[i] = i
	}
	seq := func(i int) uint64 { return s.devices[peers[i].SN].RegisteredSeq }
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(seq(a), seq(b)) })
	var held prefixSet
	for _, i := range order {
		p := &peers[i]
		kept := p.AllowedIPs[:1] // the overlay /32 is unique by construction
		for _, q := range p.AllowedIPs[1:] {
			if held.overlaps(q) {
				s.log.Warn("prefix held by two instances: not routed to the later one", "prefix", q, "sn", p.SN)
				continue
			}
			held.add(q)
			kept = append(kept, q)
		}
		p.AllowedIPs = kept
	}
}

// prefixSet answers "does p overlap a prefix of the set" in at most one
// lookup per prefix length, so checking every routed prefix of a large
// fleet stays linear: two prefixes overlap when one contains the other.
type prefixSet struct {
	held  map[netip.Prefix]bool // the prefixes, masked
	above map[netip.Prefix]bool // every prefix containing one of them
}

func (ps *prefixSet) add(p netip.Prefix) {
	if ps.held == nil {
		ps.held, ps.above = map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
	}
	p = p.Masked()
	ps.held[p] = true
	for l := p.Bits(); l >= 0; l-- {
		a := netip.PrefixFrom(p.Addr(), l).Masked()
		if ps.above[a] {
			break // and all shorter ones
		}
		ps.above[a] = true
	}
}

func (ps *prefixSet) overlaps(p netip.Prefix) bool {
	p = p.Masked()
	if ps.above[p] { // p contains (or is) a held prefix
		return true
	}
	for l := p.Bits() - 1; l >= 0; l-- { // a held prefix contains p
		if ps.held[netip.PrefixFrom(p.Addr(), l).Masked()] {
			return true
		}
	}
	return false
}

// SetActive records the hub's arbiter's decision that sn is now the active
// device of instance instID (a failover). The controller keeps membership;
// the hub decides roles live from the data path and reports them here, so
// DeviceConfig.Role, routes list and instance show agree with the hub.
// The choice is stored, so a restart of vcpe-hub does not move the role
// back.
func (s *Server) SetActive(ctx context.Context, instID, sn, reason string) {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		s.log.Error("record the hub's active device", "instance", instID, "sn", sn, "err", err)
		return
	}
	defer unlock()
	d := s.devices[sn]
	if d == nil || d.InstanceID != instID || d.Status != store.StatusRegistered || s.activeLocked(instID) == sn {
		return
	}
	if s.activeOverride == nil {
		s.activeOverride = map[string]string{}
	}
	s.activeOverride[instID] = sn
	if err := s.store.SetMeta(ctx, activeMetaPrefix+instID, sn); err != nil {
		s.log.Error("store active device", "instance", instID, "err", err)
	}
	s.log.Info("active device switched by the hub", "instance", instID, "sn", sn, "reason", reason)
	s.changedLocked(ctx)
}

// activeMetaPrefix keys the stored active device of an instance.
const activeMetaPrefix = "active/"

// activeLocked returns the SN of the instance's active device: the one the
// hub last reported (SetActive) while it is registered, else the
// registered device that registered first. Empty when none is registered.
func (s *Server) activeLocked(instID string) string {
	if sn, ok := s.activeOverride[instID]; ok {
		if d := s.devices[sn]; d != nil && d.InstanceID == instID && d.Status == store.StatusRegistered {
			return sn
		}
	}
	var best *store.Device
	for _, sn := range s.instDevices[instID] {
		d := s.devices[sn]
		if d.Status == store.StatusRegistered && (best == nil || d.RegisteredSeq < best.RegisteredSeq) {
			best = d
		}
	}
	if best == nil {
		return ""
	}
	return best.SN
}

// Subscribe returns a channel that receives the current HubConfig at once
// and then the latest one after every change. Slow readers miss
// intermediate values, never the latest; the API never waits for them.
// cancel releases the subscription.
func (s *Server) Subscribe() (<-chan api.HubConfig, func()) {
	return s.pub.subscribe()
}

// publishInterval is the shortest time between two computed HubConfigs:
// a burst of changes (mass registration) costs one computation per
// interval, not one per change.
const publishInterval = 100 * time.Millisecond

// publisher computes a HubConfig after changes, in its own goroutine, and
// hands it to subscribers with latest-value semantics. Bursts of changes
// coalesce into one computation.
type publisher struct {
	compute func() api.HubConfig
	kick    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup

	mu     sync.Mutex
	next   int
	subs   map[int]chan api.HubConfig
	latest *api.HubConfig
}

func (p *publisher) start(compute func() api.HubConfig) {
	p.compute = compute
	p.kick = make(chan struct{}, 1)
	p.done = make(chan struct{})
	p.subs = map[int]chan api.HubConfig{}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			select {
			case <-p.done:
				return
			case <-p.kick:
				hc := p.compute()
				p.mu.Lock()
				p.latest = &hc
				for _, ch := range p.subs {
					offer(ch, hc)
				}
				p.mu.Unlock()
				select {
				case <-p.done:
					return
				case <-time.After(publishInterval):
				}
			}
		}
	}()
}

// offer replaces whatever ch holds with hc without blocking.
func offer(ch chan api.HubConfig, hc api.HubConfig) {
	select {
	case <-ch:
	default:
	}
	ch <- hc // cannot block: capacity 1, only offer sends, under p.mu
}

func (p *publisher) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *publisher) subscribe() (<-chan api.HubConfig, func()) {
	ch := make(chan api.HubConfig, 1)
	p.mu.Lock()
	id := p.next
	p.next++
	p.subs[id] = ch
	p.mu.Unlock()
	// The current state goes first, computed now, unless a newer one is
	// published meanwhile.
	hc := p.compute()
	p.mu.Lock()
	if p.latest == nil || p.latest.Generation <= hc.Generation {
		if _, ok := p.subs[id]; ok {
			offer(ch, hc)
		}
	}
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		delete(p.subs, id)
		p.mu.Unlock()
	}
}

func (p *publisher) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	p.wg.Wait()
}
