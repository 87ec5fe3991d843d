package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller/store"
)

// Hub groups. Hub processes (vcpe-hub serve --role hub) register their
// own WireGuard key and endpoint (POST /v1/hub/register); the controller
// keeps them in the store with an overlay address it allocates, and
// assigns every instance a primary and a secondary hub. The group is every
// registered hub plus the controller's own hub when it runs one
// (Options.EmbeddedHub). While no hub has registered there is no group:
// devices and the hub are told exactly what they were before hub groups
// (the controller's hub key, --hub-endpoint, the overlay's first address).
//
// Decisions written down here:
//   - An instance's assignment is stored. A default (no assignment, or one
//     naming a hub that left) is the hub with the fewest primaries, and
//     as secondary another hub with the fewest secondaries (ties by name),
//     and it is stored at once, so the assignment never moves when hubs
//     join: no automatic rebalancing.
//   - Hub overlay addresses are allocated from the top of the overlay pool
//     down, device addresses from the bottom up; neither ever takes the
//     other's.
//   - The group (members and every instance's assignment) is computed
//     when hubs, instances or assignments change, the hub configuration
//     with every peer once per generation; both are shared, and a hub's
//     view (its name and address, the other hubs) is a copy of a few
//     fields.

// DefaultHubName is Options.HubName unless set.
const DefaultHubName = "hub"

// hubSeenEvery is how often a hub's last-seen time is written to the store
// at most.
const hubSeenEvery = time.Minute

// hubGroup is the hub group: its members and every instance's hubs. It
// depends only on the registered hubs, the instances and their stored
// assignments, so it is kept until one of those changes
// (invalidateGroupLocked), not recomputed for every generation: a device
// registering does not sort every instance again.
type hubGroup struct {
	hubs   []api.HubInfo // by name; empty: no hub groups
	byName map[string]int
	// assign is every instance's hubs, primary first; prim and sec count
	// the instances with each hub as primary and as secondary.
	assign    map[string][]string
	prim, sec map[string]int
}

// hubBase is the hub configuration with every peer at one generation,
// computed on first use and shared by every hub's view.
type hubBase struct {
	gen uint64
	hc  api.HubConfig
}

func (g *hubGroup) info(name string) (api.HubInfo, bool) {
	i, ok := g.byName[name]
	if !ok {
		return api.HubInfo{}, false
	}
	return g.hubs[i], true
}

// ownHubInfo is the hub the controller stands for itself.
func (s *Server) ownHubInfo() api.HubInfo {
	return api.HubInfo{Name: s.opts.HubName, PublicKey: s.hubKey.PublicKey(), Endpoint: s.opts.HubEndpoint, OverlayAddr: s.hubAddr}
}

// invalidateGroupLocked drops the cached group and hub configuration:
// hubs, instances or assignments changed. s.mu is held for writing.
func (s *Server) invalidateGroupLocked() {
	s.groupMu.Lock()
	s.group, s.base = nil, nil
	s.groupMu.Unlock()
}

// invalidateHubConfigLocked drops the cached hub configuration: anything
// changed. s.mu is held for writing.
func (s *Server) invalidateHubConfigLocked() {
	s.groupMu.Lock()
	s.base = nil
	s.groupMu.Unlock()
}

// groupLocked returns the hub group now; s.mu is held (read or write).
func (s *Server) groupLocked() *hubGroup {
	s.groupMu.Lock()
	defer s.groupMu.Unlock()
	if s.group == nil {
		s.group = s.computeGroupLocked()
	}
	return s.group
}

// HubEndpoints lists the endpoints devices dial: every hub of the group,
// or the one hub while none has registered. It needs no credential (a
// device asks before it registers) and writes nothing; a source that the
// registration throttle blocks is refused like a registration.
func (s *Server) HubEndpoints(from netip.Addr) (api.HubEndpoints, error) {
	if d := s.regAddr.blocked(netKey(from), s.now()); d > 0 {
		return api.HubEndpoints{}, rateLimited(d)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := api.HubEndpoints{Endpoints: []netip.AddrPort{}}
	for _, h := range s.groupLocked().hubs {
		out.Endpoints = append(out.Endpoints, h.Endpoint)
	}
	if len(out.Endpoints) == 0 {
		out.Endpoints = append(out.Endpoints, s.opts.HubEndpoint)
	}
	return out, nil
}

// membersLocked lists the hub group by name: empty while no hub has
// registered.
func (s *Server) membersLocked() []api.HubInfo {
	if len(s.hubs) == 0 {
		return nil
	}
	var out []api.HubInfo
	if s.opts.EmbeddedHub {
		out = append(out, s.ownHubInfo())
	}
	for _, h := range s.hubs {
		if s.opts.EmbeddedHub && h.Name == s.opts.HubName {
			continue // registered before this controller ran a hub of that name
		}
		out = append(out, api.HubInfo{Name: h.Name, PublicKey: h.PublicKey, Endpoint: h.Endpoint, OverlayAddr: h.Overlay})
	}
	slices.SortFunc(out, func(a, b api.HubInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (s *Server) computeGroupLocked() *hubGroup {
	g := &hubGroup{hubs: s.membersLocked(), byName: map[string]int{}, assign: map[string][]string{}, prim: map[string]int{}, sec: map[string]int{}}
	for i, h := range g.hubs {
		g.byName[h.Name] = i
	}
	if len(g.hubs) == 0 {
		return g
	}
	want := min(2, len(g.hubs))
	prim, sec := g.prim, g.sec
	ids := make([]string, 0, len(s.instances))
	for id := range s.instances {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(s.instances[a].CreatedAt.Compare(s.instances[b].CreatedAt), strings.Compare(a, b))
	})
	var pending []string
	for _, id := range ids {
		var kept []string
		for _, n := range s.instances[id].Hubs {
			if _, ok := g.byName[n]; ok && !slices.Contains(kept, n) && len(kept) < want {
				kept = append(kept, n)
			}
		}
		for i, n := range kept {
			if i == 0 {
				prim[n]++
			} else {
				sec[n]++
			}
		}
		g.assign[id] = kept
		if len(kept) < want {
			pending = append(pending, id)
		}
	}
	for _, id := range pending {
		g.assign[id] = fillAssignment(g.assign[id], g.hubs, want, prim, sec)
	}
	return g
}

// fillAssignment completes an assignment to want hubs: a missing primary
// is the hub with the fewest primaries, a missing secondary another hub
// with the fewest secondaries (ties by name). The counts are updated.
func fillAssignment(kept []string, hubs []api.HubInfo, want int, prim, sec map[string]int) []string {
	out := slices.Clone(kept)
	pick := func(first, second map[string]int) string {
		best := ""
		for _, h := range hubs { // by name: the first of equals wins
			if slices.Contains(out, h.Name) {
				continue
			}
			if best == "" || first[h.Name] < first[best] || (first[h.Name] == first[best] && second[h.Name] < second[best]) {
				best = h.Name
			}
		}
		return best
	}
	if len(out) == 0 && want > 0 {
		p := pick(prim, sec)
		prim[p]++
		out = append(out, p)
	}
	for len(out) < want {
		q := pick(sec, prim)
		sec[q]++
		out = append(out, q)
	}
	return out
}

// newInstanceHubsLocked chooses the hubs of an instance being made (nil
// without a hub group) and counts them in the cached group, so making an
// instance costs no pass over the others; noteInstanceLocked records it
// once it is stored.
func (s *Server) newInstanceHubsLocked() []string {
	g := s.groupLocked()
	if len(g.hubs) == 0 {
		return nil
	}
	s.groupMu.Lock()
	defer s.groupMu.Unlock()
	return fillAssignment(nil, g.hubs, min(2, len(g.hubs)), maps.Clone(g.prim), maps.Clone(g.sec))
}

func (s *Server) noteInstanceLocked(id string, hubs []string) {
	s.groupMu.Lock()
	defer s.groupMu.Unlock()
	g := s.group
	if g == nil || len(g.hubs) == 0 {
		return
	}
	g.assign[id] = hubs
	for i, n := range hubs {
		if i == 0 {
			g.prim[n]++
		} else {
			g.sec[n]++
		}
	}
}

// settleAssignments stores the default assignment of every instance that
// has none (or names a hub that left), so it stays put when hubs join.
func (s *Server) settleAssignments(ctx context.Context) error {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.settleAssignmentsLocked(ctx); err != nil {
		return err
	}
	return nil
}

func (s *Server) settleAssignmentsLocked(ctx context.Context) error {
	s.invalidateGroupLocked()
	g := s.groupLocked()
	if len(g.hubs) == 0 {
		return nil
	}
	changes := map[string][]string{}
	for id, in := range s.instances {
		if a := g.assign[id]; !slices.Equal(in.Hubs, a) {
			changes[id] = a
		}
	}
	if len(changes) == 0 {
		return nil
	}
	if err := s.store.SetInstanceHubs(ctx, changes); err != nil {
		return internal(err)
	}
	for id, a := range changes {
		nin := *s.instances[id]
		nin.Hubs = a
		*s.instances[id] = nin
	}
	return nil
}

// applyHubsLocked applies the hubs of a snapshot to the cache.
func (s *Server) applyHubsLocked(snap *store.Snapshot) {
	if s.hubs == nil {
		s.hubs = map[string]*store.Hub{}
	}
	for _, name := range snap.DeletedHubs {
		if h := s.hubs[name]; h != nil {
			delete(s.overlayUsed, h.Overlay)
			delete(s.hubs, name)
		}
	}
	for i := range snap.Hubs {
		h := snap.Hubs[i]
		if old := s.hubs[h.Name]; old != nil && old.Overlay != h.Overlay {
			delete(s.overlayUsed, old.Overlay)
		}
		s.hubs[h.Name] = &h
		s.overlayUsed[h.Overlay] = true
	}
}

// allocHubOverlayLocked returns a free address for a hub: from the top of
// the overlay pool down (the last address is never used), so hubs and
// devices (from the bottom up) stay apart.
func (s *Server) allocHubOverlayLocked() (netip.Addr, error) {
	for a := lastAddr(s.opts.Overlay).Prev(); a.IsValid() && s.hubAddr.Less(a); a = a.Prev() {
		if !s.overlayUsed[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("overlay pool %s is full: delete unused instances or start with a larger --overlay", s.opts.Overlay)
}

// RegisterHub records the hub process called name (its credential's
// name): its own WireGuard public key and the endpoint devices and other
// hubs dial. A hub registering again keeps its overlay address; a changed
// key or endpoint reaches every device and hub as a new generation.
func (s *Server) RegisterHub(ctx context.Context, name string, req api.HubRegister) (api.HubInfo, error) {
	info, changed, err := s.registerHub(ctx, name, req)
	if err != nil || changed {
		s.auditResult(ctx, "hub:"+name, "hub.register", name, err)
	}
	return info, err
}

func (s *Server) registerHub(ctx context.Context, name string, req api.HubRegister) (api.HubInfo, bool, error) {
	if req.PublicKey.IsZero() {
		return api.HubInfo{}, false, &api.Error{Code: api.CodeInvalidInput, Field: "public_key", Message: "the hub's WireGuard public key is missing",
			Fix: "send the public half of the hub's own key (vcpe-hub serve --role hub makes one in its state directory)"}
	}
	ep := req.Endpoint
	if !ep.IsValid() || ep.Port() == 0 || !ep.Addr().Unmap().Is4() || ep.Addr().IsUnspecified() || ep.Addr().IsLoopback() || ep.Addr().IsMulticast() {
		return api.HubInfo{}, false, &api.Error{Code: api.CodeInvalidInput, Field: "endpoint",
			Message: fmt.Sprintf("hub endpoint %s is not an IPv4 ADDR:PORT devices can dial", ep),
			Fix:     "start the hub with --hub-endpoint ADDR:PORT, the address devices dial (for example 198.18.0.2:4500)"}
	}
	ep = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
	if s.opts.Overlay.Contains(ep.Addr()) {
		return api.HubInfo{}, false, &api.Error{Code: api.CodeInvalidInput, Field: "endpoint",
			Message: fmt.Sprintf("hub endpoint %s lies inside the overlay %s", ep, s.opts.Overlay),
			Fix:     "pass the hub's WAN address with --hub-endpoint, not a tunnel address"}
	}
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return api.HubInfo{}, false, err
	}
	defer unlock()
	if s.opts.EmbeddedHub && name == s.opts.HubName {
		return api.HubInfo{}, false, &api.Error{Code: api.CodeInvalidInput, Field: "name",
			Message: fmt.Sprintf("hub name %q is the controller's own hub (--hub-name)", name),
			Fix:     "issue the hub's credential under another name (vcpe-hub hub credential NAME), or start the controller with another --hub-name"}
	}
	if s.opts.EmbeddedHub && req.PublicKey == s.hubKey.PublicKey() {
		return api.HubInfo{}, false, &api.Error{Code: api.CodeSlotTaken, Field: "public_key",
			Message: "the hub's key is the controller's own hub key (a hub.key fetched from the controller by an older vcpe-hub)",
			Fix:     "remove hub.key from the hub's state directory and start it again: it makes a key of its own"}
	}
	if s.opts.EmbeddedHub && ep == s.opts.HubEndpoint {
		return api.HubInfo{}, false, &api.Error{Code: api.CodeSlotTaken, Field: "endpoint",
			Message: fmt.Sprintf("hub endpoint %s is the controller's own hub's (--hub-endpoint)", ep),
			Fix:     "start the hub with --hub-endpoint set to its own address, the one devices dial it on"}
	}
	for _, h := range s.hubs {
		if h.Name != name && h.Endpoint == ep {
			return api.HubInfo{}, false, &api.Error{Code: api.CodeSlotTaken, Field: "endpoint",
				Message: fmt.Sprintf("hub endpoint %s is already hub %s's", ep, h.Name),
				Fix:     "start the hub with --hub-endpoint set to its own address, or remove the other one (vcpe-hub hub remove " + h.Name + ")"}
		}
		if h.Name != name && h.PublicKey == req.PublicKey {
			return api.HubInfo{}, false, &api.Error{Code: api.CodeSlotTaken, Field: "public_key",
				Message: fmt.Sprintf("the hub's key is already registered by hub %s", h.Name),
				Fix:     "each hub needs its own key: remove hub.key from this hub's state directory and start it again"}
		}
	}
	if sn, ok := s.byPubKey[req.PublicKey]; ok {
		return api.HubInfo{}, false, &api.Error{Code: api.CodeSlotTaken, Field: "public_key",
			Message: fmt.Sprintf("the hub's key is registered by device %s", sn), Fix: "remove hub.key from the hub's state directory and start it again"}
	}
	for _, in := range s.instances {
		for _, p := range in.Advertised {
			if p.Contains(ep.Addr()) {
				return api.HubInfo{}, false, &api.Error{Code: api.CodePrefixConflict, Field: "endpoint",
					Message: fmt.Sprintf("hub endpoint %s lies inside %s, advertised by instance %s", ep, p, in.Name),
					Fix:     "give the hub an endpoint outside every site's LAN, or renumber that LAN"}
			}
		}
	}
	now := s.now()
	old := s.hubs[name]
	if old != nil && old.PublicKey == req.PublicKey && old.Endpoint == ep {
		s.touchHub(ctx, name, now, true)
		return s.groupHubInfoLocked(old), false, nil
	}
	h := store.Hub{Name: name, PublicKey: req.PublicKey, Endpoint: ep, RegisteredAt: now, LastSeen: now}
	if old != nil {
		h.Overlay = old.Overlay
	} else if h.Overlay, err = s.allocHubOverlayLocked(); err != nil {
		return api.HubInfo{}, false, &api.Error{Code: api.CodeQuota, Message: err.Error()}
	}
	if err := s.store.PutHub(ctx, h); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return api.HubInfo{}, false, &api.Error{Code: api.CodeSlotTaken, Field: "public_key", Message: "the hub's key or overlay address is another hub's",
				Fix: "each hub needs its own key: remove hub.key from this hub's state directory and start it again"}
		}
		return api.HubInfo{}, false, internal(err)
	}
	s.hubs[name] = &h
	s.overlayUsed[h.Overlay] = true
	s.seenMu.Lock()
	if s.hubStored == nil {
		s.hubStored = map[string]time.Time{}
	}
	s.hubStored[name] = now
	s.seenMu.Unlock()
	if err := s.settleAssignmentsLocked(ctx); err != nil {
		return api.HubInfo{}, false, err
	}
	s.log.Info("hub registered", "hub", name, "endpoint", ep, "overlay", h.Overlay, "new", old == nil)
	s.changedLocked(ctx)
	return s.groupHubInfoLocked(&h), true, nil
}

func (s *Server) groupHubInfoLocked(h *store.Hub) api.HubInfo {
	return api.HubInfo{Name: h.Name, PublicKey: h.PublicKey, Endpoint: h.Endpoint, OverlayAddr: h.Overlay}
}

// touchHub records that hub name called, in the store at most every
// hubSeenEvery (force: now).
func (s *Server) touchHub(ctx context.Context, name string, now time.Time, force bool) {
	s.seenMu.Lock()
	if s.hubSeen == nil {
		s.hubSeen, s.hubStored = map[string]time.Time{}, map[string]time.Time{}
	}
	s.hubSeen[name] = now
	last, ok := s.hubStored[name]
	write := force || !ok || now.Sub(last) >= hubSeenEvery
	if write {
		s.hubStored[name] = now
	}
	s.seenMu.Unlock()
	if !write {
		return
	}
	if err := s.store.TouchHub(context.WithoutCancel(ctx), name, now); err != nil {
		s.log.Warn("record hub seen", "hub", name, "err", err)
	}
}

// RemoveHub takes a registered hub out of the group: its instances move
// to the remaining hubs (as defaults), its devices and hubs are told.
// A hub process still running registers again when it notices.
func (s *Server) RemoveHub(ctx context.Context, who, name string) error {
	err := s.removeHub(ctx, name)
	s.auditResult(ctx, who, "hub.remove", name, err)
	return err
}

func (s *Server) removeHub(ctx context.Context, name string) error {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	h := s.hubs[name]
	if h == nil {
		return notFound("hub", name)
	}
	if err := s.store.DeleteHub(ctx, name); err != nil {
		return internal(err)
	}
	delete(s.hubs, name)
	delete(s.overlayUsed, h.Overlay)
	if err := s.settleAssignmentsLocked(ctx); err != nil {
		return err
	}
	s.changedLocked(ctx)
	return nil
}

// HubConfigFor is the configuration of the hub called name: the group's
// configuration with every device (HubPeer.Hubs naming each device's
// hubs), seen from that hub (its name and overlay address, the other hubs).
// A hub that is not a member of the group (none registered, or name
// unknown) gets the configuration without hub groups, as before them.
func (s *Server) HubConfigFor(name string) api.HubConfig {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.hubViewLocked(name)
}

func (s *Server) hubViewLocked(name string) api.HubConfig {
	g := s.groupLocked()
	s.groupMu.Lock()
	if s.base == nil || s.base.gen != s.gen {
		hc := s.baseHubConfigLocked(g)
		slices.SortFunc(hc.Peers, func(a, b api.HubPeer) int { return a.OverlayAddr.Compare(b.OverlayAddr) })
		s.base = &hubBase{gen: s.gen, hc: hc}
	}
	hc := s.base.hc
	s.groupMu.Unlock()
	me, ok := g.info(name)
	if !ok {
		return hc
	}
	hc.Name, hc.HubOverlayAddr, hc.Failback = me.Name, me.OverlayAddr, s.opts.Failback
	hc.Hubs = make([]api.HubInfo, 0, len(g.hubs)-1)
	for _, h := range g.hubs {
		if h.Name != name {
			hc.Hubs = append(hc.Hubs, h)
		}
	}
	return hc
}

// HubEntry is one hub of the group for vcpe-hub hub list.
type HubEntry struct {
	Name        string         `json:"name"`
	PublicKey   api.Key        `json:"public_key"`
	Endpoint    netip.AddrPort `json:"endpoint"`
	OverlayAddr netip.Addr     `json:"overlay_addr"`
	// Controller is true for the hub the controller stands for itself:
	// the one it runs (--role all), or the default one devices are told
	// while no hub has registered.
	Controller   bool       `json:"controller,omitempty"`
	Registered   bool       `json:"registered"`
	RegisteredAt *time.Time `json:"registered_at,omitempty"`
	LastSeen     *time.Time `json:"last_seen,omitempty"`
	// Primary and Secondary count the registered devices assigned to the
	// hub as their primary or secondary hub.
	Primary   int `json:"primary"`
	Secondary int `json:"secondary"`
	// Member is false for a registered hub outside the group (one named
	// like the controller's own hub).
	Member bool `json:"member"`
}

// ListHubs lists the hub group with each hub's device counts.
func (s *Server) ListHubs() []HubEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groupLocked()
	out := []HubEntry{}
	idx := map[string]int{}
	add := func(e HubEntry) {
		idx[e.Name] = len(out)
		out = append(out, e)
	}
	for _, h := range g.hubs {
		e := HubEntry{Name: h.Name, PublicKey: h.PublicKey, Endpoint: h.Endpoint, OverlayAddr: h.OverlayAddr, Member: true}
		if r := s.hubs[h.Name]; r != nil && !(s.opts.EmbeddedHub && h.Name == s.opts.HubName) {
			e.Registered = true
			e.RegisteredAt, e.LastSeen = timePtr(r.RegisteredAt), timePtr(s.hubLastSeen(r))
		} else {
			e.Controller = true
		}
		add(e)
	}
	if len(g.hubs) == 0 {
		own := s.ownHubInfo()
		add(HubEntry{Name: own.Name, PublicKey: own.PublicKey, Endpoint: own.Endpoint, OverlayAddr: own.OverlayAddr, Controller: true, Member: true})
	}
	for _, r := range s.hubs {
		if _, ok := idx[r.Name]; !ok {
			add(HubEntry{Name: r.Name, PublicKey: r.PublicKey, Endpoint: r.Endpoint, OverlayAddr: r.Overlay, Registered: true,
				RegisteredAt: timePtr(r.RegisteredAt), LastSeen: timePtr(s.hubLastSeen(r))})
		}
	}
	for id := range s.instances {
		hubs := g.assign[id]
		if len(g.hubs) == 0 {
			hubs = []string{s.opts.HubName}
		}
		n := 0
		for _, sn := range s.instDevices[id] {
			if s.devices[sn].Status == store.StatusRegistered {
				n++
			}
		}
		for i, h := range hubs {
			if j, ok := idx[h]; ok {
				if i == 0 {
					out[j].Primary += n
				} else {
					out[j].Secondary += n
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b HubEntry) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// hubLastSeen is when hub h last called: this replica's record, or the
// store's (another replica's, at most hubSeenEvery old) when later.
func (s *Server) hubLastSeen(h *store.Hub) time.Time {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	if t := s.hubSeen[h.Name]; t.After(h.LastSeen) {
		return t
	}
	return h.LastSeen
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// SetInstanceHubs assigns instance ref to hub primary and, when not
// empty, secondary (both members of the group); an empty secondary takes
// the default (another hub, spread evenly). Its devices are told at once.
func (s *Server) SetInstanceHubs(ctx context.Context, who, ref, primary, secondary string) (InstanceInfo, error) {
	info, err := s.setInstanceHubs(ctx, ref, primary, secondary)
	target := ref + " " + primary
	if secondary != "" {
		target += "," + secondary
	}
	s.auditResult(ctx, who, "instance.hubs", target, err)
	return info, err
}

func (s *Server) setInstanceHubs(ctx context.Context, ref, primary, secondary string) (InstanceInfo, error) {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return InstanceInfo{}, err
	}
	defer unlock()
	in, e := s.instanceRefLocked(ref)
	if e != nil {
		return InstanceInfo{}, e
	}
	g := s.groupLocked()
	if len(g.hubs) == 0 {
		return InstanceInfo{}, &api.Error{Code: api.CodeInvalidInput, Field: "primary",
			Message: "no hub group: no hub has registered with this controller",
			Fix:     "start hubs with vcpe-hub serve --role hub (each with its own credential) first; vcpe-hub hub list shows them"}
	}
	names := make([]string, len(g.hubs))
	for i, h := range g.hubs {
		names[i] = h.Name
	}
	if _, ok := g.byName[primary]; !ok {
		return InstanceInfo{}, &api.Error{Code: api.CodeInvalidInput, Field: "primary",
			Message: fmt.Sprintf("hub %q is not in the hub group (%s)", primary, strings.Join(names, ", ")),
			Fix:     "pass --primary with a hub vcpe-hub hub list shows"}
	}
	if secondary != "" {
		if _, ok := g.byName[secondary]; !ok {
			return InstanceInfo{}, &api.Error{Code: api.CodeInvalidInput, Field: "secondary",
				Message: fmt.Sprintf("hub %q is not in the hub group (%s)", secondary, strings.Join(names, ", ")),
				Fix:     "pass --secondary with a hub vcpe-hub hub list shows, or leave it out to take the default"}
		}
		if secondary == primary {
			return InstanceInfo{}, &api.Error{Code: api.CodeInvalidInput, Field: "secondary",
				Message: fmt.Sprintf("hub %q is the primary too", secondary), Fix: "pass another hub as --secondary, or leave it out to take the default"}
		}
	}
	a := []string{primary}
	if secondary != "" {
		a = append(a, secondary)
	} else if len(g.hubs) > 1 {
		prim, sec := map[string]int{}, map[string]int{}
		for id, h := range g.assign {
			if id == in.ID {
				continue
			}
			for i, n := range h {
				if i == 0 {
					prim[n]++
				} else {
					sec[n]++
				}
			}
		}
		a = fillAssignment(a, g.hubs, 2, prim, sec)
	}
	if !slices.Equal(in.Hubs, a) {
		if err := s.store.SetInstanceHubs(ctx, map[string][]string{in.ID: a}); err != nil {
			return InstanceInfo{}, internal(err)
		}
		nin := *in
		nin.Hubs = a
		*in = nin
		s.invalidateGroupLocked()
		s.changedLocked(ctx)
	}
	return s.instanceInfoLocked(in), nil
}
