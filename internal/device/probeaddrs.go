package device

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// ProbeAddrsIn picks, from a host's interface addresses, those inside the
// advertised prefixes: where this device's probe reflector (UDP 12345 on
// every address) answers for the other sites. exclude is left out (the
// multi-attach LAN gateway address moves between the two devices). The
// result is sorted, without duplicates.
func ProbeAddrsIn(ifaddrs []netip.Prefix, advertise []netip.Prefix, exclude netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, ia := range ifaddrs {
		a := ia.Addr().Unmap()
		if !a.Is4() || a == exclude {
			continue
		}
		if slices.ContainsFunc(advertise, func(p netip.Prefix) bool { return p.Contains(a) }) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// InterfaceAddrs returns the addresses of the host's interfaces.
func InterfaceAddrs() ([]netip.Prefix, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	var out []netip.Prefix
	for _, a := range as {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		addr, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		bits, _ := n.Mask.Size()
		out = append(out, netip.PrefixFrom(addr.Unmap(), bits))
	}
	return out, nil
}
