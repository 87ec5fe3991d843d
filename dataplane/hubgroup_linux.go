package dataplane

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/openvcpe/vcpe/api"
)

// cloudHealth probes the hub's cloud-side health targets every interval
// (ICMP echo); the hub is degraded when none of them answers.
type cloudHealth struct {
	conn     net.PacketConn
	targets  []netip.Addr
	trackers []*healthTracker
	id       int
	seq      uint64
}

// tick expires unanswered probes, sends the next round and reports
// whether any target is up.
func (c *cloudHealth) tick(now time.Time) bool {
	c.seq++
	ok := false
	for i, tr := range c.trackers {
		if tr.expire(now) {
			ok = true
		}
		tr.sent(c.seq&0xffff, now)
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: c.id, Seq: int(c.seq & 0xffff), Data: []byte("vcpe-cloud-health")}}
		if b, err := msg.Marshal(nil); err == nil {
			_, _ = c.conn.WriteTo(b, &net.IPAddr{IP: c.targets[i].AsSlice()})
		}
	}
	return ok
}

// cloudGW holds the cloud gateway address (the cloud hosts' gateway) while
// this hub is the group's holder.
type cloudGW struct {
	vip  netip.Prefix
	nl   *netlink.Handle
	link netlink.Link
	mac  net.HardwareAddr
	arp  int // AF_PACKET socket for sending gratuitous ARP

	holding atomic.Bool
	mu      sync.Mutex // transitions; taken after Hub.mu, never before
	garps   int        // gratuitous ARPs still to send after a take-over
	lastARP time.Time  // the last announcement (one every garpEvery while holding)
	// yieldUntil: after yielding to another hub's announcement, this hub
	// does not take the address back before then.
	yieldUntil time.Time
}

// startGroup opens the cloud-side sockets and starts the group loop: hub
// messages, cloud health, the cloud gateway. Called with h.mu held.
func (h *Hub) startGroup(ctx context.Context, w *wgIface) error {
	if len(h.cloudTargets) > 0 {
		var conn net.PacketConn
		err := w.inNS(func() error {
			var err error
			conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
			return err
		})
		if err != nil {
			return fmt.Errorf("cloud target probe socket: %w", err)
		}
		c := &cloudHealth{conn: conn, targets: h.cloudTargets, id: (os.Getpid() + 2) & 0xffff}
		for range h.cloudTargets {
			c.trackers = append(c.trackers, newHealthTracker(h.check))
		}
		h.cloud = c
		h.bg.Add(2)
		go func() { defer h.bg.Done(); <-ctx.Done(); conn.Close() }()
		go func() { defer h.bg.Done(); h.readCloud(c) }()
	}
	if vip := h.cloudGateway; vip.IsValid() {
		link, err := gatewayLink(w.nl, h.cloudInterface, vip, "cloud gateway", "--cloud-interface")
		if err != nil {
			return err
		}
		gw := &cloudGW{vip: vip, nl: w.nl, link: link, mac: link.Attrs().HardwareAddr, arp: -1}
		if gw.arp, err = openARPSocket(w.inNS, 0); err != nil {
			return fmt.Errorf("cloud gateway: %w", err)
		}
		h.gw = gw
		gw.drop() // a killed predecessor's address
		fd, err := openARPSocket(w.inNS, link.Attrs().Index)
		if err != nil {
			return fmt.Errorf("cloud gateway announcement socket on %s: %w", link.Attrs().Name, err)
		}
		h.bg.Add(1)
		go func() {
			defer h.bg.Done()
			watchAnnouncements(ctx, fd, vip.Addr(), gw.mac, func() { h.yieldGateway() })
		}()
	}
	h.bg.Add(1)
	go func() { defer h.bg.Done(); h.groupLoop(ctx) }()
	return nil
}

func (h *Hub) readCloud(c *cloudHealth) {
	readEchoReplies(c.conn, c.id, 1500, func(from netip.Addr, seq int) {
		i := slices.Index(c.targets, from)
		if i < 0 {
			return
		}
		h.mu.Lock()
		c.trackers[i].answered(uint64(seq), h.c.now())
		h.mu.Unlock()
	})
}

// closeGroupLocked gives the cloud gateway up and closes the group's
// sockets; the goroutines have ended.
func (h *Hub) closeGroupLocked() {
	if gw := h.gw; gw != nil {
		gw.mu.Lock()
		if gw.holding.Load() {
			gw.drop()
			gw.holding.Store(false)
		}
		if gw.arp >= 0 {
			unix.Close(gw.arp)
			gw.arp = -1
		}
		gw.mu.Unlock()
		h.gw = nil
	}
	if h.cloud != nil {
		h.cloud.conn.Close()
		h.cloud = nil
	}
	h.pc = nil
}

// groupLoop runs every interval: the cloud targets' health, the message to
// every other hub, and the cloud gateway decision.
func (h *Hub) groupLoop(ctx context.Context) {
	t := time.NewTicker(h.check.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := h.c.now()
		h.mu.Lock()
		if h.w == nil {
			h.mu.Unlock()
			continue
		}
		if h.cloud != nil {
			degraded := !h.cloud.tick(now)
			if degraded != h.degraded {
				h.degraded = degraded
				msg := "cloud targets answer again"
				if degraded {
					msg = "cloud targets unreachable: degraded (devices carry through another hub)"
				}
				h.c.log.Warn(msg, "targets", h.cloudTargets)
				h.groupEvents = appendEvent(h.groupEvents, Event{Time: now, Kind: "cloud", Message: msg})
			}
		}
		var msgs [][]byte
		var dsts []netip.Addr
		if grouped(h.desired) && h.pc != nil {
			h.msgSeq++
			m := hubMessage{Hub: h.desired.Name, Seq: h.msgSeq, Carry: h.plan.Carry, Degraded: h.degraded}
			for _, id := range h.plan.Carry {
				if h.arb.Members(id) > 1 {
					if m.Active == nil {
						m.Active = map[string]string{}
					}
					m.Active[id] = h.arb.Active(id)
				}
			}
			if h.gw != nil {
				m.Gateway = h.gw.holding.Load()
			}
			msgs = splitMessage(m)
			for _, o := range h.desired.Hubs {
				dsts = append(dsts, o.OverlayAddr)
			}
		}
		pc := h.pc
		want, reason := false, ""
		if h.gw != nil {
			want, reason = h.gatewayWantLocked(now)
		}
		h.mu.Unlock()
		if len(dsts) > 0 {
			sendCopies(copyGap(h.check.Interval), func() {
				for _, d := range dsts {
					for _, msg := range msgs {
						_, _ = pc.WriteTo(msg, &net.UDPAddr{IP: d.AsSlice(), Port: int(h.claimPort)})
					}
				}
			})
		}
		if h.gw != nil {
			h.setGateway(now, want, reason)
		}
	}
}

// gatewayWantLocked decides whether this hub should hold the cloud
// gateway now, and why (for the event when it changes).
func (h *Hub) gatewayWantLocked(now time.Time) (bool, string) {
	gw := h.gw
	gw.mu.Lock()
	yielded := now.Before(gw.yieldUntil)
	gw.mu.Unlock()
	live := h.g.live(now)
	views := h.g.gatewayViews(now)
	holding := gw.holding.Load()
	// A hub that has just started hearing (a start, its WAN back) first
	// listens for a whole window: another hub may hold the gateway.
	settling := !holding && !h.g.settled(now)
	want := !yielded && !settling && wantGateway(h.desired.Name, live, h.degraded, holding, h.desired.Failback, views)
	switch {
	case want:
		return true, "the lowest-named live hub that is not degraded"
	case !live:
		return false, "cut off: no message from another hub and no claim from a device"
	case h.degraded:
		return false, "degraded: the cloud targets do not answer"
	case yielded:
		return false, "another hub announced the address"
	case settling:
		return false, "listening to the group before taking it"
	}
	for _, v := range views {
		if v.Up && !v.Degraded && v.Gateway {
			return false, "hub " + v.Name + " holds it"
		}
	}
	return false, "a lower-named hub is up"
}

// garpEvery is how often the cloud gateway's holder announces it again.
const garpEvery = 2 * time.Second

// setGateway takes or gives up the cloud gateway address. A take-over
// announces the address first and takes it takeoverWait later (a holder
// that lost its link to this hub yields on the announcement), then
// announces it again on the next intervals.
func (h *Hub) setGateway(now time.Time, want bool, reason string) {
	gw := h.gw
	gw.mu.Lock()
	holding := gw.holding.Load()
	switch {
	case want && !holding:
		gw.garp(h)
		time.Sleep(takeoverWait)
		if err := gw.nl.AddrReplace(gw.link, &netlink.Addr{IPNet: ipNet(gw.vip)}); err != nil {
			gw.mu.Unlock()
			h.c.log.Error("add cloud gateway address", "addr", gw.vip, "interface", gw.link.Attrs().Name, "err", err)
			return
		}
		gw.holding.Store(true)
		gw.garp(h)
		gw.garps, gw.lastARP = 3, now
	case !want && holding:
		gw.drop()
		gw.holding.Store(false)
		gw.garps = 0
	case want && (gw.garps > 0 || now.Sub(gw.lastARP) >= garpEvery):
		// After a take-over, and then now and then: a killed holder's
		// kernel still answers ARP for the address it kept.
		gw.garps = max(gw.garps-1, 0)
		gw.lastARP = now
		gw.garp(h)
		gw.mu.Unlock()
		return
	default:
		gw.mu.Unlock()
		return
	}
	gw.mu.Unlock()
	h.gatewayEvent(now, want, reason)
}

func (h *Hub) gatewayEvent(now time.Time, took bool, reason string) {
	msg := "gave up the cloud gateway " + h.cloudGateway.String()
	if took {
		msg = "took the cloud gateway " + h.cloudGateway.String()
	}
	h.c.log.Warn(msg, "reason", reason)
	h.mu.Lock()
	h.gatewayChanges++
	h.groupEvents = appendEvent(h.groupEvents, Event{Time: now, Kind: "gateway", Message: msg, Detail: reason})
	h.mu.Unlock()
}

// yieldGateway gives the address up at once on another hub's
// announcement, and keeps off it for the dead-after window.
func (h *Hub) yieldGateway() {
	gw := h.gw
	if gw == nil {
		return
	}
	now := h.c.now()
	gw.mu.Lock()
	gw.yieldUntil = now.Add(h.check.hubDeadAfter())
	if !gw.holding.Load() {
		gw.mu.Unlock()
		return
	}
	gw.drop()
	gw.holding.Store(false)
	gw.garps = 0
	gw.mu.Unlock()
	h.gatewayEvent(now, false, "another hub announced the address")
}

func (gw *cloudGW) drop() {
	err := gw.nl.AddrDel(gw.link, &netlink.Addr{IPNet: ipNet(gw.vip)})
	_ = err // not there: nothing to drop
}

func (gw *cloudGW) garp(h *Hub) {
	if err := sendGARP(gw.arp, gw.link.Attrs().Index, gw.mac, gw.vip.Addr()); err != nil {
		h.c.log.Debug("gratuitous ARP", "err", err)
	}
}

// hubMessage takes a message from another hub of the group: it reports
// whether src is one (then b is consumed, valid or not). WireGuard checked
// that src belongs to that hub's peer.
func (h *Hub) hubMessage(src netip.Addr, b []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := slices.IndexFunc(h.desired.Hubs, func(o api.HubInfo) bool { return o.OverlayAddr == src })
	if i < 0 {
		return false
	}
	var m hubMessage
	if json.Unmarshal(b, &m) != nil || m.Hub != h.desired.Hubs[i].Name {
		return true
	}
	now := h.c.now()
	changed := h.g.message(now, m)
	h.followLocked(now, m)
	if changed {
		h.replanSoonLocked(now)
	}
	return true
}

// followLocked takes the roles of the instances the sender carries (and
// this hub does not: of two hubs that both think they carry an instance,
// the higher-named follows the lower-named) for the hub-dead window.
func (h *Hub) followLocked(now time.Time, m hubMessage) {
	var events []RoleEvent
	for id, sn := range m.Active {
		if t, ok := h.plan.Via[id]; ok && t == viaHere && h.desired.Name < m.Hub {
			continue
		}
		events = append(events, h.arb.Follow(now, id, sn, now.Add(h.check.hubDeadAfter()))...)
	}
	if len(events) > 0 {
		h.switchLocked(events)
	}
}

// noteRoutesLocked records where instances' traffic moved (events, log).
func (h *Hub) noteRoutesLocked(pl groupPlan) {
	if h.plan.Via == nil {
		return // the first plan: nothing moved
	}
	ids := make([]string, 0, len(pl.Via))
	for id := range pl.Via {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	now := h.c.now()
	for _, id := range ids {
		old, had := h.plan.Via[id]
		t := pl.Via[id]
		if had && old == t {
			continue
		}
		where := "to its device here"
		if t != viaHere {
			where = "through hub " + t
		}
		h.routeChanges++
		msg := fmt.Sprintf("instance %s: traffic %s", id, where)
		h.c.log.Info("hub group route", "instance", id, "via", t, "why", pl.Why[id])
		h.groupEvents = appendEvent(h.groupEvents, Event{Time: now, Kind: "route", Message: msg, Detail: "decided by " + pl.Why[id]})
	}
}

// groupStatusLocked is Status.HubGroup: nil on a legacy hub without
// cloud targets or gateway.
func (h *Hub) groupStatusLocked(now time.Time) *HubGroupStatus {
	if !grouped(h.desired) && h.cloud == nil && h.gw == nil {
		return nil
	}
	st := h.g.groupStatus(now, h.desired, h.all, h.plan)
	st.Degraded = h.degraded
	st.RouteChanges, st.GatewayChanges = h.routeChanges, h.gatewayChanges
	if h.cloud != nil {
		for i, a := range h.cloud.targets {
			st.CloudTargets = append(st.CloudTargets, TargetStatus{Addr: a, Up: h.cloud.trackers[i].up})
		}
	}
	if h.gw != nil {
		st.Gateway = h.gw.vip
		if h.gw.holding.Load() {
			st.GatewayHolder = cmp.Or(h.desired.Name, thisHub)
		}
	}
	if st.GatewayHolder == "" {
		for _, o := range st.Hubs {
			if o.State != GroupHubDown && o.Gateway {
				st.GatewayHolder = o.Name
				break
			}
		}
	}
	st.Events = append(st.Events, h.groupEvents...)
	return st
}
