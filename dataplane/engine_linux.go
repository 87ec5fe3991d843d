package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/device"

	"github.com/openvcpe/vcpe/api"
)

// Engine is the edge (device) dataplane: one WireGuard peer per hub of the
// device's group (one hub without hub groups).
type Engine struct {
	c             common
	probeInterval time.Duration
	deadAfter     time.Duration

	mu     sync.Mutex
	w      *wgIface
	cfg    api.DeviceConfig
	state  string // StateStopped before Start and after Close, StateRevoked after Revoke
	reason string
	syncFn func() SyncStatus
	cancel context.CancelFunc
	bg     sync.WaitGroup
	probe  net.PacketConn
	nft    *nftables.Conn // the TCP MSS clamp's table
	// linkMu guards links (the windowed liveness of the tunnel to each
	// hub), pmtu and the tunnel events.
	linkMu       sync.Mutex
	links        []*hubLink
	pmtu         PathMTUStatus
	events       []Event
	pmtuInterval time.Duration
	pmtuKick     chan struct{} // a network change: measure the path again
	mtu          atomic.Int64  // the tunnel interface's MTU now
	// target is what the background goroutines need of the config; they
	// never take mu, so Close (which holds mu) can wait for them.
	target atomic.Pointer[probeTarget]

	// The hub group: hubMu guards hubs, hubCfg, chooser, replies and
	// switches, and serialises the writes of the hub peers' AllowedIPs
	// (Apply and a switch both make them). Never held with haMu.
	hubMu    sync.Mutex
	hubs     []api.HubInfo
	hubCfg   api.DeviceConfig // the applied config, for the switch's AllowedIPs
	chooser  *hubChooser
	replies  []hubReply
	switches map[api.Key]int // times the traffic moved onto the hub

	// Multi-attach: the HA goroutines hold haMu, never mu.
	ha          EdgeHA
	protect     func() []Protected
	routeTable  int
	fwMark      uint32
	rulePrio    int
	dropped     []GuardedRoute // learned routes refused by guardLocked
	snv         atomic.Pointer[string]
	haMu        sync.Mutex
	role        string // api.RoleActive or api.RoleStandby as applied
	hubRole     string // the hub's last answer
	members     int    // devices of the instance, as the hub last said
	lastReply   time.Time
	lanOK       bool
	lanTrackers []*healthTracker
	haEvents    []RoleEvent
}

// probeTarget is the hub group as the background goroutines see it.
type probeTarget struct {
	hubKey     api.Key    // the carrying hub's
	hubOverlay netip.Addr // the carrying hub's
	hubs       []api.HubInfo
	carrying   int
	via        string // Claim.Via: the carrying hub's name (empty without hub groups)
}

// New validates the options. It changes nothing on the host.
func New(opts EdgeOptions) (*Engine, error) {
	c, err := newCommon(opts.PrivateKey, opts.TUN, opts.ListenPort, opts.UAPIDir, opts.MTU, opts.Logger, opts.Now)
	if err != nil {
		return nil, err
	}
	e := &Engine{c: c, probeInterval: opts.ProbeInterval, deadAfter: opts.DeadAfter, pmtuInterval: opts.PathMTUInterval, state: StateStopped,
		ha: opts.HA, protect: opts.Protect, role: api.RoleStandby, hubRole: api.RoleStandby, lanOK: true, pmtuKick: make(chan struct{}, 1),
		switches: map[api.Key]int{}}
	if e.routeTable, e.fwMark, e.rulePrio, err = routeTableOptions(opts.RouteTable, opts.FwMark, opts.RulePriority); err != nil {
		return nil, err
	}
	e.ha.Check = e.ha.Check.WithDefaults()
	if e.ha.ClaimPort == 0 {
		e.ha.ClaimPort = DefaultClaimPort
	}
	if gw := e.ha.LANGateway; gw.IsValid() && (!gw.Addr().Is4() || gw.Bits() >= 32) {
		return nil, fmt.Errorf("lan gateway %s: want an IPv4 address with its LAN prefix length, e.g. 198.19.1.254/24", gw)
	}
	if e.probeInterval <= 0 {
		e.probeInterval = DefaultProbeInterval
	}
	if e.deadAfter <= 0 {
		e.deadAfter = DefaultDeadAfter
	}
	if e.pmtuInterval == 0 {
		e.pmtuInterval = DefaultPathMTUInterval
	}
	return e, nil
}

// SetSyncStatus makes Status include the controller sync state.
func (e *Engine) SetSyncStatus(f func() SyncStatus) {
	e.mu.Lock()
	e.syncFn = f
	e.mu.Unlock()
}

// Start brings the tunnel up with cfg: TUN, overlay address, routes
// (reconciled with what a previous run left), IPv4 forwarding, the hub peer,
// the liveness prober and the roaming watcher. A failed Start undoes what
// it did.
func (e *Engine) Start(cfg api.DeviceConfig) (err error) {
	if err := ValidateDeviceConfig(cfg); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.w != nil {
		return errors.New("engine already started")
	}
	w, err := openWG(e.c)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			e.stopLocked(w)
			e.state = StateStopped
		}
	}()
	if err = w.setAddr(cfg.OverlayAddr, netip.Prefix{}); err != nil {
		return err
	}
	// Tunnel routes live in vcpe's own table, behind the main table's
	// specific routes; WireGuard's own packets never use them.
	if err = w.useTable(e.routeTable, e.fwMark, e.rulePrio); err != nil {
		return err
	}
	cfg = e.guardLocked(w, cfg)
	if err = w.reconcileRoutes(routedPrefixes(cfg.OverlayAddr.Masked(), cfg.Routes)); err != nil {
		return err
	}
	if err = w.enableForwarding(); err != nil {
		return err
	}
	if e.nft, err = openMSSClamp(w); err != nil {
		return err
	}
	if err = w.ipcSet(edgePeerUAPI(nil, cfg, 0)); err != nil {
		return fmt.Errorf("configure hub peer: %w", err)
	}
	err = w.inNS(func() error {
		var e2 error
		e.probe, e2 = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return e2
	})
	if err != nil {
		return fmt.Errorf("open liveness probe socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.w, e.cfg, e.state, e.reason = w, cloneDeviceConfig(cfg), StateConnecting, ""
	e.hubMu.Lock()
	e.chooser, e.switches = nil, map[api.Key]int{}
	e.setHubsLocked(cfg, e.regroupLocked(cfg))
	e.hubMu.Unlock()
	e.linkMu.Lock()
	e.links = nil
	e.linksLocked(edgeHubs(cfg))
	e.pmtu = PathMTUStatus{Configured: e.c.mtu, Current: e.c.mtu}
	e.linkMu.Unlock()
	e.mtu.Store(int64(e.c.mtu))
	updates := make(chan struct{}, 1)
	if err = e.watchNetlink(ctx, w, updates); err != nil {
		e.w = nil
		return err
	}
	sn := cfg.SN
	e.snv.Store(&sn)
	if err = e.startHA(ctx, w); err != nil {
		cancel()
		e.bg.Wait()
		e.w = nil
		return err
	}
	if err = e.startPathMTU(ctx, w); err != nil {
		cancel()
		e.bg.Wait()
		e.w = nil
		return err
	}
	probe := e.probe
	e.bg.Add(3)
	go func() { defer e.bg.Done(); e.readProbes(probe) }()
	go func() { defer e.bg.Done(); e.liveness(ctx, w, probe, updates) }()
	go func() { defer e.bg.Done(); <-ctx.Done(); probe.Close() }()
	e.c.log.Info("tunnel started", "interface", w.name, "listen_port", e.c.listenPort,
		"overlay", cfg.OverlayAddr, "hub", cfg.HubEndpoint, "routes", len(cfg.Routes))
	return nil
}

// Apply changes the running tunnel to cfg, touching only what differs.
func (e *Engine) Apply(cfg api.DeviceConfig) error {
	if err := ValidateDeviceConfig(cfg); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.w
	if w == nil {
		return errClosed
	}
	old := e.cfg
	cfg = e.guardLocked(w, cfg)
	if old.OverlayAddr != cfg.OverlayAddr {
		if err := w.setAddr(cfg.OverlayAddr, old.OverlayAddr); err != nil {
			return err
		}
	}
	oldRoutes := routedPrefixes(old.OverlayAddr.Masked(), old.Routes)
	newRoutes := routedPrefixes(cfg.OverlayAddr.Masked(), cfg.Routes)
	if add, del := DiffPrefixes(oldRoutes, newRoutes); len(add)+len(del) > 0 || old.OverlayAddr != cfg.OverlayAddr {
		if err := w.reconcileRoutes(newRoutes); err != nil {
			return err
		}
		e.c.log.Info("routes changed", "added", add, "removed", del)
	}
	e.hubMu.Lock()
	ch := e.regroupLocked(cfg)
	if !slices.Equal(edgeHubs(old), edgeHubs(cfg)) || keepaliveOf(old) != keepaliveOf(cfg) ||
		!slices.Equal(edgeAllowedIPs(old), edgeAllowedIPs(cfg)) || ch.carrying != e.chooser.carrying {
		if err := w.ipcSet(edgePeerUAPI(&old, cfg, ch.carrying)); err != nil {
			e.hubMu.Unlock()
			return fmt.Errorf("update hub peer: %w", err)
		}
	}
	e.setHubsLocked(cfg, ch)
	e.hubMu.Unlock()
	e.linkMu.Lock()
	e.linksLocked(edgeHubs(cfg))
	e.linkMu.Unlock()
	e.cfg = cloneDeviceConfig(cfg)
	sn := cfg.SN
	e.snv.Store(&sn)
	return nil
}

// Revoke tears the tunnel down for good and keeps reason for Status.
func (e *Engine) Revoke(reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.w != nil {
		e.stopLocked(e.w)
	}
	e.state, e.reason = StateRevoked, reason
}

// Close removes the routes and the interface the engine created. It is
// idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.w != nil {
		e.stopLocked(e.w)
		e.c.log.Info("tunnel stopped")
	}
	if e.state != StateRevoked {
		e.state = StateStopped
	}
	return nil
}

func (e *Engine) stopLocked(w *wgIface) {
	if e.cancel != nil {
		e.cancel()
		e.cancel = nil
	}
	e.bg.Wait()
	if e.probe != nil {
		e.probe.Close()
		e.probe = nil
	}
	if w.nl != nil && w.link != nil {
		w.removeRoutes()
	}
	if e.nft != nil {
		if err := deleteMSSClamp(e.nft, w.name); err != nil {
			e.c.log.Warn("remove the TCP MSS clamp", "err", err)
		}
		e.nft = nil
	}
	w.close()
	e.w = nil
}

// Status reports the tunnel as data.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.c.now()
	st := Status{Role: e.haRole(), HA: e.haStatus(), State: e.state, Reason: e.reason, Interface: e.c.tun, ListenPort: e.c.listenPort,
		PublicKey: e.c.key.PublicKey(), OverlayAddr: e.cfg.OverlayAddr, Generation: e.cfg.Generation,
		Routes: routedPrefixes(e.cfg.OverlayAddr.Masked(), e.cfg.Routes), DroppedRoutes: slices.Clone(e.dropped), Peers: []PeerStatus{}, Source: "daemon", Time: now}
	if e.syncFn != nil {
		s := e.syncFn()
		st.Sync = &s
	}
	if e.w == nil {
		st.Routes = []netip.Prefix{}
		return st
	}
	st.Link, st.MTU = e.linkHealth(), int(e.mtu.Load())
	links := e.linkHealths()
	e.linkMu.Lock()
	if e.pmtuInterval > 0 {
		p := e.pmtu
		st.PathMTU = &p
	}
	st.Events = slices.Clone(e.events)
	e.linkMu.Unlock()
	peers, err := e.w.peers()
	if err != nil {
		st.Reason = err.Error()
		return st
	}
	tg := e.target.Load()
	sessions := e.hubSessions(now, links)
	for i, h := range tg.hubs {
		j := slices.IndexFunc(peers, func(p uapiPeer) bool { return p.PublicKey == h.PublicKey })
		if j < 0 {
			continue
		}
		p := peers[j]
		first, last := e.w.att.get(p.PublicKey, p.LastHandshake)
		// The carrying hub's peer is "hub" (the tunnel's peer, as without
		// hub groups) and comes first; the others are "hub NAME".
		name := "hub"
		if i != tg.carrying {
			name = "hub " + h.Name
		}
		ps := peerStatus(now, name, p, first, last)
		if i == tg.carrying {
			st.Peers = append([]PeerStatus{ps}, st.Peers...)
			st.State, st.Reason = edgeState(now, ps)
		} else {
			st.Peers = append(st.Peers, ps)
		}
		if len(e.cfg.Hubs) > 0 && i < len(sessions) {
			s := &sessions[i]
			s.LastHandshake, s.LastAttempt, s.RxBytes, s.TxBytes, s.Problem = ps.LastHandshake, ps.LastAttempt, ps.RxBytes, ps.TxBytes, ps.Problem
		}
	}
	if len(e.cfg.Hubs) > 0 {
		st.Hubs = sessions
	}
	return st
}

// startHandshake starts a new handshake with the hub beside the current
// session: the current keypair keeps carrying traffic until the new one
// is confirmed, so a session that still works is never torn down.
// wireguard-go sends at most one initiation per RekeyTimeout and
// retransmits it on its own.
func (e *Engine) startHandshake(w *wgIface, hub api.Key, why string) {
	p := w.dev.LookupPeer(device.NoisePublicKey(hub))
	if p == nil {
		return
	}
	e.c.log.Debug("starting a new handshake with the hub beside the current session", "reason", why)
	_ = p.SendHandshakeInitiation(false)
}

// liveness pings every hub's overlay address through the tunnel every
// probe interval and judges a window of those probes per hub (linkJudge):
// loss and RTT make the link lossy, a window without any answer makes it
// down; after deadAfter without an answer from a hub it starts a new
// handshake with that hub beside the current session (and again every
// deadAfter while the hub stays quiet). A change of the host's addresses,
// routes or links (roaming, WAN back up) rebinds the UDP socket and
// starts a handshake with every hub at once.
func (e *Engine) liveness(ctx context.Context, w *wgIface, probe net.PacketConn, updates <-chan struct{}) {
	t := time.NewTicker(e.probeInterval)
	defer t.Stop()
	id := os.Getpid() & 0xffff
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-updates:
			e.c.log.Info("network changed: rebinding and starting a new handshake")
			if err := w.inNS(w.dev.BindUpdate); err != nil {
				e.c.log.Warn("rebind after network change", "err", err)
			}
			for _, h := range e.target.Load().hubs {
				e.startHandshake(w, h.PublicKey, "network change")
			}
			select {
			case e.pmtuKick <- struct{}{}:
			default:
			}
		case <-t.C:
			seq++
			now := e.c.now()
			e.linkMu.Lock()
			links := slices.Clone(e.links)
			e.linkMu.Unlock()
			msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: int(seq & 0xffff), Data: []byte("vcpe-liveness")}}
			b, _ := msg.Marshal(nil)
			for _, l := range links {
				e.linkMu.Lock()
				l.judge.sent(seq&0xffff, now)
				v := l.judge.eval(now)
				h := l.judge.health()
				e.linkMu.Unlock()
				if b != nil {
					_, _ = probe.WriteTo(b, &net.IPAddr{IP: l.hub.OverlayAddr.AsSlice()})
				}
				if v.Changed {
					e.linkEvent(now, l.hub, v.State, h)
				}
				if v.Handshake {
					e.startHandshake(w, l.hub.PublicKey, fmt.Sprintf("no answer from %s for %v", hubLabel(l.hub), v.Quiet.Round(100*time.Millisecond)))
				}
			}
		}
	}
}

// linkEvent logs and records a change of the liveness state of the tunnel
// to hub h.
func (e *Engine) linkEvent(now time.Time, h api.HubInfo, state string, lh LinkHealth) {
	args := []any{"hub", h.OverlayAddr, "state", state, "lost", lh.Lost, "probes", lh.Probes, "rtt", lh.RTT}
	if h.Name != "" {
		args = append(args, "hub_name", h.Name)
	}
	msg := "tunnel to the hub healthy again"
	switch state {
	case LinkDown:
		msg = "hub not answering through the tunnel; the session is kept and new handshakes are started beside it"
	case LinkLossy:
		msg = "tunnel to the hub is lossy or slow; the session is kept"
	}
	if h.Name != "" {
		msg = strings.Replace(strings.Replace(msg, "the hub", "hub "+h.Name, 1), "hub not", "hub "+h.Name+" not", 1)
	}
	if state == LinkUp {
		e.c.log.Info(msg, args...)
	} else {
		e.c.log.Warn(msg, args...)
	}
	e.linkMu.Lock()
	e.events = appendEvent(e.events, Event{Time: now, Kind: "link", Message: msg,
		Detail: fmt.Sprintf("%d of the last %d probes lost, median RTT %v", lh.Lost, lh.Probes, lh.RTT.Round(10*time.Microsecond))})
	e.linkMu.Unlock()
}

func (e *Engine) readProbes(c net.PacketConn) {
	readEchoReplies(c, os.Getpid()&0xffff, 1500, func(from netip.Addr, seq int) {
		now := e.c.now()
		e.linkMu.Lock()
		for _, l := range e.links {
			if l.hub.OverlayAddr == from {
				l.judge.answered(uint64(seq), now)
			}
		}
		e.linkMu.Unlock()
	})
}

// linkHealth reports the liveness window of the carrying hub.
func (e *Engine) linkHealth() *LinkHealth {
	key := e.target.Load().hubKey
	e.linkMu.Lock()
	defer e.linkMu.Unlock()
	for _, l := range e.links {
		if l.hub.PublicKey == key {
			h := l.judge.health()
			return &h
		}
	}
	return nil
}

// watchNetlink subscribes to IPv4 address and route changes in the
// engine's namespace (ignoring the TUN's own and vcpe's routes) and signals
// updates, debounced. A link going down or up shows up as its connected
// routes going and coming; a new interface without addresses does not
// disturb the tunnel.
func (e *Engine) watchNetlink(ctx context.Context, w *wgIface, updates chan<- struct{}) error {
	addrs := make(chan netlink.AddrUpdate, 16)
	routes := make(chan netlink.RouteUpdate, 16)
	done := make(chan struct{})
	ns := w.ns
	fail := func(err error) error { close(done); return fmt.Errorf("watch network changes: %w", err) }
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{Namespace: &ns}); err != nil {
		return fail(err)
	}
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{Namespace: &ns}); err != nil {
		return fail(err)
	}
	idx := w.link.Attrs().Index
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		defer func() {
			close(done)
			// The subscription goroutines sit in a blocking netlink read
			// that closing the socket does not interrupt: they return at
			// the next event (the TUN's own removal at Close makes one).
			// Drain in the background so neither blocks on a full channel.
			go func() {
				for range addrs {
				}
			}()
			go func() {
				for range routes {
				}
			}()
		}()
		var debounce <-chan time.Time
		for {
			changed := false
			select {
			case <-ctx.Done():
				return
			case u, ok := <-addrs:
				changed = ok && u.LinkIndex != idx && u.LinkAddress.IP.To4() != nil
			case u, ok := <-routes:
				changed = ok && u.LinkIndex != idx && u.Protocol != RouteProtocol &&
					u.Family == netlink.FAMILY_V4 && (u.Table == 0 || u.Table == unix.RT_TABLE_MAIN)
			case <-debounce:
				debounce = nil
				select {
				case updates <- struct{}{}:
				default:
				}
			}
			if changed && debounce == nil {
				debounce = time.After(200 * time.Millisecond)
			}
		}
	}()
	return nil
}

func (e *Engine) sn() string {
	if p := e.snv.Load(); p != nil {
		return *p
	}
	return ""
}

func (e *Engine) haRole() string {
	e.haMu.Lock()
	defer e.haMu.Unlock()
	return e.role
}

func (e *Engine) haStatus() *HAStatus {
	e.haMu.Lock()
	defer e.haMu.Unlock()
	st := &HAStatus{Check: e.ha.Check, LANGateway: e.ha.LANGateway, LastReply: e.lastReply, Events: slices.Clone(e.haEvents)}
	if st.Events == nil {
		st.Events = []RoleEvent{}
	}
	if len(e.ha.LANTargets) > 0 {
		ok := e.lanOK
		st.LANOK = &ok
	}
	return st
}
