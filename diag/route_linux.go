package diag

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// routeMTU is the MTU of the route this host would use to reach dst: the
// route's own mtu metric when set, else its interface's MTU.
func routeMTU(dst, src netip.Addr) (int, error) {
	routes, err := netlink.RouteGetWithOptions(dst.AsSlice(), &netlink.RouteGetOptions{SrcAddr: src.AsSlice()})
	if err != nil {
		return 0, fmt.Errorf("look up the route to %s: %w", dst, err)
	}
	if len(routes) == 0 {
		return 0, fmt.Errorf("look up the route to %s: no route", dst)
	}
	r := routes[0]
	if r.MTU > 0 {
		return r.MTU, nil
	}
	l, err := netlink.LinkByIndex(r.LinkIndex)
	if err != nil {
		return 0, fmt.Errorf("look up the interface of the route to %s: %w", dst, err)
	}
	return l.Attrs().MTU, nil
}
