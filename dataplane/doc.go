// Package dataplane carries the customer's traffic: an engine around
// wireguard-go (embedded as a library) on a TUN device, with the netlink
// addresses and routes it needs, in two roles.
//
//   - Edge (the device, run by vcped): one peer, the hub. The overlay address
//     and a route per learned prefix are set through netlink; routes carry
//     the rtnetlink protocol RouteProtocol so a start after a crash
//     reconciles them (stale ones deleted, missing ones added, none
//     duplicated). A liveness prober pings the hub's overlay address through
//     the tunnel and forces a new handshake as soon as the path looks dead,
//     so the tunnel never waits out WireGuard's 90-second give-up.
//   - Hub (run inside vcpe-hub serve): one UDP endpoint for every device,
//     peers added, removed and updated live, kernel routes for the peers'
//     prefixes, and CCN isolation in an nftables table of vcpe's own.
//
// Status is data (Status); the control socket serves it as JSON, metrics
// export it to Prometheus, and the standard WireGuard UAPI socket makes
// wg(8) work.
//
// One engine (edge or hub) runs per network namespace: routes marked with
// RouteProtocol that do not go through the engine's own TUN are treated as
// leftovers of a crash and deleted.
//
// The package must not talk to the controller (it takes configuration
// through Apply and a ConfigSource defined here), must not change anything
// outside the namespace it was started in, and must not touch routes,
// addresses or firewall rules it did not create: routes are recognised by
// RouteProtocol, the firewall by its own table name.
package dataplane
