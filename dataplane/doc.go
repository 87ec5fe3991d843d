// Package dataplane carries the customer's traffic: an engine around
// wireguard-go (embedded as a library) on a TUN device, with the netlink
// addresses and routes it needs, in two roles.
//
//   - Edge (the device, run by vcped): one peer, the hub. The overlay address
//     and a route per learned prefix are set through netlink; routes carry
//     the rtnetlink protocol RouteProtocol so a start after a crash
//     reconciles them (stale ones deleted, missing ones added, none
//     duplicated). A liveness prober pings the hub's overlay address through
//     the tunnel every second and judges a window of those probes (loss,
//     median RTT; up, lossy or down, with hysteresis). A session is never
//     torn down for late or lost answers: after DefaultDeadAfter without
//     one it starts a new handshake beside the current keypair
//     (SendHandshakeInitiation, no ExpireCurrentKeypairs), which heals a
//     hub that lost its state or a changed NAT mapping and costs nothing
//     while the session works. A path-MTU watch sends DF probes of the
//     tunnel's MTU through it every DefaultPathMTUInterval; when they vanish
//     while small ones pass (a black hole), it lowers the tunnel's MTU to
//     the largest size that passes, with an event. Edge and hub clamp the
//     MSS of TCP SYNs forwarded into the tunnel to the route's MTU
//     (nftables, table vcpe-mss-TUN), which follows the lowered MTU.
//   - Edge in a hub group (DeviceConfig.Hubs, primary first): still one
//     TUN and one wireguard-go device, with one peer per hub. The carrying
//     hub's peer holds the overlay prefix and every learned route; every
//     other hub's peer holds only its overlay /32 (longest match wins). A
//     switch is one UAPI write that moves the routed AllowedIPs from one
//     peer to the other (the new carrier's peer first, so each prefix
//     changes owner in one step): kernel routes, addresses, the LAN side
//     and both sessions stay as they are, so it takes effect at once and
//     nothing on the host is half-changed. Claims go to every hub each
//     interval with Claim.Via naming the carrying hub; each hub's replies
//     (matched by source, its overlay address) feed a pure judge
//     (hubChooser): a hub is down after hubDownAfter intervals without a
//     reply or degraded when its replies say so. The traffic leaves the
//     carrying hub only when it is down or degraded, and only for a hub
//     that answered within hubFreshWithin intervals; it goes back to the
//     primary only with DeviceConfig.Failback, after FailbackHold of
//     health. Random loss cannot move it (claim copies, see below). The
//     multi-attach role comes from the carrying hub's replies only.
//     Liveness probes and handshakes beside the session run per hub; the
//     path-MTU watch measures the carrying hub's path. A config with one
//     hub or none behaves exactly as the edge above.
//   - Hub (run inside vcpe-hub serve): one UDP endpoint for every device,
//     peers added, removed and updated live, kernel routes for the peers'
//     prefixes, and CCN isolation in an nftables table of vcpe's own.
//
// Multi-attach (two devices per instance) is decided on the data path, not
// by controller heartbeats. Every device sends a small claim {sn, healthy,
// lan_ok, seq} through its tunnel to the hub's overlay address (UDP
// DefaultClaimPort) every HealthCheck.Interval (100 ms); healthy means one
// of its LAN targets answers ICMP within the health-check model (timeout,
// failures before down, RTT threshold). The hub answers each claim with
// the device's role. The hub's Arbiter (pure, fake-clock tested) keeps the
// active device while its claims are fresh and healthy; when they stop for
// Failures intervals and a half (kill -9, host down, WAN cut) or say the
// LAN is unreachable (gray failure), it moves the instance's prefixes to a
// fresh, healthy standby by rewriting the two peers' AllowedIPs over UAPI
// (immediate, no kernel route change), records the switch (device,
// reason, time) in Status.HA.Events and the log, and reports it to the
// controller through HubOptions.OnSwitch so DeviceConfig.Role and the
// admin commands agree. A recovered device comes back as standby
// (HubOptions.Preempt gives the role back to the controller's first
// choice); with both down, the first to claim healthy again wins. The
// controller stays the source of membership; the hub never invents a
// member. Each claim goes claimCopies times so random loss does not pass
// for a dead device, and the claim says so (Claim.Copies): from the copies
// and rounds it misses, the arbiter estimates the loss on each member's
// claim path and gives a lossy member more rounds of silence before it
// counts as stopped (enough that loss alone misses them all with at most
// lossTarget chance, at most ten rounds), so a device on a lossy path
// keeps its role while one on a clean path that stops is still found out
// after Failures intervals and a half; silences of Failures rounds or
// more are outages and do not count as loss. vcpe-hub status shows a
// lossy member's estimate and dead time (PeerStatus.Claims). A device that becomes active announces the gateway
// address (gratuitous ARP) takeoverWait before it takes it; an active
// device that hears another announce it yields at once, even when the
// hub's word has not reached it (it lost the hub), so two devices are
// never active together. A device that gets no claim reply for ten
// intervals (sustained evidence: random loss does not give that) withdraws
// as well; a site's only device (ClaimReply.Members) never withdraws, as
// nobody could take over. Repeated identical role events are folded into
// one (Count, Last).
//
// The LAN gateway (EdgeHA.LANGateway) is a virtual address the active
// device adds to its LAN interface and announces with gratuitous ARP
// (gopacket layers on an AF_PACKET socket); the standby removes it.
// keepalived/VRRP is not used: VRRP elects on the LAN segment, which
// cannot see the tunnel or the hub, and would be a second, disagreeing
// arbiter; the hub already sees both devices' claims. Known limit: after a
// kill -9 the dead daemon's gateway address stays on its LAN interface
// until vcped starts again (it starts as standby and removes it); LAN
// hosts follow the gratuitous ARP of the new active device meanwhile.
//
// Status is data (Status); the control socket serves it as JSON, metrics
// export it to Prometheus, and the standard WireGuard UAPI socket makes
// wg(8) work.
//
// One engine (edge or hub) runs per network namespace: routes marked with
// RouteProtocol that do not go through the engine's own TUN are treated as
// leftovers of a crash and deleted. Both roles keep their routes in vcpe's
// own table (DefaultRouteTable) behind two policy rules, "lookup main
// suppress_prefixlength 0" then "not fwmark DefaultFwMark lookup
// DefaultRouteTable", with WireGuard's socket marked: the main table's
// specific routes always win, vcpe's routes beat only the default route,
// and WireGuard's own packets never enter the tunnel. Before installing a
// device's routes the edge drops those that would capture the hub
// endpoint, the controller or a connected SSH client (Status.DroppedRoutes).
//
// The package must not talk to the controller (it takes configuration
// through Apply and a ConfigSource defined here), must not change anything
// outside the namespace it was started in, and must not touch routes,
// addresses or firewall rules it did not create: routes are recognised by
// RouteProtocol, the firewall by its own table name.
package dataplane
