package dataplane

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// hubLink is the liveness of the tunnel to one hub of the group.
type hubLink struct {
	hub   api.HubInfo
	judge *linkJudge
}

// hubReply is the last claim reply from one hub.
type hubReply struct {
	at      time.Time
	role    string
	members int
	seq     uint64
}

// hubLabel names a hub in logs and events: "the hub" without hub groups.
func hubLabel(h api.HubInfo) string {
	if h.Name == "" {
		return "the hub"
	}
	return "hub " + h.Name
}

// regroupLocked returns the chooser for cfg's hub group: the running one
// when the group is unchanged, else a new one that keeps what it knew of
// the hubs that stay (matched by name and key) and keeps carrying through
// the carrying hub when it stays (else through the primary). It changes
// nothing. Called with hubMu held.
func (e *Engine) regroupLocked(cfg api.DeviceConfig) *hubChooser {
	hubs := edgeHubs(cfg)
	old := e.chooser
	if old != nil && slices.Equal(hubs, e.hubs) && old.failback == cfg.Failback {
		return old
	}
	names := make([]string, len(hubs))
	for i, h := range hubs {
		names[i] = h.Name
	}
	now := e.c.now()
	c := newHubChooser(now, e.ha.Check.Interval, names, cfg.Failback)
	if old == nil {
		return c
	}
	c.start = old.start
	for i, h := range hubs {
		j := slices.IndexFunc(e.hubs, func(o api.HubInfo) bool { return o.Name == h.Name && o.PublicKey == h.PublicKey })
		if j < 0 || j >= len(old.hubs) {
			continue
		}
		c.hubs[i] = old.hubs[j]
		if j == old.carrying {
			c.carrying = i
		}
	}
	return c
}

// setHubsLocked makes cfg's group (with chooser c) the applied one and
// publishes it to the background goroutines. Called with hubMu held.
func (e *Engine) setHubsLocked(cfg api.DeviceConfig, c *hubChooser) {
	hubs := slices.Clone(edgeHubs(cfg))
	replies := make([]hubReply, len(hubs))
	for i, h := range hubs {
		if j := slices.IndexFunc(e.hubs, func(o api.HubInfo) bool { return o.PublicKey == h.PublicKey }); j >= 0 && j < len(e.replies) {
			replies[i] = e.replies[j]
		}
	}
	e.hubs, e.replies, e.chooser, e.hubCfg = hubs, replies, c, cloneDeviceConfig(cfg)
	e.storeTargetLocked()
}

func (e *Engine) storeTargetLocked() {
	h := e.hubs[e.chooser.carrying]
	e.target.Store(&probeTarget{hubKey: h.PublicKey, hubOverlay: h.OverlayAddr, hubs: e.hubs, carrying: e.chooser.carrying, via: h.Name})
}

// linksLocked gives every hub of hubs a liveness window, keeping the
// windows of the hubs that stay. Called with linkMu held.
func (e *Engine) linksLocked(hubs []api.HubInfo) {
	links := make([]*hubLink, 0, len(hubs))
	for _, h := range hubs {
		i := slices.IndexFunc(e.links, func(l *hubLink) bool { return l.hub.PublicKey == h.PublicKey })
		if i >= 0 {
			l := *e.links[i]
			l.hub = h
			links = append(links, &l)
			continue
		}
		links = append(links, &hubLink{hub: h, judge: newLinkJudge(e.c.now(), e.probeInterval, e.deadAfter)})
	}
	e.links = links
}

// linkHealths reports the liveness window of every hub, by key.
func (e *Engine) linkHealths() map[api.Key]LinkHealth {
	e.linkMu.Lock()
	defer e.linkMu.Unlock()
	out := make(map[api.Key]LinkHealth, len(e.links))
	for _, l := range e.links {
		out[l.hub.PublicKey] = l.judge.health()
	}
	return out
}

// hubSessions reports the hub group (peer fields are the caller's).
func (e *Engine) hubSessions(now time.Time, links map[api.Key]LinkHealth) []HubSession {
	e.hubMu.Lock()
	defer e.hubMu.Unlock()
	if e.chooser == nil {
		return nil
	}
	// Judge a copy: the HA loop's judgement must see (and record) every
	// change of state itself.
	c := *e.chooser
	c.hubs = slices.Clone(c.hubs)
	c.judge(now)
	out := make([]HubSession, len(e.hubs))
	for i, h := range e.hubs {
		hh := c.hubs[i]
		s := HubSession{Name: h.Name, PublicKey: h.PublicKey, Endpoint: h.Endpoint.String(), OverlayAddr: h.OverlayAddr,
			Primary: i == 0, Carrying: i == e.chooser.carrying, State: hh.state, Since: hh.since, LastReply: hh.lastReply,
			Role: e.replies[i].role, Switches: e.switches[h.PublicKey]}
		if l, ok := links[h.PublicKey]; ok {
			s.Link = &l
			if s.State == HubUp && l.State == LinkLossy {
				s.State, s.Since = HubLossy, l.Since
			}
		}
		out[i] = s
	}
	return out
}

// hubReplied records a claim reply from the hub whose overlay address is
// from and reports whether that hub carries the traffic (only its replies
// decide the multi-attach role) and whether it is a hub of the group.
func (e *Engine) hubReplied(from netip.Addr, rep ClaimReply, now time.Time) (carrying, known bool) {
	e.hubMu.Lock()
	defer e.hubMu.Unlock()
	i := slices.IndexFunc(e.hubs, func(h api.HubInfo) bool { return h.OverlayAddr == from })
	if i < 0 || e.chooser == nil {
		return false, false
	}
	e.chooser.replied(i, now, rep.Degraded)
	e.replies[i] = hubReply{at: now, role: rep.Role, members: rep.Members, seq: rep.Seq}
	return i == e.chooser.carrying, true
}

// evalHubs judges the hubs of the group and, when the chooser says so,
// moves the traffic: one UAPI write moves the routed AllowedIPs to the new
// hub's peer. It returns the new carrying hub's last reply when it did.
func (e *Engine) evalHubs(w *wgIface, now time.Time) (hubReply, bool) {
	e.hubMu.Lock()
	if e.chooser == nil {
		e.hubMu.Unlock()
		return hubReply{}, false
	}
	before := make([]string, len(e.chooser.hubs))
	for i, h := range e.chooser.hubs {
		before[i] = h.state
	}
	sw, ok := e.chooser.eval(now)
	var changed []hubStateChange
	for i, h := range e.chooser.hubs {
		if len(e.hubCfg.Hubs) > 1 && h.state != before[i] && (before[i] != HubConnecting || h.state != HubUp) {
			changed = append(changed, hubStateChange{hub: e.hubs[i], from: before[i], to: h.state, carrying: i == e.chooser.carrying})
		}
	}
	var from, to api.HubInfo
	var rep hubReply
	if ok {
		from, to = e.hubs[sw.From], e.hubs[sw.To]
		if err := w.ipcSet(hubSwitchUAPI(e.hubCfg, e.hubs, sw.From, sw.To)); err != nil {
			e.chooser.carrying = sw.From
			e.hubMu.Unlock()
			e.c.log.Error("move the traffic to another hub", "from", from.Name, "to", to.Name, "reason", sw.Reason, "err", err)
			return hubReply{}, false
		}
		e.switches[to.PublicKey]++
		rep = e.replies[sw.To]
		e.storeTargetLocked()
	}
	e.hubMu.Unlock()
	for _, c := range changed {
		e.hubStateEvent(now, c)
	}
	if !ok {
		return hubReply{}, false
	}
	msg := "traffic moved to hub " + to.Name
	e.c.log.Warn(msg, "from", from.Name, "to", to.Name, "reason", sw.Reason)
	e.linkMu.Lock()
	e.events = appendEvent(e.events, Event{Time: now, Kind: "hub", Message: msg, Detail: fmt.Sprintf("from hub %s: %s", from.Name, sw.Reason)})
	e.linkMu.Unlock()
	select {
	case e.pmtuKick <- struct{}{}: // another hub, another path
	default:
	}
	return rep, true
}

type hubStateChange struct {
	hub      api.HubInfo
	from, to string
	carrying bool
}

// hubStateEvent logs and records a hub session's change of state.
func (e *Engine) hubStateEvent(now time.Time, c hubStateChange) {
	var msg string
	switch c.to {
	case HubDown:
		msg = fmt.Sprintf("hub %s down: no claim reply through its tunnel", c.hub.Name)
	case HubDegraded:
		msg = fmt.Sprintf("hub %s degraded: its cloud side does not answer", c.hub.Name)
	case HubUp:
		msg = fmt.Sprintf("hub %s up again", c.hub.Name)
	default:
		return
	}
	detail := fmt.Sprintf("was %s; carrying the traffic: %v", c.from, c.carrying)
	if c.to == HubUp {
		e.c.log.Info(msg, "was", c.from)
	} else {
		e.c.log.Warn(msg, "was", c.from, "carrying", c.carrying)
	}
	e.linkMu.Lock()
	e.events = appendEvent(e.events, Event{Time: now, Kind: "hub", Message: msg, Detail: detail})
	e.linkMu.Unlock()
}
