package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openvcpe/vcpe/api"
)

// effectiveLocked is the controller's HubConfig with the arbiter's roles:
// where the arbiter holds another device active than the controller, the
// instance's prefixes (what the controller gave its active peer) move to
// that device's peer. Where they agree the config is used as given.
func (h *Hub) effectiveLocked(desired api.HubConfig) api.HubConfig {
	eff := cloneHubConfig(desired)
	now := h.c.now()
	members := map[string][]string{}
	ctrlActive := map[string]int{}
	for i, p := range eff.Peers {
		if grouped(desired) && !peersWith(p, desired.Name) {
			continue // a device of other hubs: it never claims here
		}
		id := instanceKey(p)
		members[id] = append(members[id], p.SN)
		if p.Active {
			ctrlActive[id] = i
		}
	}
	keep := map[string]bool{}
	for id, sns := range members {
		keep[id] = true
		ctrl := ""
		if i, ok := ctrlActive[id]; ok {
			ctrl = eff.Peers[i].SN
		}
		h.arb.SetMembers(now, id, sns, ctrl)
	}
	h.arb.Forget(keep)
	for id, ci := range ctrlActive {
		act := h.arb.Active(id)
		from := &eff.Peers[ci]
		if act == "" || act == from.SN {
			continue
		}
		own := netip.PrefixFrom(from.OverlayAddr, 32)
		moved := slices.DeleteFunc(slices.Clone(from.AllowedIPs), func(p netip.Prefix) bool { return p == own })
		from.Active, from.AllowedIPs = false, []netip.Prefix{own}
		for i := range eff.Peers {
			p := &eff.Peers[i]
			if instanceKey(*p) == id && p.SN == act {
				p.Active = true
				p.AllowedIPs = normalize(append([]netip.Prefix{netip.PrefixFrom(p.OverlayAddr, 32)}, moved...))
			}
		}
	}
	return eff
}

// switchLocked applies the arbiter's new roles to the peers (UAPI:
// immediate) and records and reports the events (in a hub group: when
// this hub sends the instance's traffic to its device).
func (h *Hub) switchLocked(events []RoleEvent) {
	if len(events) == 0 || h.w == nil {
		return
	}
	h.replanLocked(true)
	h.events = appendEvents(h.events, events...)
	for _, ev := range events {
		if ev.Role == api.RoleActive {
			h.c.log.Warn("role switch", "instance", ev.Instance, "active", ev.SN, "previous", ev.Previous, "reason", ev.Reason)
			// In a hub group every hub of the instance runs an arbiter, but
			// devices take their role from the hub that carries them: only
			// that hub reports its switches to the controller.
			if t, ok := h.plan.Via[ev.Instance]; h.onSwitch != nil && (!grouped(h.desired) || ok && t == viaHere) {
				h.onSwitch(ev)
			}
		}
	}
}

// serveClaims answers devices' claims on the hub's overlay address. The
// socket is bound to the TUN, so only packets that came through a tunnel
// (WireGuard checked that their source belongs to the sending peer) reach
// it; a claim is taken for the peer that owns its source address.
func (h *Hub) serveClaims(ctx context.Context, w *wgIface) error {
	var pc net.PacketConn
	err := w.inNS(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, w.name)
			}); err != nil {
				return err
			}
			return serr
		}}
		var e error
		pc, e = lc.ListenPacket(ctx, "udp4", fmt.Sprintf(":%d", h.claimPort))
		return e
	})
	if err != nil {
		return fmt.Errorf("claim listener on UDP %d: %w", h.claimPort, err)
	}
	h.pc = pc
	h.bg.Add(2)
	go func() { defer h.bg.Done(); <-ctx.Done(); pc.Close() }()
	go func() {
		defer h.bg.Done()
		// Claims and hub-message parts fit a tunnel packet; a larger
		// datagram is read whole all the same.
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			ua, ok := from.(*net.UDPAddr)
			if !ok {
				continue
			}
			src, _ := netip.AddrFromSlice(ua.IP)
			if h.hubMessage(src.Unmap(), buf[:n]) {
				continue
			}
			var c Claim
			if json.Unmarshal(buf[:n], &c) != nil {
				continue
			}
			reply, ok := h.claim(src.Unmap(), c)
			if !ok {
				continue
			}
			b, _ := json.Marshal(reply)
			_, _ = pc.WriteTo(b, from)
		}
	}()
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		t := time.NewTicker(h.check.Interval / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				h.mu.Lock()
				h.switchLocked(h.arb.Tick(h.c.now()))
				// Claims and hub messages go stale: re-decide the routes.
				if grouped(h.desired) && (h.dirty || h.g.expiredSince(h.planAt, h.c.now())) {
					h.replanLocked(false)
				}
				h.mu.Unlock()
			}
		}
	}()
	return nil
}

func (h *Hub) claim(src netip.Addr, c Claim) (ClaimReply, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := slices.IndexFunc(h.desired.Peers, func(p api.HubPeer) bool { return p.OverlayAddr == src })
	if i < 0 {
		return ClaimReply{}, false
	}
	p := h.desired.Peers[i]
	id := instanceKey(p)
	now := h.c.now()
	role, events := h.arb.Claim(now, id, p.SN, c)
	moved := h.g.claim(now, p.SN, c.Via)
	h.switchLocked(events)
	if moved && len(events) == 0 {
		h.replanSoonLocked(now)
	}
	return ClaimReply{Seq: c.Seq, Role: role, Active: h.arb.Active(id), Members: h.arb.Members(id),
		Hub: h.desired.Name, Degraded: h.degraded}, true
}

// planLocked is the peers the hub runs for desired: the controller's
// config with the arbiter's roles, and, in a hub group, only the devices
// assigned here plus the other hubs, each instance's prefixes where the
// group's routing puts them (hubGroup.plan).
func (h *Hub) planLocked(desired api.HubConfig) api.HubConfig {
	eff := h.effectiveLocked(desired)
	h.all = eff
	if !grouped(desired) {
		h.plan = groupPlan{}
		return eff
	}
	h.planAt, h.dirty = h.c.now(), false
	pl := h.g.plan(h.planAt, eff)
	h.noteRoutesLocked(pl)
	h.plan = pl
	eff.Peers = pl.Peers
	return eff
}

// replanSoonLocked re-plans for news (a device names another hub, a hub
// message changed): at once, unless the last plan is younger than a fifth
// of an interval; then the next tick does it. A mass failover (every
// device of a hub moving) costs a plan per tick, not a plan per claim.
func (h *Hub) replanSoonLocked(now time.Time) {
	if now.Sub(h.planAt) >= h.check.Interval/5 {
		h.replanLocked(false)
		return
	}
	h.dirty = true
}

// replanLocked recomputes the peers and applies what changed (force: the
// routes too even when no peer changed).
func (h *Hub) replanLocked(force bool) {
	if h.w == nil {
		return
	}
	eff := h.planLocked(h.desired)
	if err := h.applyPeers(h.w, h.cfg, eff, force); err != nil {
		h.c.log.Error("move instance prefixes", "err", err)
		h.dirty = grouped(h.desired) // the next tick tries again
		return
	}
	h.cfg = eff
}
