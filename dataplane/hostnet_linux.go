package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// HostNetworks returns what of this host no device prefix may cover: every
// IPv4 address (as a /32), every connected network and every gateway of
// the main routing table, each with what it is.
func HostNetworks() ([]HostNetwork, error) {
	var out []HostNetwork
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list the hub's addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap().IsLoopback() {
			continue
		}
		ip = ip.Unmap()
		out = append(out, HostNetwork{netip.PrefixFrom(ip, 32), "the hub's address " + ip.String()})
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list the hub's routes: %w", err)
	}
	for _, r := range routes {
		if r.Protocol == RouteProtocol {
			continue
		}
		if gw, ok := netip.AddrFromSlice(r.Gw); ok && r.Gw != nil {
			gw = gw.Unmap()
			what := "the gateway " + gw.String()
			if r.Dst == nil {
				what = "the default gateway " + gw.String()
			}
			out = append(out, HostNetwork{netip.PrefixFrom(gw, 32), what})
		}
		if r.Dst != nil && r.Scope == netlink.SCOPE_LINK && r.Gw == nil {
			ip, ok := netip.AddrFromSlice(r.Dst.IP)
			bits, _ := r.Dst.Mask.Size()
			if ok && !ip.Unmap().IsLoopback() {
				p := netip.PrefixFrom(ip.Unmap(), bits)
				out = append(out, HostNetwork{p, "the connected network " + p.String()})
			}
		}
	}
	return out, nil
}
