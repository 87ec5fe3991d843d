package suite

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/openvcpe/vcpe/dataplane"
)

// readHost reads over netlink the TUN link, vcpe's routes (protocol 118,
// main table), every link and address, and the kernel's route choice for
// each learned prefix; and the forwarding path's sysctls from /proc.
func readHost(q HostQuery) (*Host, error) {
	tun := q.TUN
	h := &Host{TUN: tun, Routes: []netip.Prefix{}, Addresses: []IfAddr{}, Sysctls: map[string]int{}}
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
	names := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		names[a.Index] = a.Name
		h.Links = append(h.Links, Link{Name: a.Name, Up: a.Flags&net.FlagUp != 0,
			Carrier: a.OperState == netlink.OperUp || (a.OperState == netlink.OperUnknown && a.Flags&net.FlagRunning != 0),
			MTU:     a.MTU, Kind: l.Type()})
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return nil, fmt.Errorf("list addresses of %s: %w", a.Name, err)
		}
		for _, ad := range addrs {
			if p, ok := prefixOf(ad.IPNet); ok {
				h.Addresses = append(h.Addresses, IfAddr{Interface: a.Name, Prefix: p})
			}
		}
	}
	if main, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE); err == nil {
		for _, r := range main {
			if ones, _ := maskOf(r.Dst); ones == 0 && h.WAN == "" {
				h.WAN = names[r.LinkIndex] // the default route's interface
			}
		}
	}
	h.Lookups = lookups(q, h, names)
	for _, ifc := range append([]string{"all", tun, h.WAN}, lanIfaces(q.Advertised, h.Addresses)...) {
		if ifc == "" {
			continue
		}
		readSysctl(h.Sysctls, "net.ipv4.conf."+ifc+".rp_filter")
	}
	readSysctl(h.Sysctls, "net.netfilter.nf_conntrack_count")
	readSysctl(h.Sysctls, "net.netfilter.nf_conntrack_max")
	return h, nil
}

// maskOf is the prefix length of a route's destination; a nil one is the
// default route.
func maskOf(n *net.IPNet) (int, bool) {
	if n == nil {
		return 0, true
	}
	ones, _ := n.Mask.Size()
	return ones, true
}

func readSysctl(m map[string]int, name string) {
	b, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")))
	if err != nil {
		return
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
		m[name] = n
	}
}

// lanIfaces are the interfaces holding an address in an advertised prefix.
func lanIfaces(adv []netip.Prefix, addrs []IfAddr) []string {
	var out []string
	for _, a := range addrs {
		for _, p := range adv {
			if p.Contains(a.Prefix.Addr()) && !slices.Contains(out, a.Interface) {
				out = append(out, a.Interface)
			}
		}
	}
	return out
}

// lookups asks the kernel, for each learned prefix, which route it picks:
// from this host, and from a LAN host of each advertised prefix arriving
// on the interface holding that prefix (as `ip route get TO from SRC iif
// IF` does: policy rules included).
func lookups(q HostQuery, h *Host, names map[int]string) []Lookup {
	local := func(a netip.Addr) bool {
		return slices.ContainsFunc(h.Addresses, func(ia IfAddr) bool { return ia.Prefix.Addr() == a })
	}
	rules, _ := netlink.RuleList(netlink.FAMILY_V4)
	var out []Lookup
	for _, a := range q.Advertised {
		if to := lanSource(a, local); to.IsValid() {
			out = append(out, lookup(Lookup{Prefix: a, To: to, Advertised: true}, names, rules))
		}
	}
	for _, p := range q.Learned {
		to := lookupTarget(p, q.Targets)
		out = append(out, lookup(Lookup{Prefix: p, To: to}, names, rules))
		for _, a := range q.Advertised {
			src := lanSource(a, local)
			if !src.IsValid() {
				continue
			}
			iif := ""
			for _, ia := range h.Addresses {
				if ia.Prefix.Masked().Overlaps(a) && ia.Interface != q.TUN {
					iif = ia.Interface
				}
			}
			if iif == "" {
				// The prefix is on no interface: lan.addr says so.
				continue
			}
			out = append(out, lookup(Lookup{Prefix: p, To: to, From: src, IIf: iif}, names, rules))
		}
	}
	return out
}

var rtnType = map[int]string{unix.RTN_UNICAST: "unicast", unix.RTN_LOCAL: "local", unix.RTN_BLACKHOLE: "blackhole",
	unix.RTN_UNREACHABLE: "unreachable", unix.RTN_PROHIBIT: "prohibit", unix.RTN_THROW: "throw"}

func lookup(l Lookup, names map[int]string, rules []netlink.Rule) Lookup {
	opt := &netlink.RouteGetOptions{Iif: l.IIf}
	if l.From.IsValid() {
		opt.SrcAddr = net.IP(l.From.AsSlice())
	}
	rs, err := netlink.RouteGetWithOptions(net.IP(l.To.AsSlice()), opt)
	rule := matchingRule(rules, l)
	if rule != nil {
		l.RulePriority = rule.Priority
		l.Rule = describeRule(*rule)
	}
	table := unix.RT_TABLE_MAIN
	if rule != nil && rule.Table > 0 {
		table = rule.Table
	}
	switch {
	case err != nil:
		l.Error = err.Error()
		if errors.Is(err, unix.EXDEV) {
			l.Error += " (forwarding is off on " + l.IIf + ")"
		}
	case len(rs) == 0:
		l.Error = "no route"
	default:
		r := rs[0]
		l.Dev = names[r.LinkIndex]
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			l.Gateway = gw.Unmap()
		}
		l.Type = rtnType[r.Type]
		if r.Table > 0 {
			table = r.Table
		}
	}
	l.Table = table
	// The most specific route of the table holding To (the one that
	// decided), blackholes and the like included.
	if all, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE); err == nil {
		best := -1
		for _, r := range all {
			if r.Dst == nil {
				continue
			}
			p, ok := prefixOf(r.Dst)
			if ok && p.Contains(l.To) && p.Bits() > best {
				best, l.Route = p.Bits(), p
				if l.Type == "" {
					l.Type = rtnType[r.Type]
				}
			}
		}
	}
	return l
}

// matchingRule is the first policy rule other than the three defaults
// (local, main, default) that the lookup's packet matches.
func matchingRule(rules []netlink.Rule, l Lookup) *netlink.Rule {
	slices.SortStableFunc(rules, func(a, b netlink.Rule) int { return a.Priority - b.Priority })
	for i, r := range rules {
		if r.Invert || r.Mark != 0 || r.OifName != "" || r.IPProto != 0 || r.Dport != nil || r.Sport != nil || r.UIDRange != nil {
			continue
		}
		if r.IifName != "" && r.IifName != l.IIf {
			continue
		}
		if r.Src != nil {
			p, ok := prefixOf(r.Src)
			if !ok || !l.From.IsValid() || !p.Contains(l.From) {
				continue
			}
		}
		if r.Dst != nil {
			p, ok := prefixOf(r.Dst)
			if !ok || !p.Contains(l.To) {
				continue
			}
		}
		if r.Table == unix.RT_TABLE_LOCAL && r.Src == nil && r.Dst == nil {
			continue // the local table: it does not hold remote prefixes
		}
		if (r.Table == unix.RT_TABLE_MAIN || r.Table == unix.RT_TABLE_DEFAULT) && r.Src == nil && r.Dst == nil && r.IifName == "" && r.Type <= unix.FR_ACT_TO_TBL {
			return nil // the default rules decide: main table
		}
		return &rules[i]
	}
	return nil
}

var ruleAction = map[uint8]string{unix.FR_ACT_BLACKHOLE: "blackhole", unix.FR_ACT_UNREACHABLE: "unreachable", unix.FR_ACT_PROHIBIT: "prohibit"}

func describeRule(r netlink.Rule) string {
	var b strings.Builder
	fmt.Fprintf(&b, "priority %d:", r.Priority)
	if r.Src != nil {
		fmt.Fprintf(&b, " from %s", r.Src)
	} else {
		b.WriteString(" from all")
	}
	if r.Dst != nil {
		fmt.Fprintf(&b, " to %s", r.Dst)
	}
	if r.IifName != "" {
		fmt.Fprintf(&b, " iif %s", r.IifName)
	}
	switch a, ok := ruleAction[r.Type]; {
	case ok:
		b.WriteString(" " + a)
	case r.Table == 0:
		b.WriteString(" (no table: a prohibit, unreachable or blackhole rule)")
	default:
		fmt.Fprintf(&b, " lookup %d", r.Table)
	}
	return b.String()
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
