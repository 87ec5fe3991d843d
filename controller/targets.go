package controller

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/openvcpe/vcpe/api"
)

// ValidateProbeAddrs checks a device's probe addresses against the
// prefixes it advertises: IPv4, each inside one of them, at most
// MaxRouteQuota in all. It returns them sorted without duplicates.
func ValidateProbeAddrs(addrs []netip.Addr, advertise []netip.Prefix) ([]netip.Addr, *api.Error) {
	if len(addrs) > MaxRouteQuota {
		return nil, &api.Error{Code: api.CodeInvalidInput, Field: "probe_addrs",
			Message: fmt.Sprintf("%d probe addresses; at most %d are kept", len(addrs), MaxRouteQuota),
			Fix:     "send one address per advertised prefix"}
	}
	for i, a := range addrs {
		field := fmt.Sprintf("probe_addrs[%d]", i)
		if !a.IsValid() || !a.Is4() {
			return nil, &api.Error{Code: api.CodeInvalidInput, Field: field,
				Message: fmt.Sprintf("probe address %s is not an IPv4 address", a),
				Fix:     "send the device's IPv4 LAN addresses"}
		}
		if !slices.ContainsFunc(advertise, func(p netip.Prefix) bool { return p.Contains(a) }) {
			return nil, &api.Error{Code: api.CodeInvalidInput, Field: field,
				Message: fmt.Sprintf("probe address %s lies in none of the advertised prefixes %s", a, api.JoinPrefixes(advertise, ",")),
				Fix:     "send only the device's own addresses inside the prefixes it advertises"}
		}
	}
	out := slices.Clone(addrs)
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}

// targetsLocked are the probe targets of routes: for another instance's
// prefix, the first probe address of that instance's active device inside
// it; for a cloud-side prefix, the hub's own address inside it. Routes
// without either have none.
func (s *Server) targetsLocked(ccnID, self string, routes []netip.Prefix) []api.ProbeTarget {
	// One pass over the members, indexed by route: a device's
	// configuration costs O(members), not O(routes × members), so one
	// change fanned out to every device of a large CCN stays fast.
	idx := make(map[netip.Prefix]int, len(routes))
	for i, r := range routes {
		idx[r] = i
	}
	found := make([]*api.ProbeTarget, len(routes))
	for i, r := range routes {
		if slices.Contains(s.opts.CloudPrefixes, r) {
			for _, a := range s.opts.HubAddrs {
				if r.Contains(a) {
					found[i] = &api.ProbeTarget{Prefix: r, Addr: a}
					break
				}
			}
		}
	}
	for other := range s.members[ccnID] {
		if other == self {
			continue
		}
		sn := s.activeLocked(other)
		if sn == "" {
			continue
		}
		// A probe address lies inside one of its instance's prefixes
		// (ValidateProbeAddrs), and prefixes of one CCN never overlap.
		for _, p := range s.instances[other].Advertised {
			i, ok := idx[p]
			if !ok || found[i] != nil || slices.Contains(s.opts.CloudPrefixes, p) {
				continue
			}
			for _, a := range s.devices[sn].ProbeAddrs {
				if p.Contains(a) {
					// Another instance's device is not named: its SN is
					// that instance's, not this one's.
					found[i] = &api.ProbeTarget{Prefix: p, Addr: a, Remote: true}
					break
				}
			}
		}
	}
	var out []api.ProbeTarget
	for _, t := range found {
		if t != nil {
			out = append(out, *t)
		}
	}
	return out
}
