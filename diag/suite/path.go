package suite

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/precheck"
)

// The segments between a LAN host and the tunnel: the LAN side, the
// device's forwarding path (firewall forward and output hooks, NAT,
// reverse-path filtering, connection tracking, policy routing) and the
// route the kernel picks for each learned prefix. Each rule reasons from
// what the kernel and the firewall say, not from the symptoms.

// conntrackFull is the share of nf_conntrack_max above which new flows
// are dropped soon (or already).
const conntrackFull = 0.95

// advertised are the prefixes this device advertises.
func (d *diagnosis) advertised() []netip.Prefix {
	if c, _, ok := d.config(); ok && len(c.Advertised) > 0 {
		return c.Advertised
	}
	if d.e.State != nil {
		return d.e.State.Advertise
	}
	return nil
}

func (d *diagnosis) link(name string) (Link, bool) {
	if d.e.Host == nil {
		return Link{}, false
	}
	i := slices.IndexFunc(d.e.Host.Links, func(l Link) bool { return l.Name == name })
	if i < 0 {
		return Link{}, false
	}
	return d.e.Host.Links[i], true
}

// lanIfaces are the interfaces holding an address in an advertised
// prefix, with the prefix.
func (d *diagnosis) lanIfaces() map[netip.Prefix][]IfAddr {
	out := map[netip.Prefix][]IfAddr{}
	if d.e.Host == nil {
		return out
	}
	for _, a := range d.advertised() {
		for _, ia := range d.e.Host.Addresses {
			if ia.Interface != d.tun() && a.Contains(ia.Prefix.Addr()) {
				out[a] = append(out[a], ia)
			}
		}
	}
	return out
}

// lanSide judges the LAN segment: every advertised prefix must sit on an
// interface that is up with a carrier. A prefix on no interface is only
// reachable when a route leads to it on the LAN side (a routed LAN).
func (d *diagnosis) lanSide() {
	h := d.e.Host
	adv := d.advertised()
	if h == nil || len(h.Links) == 0 || len(adv) == 0 {
		return
	}
	ifs := d.lanIfaces()
	link := Finding{ID: FindLANLink, Category: CatLAN, Severity: SevOK, Title: "LAN interfaces up"}
	addr := Finding{ID: FindLANAddr, Category: CatLAN, Severity: SevOK, Title: "Advertised prefixes on a LAN interface"}
	var down, cmds []string
	for _, a := range adv {
		on := ifs[a]
		if len(on) == 0 {
			if d.routedLAN(a) {
				addr.Evidence = append(addr.Evidence, fmt.Sprintf("%s is on no interface; a route leads to it on the LAN side", a))
				continue
			}
			addr.Severity = SevError
			addr.Evidence = append(addr.Evidence, fmt.Sprintf("advertised %s is on no interface of this host and no route leads to it: LAN hosts in it are unreachable", a))
			gw := a.Masked().Addr().Next()
			if cand := d.bareLinks(); len(cand) == 1 {
				addr.Commands = append(addr.Commands, fmt.Sprintf("ip addr add %s/%d dev %s", gw, a.Bits(), cand[0]))
				addr.Fix = fmt.Sprintf("put the LAN gateway address back on the LAN interface (LAN hosts use it as their gateway; usually the first address, %s): ip addr add %s/%d dev %s", gw, gw, a.Bits(), cand[0])
			} else {
				addr.Fix = fmt.Sprintf("put the LAN gateway address (usually %s) on the LAN interface: ip addr add %s/%d dev LAN-IF; or withdraw %s (vcpe install --advertise)", gw, gw, a.Bits(), a)
			}
			continue
		}
		for _, ia := range on {
			l, ok := d.link(ia.Interface)
			if !ok {
				continue
			}
			switch {
			case !l.Up:
				down = append(down, ia.Interface)
				link.Evidence = append(link.Evidence, fmt.Sprintf("%s (%s, LAN %s) is administratively down", l.Name, ia.Prefix, a))
				cmds = append(cmds, "ip link set "+l.Name+" up")
			case !l.Carrier:
				down = append(down, ia.Interface)
				link.Evidence = append(link.Evidence, fmt.Sprintf("%s (%s, LAN %s) is up but has no carrier (cable, switch port or the peer end)", l.Name, ia.Prefix, a))
			default:
				link.Evidence = append(link.Evidence, fmt.Sprintf("%s up, %s", l.Name, ia.Prefix))
				addr.Evidence = append(addr.Evidence, fmt.Sprintf("%s on %s", a, l.Name))
			}
		}
	}
	if len(down) > 0 {
		link.Severity = SevError
		link.Title = "LAN interface down: " + strings.Join(down, ", ") + ": LAN hosts cannot reach this device"
		link.Commands = cmds
		link.Fix = "bring it up: " + strings.Join(cmds, "; ")
		if len(cmds) == 0 {
			link.Fix = "check the cable and the switch port of " + strings.Join(down, ", ") + " (ip -s link show " + down[0] + ")"
		}
	}
	if addr.Severity != SevOK {
		addr.Title = "An advertised prefix is on no LAN interface"
	}
	d.add(link)
	d.add(addr)
}

// routedLAN: a route other than through the tunnel or the WAN's default
// leads to prefix a (a LAN behind a router).
func (d *diagnosis) routedLAN(a netip.Prefix) bool {
	for _, l := range d.e.Host.Lookups {
		if l.Prefix == a && l.Advertised && l.Error == "" && l.Dev != d.tun() && l.Route.Bits() > 0 && a.Bits() >= l.Route.Bits() {
			return true
		}
	}
	return false
}

// bareLinks are links other than loopback, the TUN and the WAN that are
// up and carry no IPv4 address: where a removed LAN address was.
func (d *diagnosis) bareLinks() []string {
	h := d.e.Host
	var out []string
	for _, l := range h.Links {
		if l.Name == "lo" || l.Name == d.tun() || l.Name == h.WAN || !l.Up {
			continue
		}
		if !slices.ContainsFunc(h.Addresses, func(ia IfAddr) bool { return ia.Interface == l.Name }) {
			out = append(out, l.Name)
		}
	}
	return out
}

// tunAddr: the TUN holds the overlay address the controller gave.
func (d *diagnosis) tunAddr() {
	h := d.e.Host
	c, _, ok := d.config()
	if h == nil || !ok || !h.TUNPresent || !c.OverlayAddr.IsValid() || d.daemonDown() {
		return
	}
	f := Finding{ID: FindTUNAddr, Category: CatConfig, Severity: SevOK, Title: "Tunnel interface holds the overlay address " + c.OverlayAddr.String(),
		CausedBy: []FindingID{FindDaemon, FindTUN, FindRegistration}}
	has := slices.ContainsFunc(h.Addresses, func(ia IfAddr) bool { return ia.Interface == h.TUN && ia.Prefix.Addr() == c.OverlayAddr.Addr() })
	if !has {
		var on []string
		for _, ia := range h.Addresses {
			if ia.Interface == h.TUN {
				on = append(on, ia.Prefix.String())
			}
		}
		f.Severity = SevError
		f.Title = fmt.Sprintf("Tunnel interface %s lacks the overlay address %s: nothing through the tunnel answers this host", h.TUN, c.OverlayAddr)
		f.Evidence = []string{fmt.Sprintf("addresses on %s: %s", h.TUN, strings.Join(append(on, "none")[:max(1, len(on))], ", "))}
		cmd := fmt.Sprintf("ip addr replace %s dev %s", c.OverlayAddr, h.TUN)
		f.Commands = []string{cmd}
		f.Fix = cmd + " (or restart vcped: systemctl restart vcped)"
	}
	d.add(f)
}

// routePath judges the route the kernel picks for each learned prefix,
// from this host and from LAN hosts: it must leave by the TUN. A lookup
// that goes elsewhere names the route or the rule that decided.
func (d *diagnosis) routePath() {
	h := d.e.Host
	if h == nil || len(h.Lookups) == 0 || d.daemonDown() || !h.TUNPresent {
		return
	}
	f := Finding{ID: FindRoutePath, Category: CatConfig, Severity: SevOK, Title: "The kernel routes every learned prefix into the tunnel",
		CausedBy: []FindingID{FindDaemon, FindTUN, FindRoutesMatch, FindForwarding, FindLANLink, FindPrefixOverlap, FindRegistration}}
	var bad []string
	seen := map[string]bool{}
	for _, l := range h.Lookups {
		if l.Advertised {
			continue
		}
		from := "this host"
		if l.From.IsValid() {
			from = fmt.Sprintf("LAN host %s on %s", l.From, l.IIf)
		}
		what := fmt.Sprintf("ip route get %s from %s", l.To, from)
		switch {
		case l.Error != "":
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s (learned %s): %s", what, l.Prefix, l.Error))
			if strings.Contains(l.Error, "forwarding is off") {
				continue // ip.forward tells it
			}
			bad = append(bad, l.Prefix.String())
			d.routeFix(&f, l, seen)
		case l.Dev == h.TUN && (l.Type == "" || l.Type == "unicast"):
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s (learned %s): dev %s", what, l.Prefix, l.Dev))
		default:
			via := "dev " + l.Dev
			if l.Gateway.IsValid() {
				via = "via " + l.Gateway.String() + " " + via
			}
			if l.Type != "" && l.Type != "unicast" {
				via = l.Type + " " + via
			}
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s (learned %s): %s, not %s (route %s, table %d)", what, l.Prefix, via, h.TUN, l.Route, l.Table))
			bad = append(bad, l.Prefix.String())
			d.routeFix(&f, l, seen)
		}
	}
	if len(bad) == 0 {
		d.add(f)
		return
	}
	slices.Sort(bad)
	bad = slices.Compact(bad)
	f.Severity = SevError
	f.Title = "Traffic to " + strings.Join(bad, ", ") + " does not go into the tunnel: the kernel picks another route"
	if rp := d.rpStrict(); rp != "" {
		f.Evidence = append(f.Evidence, "replies from these prefixes arrive on "+h.TUN+", where "+rp+": they are dropped too")
	}
	f.Fix = strings.Join(f.Commands, "; ")
	if f.Fix == "" {
		f.Fix = "find the route or rule that wins: ip route get ADDR from SRC iif LAN-IF; ip rule; then remove it"
	}
	d.add(f)
}

// routeFix adds the command that removes what decided lookup l.
func (d *diagnosis) routeFix(f *Finding, l Lookup, seen map[string]bool) {
	var cmd string
	switch {
	case l.Rule != "":
		cmd = fmt.Sprintf("ip rule del priority %d", l.RulePriority)
		f.Evidence = append(f.Evidence, "policy rule "+l.Rule+" decides it")
	case l.Route.IsValid() && l.Route.Bits() > 0:
		// The learned route itself, replaced: routes.match restores it.
		if slices.Contains(d.learned(), l.Route) {
			cmd = fmt.Sprintf("ip route replace %s dev %s proto 118", l.Route, d.tun())
			break
		}
		typ := ""
		if l.Type != "" && l.Type != "unicast" {
			typ = l.Type + " "
		}
		cmd = fmt.Sprintf("ip route del %s%s", typ, l.Route)
		if l.Table != 0 && l.Table != 254 {
			cmd += fmt.Sprintf(" table %d", l.Table)
		}
	}
	if cmd != "" && !seen[cmd] {
		seen[cmd] = true
		f.Commands = append(f.Commands, cmd)
	}
}

func (d *diagnosis) learned() []netip.Prefix {
	c, _, _ := d.config()
	return c.Routes
}

// rpStrict says how strict reverse-path filtering is on the TUN, or "".
func (d *diagnosis) rpStrict() string {
	s := d.e.Host.Sysctls
	v := max(s["net.ipv4.conf.all.rp_filter"], s["net.ipv4.conf."+d.tun()+".rp_filter"])
	if v == 1 {
		return "rp_filter is strict (1)"
	}
	return ""
}

// fwPacket is a packet of the forwarding path to judge.
type fwPacket struct {
	what string
	path precheck.Path
	p    precheck.Packet
}

// forwardPath judges the firewall's forward hook for LAN traffic to each
// learned prefix and back, with precheck's evaluators on the snapshot.
func (d *diagnosis) forwardPath() {
	h := d.e.Host
	c, _, ok := d.config()
	if d.e.Snapshot == nil || h == nil || !ok || len(c.Routes) == 0 {
		return
	}
	var pkts []fwPacket
	for a, ifs := range d.lanIfaces() {
		src := lanSource(a, func(x netip.Addr) bool { return x == ifs[0].Prefix.Addr() })
		for _, l := range c.Routes {
			dst := lookupTarget(l, targetsOf(c))
			for _, proto := range []string{"icmp", "udp", "tcp"} {
				p := precheck.Packet{Proto: proto, DPort: 443, ICMPType: "echo-request", InIface: ifs[0].Interface, OutIface: h.TUN, Src: src, Dst: dst}
				if proto == "udp" {
					p.DPort = diag.ReflectorPort
				}
				pkts = append(pkts, fwPacket{fmt.Sprintf("%s from LAN %s to learned %s", proto, a, l), precheck.PathForward, p})
				back := precheck.Packet{Proto: proto, DPort: p.DPort, ICMPType: "echo-request", InIface: h.TUN, OutIface: ifs[0].Interface, Src: dst, Dst: src}
				pkts = append(pkts, fwPacket{fmt.Sprintf("%s from learned %s to LAN %s", proto, l, a), precheck.PathForward, back})
			}
		}
	}
	slices.SortFunc(pkts, func(a, b fwPacket) int { return strings.Compare(a.what, b.what) })
	d.firewallFinding(Finding{ID: FindFwForward, Category: CatLAN, Title: "The firewall forwards LAN traffic to and from the tunnel",
		CausedBy: []FindingID{FindForwarding}}, pkts, "the firewall's forward hook drops LAN traffic to the tunnel")
}

func targetsOf(c api.DeviceConfig) map[netip.Prefix]netip.Addr {
	m := map[netip.Prefix]netip.Addr{}
	for _, t := range c.Targets {
		m[t.Prefix] = t.Addr
	}
	return m
}

// outputPath judges the firewall's output hook for this host's own
// traffic: WireGuard to the hub, the controller, and probes through the
// tunnel.
func (d *diagnosis) outputPath() {
	h := d.e.Host
	c, _, ok := d.config()
	if d.e.Snapshot == nil || h == nil || !ok || !c.HubEndpoint.IsValid() {
		return
	}
	pkts := []fwPacket{{fmt.Sprintf("WireGuard udp %d to the hub %s", c.HubEndpoint.Port(), c.HubEndpoint.Addr()), precheck.PathOutput,
		precheck.Packet{Proto: "udp", DPort: c.HubEndpoint.Port(), OutIface: h.WAN, Dst: c.HubEndpoint.Addr()}}}
	if d.e.Controller != nil {
		a := d.e.Controller.Addr
		pkts = append(pkts, fwPacket{fmt.Sprintf("tcp %d to the controller %s", a.Port(), a.Addr()), precheck.PathOutput,
			precheck.Packet{Proto: "tcp", DPort: a.Port(), OutIface: h.WAN, Dst: a.Addr()}})
	}
	if c.HubOverlayAddr.IsValid() {
		pkts = append(pkts, fwPacket{fmt.Sprintf("udp %d through the tunnel to the hub %s", diag.ReflectorPort, c.HubOverlayAddr), precheck.PathOutput,
			precheck.Packet{Proto: "udp", DPort: diag.ReflectorPort, OutIface: h.TUN, Dst: c.HubOverlayAddr}})
	}
	d.firewallFinding(Finding{ID: FindFwOutput, Category: CatConfig, Title: "The firewall lets this host's tunnel and controller traffic out"},
		pkts, "this host's firewall drops its own tunnel or controller traffic (output hook)")
}

// firewallFinding evaluates pkts and adds f: an error naming each rule
// that blocks one, with the command that removes it.
func (d *diagnosis) firewallFinding(f Finding, pkts []fwPacket, title string) {
	if len(pkts) == 0 {
		return
	}
	f.Severity = SevOK
	seen := map[string]bool{}
	for _, pk := range pkts {
		v, err := precheck.EvalFirewall(d.e.Snapshot, pk.path, pk.p)
		if err != nil {
			return // no view of the firewall: nothing to say
		}
		if !v.Blocked {
			continue
		}
		f.Severity = SevError
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: %s by %s", pk.what, v.Action, v.Rule))
		if v.Fix != "" && !seen[v.Fix] {
			seen[v.Fix] = true
			f.Commands = append(f.Commands, v.Fix)
		}
	}
	if f.Severity == SevError {
		f.Title = strings.ToUpper(title[:1]) + title[1:]
		f.Fix = strings.Join(f.Commands, "; ")
	} else {
		f.Evidence = []string{fmt.Sprintf("%d flows judged against the ruleset: none dropped", len(pkts))}
	}
	d.add(f)
}

// natTunnel: a source NAT on the way into the tunnel rewrites LAN (and
// this host's) packets to an address the hub does not accept from this
// device (its overlay address and advertised prefixes): they are dropped.
func (d *diagnosis) natTunnel() {
	h := d.e.Host
	c, _, ok := d.config()
	if d.e.Snapshot == nil || h == nil || !ok || !c.OverlayAddr.IsValid() {
		return
	}
	allowed := append([]netip.Prefix{netip.PrefixFrom(c.OverlayAddr.Addr(), 32)}, d.advertised()...)
	// This host's own packet into the tunnel, and a LAN host's.
	pkts := []precheck.Packet{{OutIface: h.TUN, Proto: "udp", DPort: diag.ReflectorPort, Src: c.OverlayAddr.Addr(), Dst: c.HubOverlayAddr}}
	for a, ifs := range d.lanIfaces() {
		src := lanSource(a, func(x netip.Addr) bool { return x == ifs[0].Prefix.Addr() })
		pkts = append(pkts, precheck.Packet{InIface: ifs[0].Interface, OutIface: h.TUN, Proto: "udp", DPort: diag.ReflectorPort, Src: src, Dst: c.HubOverlayAddr})
	}
	var rules []precheck.NATRule
	for _, p := range pkts {
		rs, err := precheck.SourceNAT(d.e.Snapshot, p)
		if err != nil {
			return
		}
		for _, r := range rs {
			if !slices.ContainsFunc(rules, func(x precheck.NATRule) bool { return x.Rule == r.Rule }) {
				rules = append(rules, r)
			}
		}
	}
	f := Finding{ID: FindNATTunnel, Category: CatConfig, Severity: SevOK, Title: "No source NAT into the tunnel rewrites to a foreign address"}
	for _, r := range rules {
		to := r.To
		if r.Masquerade {
			to = c.OverlayAddr.Addr()
		}
		if to.IsValid() && slices.ContainsFunc(allowed, func(p netip.Prefix) bool { return p.Contains(to) }) {
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s rewrites to %s, an address the hub accepts from this device", r.Rule, to))
			continue
		}
		f.Severity = SevError
		f.Title = fmt.Sprintf("Source NAT into %s rewrites packets to %s, which the hub drops (not this device's overlay address or advertised prefixes)", h.TUN, cmpAddr(to, r.ToText))
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s (the hub accepts from this device only %s)", r.Rule, joinPrefixes(allowed)))
		if r.Fix != "" {
			f.Commands = append(f.Commands, r.Fix)
		}
	}
	if f.Severity == SevError {
		f.Fix = strings.Join(f.Commands, "; ")
		if f.Fix == "" {
			f.Fix = "remove the SNAT rule for " + h.TUN
		}
	}
	if f.Severity == SevError || len(f.Evidence) > 0 {
		d.add(f)
	}
}

func cmpAddr(a netip.Addr, text string) string {
	if a.IsValid() {
		return a.String()
	}
	return text
}

// conntrack: a full connection-tracking table drops new flows.
func (d *diagnosis) conntrack() {
	h := d.e.Host
	if h == nil {
		return
	}
	n, ok1 := h.Sysctls["net.netfilter.nf_conntrack_count"]
	m, ok2 := h.Sysctls["net.netfilter.nf_conntrack_max"]
	if !ok1 || !ok2 || m <= 0 {
		return
	}
	f := Finding{ID: FindConntrack, Category: CatConfig, Severity: SevOK, Title: fmt.Sprintf("Connection tracking table %d of %d", n, m)}
	if float64(n) >= conntrackFull*float64(m) {
		f.Severity = SevError
		f.Title = fmt.Sprintf("Connection tracking table full (%d of %d): new flows are dropped", n, m)
		f.Evidence = []string{fmt.Sprintf("nf_conntrack_count %d, nf_conntrack_max %d", n, m)}
		f.Fix = fmt.Sprintf("raise it: sysctl -w net.netfilter.nf_conntrack_max=%d; then find what opens so many flows (conntrack -L | sort)", 2*m)
		f.Commands = []string{fmt.Sprintf("sysctl -w net.netfilter.nf_conntrack_max=%d", 2*m)}
	}
	d.add(f)
}
