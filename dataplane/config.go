package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// Defaults shared by edge and hub.
const (
	DefaultTUN        = "vcpe0"
	DefaultListenPort = 4500
	DefaultUAPIDir    = "/var/run/wireguard"
	DefaultMTU        = 1420

	// RouteProtocol is the rtnetlink protocol number vcpe marks its routes
	// with ("proto 118" in ip route), so it can find exactly its own routes
	// again after a crash and never touch anyone else's.
	RouteProtocol = 118

	// DefaultRouteTable is vcpe's own routing table for tunnel routes (on
	// the hub and on devices), DefaultFwMark the mark on WireGuard's
	// packets that exempts them from it (wg-quick's numbers),
	// DefaultRulePriority the priority of the first of the two policy
	// rules that consult it.
	DefaultRouteTable   = 51820
	DefaultFwMark       = 51820
	DefaultRulePriority = 32700

	// DefaultKeepalive is the persistent keepalive (seconds) an edge uses
	// when the controller leaves it to the device.
	DefaultKeepalive = 15

	// DefaultProbeInterval is how often the edge pings the hub's overlay
	// address through the tunnel.
	DefaultProbeInterval = time.Second
	// DefaultDeadAfter is how long without a probe answer before the edge
	// starts a new handshake beside the current session (which it keeps).
	DefaultDeadAfter = 3 * time.Second

	// handshakeGrace is how long a handshake may stay unanswered before
	// status reports "handshake not completing" (WireGuard's RekeyTimeout).
	handshakeGrace = 5 * time.Second
)

// HostNetwork is something of the hub's host (an address, a connected
// network, a gateway) that no device prefix may cover; What names it for
// a refusal ("the default gateway 198.18.0.254").
type HostNetwork struct {
	Prefix netip.Prefix
	What   string
}

// ErrUnsupported is returned on systems where the dataplane cannot run.
var ErrUnsupported = errors.New("the vcpe dataplane runs on Linux only")

// EdgeOptions configure the device's engine. The zero value of every field
// but PrivateKey means "the default".
type EdgeOptions struct {
	PrivateKey api.Key
	TUN        string // DefaultTUN
	ListenPort uint16 // DefaultListenPort
	UAPIDir    string // DefaultUAPIDir
	MTU        int    // DefaultMTU

	ProbeInterval time.Duration // DefaultProbeInterval
	DeadAfter     time.Duration // DefaultDeadAfter
	// PathMTUInterval is how often the path MTU through the tunnel is
	// checked (DefaultPathMTUInterval); negative turns the watch off.
	PathMTUInterval time.Duration

	HA EdgeHA

	// RouteTable, FwMark and RulePriority place the tunnel routes in
	// vcpe's own table behind two policy rules, as on the hub (see
	// HubOptions); defaults DefaultRouteTable, DefaultFwMark,
	// DefaultRulePriority.
	RouteTable   int
	FwMark       uint32
	RulePriority int

	// Protect returns addresses no learned route may capture, besides the
	// hub endpoint and the SSH clients connected to port 22, which the
	// engine always protects (vcped passes the controller). It is called
	// on every configuration.
	Protect func() []Protected

	Logger *slog.Logger     // slog.Default()
	Now    func() time.Time // time.Now
}

// EdgeHA configures the device's side of multi-attach. Every device sends
// claims (and so learns its role); LAN targets and the LAN gateway are
// optional.
type EdgeHA struct {
	Check HealthCheck // DefaultHAInterval, DefaultHAFailures
	// LANTargets are probed over the LAN every interval; the device is
	// unhealthy when none of them answers (gray failure).
	LANTargets []netip.Addr
	// LANGateway is the address LAN hosts use as their gateway (with the
	// LAN's prefix length): the active device holds it on LANInterface.
	LANGateway   netip.Prefix
	LANInterface string // default: the interface with an address in LANGateway's prefix
	ClaimPort    uint16 // DefaultClaimPort
}

// HubOptions configure the hub's engine.
type HubOptions struct {
	PrivateKey api.Key
	TUN        string // DefaultTUN
	ListenPort uint16 // DefaultListenPort
	UAPIDir    string // DefaultUAPIDir
	MTU        int    // DefaultMTU
	// TableName is the nftables table (family inet) holding the CCN
	// isolation rules; "vcpe" by default. It is removed on Close.
	TableName string
	// RouteTable is the routing table of the devices' prefixes
	// (DefaultRouteTable), FwMark the mark on WireGuard's own packets
	// (DefaultFwMark) and RulePriority the priority of the first of the
	// two policy rules that consult it (DefaultRulePriority). The main
	// table is never written.
	RouteTable   int
	FwMark       uint32
	RulePriority int

	// ClaimPort is the UDP port taking devices' claims on the hub's
	// overlay address (DefaultClaimPort); Check the health-check model
	// whose Interval and Failures decide when a device is down.
	ClaimPort uint16
	Check     HealthCheck
	// Preempt gives the role back to the controller's preferred device
	// when it recovers (off by default: a recovered device stays standby).
	Preempt bool
	// OnSwitch is called (with the hub's lock held: do not call back into
	// the Hub) after every role switch, with the device that became active.
	OnSwitch func(RoleEvent)

	// CloudTargets are cloud-side health targets, pinged every Check
	// interval: when none answers for Check.Failures intervals the hub is
	// degraded (a gray failure): its claim replies and hub messages say
	// so, devices carry through another hub, and it gives up the cloud
	// gateway. Empty: never degraded.
	CloudTargets []netip.Addr
	// CloudGateway is the cloud hosts' gateway address with the cloud
	// network's prefix length (198.19.100.1/24). Exactly one hub of the
	// group holds it: the lowest-named live hub that is not degraded (see
	// HubConfig.Failback); it is announced with gratuitous ARP on
	// take-over. CloudInterface names its interface (default: the one with
	// an address in that prefix). Invalid: no gateway.
	CloudGateway   netip.Prefix
	CloudInterface string

	Logger *slog.Logger
	Now    func() time.Time
}

type common struct {
	key        api.Key
	tun        string
	listenPort uint16
	uapiDir    string
	mtu        int
	log        *slog.Logger
	now        func() time.Time
}

func newCommon(key api.Key, tun string, port uint16, uapiDir string, mtu int, log *slog.Logger, now func() time.Time) (common, error) {
	c := common{key: key, tun: tun, listenPort: port, uapiDir: uapiDir, mtu: mtu, log: log, now: now}
	if key.IsZero() {
		return c, errors.New("private key is empty: register the device (or give the hub its key) first")
	}
	if c.tun == "" {
		c.tun = DefaultTUN
	}
	if len(c.tun) > 15 {
		return c, fmt.Errorf("tun name %q is longer than 15 characters: pick a shorter --tun", c.tun)
	}
	if c.listenPort == 0 {
		c.listenPort = DefaultListenPort
	}
	if c.uapiDir == "" {
		c.uapiDir = DefaultUAPIDir
	}
	if c.mtu == 0 {
		c.mtu = DefaultMTU
	}
	if c.mtu < 1280 || c.mtu > 9000 {
		return c, fmt.Errorf("mtu %d out of range: use 1280..9000", c.mtu)
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// ValidateDeviceConfig checks what the edge needs from a DeviceConfig and
// names the field that is wrong.
func ValidateDeviceConfig(c api.DeviceConfig) error {
	switch {
	case !c.OverlayAddr.IsValid() || !c.OverlayAddr.Addr().Is4():
		return errors.New("config.overlay_addr is missing or not IPv4: sync the device config from the controller again")
	case !c.HubOverlayAddr.IsValid():
		return errors.New("config.hub_overlay_addr is missing: sync the device config again")
	case c.HubPublicKey.IsZero():
		return errors.New("config.hub_public_key is missing: sync the device config again")
	case !c.HubEndpoint.IsValid() || c.HubEndpoint.Port() == 0:
		return errors.New("config.hub_endpoint is missing or has no port: sync the device config again")
	case c.PersistentKeepalive < 0 || c.PersistentKeepalive > 65535:
		return fmt.Errorf("config.persistent_keepalive %d out of range: use 0..65535", c.PersistentKeepalive)
	}
	for i, p := range c.Routes {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("config.routes[%d] %v is not an IPv4 prefix", i, p)
		}
	}
	names, keys, overlays := map[string]bool{}, map[api.Key]bool{}, map[netip.Addr]bool{}
	for i, h := range c.Hubs {
		switch {
		case h.Name == "":
			return fmt.Errorf("config.hubs[%d].name is empty: sync the device config again", i)
		case names[h.Name]:
			return fmt.Errorf("config.hubs[%d].name %q is listed twice: fix the instance's hub assignment on the controller", i, h.Name)
		case h.PublicKey.IsZero():
			return fmt.Errorf("config.hubs[%d] (%s) public_key is missing: sync the device config again", i, h.Name)
		case keys[h.PublicKey]:
			return fmt.Errorf("config.hubs[%d] (%s) public_key is used by another hub of the group: each hub needs its own key", i, h.Name)
		case !h.Endpoint.IsValid() || h.Endpoint.Port() == 0:
			return fmt.Errorf("config.hubs[%d] (%s) endpoint is missing or has no port: sync the device config again", i, h.Name)
		case !h.OverlayAddr.Is4():
			return fmt.Errorf("config.hubs[%d] (%s) overlay_addr is missing or not IPv4: sync the device config again", i, h.Name)
		case overlays[h.OverlayAddr] || h.OverlayAddr == c.OverlayAddr.Addr():
			return fmt.Errorf("config.hubs[%d] (%s) overlay_addr %s is another hub's or the device's own: the controller must give each hub its own overlay address", i, h.Name, h.OverlayAddr)
		}
		names[h.Name], keys[h.PublicKey], overlays[h.OverlayAddr] = true, true, true
	}
	return nil
}

// ValidateHubConfig checks a HubConfig and names the field that is wrong.
func ValidateHubConfig(c api.HubConfig) error {
	if !c.Overlay.IsValid() || !c.Overlay.Addr().Is4() {
		return errors.New("hub config overlay is missing or not IPv4")
	}
	if !c.HubOverlayAddr.IsValid() || !c.Overlay.Contains(c.HubOverlayAddr) {
		return fmt.Errorf("hub config hub_overlay_addr %v is not inside overlay %v", c.HubOverlayAddr, c.Overlay)
	}
	for i, p := range c.CloudPrefixes {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("hub config cloud_prefixes[%d] %v is not an IPv4 prefix", i, p)
		}
	}
	seen := map[api.Key]bool{}
	for i, p := range c.Peers {
		if p.PublicKey.IsZero() {
			return fmt.Errorf("hub config peers[%d] (%s) public_key is empty", i, p.SN)
		}
		if seen[p.PublicKey] {
			return fmt.Errorf("hub config peers[%d] (%s) public_key is used by another peer", i, p.SN)
		}
		seen[p.PublicKey] = true
		for j, a := range p.AllowedIPs {
			if !a.IsValid() || !a.Addr().Is4() {
				return fmt.Errorf("hub config peers[%d] (%s) allowed_ips[%d] %v is not an IPv4 prefix", i, p.SN, j, a)
			}
		}
	}
	names := map[string]bool{c.Name: true}
	for i, o := range c.Hubs {
		switch {
		case o.Name == "" || names[o.Name]:
			return fmt.Errorf("hub config hubs[%d] name %q is empty, this hub's own or another hub's", i, o.Name)
		case o.PublicKey.IsZero() || seen[o.PublicKey]:
			return fmt.Errorf("hub config hubs[%d] (%s) public_key is empty or used by another peer", i, o.Name)
		case !o.OverlayAddr.IsValid() || !c.Overlay.Contains(o.OverlayAddr) || o.OverlayAddr == c.HubOverlayAddr ||
			slices.ContainsFunc(c.Peers, func(p api.HubPeer) bool { return p.OverlayAddr == o.OverlayAddr }):
			return fmt.Errorf("hub config hubs[%d] (%s) overlay_addr %v is not another address inside overlay %v", i, o.Name, o.OverlayAddr, c.Overlay)
		}
		names[o.Name] = true
		seen[o.PublicKey] = true
	}
	return nil
}

// hubDefault returns keepalive seconds for an edge config.
func keepaliveOf(c api.DeviceConfig) int {
	if c.PersistentKeepalive > 0 {
		return c.PersistentKeepalive
	}
	return DefaultKeepalive
}

// edgeAllowedIPs is what the edge accepts from (and sends to) the hub: the
// overlay plus every learned route, masked and deduplicated.
func edgeAllowedIPs(c api.DeviceConfig) []netip.Prefix {
	return normalize(append([]netip.Prefix{c.OverlayAddr.Masked()}, c.Routes...))
}

// edgeHubs is the device's hub group, primary first: c.Hubs, or the one
// hub of the legacy fields (Name empty) from a controller without hub
// groups.
func edgeHubs(c api.DeviceConfig) []api.HubInfo {
	if len(c.Hubs) > 0 {
		return c.Hubs
	}
	return []api.HubInfo{{PublicKey: c.HubPublicKey, Endpoint: c.HubEndpoint, OverlayAddr: c.HubOverlayAddr}}
}

// hubAllowedIPs is what hub i's peer holds when hub carrying carries the
// traffic: the carrying hub the overlay prefix and every learned route,
// the others only their overlay /32 (longest match wins over the overlay
// prefix). A single hub's peer holds exactly what it always did.
func hubAllowedIPs(c api.DeviceConfig, hubs []api.HubInfo, i, carrying int) []netip.Prefix {
	var own []netip.Prefix
	if len(hubs) > 1 {
		own = []netip.Prefix{netip.PrefixFrom(hubs[i].OverlayAddr, 32)}
	}
	if i != carrying {
		return own
	}
	return normalize(append(own, edgeAllowedIPs(c)...))
}

// cloneDeviceConfig copies c so the engine's view cannot change under it
// when the caller reuses its slices.
func cloneDeviceConfig(c api.DeviceConfig) api.DeviceConfig {
	c.Routes = slices.Clone(c.Routes)
	c.Advertised = slices.Clone(c.Advertised)
	c.Hubs = slices.Clone(c.Hubs)
	return c
}

// cloneHubConfig copies c, peers and prefixes included.
func cloneHubConfig(c api.HubConfig) api.HubConfig {
	c.CloudPrefixes = slices.Clone(c.CloudPrefixes)
	c.Peers = slices.Clone(c.Peers)
	for i := range c.Peers {
		c.Peers[i].AllowedIPs = slices.Clone(c.Peers[i].AllowedIPs)
	}
	return c
}

// routeTableOptions applies the defaults of the route table options and
// checks them.
func routeTableOptions(table int, mark uint32, prio int) (int, uint32, int, error) {
	if table == 0 {
		table = DefaultRouteTable
	}
	if mark == 0 {
		mark = DefaultFwMark
	}
	if prio == 0 {
		prio = DefaultRulePriority
	}
	if table < 1 || table >= 253 && table <= 255 || prio < 1 || prio > 32765 {
		return 0, 0, 0, fmt.Errorf("route table %d / rule priority %d: want a table other than main, local and default (1..252, 256..) and a priority below main's (1..32765)", table, prio)
	}
	return table, mark, prio, nil
}
