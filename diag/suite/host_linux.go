package suite

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/openvcpe/vcpe/dataplane"
)

// readHost reads the TUN link, vcpe's routes (protocol 118, main table)
// and every interface address, over netlink.
func readHost(tun string) (*Host, error) {
	h := &Host{TUN: tun, Routes: []netip.Prefix{}, Addresses: []IfAddr{}}
	l, err := netlink.LinkByName(tun)
	var nf netlink.LinkNotFoundError
	switch {
	case errors.As(err, &nf):
	case err != nil:
		return nil, fmt.Errorf("look up link %s: %w", tun, err)
	default:
		h.TUNPresent = true
		h.TUNUp = l.Attrs().Flags&net.FlagUp != 0
		h.TUNMTU = l.Attrs().MTU
	}
	// vcpe's routes live in its own table (main in earlier versions).
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: dataplane.RouteProtocol, Table: unix.RT_TABLE_UNSPEC},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		h.RoutesError = fmt.Sprintf("list routes: %v", err)
	}
	for _, r := range routes {
		if r.Dst == nil || (r.Table != 0 && r.Table != unix.RT_TABLE_MAIN && r.Table != dataplane.DefaultRouteTable) {
			continue
		}
		if p, ok := prefixOf(r.Dst); ok {
			h.Routes = append(h.Routes, p)
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return nil, fmt.Errorf("list addresses of %s: %w", l.Attrs().Name, err)
		}
		for _, a := range addrs {
			if p, ok := prefixOf(a.IPNet); ok {
				h.Addresses = append(h.Addresses, IfAddr{Interface: l.Attrs().Name, Prefix: p})
			}
		}
	}
	return h, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
