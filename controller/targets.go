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
	type holder struct {
		sn    string
		addrs []netip.Addr
	}
	var holders []holder
	for other := range s.members[ccnID] {
		if other == self {
			continue
		}
		if sn := s.activeLocked(other); sn != "" {
			holders = append(holders, holder{sn, s.devices[sn].ProbeAddrs})
		}
	}
	hub := holder{addrs: s.opts.HubAddrs}
	var out []api.ProbeTarget
	for _, r := range routes {
		cands := holders
		if slices.Contains(s.opts.CloudPrefixes, r) {
			cands = []holder{hub}
		}
	find:
		for _, h := range cands {
			for _, a := range h.addrs {
				if r.Contains(a) {
					// Another instance's device is not named: its SN is
					// that instance's, not this one's.
					out = append(out, api.ProbeTarget{Prefix: r, Addr: a, Remote: h.sn != ""})
					break find
				}
			}
		}
	}
	return out
}
