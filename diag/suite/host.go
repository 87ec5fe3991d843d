package suite

import (
	"net/netip"
)

// Host is the kernel's view: the TUN link, the routes vcpe installed
// (protocol 118), every link and address, the route the kernel picks for
// each learned prefix from each advertised one, and the sysctls of the
// forwarding path.
type Host struct {
	TUN         string         `json:"tun"`
	TUNPresent  bool           `json:"tun_present"`
	TUNUp       bool           `json:"tun_up"`
	TUNMTU      int            `json:"tun_mtu,omitempty"`
	Routes      []netip.Prefix `json:"routes"` // proto 118, main table
	Addresses   []IfAddr       `json:"addresses"`
	RoutesError string         `json:"routes_error,omitempty"`

	// WAN is the interface of the IPv4 default route ("" when none).
	WAN string `json:"wan,omitempty"`
	// Links are every interface with its state.
	Links []Link `json:"links,omitempty"`
	// Lookups are the kernel's route choices (ip route get) for each
	// learned prefix: from this host, and from a LAN host of each
	// advertised prefix arriving on its LAN interface.
	Lookups []Lookup `json:"lookups,omitempty"`
	// Sysctls of the forwarding path by name (net.ipv4.conf.IF.rp_filter,
	// net.netfilter.nf_conntrack_count and _max); absent ones were not
	// readable.
	Sysctls map[string]int `json:"sysctls,omitempty"`
}

// IfAddr is an address on a local interface.
type IfAddr struct {
	Interface string       `json:"interface"`
	Prefix    netip.Prefix `json:"prefix"`
}

// Link is an interface and its state.
type Link struct {
	Name string `json:"name"`
	// Up is the administrative state (ip link set IF up); Carrier whether
	// the kernel sees it operational (lower layer up).
	Up      bool   `json:"up"`
	Carrier bool   `json:"carrier"`
	MTU     int    `json:"mtu"`
	Kind    string `json:"kind,omitempty"` // veth, tun, bridge, ...
}

// Lookup is the kernel's answer to `ip route get To from From [iif IIf]`.
type Lookup struct {
	Prefix netip.Prefix `json:"prefix"` // the learned (or advertised) prefix To stands for
	// Advertised: To stands for an advertised prefix, looked up from this
	// host (where does this host send LAN traffic).
	Advertised bool       `json:"advertised,omitempty"`
	To         netip.Addr `json:"to"`
	From       netip.Addr `json:"from,omitzero"` // a LAN host's address; zero: this host's own choice
	IIf        string     `json:"iif,omitempty"` // the LAN interface From arrives on
	// The answer: the interface, the gateway and the route type
	// (unicast, local, blackhole, unreachable, prohibit), the table and
	// the most specific route of that table holding To.
	Dev     string       `json:"dev,omitempty"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	Type    string       `json:"type,omitempty"`
	Table   int          `json:"table,omitempty"`
	Route   netip.Prefix `json:"route,omitzero"`
	// Rule is the policy rule that decided, when not one of the three
	// default ones ("priority 100: from 198.19.1.0/24 to 198.19.2.0/24
	// prohibit").
	Rule         string `json:"rule,omitempty"`
	RulePriority int    `json:"rule_priority,omitempty"`
	// Error is the kernel's refusal (blackhole, unreachable, prohibited,
	// no forwarding).
	Error string `json:"error,omitempty"`
}

// HostQuery is what readHost looks up: the routes the device learned, the
// prefixes it advertises and the probe targets in learned prefixes.
type HostQuery struct {
	TUN        string
	Learned    []netip.Prefix
	Advertised []netip.Prefix
	Targets    map[netip.Prefix]netip.Addr
}

// lanSource is an address in a (the last host address, or the one below
// it when that one is local): the source a LAN host would use, for a
// route lookup as if it sent the packet.
func lanSource(a netip.Prefix, local func(netip.Addr) bool) netip.Addr {
	if a.Bits() >= 31 {
		return a.Addr()
	}
	last := a.Masked().Addr()
	for range 1<<(32-a.Bits()) - 2 {
		last = last.Next()
	}
	for c := last; a.Contains(c) && c != a.Masked().Addr(); c = c.Prev() {
		if !local(c) {
			return c
		}
	}
	return netip.Addr{}
}

// lookupTarget is the address that stands for learned prefix p: its probe
// target, else its first host address.
func lookupTarget(p netip.Prefix, targets map[netip.Prefix]netip.Addr) netip.Addr {
	if t, ok := targets[p]; ok && p.Contains(t) {
		return t
	}
	if p.Bits() >= 31 {
		return p.Addr()
	}
	return p.Masked().Addr().Next()
}
