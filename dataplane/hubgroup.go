package dataplane

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openvcpe/vcpe/api"
)

// A hub group is two or more hubs, each with its own key and endpoint,
// that share the devices: every device keeps a session to each hub it is
// assigned to and carries its traffic through one of them (its claims say
// which: Claim.Via). The hubs keep hub-to-hub sessions and tell each other
// every interval what they carry (hubMessage), so each hub routes an
// instance's prefixes either to the device itself or to the hub that
// carries it: one encrypted hop per segment.

// hubMessage is what a hub sends every other hub of its group every
// interval (claimCopies copies) on the claim port, through the hub-to-hub
// tunnel.
type hubMessage struct {
	Hub string `json:"hub"`
	Seq uint64 `json:"seq"`
	// Carry are the instances whose active device carries its traffic
	// through the sender (its fresh claims say Via = sender).
	Carry []string `json:"carry,omitempty"`
	// Gateway says the sender holds the cloud gateway address.
	Gateway bool `json:"gateway,omitempty"`
	// Degraded says the sender's cloud-side health targets do not answer.
	Degraded bool `json:"degraded,omitempty"`
	// Active is the multi-attach active device (SN) of every carried
	// instance with more than one device, as the sender's arbiter decided:
	// the other hubs follow it (Arbiter.Follow).
	Active map[string]string `json:"active,omitempty"`
	// Part and Parts split a long message (many carried instances) into
	// datagrams that each fit one tunnel packet: part Part (from 0) of
	// Parts, all with the same Seq. Parts 0 or 1: the whole message.
	Part  int `json:"part,omitempty"`
	Parts int `json:"parts,omitempty"`
}

// hubMessagePart is the largest encoded part splitMessage makes: one
// datagram inside one tunnel packet (the tunnel MTU minus IP and UDP
// headers, with room to spare).
const hubMessagePart = 1200

// splitMessage encodes m as one or more parts of at most hubMessagePart
// bytes each (an instance ID longer than that still gets a part of its
// own).
func splitMessage(m hubMessage) [][]byte {
	whole, _ := json.Marshal(m)
	if len(whole) <= hubMessagePart {
		return [][]byte{whole}
	}
	base := m
	base.Carry, base.Active = nil, nil
	var parts []hubMessage
	cur, size := base, 0
	head, _ := json.Marshal(base)
	for _, id := range m.Carry {
		add := len(id) + 3
		sn, hasActive := m.Active[id]
		if hasActive {
			add += len(id) + len(sn) + 6
		}
		if size > 0 && len(head)+40+size+add > hubMessagePart {
			parts = append(parts, cur)
			cur, size = base, 0
		}
		cur.Carry = append(cur.Carry, id)
		if hasActive {
			if cur.Active == nil {
				cur.Active = map[string]string{}
			}
			cur.Active[id] = sn
		}
		size += add
	}
	parts = append(parts, cur)
	out := make([][]byte, len(parts))
	for i := range parts {
		parts[i].Part, parts[i].Parts = i, len(parts)
		out[i], _ = json.Marshal(parts[i])
	}
	return out
}

// hubDeadAfter is how long without a message before a hub counts another
// hub as down (and itself as cut off when it hears neither hubs nor
// devices): five intervals and half an interval of slack. With claimCopies
// copies of every message, random loss does not add up to that.
func (h HealthCheck) hubDeadAfter() time.Duration {
	return 5*h.Interval + h.Interval/2
}

// hubPeerPrefix marks the WireGuard peers of the other hubs in the hub's
// effective peer list; Status names them "hub NAME".
const hubPeerPrefix = "hub:"

// hubSeen is what a hub last heard from another hub of its group.
type hubSeen struct {
	last     time.Time
	seq      uint64
	carry    map[string]bool
	gateway  bool
	degraded bool
	// The parts of a split message (seq pendSeq) received so far.
	pendSeq uint64
	pend    map[int][]string
}

// viaSeen is the hub a device's last claim named as carrying it.
type viaSeen struct {
	at  time.Time
	via string
}

// hubGroup is a hub's view of its group: the other hubs' messages and the
// devices' claims. It is pure (time comes in as arguments) and not
// goroutine-safe: the Hub holds its lock around it.
type hubGroup struct {
	self       string
	check      HealthCheck
	claimFresh time.Duration // how long a claim's Via counts (the arbiter's DeadAfter)
	hubs       map[string]*hubSeen
	vias       map[string]viaSeen // by SN
	lastHeard  time.Time          // any hub message or claim
	liveSince  time.Time          // start of the current live stretch
}

func newHubGroup(self string, chk HealthCheck) *hubGroup {
	chk = chk.WithDefaults()
	return &hubGroup{self: self, check: chk, claimFresh: chk.deadAfter(), hubs: map[string]*hubSeen{}, vias: map[string]viaSeen{}}
}

// claim records a device's claim. It reports whether the routing may have
// changed: the device names another hub than before, or its claims had
// gone stale.
func (g *hubGroup) claim(now time.Time, sn, via string) bool {
	g.heard(now)
	old, ok := g.vias[sn]
	g.vias[sn] = viaSeen{at: now, via: via}
	return !ok || old.via != via || now.Sub(old.at) > g.claimFresh
}

// message records another hub's message. It reports whether anything that
// routing or the gateway depend on changed.
func (g *hubGroup) message(now time.Time, m hubMessage) bool {
	g.heard(now)
	s := g.hubs[m.Hub]
	if s == nil {
		s = &hubSeen{}
		g.hubs[m.Hub] = s
	}
	changed := !g.up(now, s) || s.gateway != m.Gateway || s.degraded != m.Degraded
	s.last, s.seq, s.gateway, s.degraded = now, m.Seq, m.Gateway, m.Degraded
	ids := m.Carry
	if m.Parts > 1 {
		// A part: the carry list is taken when every part of its Seq is in.
		if s.pend == nil || s.pendSeq != m.Seq {
			s.pendSeq, s.pend = m.Seq, map[int][]string{}
		}
		if m.Part >= 0 && m.Part < m.Parts {
			s.pend[m.Part] = m.Carry
		}
		if len(s.pend) < m.Parts {
			return changed
		}
		ids = nil
		for i := range m.Parts {
			ids = append(ids, s.pend[i]...)
		}
		s.pend = nil
	}
	carry := make(map[string]bool, len(ids))
	for _, id := range ids {
		carry[id] = true
	}
	if !sameSet(s.carry, carry) {
		changed = true
	}
	s.carry = carry
	return changed
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func (g *hubGroup) up(now time.Time, s *hubSeen) bool {
	return s != nil && !s.last.IsZero() && now.Sub(s.last) <= g.check.hubDeadAfter()
}

// expiredSince reports whether a claim's Via or a hub's messages went
// stale between prev and now: only then can a plan made at prev differ
// from one made now (fresh news re-plans at once). It allocates nothing,
// so the hub runs it every tick instead of re-planning.
func (g *hubGroup) expiredSince(prev, now time.Time) bool {
	for _, v := range g.vias {
		if prev.Sub(v.at) <= g.claimFresh && now.Sub(v.at) > g.claimFresh {
			return true
		}
	}
	for _, s := range g.hubs {
		if g.up(prev, s) && !g.up(now, s) {
			return true
		}
	}
	return false
}

// hubUp reports whether hub name's messages are fresh.
func (g *hubGroup) hubUp(now time.Time, name string) bool { return g.up(now, g.hubs[name]) }

func (g *hubGroup) heard(now time.Time) {
	if !g.live(now) {
		g.liveSince = now
	}
	g.lastHeard = now
}

// settled reports whether the hub has been live for a whole dead-after
// window: long enough to have heard every other hub that is up (and
// whether it holds the cloud gateway) before it takes the gateway.
func (g *hubGroup) settled(now time.Time) bool {
	return g.live(now) && now.Sub(g.liveSince) >= g.check.hubDeadAfter()
}

// live reports whether this hub hears anything: a hub message or a claim
// within the dead-after window. A hub that hears neither has lost its WAN.
func (g *hubGroup) live(now time.Time) bool {
	return !g.lastHeard.IsZero() && now.Sub(g.lastHeard) <= g.check.hubDeadAfter()
}

// forget drops what is known of hubs and devices no longer in cfg.
func (g *hubGroup) forget(cfg api.HubConfig) {
	hubs := map[string]bool{}
	for _, h := range cfg.Hubs {
		hubs[h.Name] = true
	}
	for n := range g.hubs {
		if !hubs[n] {
			delete(g.hubs, n)
		}
	}
	sns := map[string]bool{}
	for _, p := range cfg.Peers {
		sns[p.SN] = true
	}
	for sn := range g.vias {
		if !sns[sn] {
			delete(g.vias, sn)
		}
	}
}

// grouped reports whether cfg is a hub-group config (a legacy hub has no
// name and no other hubs, and behaves exactly as before hub groups).
func grouped(cfg api.HubConfig) bool { return cfg.Name != "" || len(cfg.Hubs) > 0 }

// instanceKey groups peers by instance; a peer without one is alone.
func instanceKey(p api.HubPeer) string {
	if p.InstanceID != "" {
		return p.InstanceID
	}
	return "peer:" + p.SN
}

// peersWith reports whether p is assigned to hub self (a device without
// assigned hubs peers with every hub).
func peersWith(p api.HubPeer, self string) bool {
	return len(p.Hubs) == 0 || slices.Contains(p.Hubs, self)
}

// Route targets of an instance (groupPlan.Via): "" for this hub's own
// device peer, else the name of the hub that carries the instance.
const viaHere = ""

// groupPlan is where a hub sends every instance's traffic, and the
// WireGuard peers that follow from it.
type groupPlan struct {
	// Peers are the WireGuard peers: the devices assigned to this hub
	// (their own /32, plus the instance's prefixes where the instance
	// routes to the device) and one peer per other hub (its overlay /32,
	// the prefixes it carries, the cloud prefixes when it holds the cloud
	// gateway), named hubPeerPrefix+NAME.
	Peers []api.HubPeer
	// Via is each instance's target (viaHere or a hub name); Why says how
	// it was decided ("claims", "hub message", "primary").
	Via map[string]string
	Why map[string]string
	// Carry are the instances this hub carries: their active device's
	// fresh claims name it.
	Carry []string
}

// plan decides, for every instance of eff (the controller's config with
// the arbiter's roles), where this hub routes its prefixes:
//
//  1. to the active device's own peer when its fresh claims name this hub
//     as the one that carries it (or name none: a device without groups);
//  2. else to the hub its fresh claims name;
//  3. else to a hub whose fresh message lists the instance as carried;
//  4. else by the assignment: the device's peer when this hub is its
//     primary, else the primary hub's peer (when this hub has the device
//     but not the primary, its own peer).
func (g *hubGroup) plan(now time.Time, eff api.HubConfig) groupPlan {
	pl := groupPlan{Via: map[string]string{}, Why: map[string]string{}}
	known := map[string]api.HubInfo{}
	for _, h := range eff.Hubs {
		if h.Name != "" && h.Name != g.self {
			known[h.Name] = h
		}
	}
	// The instances, their members and the active one.
	type inst struct {
		active  int // index into eff.Peers, -1 without one
		members []int
	}
	insts := map[string]*inst{}
	var ids []string
	for i, p := range eff.Peers {
		id := instanceKey(p)
		in := insts[id]
		if in == nil {
			in = &inst{active: -1}
			insts[id] = in
			ids = append(ids, id)
		}
		in.members = append(in.members, i)
		if p.Active && in.active < 0 {
			in.active = i
		}
	}
	sort.Strings(ids)
	carriers := func(id string) string {
		best := ""
		for name, s := range g.hubs {
			if _, ok := known[name]; ok && g.up(now, s) && s.carry[id] && (best == "" || name < best) {
				best = name
			}
		}
		return best
	}
	for _, id := range ids {
		in := insts[id]
		if in.active < 0 {
			continue
		}
		act := eff.Peers[in.active]
		here := peersWith(act, g.self)
		v, fresh := g.vias[act.SN]
		fresh = fresh && now.Sub(v.at) <= g.claimFresh
		_, viaKnown := known[v.via]
		switch {
		case fresh && here && (v.via == g.self || v.via == ""):
			pl.Via[id], pl.Why[id] = viaHere, "claims"
			pl.Carry = append(pl.Carry, id)
		case fresh && viaKnown:
			pl.Via[id], pl.Why[id] = v.via, "claims"
		case carriers(id) != "":
			pl.Via[id], pl.Why[id] = carriers(id), "hub message"
		default:
			pl.Why[id] = "primary"
			primary := ""
			if len(act.Hubs) > 0 {
				primary = act.Hubs[0]
			}
			switch _, ok := known[primary]; {
			case primary == "" || primary == g.self:
				pl.Via[id] = viaHere
			case ok:
				pl.Via[id] = primary
			case here:
				pl.Via[id] = viaHere // the primary left the group
			default:
				for _, n := range act.Hubs {
					if _, ok := known[n]; ok {
						pl.Via[id] = n
						break
					}
				}
			}
		}
		if t, ok := pl.Via[id]; ok && t == viaHere && !here {
			delete(pl.Via, id) // nowhere to send it
		}
	}

	hubIPs := map[string][]netip.Prefix{}
	for i, p := range eff.Peers {
		id := instanceKey(p)
		t, routed := pl.Via[id]
		own := netip.PrefixFrom(p.OverlayAddr, 32)
		isActive := insts[id].active == i
		if peersWith(p, g.self) {
			q := p
			q.AllowedIPs = []netip.Prefix{own}
			if isActive && routed && t == viaHere {
				q.AllowedIPs = normalize(append(q.AllowedIPs, p.AllowedIPs...))
			} else if isActive && routed {
				hubIPs[t] = append(hubIPs[t], withoutPrefix(p.AllowedIPs, own)...)
			}
			pl.Peers = append(pl.Peers, q)
			continue
		}
		// A device of another hub: all of it goes to the hub that
		// carries its instance (or its primary).
		if !routed || t == viaHere {
			t = ""
			for _, n := range p.Hubs {
				if _, ok := known[n]; ok {
					t = n
					break
				}
			}
			if t == "" {
				continue
			}
		}
		ips := []netip.Prefix{own}
		if isActive {
			ips = append(ips, p.AllowedIPs...)
		}
		hubIPs[t] = append(hubIPs[t], ips...)
	}
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := known[n]
		ips := append([]netip.Prefix{netip.PrefixFrom(h.OverlayAddr, 32)}, hubIPs[n]...)
		if s := g.hubs[n]; g.up(now, s) && s.gateway {
			ips = append(ips, eff.CloudPrefixes...)
		}
		pl.Peers = append(pl.Peers, api.HubPeer{SN: hubPeerPrefix + n, PublicKey: h.PublicKey, OverlayAddr: h.OverlayAddr, AllowedIPs: normalize(ips)})
	}
	return pl
}

func withoutPrefix(ps []netip.Prefix, drop netip.Prefix) []netip.Prefix {
	return slices.DeleteFunc(slices.Clone(ps), func(p netip.Prefix) bool { return p.Masked() == drop.Masked() })
}

// hubRoutes are the peers' prefixes outside the overlay: everything routed
// into the TUN. The cloud prefixes on the peer of the hub holding the
// cloud gateway are there only for WireGuard's source check: they get no
// route (the hub reaches the cloud on its own side).
func hubRoutes(cfg api.HubConfig) []netip.Prefix {
	var all []netip.Prefix
	for _, p := range cfg.Peers {
		if len(cfg.CloudPrefixes) > 0 && isHubPeer(cfg, p) {
			for _, q := range p.AllowedIPs {
				if !slices.Contains(cfg.CloudPrefixes, q.Masked()) {
					all = append(all, q)
				}
			}
			continue
		}
		all = append(all, p.AllowedIPs...)
	}
	return routedPrefixes(cfg.Overlay, all)
}

// isHubPeer reports whether p is the peer of another hub of cfg's group.
func isHubPeer(cfg api.HubConfig, p api.HubPeer) bool {
	if !strings.HasPrefix(p.SN, hubPeerPrefix) {
		return false
	}
	return slices.ContainsFunc(cfg.Hubs, func(h api.HubInfo) bool { return h.PublicKey == p.PublicKey })
}

// wantGateway decides whether this hub should hold the cloud gateway
// address. Only a live hub (it hears hubs or devices) that is not
// degraded may hold it. Among those, the lowest-named of the hubs it hears
// (up and not degraded) holds it; without failback a live holder keeps
// it when a lower-named hub comes back (no flap), and of two holders the
// lower-named keeps it.
func wantGateway(self string, live, degraded, holding, failback bool, others []gatewayView) bool {
	if !live || degraded {
		return false
	}
	lower, otherHolds, lowerHolds := false, false, false
	for _, o := range others {
		if !o.Up || o.Degraded {
			continue
		}
		if o.Name < self {
			lower = true
		}
		if o.Gateway {
			otherHolds = true
			if o.Name < self {
				lowerHolds = true
			}
		}
	}
	if failback || (!holding && !otherHolds) {
		return !lower
	}
	if holding {
		return !lowerHolds
	}
	return false
}

// gatewayView is one other hub as the gateway decision sees it.
type gatewayView struct {
	Name                  string
	Up, Degraded, Gateway bool
}

func (g *hubGroup) gatewayViews(now time.Time) []gatewayView {
	var out []gatewayView
	for n, s := range g.hubs {
		out = append(out, gatewayView{Name: n, Up: g.up(now, s), Degraded: s.degraded, Gateway: s.gateway})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// HubGroupStatus is a hub's view of its hub group (Status.HubGroup on a
// hub with a name or other hubs).
type HubGroupStatus struct {
	Name     string `json:"name"`
	Degraded bool   `json:"degraded"`
	// Live says the hub hears other hubs or devices (a hub that hears
	// neither has lost its WAN and gives up the cloud gateway).
	Live bool `json:"live"`
	// CloudTargets are the cloud-side health targets and whether each
	// answers.
	CloudTargets []TargetStatus `json:"cloud_targets,omitempty"`
	// Gateway is the cloud gateway address (with its prefix length), when
	// configured; GatewayHolder the hub holding it as far as this hub
	// knows ("" when none).
	Gateway       netip.Prefix `json:"gateway,omitzero"`
	GatewayHolder string       `json:"gateway_holder,omitempty"`
	// RouteChanges counts the instances whose traffic this hub moved
	// (to its device, to another hub); GatewayChanges how often it took
	// or gave up the cloud gateway. Both since the hub started.
	RouteChanges   uint64        `json:"route_changes"`
	GatewayChanges uint64        `json:"gateway_changes"`
	Hubs           []GroupHub    `json:"hubs"`
	Devices        []GroupDevice `json:"devices"`
	Events         []Event       `json:"events"`
}

// TargetStatus is one health target and whether it answers.
type TargetStatus struct {
	Addr netip.Addr `json:"addr"`
	Up   bool       `json:"up"`
}

// GroupHub is another hub of the group as this hub hears it.
type GroupHub struct {
	Name        string         `json:"name"`
	Endpoint    netip.AddrPort `json:"endpoint"`
	OverlayAddr netip.Addr     `json:"overlay_addr"`
	// State is "up", "degraded" or "down" (no message for the dead-after
	// window).
	State       string    `json:"state"`
	LastMessage time.Time `json:"last_message,omitzero"`
	Gateway     bool      `json:"gateway,omitempty"`
	// Carries is how many instances it says it carries.
	Carries int `json:"carries"`
}

// GroupDevice is one device of the group as this hub routes it.
type GroupDevice struct {
	SN       string `json:"sn"`
	Instance string `json:"instance,omitempty"`
	CCN      string `json:"ccn,omitempty"`
	// Peered says the device is assigned to this hub (it has a WireGuard
	// session here); Primary that this hub is its primary.
	Peered  bool `json:"peered"`
	Primary bool `json:"primary"`
	Active  bool `json:"active,omitempty"`
	// Via is the hub its last fresh claim named ("" when none is fresh);
	// Route where this hub sends the instance's traffic ("here" or a hub
	// name, for the instance's active device), and why.
	Via      string `json:"via,omitempty"`
	Route    string `json:"route,omitempty"`
	RouteWhy string `json:"route_why,omitempty"`
	Carried  bool   `json:"carried,omitempty"`
}

// Hub states in GroupHub.State.
const (
	GroupHubUp       = "up"
	GroupHubDegraded = "degraded"
	GroupHubDown     = "down"
)

// groupStatus builds the group part of the hub's status.
func (g *hubGroup) groupStatus(now time.Time, desired api.HubConfig, eff api.HubConfig, pl groupPlan) *HubGroupStatus {
	st := &HubGroupStatus{Name: g.self, Live: g.live(now), Hubs: []GroupHub{}, Devices: []GroupDevice{}, Events: []Event{}}
	hubs := slices.Clone(desired.Hubs)
	sort.Slice(hubs, func(i, j int) bool { return hubs[i].Name < hubs[j].Name })
	for _, h := range hubs {
		s := g.hubs[h.Name]
		gh := GroupHub{Name: h.Name, Endpoint: h.Endpoint, OverlayAddr: h.OverlayAddr, State: GroupHubDown}
		if s != nil {
			gh.LastMessage = s.last
			if g.up(now, s) {
				gh.State, gh.Gateway, gh.Carries = GroupHubUp, s.gateway, len(s.carry)
				if s.degraded {
					gh.State = GroupHubDegraded
				}
			}
		}
		st.Hubs = append(st.Hubs, gh)
	}
	carried := map[string]bool{}
	for _, id := range pl.Carry {
		carried[id] = true
	}
	for _, p := range eff.Peers {
		id := instanceKey(p)
		d := GroupDevice{SN: p.SN, Instance: p.InstanceID, CCN: p.CCN, Peered: peersWith(p, g.self),
			Primary: len(p.Hubs) == 0 || p.Hubs[0] == g.self, Active: p.Active}
		if v, ok := g.vias[p.SN]; ok && now.Sub(v.at) <= g.claimFresh {
			d.Via = v.via
		}
		if p.Active {
			if t, ok := pl.Via[id]; ok {
				d.Route, d.RouteWhy = t, pl.Why[id]
				if t == viaHere {
					d.Route = "here"
				}
			}
			d.Carried = carried[id]
		}
		st.Devices = append(st.Devices, d)
	}
	sort.Slice(st.Devices, func(i, j int) bool { return st.Devices[i].SN < st.Devices[j].SN })
	return st
}

// writeHubGroup renders the hub-group part of a hub's status: the cloud
// side, the gateway, the other hubs and every device of the group with
// where this hub sends its traffic.
func writeHubGroup(w io.Writer, g *HubGroupStatus, now time.Time) {
	if g == nil {
		return
	}
	name := cmp.Or(g.Name, "(no name)")
	state := "ok"
	if g.Degraded {
		state = "DEGRADED (cloud targets do not answer)"
	}
	if !g.Live {
		state += ", cut off (no hub or device heard)"
	}
	fmt.Fprintf(w, "%-10s %s, %s\n", "hub group:", cleanText(name), state)
	for _, t := range g.CloudTargets {
		fmt.Fprintf(w, "  cloud target %s: %s\n", t.Addr, map[bool]string{true: "answers", false: "no answer"}[t.Up])
	}
	if g.Gateway.IsValid() {
		fmt.Fprintf(w, "%-10s %s held by %s\n", "gateway:", g.Gateway, cleanText(cmp.Or(g.GatewayHolder, "no hub")))
	}
	if len(g.Hubs) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  HUB\tSTATE\tENDPOINT\tOVERLAY\tLAST MESSAGE\tGATEWAY\tCARRIES")
		for _, h := range g.Hubs {
			last := "never"
			if !h.LastMessage.IsZero() {
				last = ago(now, h.LastMessage) + " ago"
			}
			ep, ov := "-", "-"
			if h.Endpoint.IsValid() {
				ep = h.Endpoint.String()
			}
			if h.OverlayAddr.IsValid() {
				ov = h.OverlayAddr.String()
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%d\n", cleanText(h.Name), h.State, ep, ov, last, yesNo(h.Gateway), h.Carries)
		}
		tw.Flush()
	}
	if len(g.Devices) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  DEVICE\tINSTANCE\tCCN\tSESSION HERE\tPRIMARY HERE\tACTIVE\tVIA (CLAIMS)\tTRAFFIC\tCARRIED HERE")
		for _, d := range g.Devices {
			route := "-"
			if d.Route != "" {
				route = cleanText(d.Route) + " (" + d.RouteWhy + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cleanText(d.SN), cleanText(cmp.Or(d.Instance, "-")), cleanText(cmp.Or(d.CCN, "-")),
				yesNo(d.Peered), yesNo(d.Primary), yesNo(d.Active), cleanText(cmp.Or(d.Via, "-")), route, yesNo(d.Carried))
		}
		tw.Flush()
	}
	for _, ev := range g.Events {
		line := ev.Message
		if ev.Detail != "" {
			line += ": " + ev.Detail
		}
		fmt.Fprintf(w, "  %s %s%s\n", ev.Time.Format(time.RFC3339Nano), cleanText(line), times(ev.Times(), ev.Last))
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// cleanText keeps names from the controller (device serials, instance and
// hub names) from steering the terminal: control characters are quoted.
func cleanText(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return strconv.Quote(s)
		}
	}
	return s
}

// groupMetrics are the hub-group metrics of a hub's Collector: per other
// hub (label hub) and for this hub.
type groupMetrics struct {
	peerUp, peerDegraded, peerGateway, peerCarries, peerLast     *prometheus.Desc
	degraded, gateway, carried, primary, routeChanges, gwChanges *prometheus.Desc
}

func newGroupMetrics() groupMetrics {
	hub := []string{"hub"}
	return groupMetrics{
		peerUp:       prometheus.NewDesc("vcpe_hub_group_peer_up", "1 while the other hub's messages arrive through the hub-to-hub tunnel (state up or degraded), else 0.", hub, nil),
		peerDegraded: prometheus.NewDesc("vcpe_hub_group_peer_degraded", "1 when the other hub says its cloud targets do not answer.", hub, nil),
		peerGateway:  prometheus.NewDesc("vcpe_hub_group_peer_gateway", "1 when the other hub says it holds the cloud gateway.", hub, nil),
		peerCarries:  prometheus.NewDesc("vcpe_hub_group_peer_carried_instances", "Instances the other hub says it carries.", hub, nil),
		peerLast:     prometheus.NewDesc("vcpe_hub_group_peer_last_message_seconds", "Unix time of the other hub's last message (0: never).", hub, nil),
		degraded:     prometheus.NewDesc("vcpe_hub_group_degraded", "1 when this hub's cloud targets do not answer (gray failure).", hub, nil),
		gateway:      prometheus.NewDesc("vcpe_hub_group_gateway_held", "1 while this hub holds the cloud gateway address.", hub, nil),
		carried:      prometheus.NewDesc("vcpe_hub_group_carried_instances", "Instances whose active device carries its traffic through this hub.", hub, nil),
		primary:      prometheus.NewDesc("vcpe_hub_group_primary_devices", "Devices whose primary hub is this one.", hub, nil),
		routeChanges: prometheus.NewDesc("vcpe_hub_group_route_changes_total", "Instances whose traffic this hub moved (to its device or to another hub).", hub, nil),
		gwChanges:    prometheus.NewDesc("vcpe_hub_group_gateway_changes_total", "Times this hub took or gave up the cloud gateway.", hub, nil),
	}
}

func (m groupMetrics) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.peerUp, m.peerDegraded, m.peerGateway, m.peerCarries, m.peerLast,
		m.degraded, m.gateway, m.carried, m.primary, m.routeChanges, m.gwChanges} {
		ch <- d
	}
}

func (m groupMetrics) collect(ch chan<- prometheus.Metric, g *HubGroupStatus) {
	if g == nil {
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, h := range g.Hubs {
		last := 0.0
		if !h.LastMessage.IsZero() {
			last = float64(h.LastMessage.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(m.peerUp, prometheus.GaugeValue, b(h.State != GroupHubDown), h.Name)
		ch <- prometheus.MustNewConstMetric(m.peerDegraded, prometheus.GaugeValue, b(h.State == GroupHubDegraded), h.Name)
		ch <- prometheus.MustNewConstMetric(m.peerGateway, prometheus.GaugeValue, b(h.Gateway), h.Name)
		ch <- prometheus.MustNewConstMetric(m.peerCarries, prometheus.GaugeValue, float64(h.Carries), h.Name)
		ch <- prometheus.MustNewConstMetric(m.peerLast, prometheus.GaugeValue, last, h.Name)
	}
	carried, primary := 0, 0
	for _, d := range g.Devices {
		if d.Carried {
			carried++
		}
		if d.Primary && d.Peered {
			primary++
		}
	}
	self := g.Name
	held := g.GatewayHolder != "" && (g.GatewayHolder == g.Name || g.GatewayHolder == thisHub)
	ch <- prometheus.MustNewConstMetric(m.degraded, prometheus.GaugeValue, b(g.Degraded), self)
	ch <- prometheus.MustNewConstMetric(m.gateway, prometheus.GaugeValue, b(held), self)
	ch <- prometheus.MustNewConstMetric(m.carried, prometheus.GaugeValue, float64(carried), self)
	ch <- prometheus.MustNewConstMetric(m.primary, prometheus.GaugeValue, float64(primary), self)
	ch <- prometheus.MustNewConstMetric(m.routeChanges, prometheus.CounterValue, float64(g.RouteChanges), self)
	ch <- prometheus.MustNewConstMetric(m.gwChanges, prometheus.CounterValue, float64(g.GatewayChanges), self)
}

// thisHub names the gateway holder in the status of a hub without a name.
const thisHub = "this hub"
