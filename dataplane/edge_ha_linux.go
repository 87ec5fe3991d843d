package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/openvcpe/vcpe/api"
)

// haRun is the device side of multi-attach and of hub groups: LAN health
// probes, a claim to every hub of the group every interval, the choice of
// the hub that carries the traffic, and the LAN gateway address that
// follows the role the carrying hub answers with.
type haRun struct {
	e     *Engine
	w     *wgIface
	claim net.PacketConn
	lan   net.PacketConn // nil without LAN targets
	arp   int            // AF_PACKET socket, -1 without a LAN gateway
	link  netlink.Link   // the LAN interface, nil without a LAN gateway
	mac   net.HardwareAddr
	garps int // gratuitous ARPs still to send
	// seq is the last claim's sequence number; yieldSeq the one at the
	// last yield to another device's announcement: answers to claims up
	// to it predate the hub's switch and are not taken as "active". Both
	// under e.haMu.
	seq, yieldSeq uint64
}

// takeoverWait is how long a device that becomes active waits between
// announcing the gateway address and taking it: the device that held it
// (cut off from the hub, so it has not heard of the switch) yields on the
// announcement, so two devices never hold it at once.
const takeoverWait = 20 * time.Millisecond

// startHA opens the sockets and starts the HA goroutines. The device starts
// as standby (dropping a gateway address a killed predecessor left).
func (e *Engine) startHA(ctx context.Context, w *wgIface) (err error) {
	r := &haRun{e: e, w: w, arp: -1}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	err = w.inNS(func() error {
		var e2 error
		if r.claim, e2 = net.ListenPacket("udp4", ":0"); e2 != nil {
			return fmt.Errorf("claim socket: %w", e2)
		}
		if len(e.ha.LANTargets) > 0 {
			if r.lan, e2 = icmp.ListenPacket("ip4:icmp", "0.0.0.0"); e2 != nil {
				return fmt.Errorf("LAN probe socket: %w", e2)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if gw := e.ha.LANGateway; gw.IsValid() {
		if r.link, err = gatewayLink(w.nl, e.ha.LANInterface, gw, "lan gateway", "--lan-if"); err != nil {
			return err
		}
		r.mac = r.link.Attrs().HardwareAddr
		if r.arp, err = openARPSocket(w.inNS, 0); err != nil {
			return fmt.Errorf("gratuitous ARP: %w", err)
		}
		r.dropVIP()
		if err = r.listenAnnouncements(ctx); err != nil {
			return err
		}
	}
	e.bg.Add(3)
	go func() { defer e.bg.Done(); <-ctx.Done(); r.close() }()
	go func() { defer e.bg.Done(); r.readReplies() }()
	go func() { defer e.bg.Done(); r.loop(ctx) }()
	if r.lan != nil {
		e.bg.Add(1)
		go func() { defer e.bg.Done(); r.readLAN() }()
	}
	return nil
}

func (r *haRun) close() {
	if r.claim != nil {
		r.claim.Close()
	}
	if r.lan != nil {
		r.lan.Close()
	}
	r.e.haMu.Lock()
	defer r.e.haMu.Unlock()
	if r.arp >= 0 {
		if r.e.role == api.RoleActive {
			r.dropVIP()
			r.e.role = api.RoleStandby
		}
		unix.Close(r.arp)
		r.arp = -1
	}
}

func (r *haRun) loop(ctx context.Context) {
	e := r.e
	chk := e.ha.Check
	t := time.NewTicker(chk.Interval)
	defer t.Stop()
	// The withdrawal is checked more often than claims go out, so it
	// happens within Interval/5 of withdrawAfter.
	w := time.NewTicker(chk.Interval / 5)
	defer w.Stop()
	trackers := make([]*healthTracker, len(e.ha.LANTargets))
	for i := range trackers {
		trackers[i] = newHealthTracker(chk)
	}
	e.lanTrackers = trackers
	id := (os.Getpid() + 1) & 0xffff
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.C:
			now := e.c.now()
			r.evalHubs(now)
			e.haMu.Lock()
			r.evalLocked(now)
			e.haMu.Unlock()
			continue
		case <-t.C:
		}
		now := e.c.now()
		e.haMu.Lock()
		r.seq++
		seq := r.seq
		lanOK := len(trackers) == 0
		for i, tr := range trackers {
			if tr.expire(now) {
				lanOK = true
			}
			tr.sent(seq&0xffff, now)
			msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: int(seq & 0xffff), Data: []byte("vcpe-lan-health")}}
			if b, err := msg.Marshal(nil); err == nil {
				_, _ = r.lan.WriteTo(b, &net.IPAddr{IP: e.ha.LANTargets[i].AsSlice()})
			}
		}
		if lanOK != e.lanOK {
			e.c.log.Warn("LAN health changed", "lan_ok", lanOK, "targets", e.ha.LANTargets)
		}
		e.lanOK = lanOK
		r.evalLocked(now)
		if r.garps > 0 {
			r.garps--
			r.sendGARP()
		}
		e.haMu.Unlock()
		tg := e.target.Load()
		b, _ := json.Marshal(Claim{SN: e.sn(), Healthy: lanOK, LANOK: lanOK, Seq: seq, Via: tg.via, Copies: claimCopies})
		// Each claim goes to every hub of the group (their answers are
		// their health), claimCopies times, spaced (each hub answers
		// each): a lossy path loses all copies far less often than one,
		// so random loss does not pass for a lost device or a lost hub.
		sendCopies(copyGap(chk.Interval), func() {
			for _, h := range tg.hubs {
				_, _ = r.claim.WriteTo(b, &net.UDPAddr{IP: h.OverlayAddr.AsSlice(), Port: int(e.ha.ClaimPort)})
			}
		})
	}
}

// evalHubs lets the engine judge the hubs; after a switch the role is the
// new carrying hub's last answer.
func (r *haRun) evalHubs(now time.Time) {
	e := r.e
	rep, moved := e.evalHubs(r.w, now)
	if !moved {
		return
	}
	e.haMu.Lock()
	defer e.haMu.Unlock()
	e.lastReply, e.members = rep.at, rep.members
	if rep.role == api.RoleStandby || rep.role == api.RoleActive && rep.seq > r.yieldSeq {
		e.hubRole = rep.role
	}
	r.evalLocked(now)
}

func (r *haRun) readReplies() {
	e := r.e
	buf := make([]byte, 512)
	for {
		n, from, err := r.claim.ReadFrom(buf)
		if err != nil {
			return
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		a, _ := netip.AddrFromSlice(ua.IP)
		var rep ClaimReply
		if json.Unmarshal(buf[:n], &rep) != nil || (rep.Role != api.RoleActive && rep.Role != api.RoleStandby) {
			continue
		}
		now := e.c.now()
		// Every hub's replies feed its health; only the carrying hub's
		// decide the role.
		if carrying, known := e.hubReplied(a.Unmap(), rep, now); !known || !carrying {
			continue
		}
		e.haMu.Lock()
		e.lastReply, e.members = now, rep.Members
		if rep.Role == api.RoleStandby || rep.Seq > r.yieldSeq {
			e.hubRole = rep.Role
		}
		r.evalLocked(now)
		e.haMu.Unlock()
	}
}

func (r *haRun) readLAN() {
	e := r.e
	readEchoReplies(r.lan, (os.Getpid()+1)&0xffff, 1500, func(from netip.Addr, seq int) {
		i := slices.Index(e.ha.LANTargets, from)
		if i < 0 {
			return
		}
		now := e.c.now()
		e.haMu.Lock()
		if i < len(e.lanTrackers) {
			e.lanTrackers[i].answered(uint64(seq), now)
		}
		e.haMu.Unlock()
	})
}

// evalLocked applies deviceRole.
func (r *haRun) evalLocked(now time.Time) {
	e := r.e
	role, reason := deviceRole(now, e.hubRole, e.lastReply, e.members, e.ha.Check)
	if role == e.role {
		return
	}
	if role == api.RoleStandby && !e.lanOK && e.role == api.RoleActive && reason == reasonHub {
		reason = "LAN targets unreachable"
	}
	prev := e.role
	e.role = role
	ev := RoleEvent{Time: now, SN: e.sn(), Role: role, Reason: reason}
	e.haEvents = appendEvents(e.haEvents, ev)
	e.c.log.Warn("role switch", "sn", ev.SN, "role", role, "previous", prev, "reason", reason)
	if r.link == nil {
		return
	}
	if role == api.RoleActive {
		r.sendGARP()
		time.Sleep(takeoverWait)
		if err := r.w.nl.AddrReplace(r.link, &netlink.Addr{IPNet: ipNet(e.ha.LANGateway)}); err != nil {
			e.c.log.Error("add LAN gateway address", "addr", e.ha.LANGateway, "interface", r.link.Attrs().Name, "err", err)
			return
		}
		r.sendGARP()
		r.garps = 3
		return
	}
	r.dropVIP()
	r.garps = 0
}

// listenAnnouncements watches the LAN for another device announcing the
// gateway address (a gratuitous ARP: sender and target address both the
// gateway, another MAC). Only vcped sends those, when the hub made it
// active; the active device that hears one yields at once, even while
// the hub's word has not reached it (it lost the hub). Kernel ARP replies
// of a killed device that still holds the address are not
// announcements and are ignored.
func (r *haRun) listenAnnouncements(ctx context.Context) error {
	fd, err := openARPSocket(r.w.inNS, r.link.Attrs().Index)
	if err != nil {
		return fmt.Errorf("gateway announcement socket on %s: %w", r.link.Attrs().Name, err)
	}
	e := r.e
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		watchAnnouncements(ctx, fd, e.ha.LANGateway.Addr(), r.mac, func() {
			e.haMu.Lock()
			if e.role == api.RoleActive {
				r.yieldLocked(e.c.now())
			}
			e.haMu.Unlock()
		})
	}()
	return nil
}

// isAnnouncement reports whether frame is a gratuitous ARP for vip from
// another MAC than own.
func isAnnouncement(frame []byte, vip netip.Addr, own net.HardwareAddr) bool {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	if !ok || a.Protocol != layers.EthernetTypeIPv4 || len(a.SourceProtAddress) != 4 || len(a.DstProtAddress) != 4 {
		return false
	}
	spa, _ := netip.AddrFromSlice(a.SourceProtAddress)
	tpa, _ := netip.AddrFromSlice(a.DstProtAddress)
	return spa == vip && tpa == vip && !slices.Equal(a.SourceHwAddress, own)
}

// yieldLocked gives the role up because another device announced the
// gateway address: answers to the claims sent so far predate the hub's
// switch.
func (r *haRun) yieldLocked(now time.Time) {
	e := r.e
	r.yieldSeq = r.seq
	e.hubRole = api.RoleStandby
	e.role = api.RoleStandby
	reason := "another device announced the gateway address"
	e.haEvents = appendEvents(e.haEvents, RoleEvent{Time: now, SN: e.sn(), Role: api.RoleStandby, Reason: reason})
	e.c.log.Warn("role switch", "sn", e.sn(), "role", api.RoleStandby, "previous", api.RoleActive, "reason", reason)
	r.dropVIP()
	r.garps = 0
}

func (r *haRun) dropVIP() {
	err := r.w.nl.AddrDel(r.link, &netlink.Addr{IPNet: ipNet(r.e.ha.LANGateway)})
	if err != nil && !os.IsNotExist(err) && err != unix.EADDRNOTAVAIL {
		r.e.c.log.Debug("remove LAN gateway address", "addr", r.e.ha.LANGateway, "err", err)
	}
}

// sendGARP announces the gateway address with this interface's MAC (an
// ARP request for itself), so LAN hosts move their neighbour entry at once.
func (r *haRun) sendGARP() {
	if r.arp < 0 {
		return
	}
	if err := sendGARP(r.arp, r.link.Attrs().Index, r.mac, r.e.ha.LANGateway.Addr()); err != nil {
		r.e.c.log.Debug("gratuitous ARP", "err", err)
	}
}
