package controller

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/openvcpe/vcpe/api"
)

// DefaultLANPools are the prefixes devices may advertise inside when the
// operator names none (--lan-pool): the private ranges of RFC 1918, the
// shared address space of RFC 6598 and the benchmarking range of RFC 2544.
// A public prefix must be allowed explicitly, so a device can never make
// the hub route, say, 8.0.0.0/8 into a tunnel.
var DefaultLANPools = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
}

// HostNetwork is something on the hub's host a device prefix must not
// cover: one of its addresses (a /32), a connected network, its default
// gateway. What says which, for the refusal ("the hub's address 198.18.0.1
// on eth0").
type HostNetwork struct {
	Prefix netip.Prefix `json:"prefix"`
	What   string       `json:"what"`
}

// protected lists what no advertised prefix may overlap besides the
// overlay and the cloud prefixes: the hub endpoint, every registered
// hub's endpoint, the controller's address, the hub's reflector
// addresses, the host's networks and the operator's deny-list. s.mu is
// held.
func (s *Server) protected() []HostNetwork {
	out := []HostNetwork{{netip.PrefixFrom(s.opts.HubEndpoint.Addr().Unmap(), 32), "the hub endpoint " + s.opts.HubEndpoint.Addr().Unmap().String()}}
	if a := s.opts.ControllerAddr; a.IsValid() && a.Unmap().Is4() && !a.IsUnspecified() {
		out = append(out, HostNetwork{netip.PrefixFrom(a.Unmap(), 32), "the controller address " + a.Unmap().String()})
	}
	for _, a := range s.opts.HubAddrs {
		if a.Unmap().Is4() {
			out = append(out, HostNetwork{netip.PrefixFrom(a.Unmap(), 32), "the hub's address " + a.Unmap().String()})
		}
	}
	for _, h := range s.opts.HostNetworks {
		if h.Prefix.IsValid() && h.Prefix.Addr().Unmap().Is4() {
			out = append(out, h)
		}
	}
	for _, h := range s.hubs {
		if a := h.Endpoint.Addr().Unmap(); a.Is4() {
			out = append(out, HostNetwork{netip.PrefixFrom(a, 32), "the endpoint " + a.String() + " of hub " + h.Name})
		}
	}
	for _, d := range s.opts.DenyPrefixes {
		out = append(out, HostNetwork{d, "the deny-listed prefix " + d.String() + " (--deny-prefix)"})
	}
	return out
}

// hostConflictLocked refuses prefix p (advertise[i]) when it lies outside
// the allowed pools or overlaps anything of the hub's host.
func (s *Server) hostConflictLocked(i int, p netip.Prefix) *api.Error {
	pools := s.opts.LANPools
	if len(pools) == 0 {
		pools = DefaultLANPools
	}
	inPool := false
	for _, q := range pools {
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			inPool = true
			break
		}
	}
	if !inPool {
		e := prefixError(api.CodeInvalidInput, i, "prefix %s is outside the LAN pools this hub allows (%s)", p, api.JoinPrefixes(pools, ","))
		e.Fix = "advertise a LAN prefix inside an allowed pool, or ask the hub operator to allow it (vcpe-hub serve --lan-pool)"
		return e
	}
	for _, h := range s.protected() {
		if p.Overlaps(h.Prefix) {
			e := prefixError(api.CodePrefixConflict, i, "prefix %s would capture %s on the hub", p, h.What)
			e.Fix = "advertise only the site's own LAN prefixes; renumber the LAN if it really overlaps the hub's network"
			return e
		}
	}
	return nil
}

// validatePolicy checks the pool and deny-list options.
func validatePolicy(o Options) error {
	check := func(flag string, ps []netip.Prefix) error {
		for _, p := range ps {
			if !p.IsValid() || !p.Addr().Is4() || p.Masked() != p {
				return optErr("%s %s: want an IPv4 network prefix without host bits (for example %s)", flag, p, p.Masked())
			}
		}
		return nil
	}
	if err := check("--lan-pool", o.LANPools); err != nil {
		return err
	}
	return check("--deny-prefix", o.DenyPrefixes)
}

// describePools is the allowed pools for logs.
func describePools(o Options) string {
	pools := o.LANPools
	if len(pools) == 0 {
		pools = DefaultLANPools
	}
	var b strings.Builder
	for i, p := range pools {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprint(&b, p)
	}
	return b.String()
}
