package controller

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/openvcpe/vcpe/api"
)

// Route quota limits: the default per device, and the most an instance may
// be given.
const (
	DefaultRouteQuota = 5
	MaxRouteQuota     = 50
)

// reserved are IPv4 ranges a LAN prefix may not overlap.
var reserved = []struct {
	p    netip.Prefix
	what string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "the 'this network' range 0.0.0.0/8"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback 127.0.0.0/8"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local 169.254.0.0/16"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast 224.0.0.0/4"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved 240.0.0.0/4"},
}

func prefixError(code string, i int, format string, args ...any) *api.Error {
	return &api.Error{Code: code, Field: fmt.Sprintf("advertise[%d]", i), Message: fmt.Sprintf(format, args...)}
}

// ValidateAdvertise checks advertised LAN prefixes on their own: IPv4,
// a mask from /8 to /32, no host bits, no reserved range, no overlap within
// the list, and at most quota of them. It returns nil when they are fine.
func ValidateAdvertise(ps []netip.Prefix, quota int) *api.Error {
	if len(ps) > quota {
		return &api.Error{Code: api.CodeQuota, Field: "advertise",
			Message: fmt.Sprintf("%d prefixes advertised; the quota is %d per device", len(ps), quota),
			Fix:     fmt.Sprintf("advertise at most %d prefixes (summarise them), or raise the instance's quota (up to %d)", quota, MaxRouteQuota)}
	}
	for i, p := range ps {
		if !p.IsValid() {
			return prefixError(api.CodeInvalidInput, i, "prefix %d is not a valid prefix", i)
		}
		if !p.Addr().Is4() {
			e := prefixError(api.CodeInvalidInput, i, "prefix %s is not IPv4", p)
			e.Fix = "advertise IPv4 LAN prefixes only"
			return e
		}
		if p.Bits() < 8 || p.Bits() > 32 {
			e := prefixError(api.CodeInvalidInput, i, "prefix %s has mask /%d, outside /8–/32", p, p.Bits())
			e.Fix = "use a mask from /8 to /32"
			return e
		}
		if m := p.Masked(); m != p {
			e := prefixError(api.CodeInvalidInput, i, "prefix %s has host bits set", p)
			e.Fix = "use " + m.String()
			return e
		}
		for _, r := range reserved {
			if r.p.Overlaps(p) {
				return prefixError(api.CodeInvalidInput, i, "prefix %s overlaps %s", p, r.what)
			}
		}
		for j, q := range ps[:i] {
			if q.Overlaps(p) {
				return prefixError(api.CodeInvalidInput, i, "prefix %s overlaps %s (advertise[%d]) in the same list", p, q, j)
			}
		}
	}
	return nil
}

// samePrefixes reports whether a and b hold the same prefixes in any order.
func samePrefixes(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.SortFunc(x, comparePrefix)
	slices.SortFunc(y, comparePrefix)
	return slices.Equal(x, y)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// conflictsLocked checks prefixes instance inst would advertise against the
// overlay pool, the cloud-side prefixes, the hub host's own networks, the
// allowed pools and deny-list, and every other instance's prefixes. A
// conflict with a member of the same CCN names it; one with another tenant
// does not.
func (s *Server) conflictsLocked(instID, ccnID string, ps []netip.Prefix) *api.Error {
	for i, p := range ps {
		if p.Overlaps(s.opts.Overlay) {
			e := prefixError(api.CodePrefixConflict, i, "prefix %s overlaps the overlay pool %s", p, s.opts.Overlay)
			e.Fix = "advertise the site's LAN prefixes only; the overlay is routed by the tunnel"
			return e
		}
		for _, c := range s.opts.CloudPrefixes {
			if p.Overlaps(c) {
				e := prefixError(api.CodePrefixConflict, i, "prefix %s overlaps the cloud-side prefix %s", p, c)
				e.Fix = "renumber the LAN or advertise a prefix that does not overlap " + c.String()
				return e
			}
		}
		if e := s.hostConflictLocked(i, p); e != nil {
			return e
		}
		// Prefixes are unique across every instance at the hub, in any CCN
		// or none: the hub has one WireGuard AllowedIPs trie and one routing
		// table, so a prefix held twice would move to whoever sent it last.
		for _, oi := range s.instances {
			if oi.ID == instID {
				continue
			}
			for _, q := range oi.Advertised {
				if !p.Overlaps(q) {
					continue
				}
				if ccnID != "" && oi.CCN == ccnID {
					e := prefixError(api.CodePrefixConflict, i, "prefix %s overlaps %s advertised by instance %s in CCN %s", p, q, oi.Name, s.ccns[ccnID].Name)
					e.Fix = "every instance in one CCN needs distinct LAN prefixes: renumber one site or use another CCN"
					return e
				}
				// Another tenant: say that the prefix is taken, not by whom.
				e := prefixError(api.CodePrefixConflict, i, "prefix %s overlaps a prefix another instance already advertises at this hub", p)
				e.Fix = "LAN prefixes are unique across the hub: renumber this site, or ask the hub operator (vcpe-hub routes names the holder)"
				return e
			}
		}
	}
	return nil
}
