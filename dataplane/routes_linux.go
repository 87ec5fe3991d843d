package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// vcpeRoutes lists the IPv4 routes of table marked with RouteProtocol, on
// any link.
func vcpeRoutes(nl *netlink.Handle, table int) ([]netlink.Route, error) {
	rs, err := nl.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Protocol: RouteProtocol, Table: table},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list vcpe routes: %w", err)
	}
	return rs, nil
}

func routePrefix(r netlink.Route) netip.Prefix {
	if r.Dst == nil {
		return netip.Prefix{}
	}
	a, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok {
		return netip.Prefix{}
	}
	bits, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits)
}

// reconcileRoutes makes the vcpe routes exactly want, each once, through
// the TUN: marked routes that are not wanted, or point elsewhere, or
// duplicate another, are deleted (leftovers of a crash); missing ones are
// added. Routes vcpe did not mark are never touched.
func (w *wgIface) reconcileRoutes(want []netip.Prefix) error {
	have, err := vcpeRoutes(w.nl, w.routeTable())
	if err != nil {
		return err
	}
	want = normalize(want)
	wanted := map[netip.Prefix]bool{}
	for _, p := range want {
		wanted[p] = true
	}
	kept := map[netip.Prefix]bool{}
	idx := w.link.Attrs().Index
	for _, r := range have {
		p := routePrefix(r)
		if wanted[p] && r.LinkIndex == idx && !kept[p] {
			kept[p] = true
			continue
		}
		r := r
		if err := w.nl.RouteDel(&r); err != nil {
			return fmt.Errorf("delete stale route %s: %w", p, err)
		}
		w.c.log.Info("deleted stale route", "prefix", p, "link_index", r.LinkIndex)
	}
	for _, p := range want {
		if kept[p] {
			continue
		}
		r := &netlink.Route{LinkIndex: idx, Dst: ipNet(p), Protocol: RouteProtocol, Scope: netlink.SCOPE_LINK, Table: w.routeTable()}
		add := w.nl.RouteReplace
		if w.table != 0 {
			// In vcpe's own table a route of the same prefix is someone
			// else's: never replace it.
			add = w.nl.RouteAdd
		}
		if err := add(r); err != nil {
			return fmt.Errorf("add route %s dev %s: %w", p, w.name, err)
		}
	}
	return nil
}

// removeRoutes deletes the vcpe routes through the TUN, and the policy
// rules of useTable.
func (w *wgIface) removeRoutes() {
	if w.rules {
		w.removeRules()
	}
	have, err := vcpeRoutes(w.nl, w.routeTable())
	if err != nil {
		return
	}
	for _, r := range have {
		if r.LinkIndex == w.link.Attrs().Index {
			r := r
			_ = w.nl.RouteDel(&r)
		}
	}
}
