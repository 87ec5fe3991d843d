package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"

	"github.com/openvcpe/vcpe/api"
)

// Hub is the cloud side's tunnel end: one UDP endpoint for every device.
type Hub struct {
	c     common
	table string

	routeTable int
	fwMark     uint32
	rulePrio   int

	claimPort uint16
	check     HealthCheck
	onSwitch  func(RoleEvent)
	arb       *Arbiter

	cloudTargets   []netip.Addr
	cloudGateway   netip.Prefix
	cloudInterface string

	mu      sync.Mutex
	w       *wgIface
	nft     *nftables.Conn
	cfg     api.HubConfig // what the peers are: desired with the arbiter's roles (and the group's routing)
	desired api.HubConfig // what the controller last said
	events  []RoleEvent
	cancel  context.CancelFunc
	bg      sync.WaitGroup

	// The hub group (group.go): what the other hubs and the devices said,
	// the last routing plan, the cloud side's health and the gateway.
	g           *hubGroup
	plan        groupPlan
	planAt      time.Time     // when plan was made
	dirty       bool          // news since planAt: the next tick re-plans
	all         api.HubConfig // desired with the arbiter's roles, every device of the group
	groupEvents []Event
	pc          net.PacketConn // the claim socket, also sending hub messages
	msgSeq      uint64
	degraded    bool
	// routeChanges and gatewayChanges count moves since Start (metrics);
	// uapiWrites the peer changes written to WireGuard.
	routeChanges, gatewayChanges, uapiWrites uint64
	cloud                                    *cloudHealth
	gw                                       *cloudGW
}

// NewHub validates the options. It changes nothing on the host.
func NewHub(opts HubOptions) (*Hub, error) {
	c, err := newCommon(opts.PrivateKey, opts.TUN, opts.ListenPort, opts.UAPIDir, opts.MTU, opts.Logger, opts.Now)
	if err != nil {
		return nil, err
	}
	h := &Hub{c: c, table: opts.TableName, claimPort: opts.ClaimPort, check: opts.Check.WithDefaults(), onSwitch: opts.OnSwitch,
		routeTable: opts.RouteTable, fwMark: opts.FwMark, rulePrio: opts.RulePriority,
		cloudTargets: slices.Clone(opts.CloudTargets), cloudGateway: opts.CloudGateway, cloudInterface: opts.CloudInterface}
	for i, a := range h.cloudTargets {
		if !a.Is4() {
			return nil, fmt.Errorf("cloud target %d %v: want an IPv4 address on the cloud side", i+1, a)
		}
	}
	if gw := h.cloudGateway; gw.IsValid() && (!gw.Addr().Is4() || gw.Bits() >= 32 || gw.Bits() == 0) {
		return nil, fmt.Errorf("cloud gateway %s: want an IPv4 address with the cloud network's prefix length, e.g. 198.19.100.1/24", gw)
	}
	if h.routeTable, h.fwMark, h.rulePrio, err = routeTableOptions(h.routeTable, h.fwMark, h.rulePrio); err != nil {
		return nil, err
	}
	if h.claimPort == 0 {
		h.claimPort = DefaultClaimPort
	}
	// The hub ticks the arbiter every Interval/2: a gap of two intervals
	// is the hub's own pause, not the devices' silence.
	h.arb = &Arbiter{DeadAfter: h.check.deadAfter(), Preempt: opts.Preempt, PauseAfter: 2 * h.check.Interval,
		Interval: h.check.Interval, Failures: h.check.Failures}
	h.g = newHubGroup("", h.check)
	if h.table == "" {
		h.table = "vcpe"
	}
	return h, nil
}

// Start brings the hub up with cfg. A failed Start undoes what it did.
func (h *Hub) Start(cfg api.HubConfig) (err error) {
	if err := ValidateHubConfig(cfg); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w != nil {
		return errors.New("hub already started")
	}
	w, err := openWG(h.c)
	if err != nil {
		return err
	}
	nft, err := nftables.New(nftables.WithNetNSFd(int(w.ns)))
	if err != nil {
		w.close()
		return fmt.Errorf("nftables: %w", err)
	}
	defer func() {
		if err != nil {
			_ = deleteIsolation(nft, h.table)
			_ = deleteMSSClamp(nft, w.name)
			w.removeRoutes()
			w.close()
		}
	}()
	if err = w.setAddr(netip.PrefixFrom(cfg.HubOverlayAddr, cfg.Overlay.Bits()), netip.Prefix{}); err != nil {
		return err
	}
	if err = w.enableForwarding(); err != nil {
		return err
	}
	// The devices' prefixes live in the hub's own table: they never
	// replace a route of the main table, and never carry WireGuard's own
	// packets.
	if err = w.useTable(h.routeTable, h.fwMark, h.rulePrio); err != nil {
		return err
	}
	// Isolation first: no packet may cross before the rules are in place.
	if err = writeIsolation(nft, h.table, w.name, cfg); err != nil {
		return err
	}
	if err = writeMSSClamp(nft, w.name); err != nil {
		return err
	}
	desired := cloneHubConfig(cfg)
	h.g.self = desired.Name
	eff := h.planLocked(desired)
	if err = h.applyPeers(w, api.HubConfig{}, eff, true); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			cancel()
			h.mu.Unlock()
			h.bg.Wait()
			h.mu.Lock()
			h.closeGroupLocked()
		}
	}()
	if err = h.startGroup(ctx, w); err != nil {
		return err
	}
	if err = h.serveClaims(ctx, w); err != nil {
		return err
	}
	h.w, h.nft, h.cfg, h.desired, h.cancel = w, nft, eff, desired, cancel
	h.c.log.Info("hub started", "interface", w.name, "listen_port", h.c.listenPort, "peers", len(cfg.Peers))
	return nil
}

// Apply changes the hub to cfg: peers added, removed and updated in place
// (other tunnels undisturbed), routes and isolation rules replaced.
func (h *Hub) Apply(cfg api.HubConfig) error {
	if err := ValidateHubConfig(cfg); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w == nil {
		return errClosed
	}
	if cfg.HubOverlayAddr != h.cfg.HubOverlayAddr || cfg.Overlay != h.cfg.Overlay {
		if err := h.w.setAddr(netip.PrefixFrom(cfg.HubOverlayAddr, cfg.Overlay.Bits()),
			netip.PrefixFrom(h.cfg.HubOverlayAddr, h.cfg.Overlay.Bits())); err != nil {
			return err
		}
	}
	// Tighten first when peers go away, loosen last when they arrive: the
	// rules are written before the peers change and after.
	if err := writeIsolation(h.nft, h.table, h.w.name, cfg); err != nil {
		return err
	}
	desired := cloneHubConfig(cfg)
	h.g.self = desired.Name
	h.g.forget(desired)
	eff := h.planLocked(desired)
	if err := h.applyPeers(h.w, h.cfg, eff, true); err != nil {
		return err
	}
	h.cfg, h.desired = eff, desired
	return nil
}

// applyPeers changes the WireGuard peers from have to cfg (one UAPI write,
// none when nothing changed) and the routes into the TUN: always with
// force, else only when a peer changed.
func (h *Hub) applyPeers(w *wgIface, have, cfg api.HubConfig, force bool) error {
	changes := HubPeerDiff(have.Peers, cfg.Peers)
	// A hub that moved (new endpoint, same key) is an update too.
	for _, n := range cfg.Hubs {
		i := slices.IndexFunc(have.Hubs, func(o api.HubInfo) bool { return o.PublicKey == n.PublicKey })
		if i < 0 || have.Hubs[i].Endpoint == n.Endpoint || slices.ContainsFunc(changes, func(c PeerChange) bool { return c.Peer.PublicKey == n.PublicKey }) {
			continue
		}
		if j := slices.IndexFunc(cfg.Peers, func(p api.HubPeer) bool { return p.PublicKey == n.PublicKey }); j >= 0 {
			changes = append(changes, PeerChange{Op: "update", Peer: cfg.Peers[j]})
		}
	}
	if len(changes) > 0 {
		if err := w.ipcSet(groupPeerUAPI(changes, cfg.Hubs)); err != nil {
			return fmt.Errorf("configure hub peers: %w", err)
		}
		h.uapiWrites++
		for _, c := range changes {
			h.c.log.Info("hub peer "+c.Op, "sn", c.Peer.SN, "ccn", c.Peer.CCN, "active", c.Peer.Active, "allowed_ips", c.Peer.AllowedIPs)
		}
	} else if !force {
		return nil
	}
	return w.reconcileRoutes(hubRoutes(cfg))
}

// Close removes the isolation table, the routes and the interface. It is
// idempotent.
func (h *Hub) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w == nil {
		return nil
	}
	if h.cancel != nil {
		h.cancel()
		h.cancel = nil
	}
	h.mu.Unlock()
	h.bg.Wait() // the claim goroutines take mu
	h.mu.Lock()
	if h.w == nil {
		return nil
	}
	h.closeGroupLocked()
	err := errors.Join(deleteIsolation(h.nft, h.table), deleteMSSClamp(h.nft, h.w.name))
	h.w.removeRoutes()
	h.w.close()
	h.w = nil
	h.c.log.Info("hub stopped")
	return err
}

// Status reports the hub and every peer.
func (h *Hub) Status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.c.now()
	st := Status{Role: "hub", State: StateStopped, Interface: h.c.tun, ListenPort: h.c.listenPort,
		PublicKey: h.c.key.PublicKey(), Generation: h.cfg.Generation, Routes: []netip.Prefix{}, Peers: []PeerStatus{},
		Source: "daemon", Time: now}
	if h.w == nil {
		return st
	}
	st.State = StateUp
	st.HA = &HAStatus{Check: h.check, Events: slices.Clone(h.events)}
	if st.HA.Events == nil {
		st.HA.Events = []RoleEvent{}
	}
	st.OverlayAddr = netip.PrefixFrom(h.cfg.HubOverlayAddr, h.cfg.Overlay.Bits())
	st.Routes = hubRoutes(h.cfg)
	st.HubGroup = h.groupStatusLocked(now)
	peers, err := h.w.peers()
	if err != nil {
		st.Reason = err.Error()
		return st
	}
	byKey := map[api.Key]api.HubPeer{}
	for _, p := range h.cfg.Peers {
		byKey[p.PublicKey] = p
	}
	for _, p := range peers {
		hp := byKey[p.PublicKey]
		first, last := h.w.att.get(p.PublicKey, p.LastHandshake)
		name := hp.SN
		if n, ok := strings.CutPrefix(name, hubPeerPrefix); ok {
			name = "hub " + n // another hub of the group, named as devices name theirs
		}
		ps := peerStatus(now, name, p, first, last)
		ps.CCN, ps.Active = hp.CCN, hp.Active
		if cp, ok := h.arb.Path(instanceKey(hp), hp.SN); ok {
			ps.Claims = &cp
		}
		st.Peers = append(st.Peers, ps)
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Name < st.Peers[j].Name })
	return st
}
