package diag

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// routeMTU is the path MTU this host currently uses toward dst: what it
// learned from "fragmentation needed" or the route's mtu metric when set,
// else the interface's MTU. ifMTU is the interface's MTU, where a path-MTU
// search starts.
func routeMTU(dst, src netip.Addr) (int, error) {
	r, ifMTU, err := routeTo(dst, src)
	if err != nil {
		return 0, err
	}
	if r > 0 {
		return r, nil
	}
	return ifMTU, nil
}

// ifaceMTU is the MTU of the interface of the route to dst.
func ifaceMTU(dst, src netip.Addr) (int, error) {
	_, m, err := routeTo(dst, src)
	return m, err
}

func routeTo(dst, src netip.Addr) (routeMTU, ifMTU int, err error) {
	routes, err := netlink.RouteGetWithOptions(dst.AsSlice(), &netlink.RouteGetOptions{SrcAddr: src.AsSlice()})
	if err != nil {
		return 0, 0, fmt.Errorf("look up the route to %s: %w", dst, err)
	}
	if len(routes) == 0 {
		return 0, 0, fmt.Errorf("look up the route to %s: no route", dst)
	}
	r := routes[0]
	l, err := netlink.LinkByIndex(r.LinkIndex)
	if err != nil {
		return 0, 0, fmt.Errorf("look up the interface of the route to %s: %w", dst, err)
	}
	return r.MTU, l.Attrs().MTU, nil
}
