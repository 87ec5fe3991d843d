package precheck

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// The ports vcpe needs: the "own" ones vcpe binds itself (4500 the tunnel,
// 12345 the probe reflector, 8443 the controller, 10000-10100 the
// outside-in reachability check), so a socket on loopback conflicts with them
// too; the reserved ones (required free by the platform's spec) only
// conflict when bound on a non-loopback address.
var (
	udpOwn      = portSet(4500, 12345, rangeOf(10000, 10100))
	udpReserved = portSet(53, 500, 789, 801, 27890, 33336, 43337, 56543, 62345)
	tcpOwn      = portSet(8443, rangeOf(10000, 10100))
	tcpReserved = portSet(53, 80, 443)
)

func rangeOf(lo, hi uint16) []uint16 {
	var out []uint16
	for p := lo; p <= hi; p++ {
		out = append(out, p)
	}
	return out
}

func portSet(items ...any) []uint16 {
	var out []uint16
	for _, it := range items {
		switch x := it.(type) {
		case int:
			out = append(out, uint16(x))
		case []uint16:
			out = append(out, x...)
		}
	}
	return out
}

func iptables(s *Snapshot, f string) (*IptRuleset, error) {
	b, err := s.Read(f)
	if err != nil {
		return nil, err
	}
	rs, err := ParseIptablesSave(b)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", f, err)
	}
	return rs, nil
}

func nftables(s *Snapshot) (*NftRuleset, error) {
	b, err := s.Read(fileNft)
	if err != nil {
		return nil, err
	}
	return ParseNftJSON(b)
}

// firewall is what the snapshot says about the firewall.
type firewall struct {
	ipt, ip6t *IptRuleset
	nft       *NftRuleset
	skip      map[string]bool // nft tables iptables-save already shows
	missing   []string        // why a view is absent
}

// loadFirewall parses the firewall views of the snapshot, once.
func loadFirewall(s *Snapshot) firewall {
	s.fwOnce.Do(func() { s.fw = parseFirewall(s) })
	return s.fw
}

func parseFirewall(s *Snapshot) firewall {
	var fw firewall
	var err error
	if fw.ipt, err = iptables(s, fileIptables); err != nil {
		fw.missing = append(fw.missing, err.Error())
	}
	if fw.ip6t, err = iptables(s, fileIp6tables); err != nil {
		fw.missing = append(fw.missing, err.Error())
	}
	if fw.nft, err = nftables(s); err != nil {
		fw.missing = append(fw.missing, err.Error())
	}
	// iptables-nft keeps its rules in nft tables of the same names; judge
	// them once, from iptables-save.
	fw.skip = map[string]bool{}
	for fam, rs := range map[string]*IptRuleset{"ip": fw.ipt, "ip6": fw.ip6t} {
		if rs == nil {
			continue
		}
		for _, t := range rs.Tables {
			fw.skip[fam+" "+t.Name] = true
		}
	}
	return fw
}

// missingV4 says why the IPv4 firewall views are absent.
func (fw firewall) missingV4() string {
	var out []string
	for _, m := range fw.missing {
		if !strings.Contains(m, "ip6tables") {
			out = append(out, m)
		}
	}
	return strings.Join(out, "; ")
}

// known reports whether at least one IPv4 view of the firewall is present.
func (fw firewall) known() bool { return fw.ipt != nil || fw.nft != nil }

func (fw firewall) evalInput(p Packet) Verdict {
	if fw.ipt != nil {
		if v := fw.ipt.EvalInput(p, "iptables"); v.Blocked {
			return v
		}
	}
	if fw.nft != nil {
		if v := fw.nft.EvalInput(p, fw.skip); v.Blocked {
			return v
		}
	}
	return Verdict{}
}

// EvalFirewall runs p through the IPv4 firewall views of s (iptables-save,
// then the nft ruleset) on path: the first that blocks it decides. It
// fails when the snapshot holds no view of the firewall.
func EvalFirewall(s *Snapshot, path Path, p Packet) (Verdict, error) {
	fw := loadFirewall(s)
	if !fw.known() {
		return Verdict{}, errNoFirewall(fw)
	}
	if fw.ipt != nil {
		if v := fw.ipt.EvalPath(path, p, "iptables"); v.Blocked {
			return v, nil
		}
	}
	if fw.nft != nil {
		if v := fw.nft.EvalPath(path, p, fw.skip); v.Blocked {
			return v, nil
		}
	}
	return Verdict{}, nil
}

func errNoFirewall(fw firewall) error {
	return fmt.Errorf("no firewall view in the snapshot: %s", fw.missingV4())
}

func checkPortsUDP(_ context.Context, s *Snapshot, o Options) Result {
	return checkPorts(s, o, "udp", udpOwn, udpReserved)
}

func checkPortsTCP(_ context.Context, s *Snapshot, o Options) Result {
	return checkPorts(s, o, "tcp", tcpOwn, tcpReserved)
}

func checkPorts(s *Snapshot, o Options, proto string, own, reserved []uint16) Result {
	up := strings.ToUpper(proto)
	required := map[uint16]bool{}
	isOwn := map[uint16]bool{}
	for _, p := range reserved {
		required[p] = true
	}
	for _, p := range own {
		required[p], isOwn[p] = true, true
	}
	var findings []Finding
	var notChecked []string
	// groups collect the ports with the same cause, for one line of detail
	// and one fix each.
	type group struct {
		cause string
		ports []portRange
		fix   func(ports string, multiport string) string
	}
	var groups []*group
	groupOf := func(cause string, fix func(string, string) string) *group {
		for _, g := range groups {
			if g.cause == cause {
				return g
			}
		}
		g := &group{cause: cause, fix: fix}
		groups = append(groups, g)
		return g
	}
	addPort := func(g *group, p uint16) {
		if n := len(g.ports); n > 0 && g.ports[n-1].hi == p-1 {
			g.ports[n-1].hi = p
			return
		}
		g.ports = append(g.ports, portRange{p, p})
	}

	socks, err := bound(s, proto)
	if err != nil {
		notChecked = append(notChecked, "sockets: "+err.Error())
	}
	seen := map[string]bool{}
	for _, b := range socks {
		port := b.Local.Port()
		if !required[port] || (b.Local.Addr().IsLoopback() && !isOwn[port]) {
			continue
		}
		if b.Owner != nil && ownDaemons[b.Owner.Process] {
			continue
		}
		key := fmt.Sprintf("%d/%s", port, b.who())
		if seen[key] {
			continue
		}
		seen[key] = true
		f := Finding{Proto: proto, Port: port, Reason: fmt.Sprintf("bound by %s on %s", b.who(), b.Local.Addr())}
		var fix func(string, string) string
		if b.Owner != nil && b.Owner.PID != 0 {
			f.PID, f.Process = b.Owner.PID, b.Owner.Process
			pid, name := f.PID, f.Process
			fix = func(ports, _ string) string {
				return fmt.Sprintf("stop %s (pid %d) or move it off %s %s: systemctl disable --now %s, or kill %d", name, pid, up, ports, name, pid)
			}
		} else {
			fix = func(ports, _ string) string {
				return fmt.Sprintf("find the owner with: ss -lpn '( sport = :%d )' (as root), then stop it or move it off %s %s", port, up, ports)
			}
		}
		f.Fix = fix(fmt.Sprint(port), "")
		findings = append(findings, f)
		addPort(groupOf("bound by "+b.who(), fix), port)
	}

	fw := loadFirewall(s)
	if !fw.known() {
		notChecked = append(notChecked, "firewall: "+fw.missingV4())
	} else {
		wan, _, _ := wanIface(s, o)
		ports := make([]uint16, 0, len(required))
		for p := range required {
			ports = append(ports, p)
		}
		slices.Sort(ports)
		for _, p := range ports {
			v := fw.evalInput(Packet{Proto: proto, DPort: p, InIface: wan})
			if !v.Blocked {
				continue
			}
			f := Finding{Proto: proto, Port: p, Rule: v.Rule, Reason: v.action() + " by the firewall", Fix: v.Fix}
			if n := len(findings); n > 0 && findings[n-1].Rule == v.Rule && max(findings[n-1].Port, findings[n-1].PortEnd) == p-1 {
				findings[n-1].PortEnd = p
			} else {
				findings = append(findings, f)
			}
			fix := func(string, string) string { return v.Fix }
			if v.Policy != "" {
				policy := v.Policy
				if strings.HasPrefix(policy, "nft") {
					fix = func(ports, _ string) string { return fmt.Sprintf("%s %s dport { %s } accept", policy, proto, ports) }
				} else {
					fix = func(_, multi string) string {
						return fmt.Sprintf("%s -p %s -m multiport --dports %s -j ACCEPT", policy, proto, multi)
					}
				}
			}
			addPort(groupOf(v.action()+" by "+v.Rule, fix), p)
		}
	}

	if len(findings) > 0 {
		var d, fx []string
		for _, g := range groups {
			var list, multi []string
			for _, r := range g.ports {
				if r.lo == r.hi {
					list = append(list, fmt.Sprint(r.lo))
					multi = append(multi, fmt.Sprint(r.lo))
				} else {
					list = append(list, fmt.Sprintf("%d-%d", r.lo, r.hi))
					multi = append(multi, fmt.Sprintf("%d:%d", r.lo, r.hi))
				}
			}
			ports := strings.Join(list, ", ")
			d = append(d, fmt.Sprintf("%s %s %s", up, ports, g.cause))
			fx = append(fx, g.fix(ports, strings.Join(multi, ",")))
		}
		return Result{Status: Fail, Findings: findings, Detail: strings.Join(d, "; "), Fix: strings.Join(uniq(fx), "; ")}
	}
	if len(notChecked) > 0 {
		return skipf(strings.Join(notChecked, "; "))
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("%s %s free and not filtered", up, describePorts(own, reserved))}
}

func describePorts(own, reserved []uint16) string {
	all := append(append([]uint16{}, own...), reserved...)
	slices.Sort(all)
	var parts []string
	for i := 0; i < len(all); {
		j := i
		for j+1 < len(all) && all[j+1] == all[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", all[i], all[j]))
		} else {
			parts = append(parts, fmt.Sprint(all[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

func checkICMPEcho(_ context.Context, s *Snapshot, o Options) Result {
	b, err := s.Read(fileEchoIgnoreAll)
	if err != nil {
		return skip(err)
	}
	v, err := ParseSysctlInt(b)
	if err != nil {
		return skipf(fileEchoIgnoreAll + ": " + err.Error())
	}
	if v != 0 {
		return Result{Status: Fail, Detail: "net.ipv4.icmp_echo_ignore_all is 1: the host ignores ping, so the hub cannot probe it",
			Fix: "sysctl -w net.ipv4.icmp_echo_ignore_all=0, and remove icmp_echo_ignore_all=1 from /etc/sysctl.conf and /etc/sysctl.d/"}
	}
	fw := loadFirewall(s)
	if !fw.known() {
		return skipf("firewall: " + fw.missingV4())
	}
	wan, _, _ := wanIface(s, o)
	if vd := fw.evalInput(Packet{Proto: "icmp", ICMPType: "echo-request", InIface: wan}); vd.Blocked {
		return Result{Status: Fail, Detail: fmt.Sprintf("ICMP echo requests are %s by %s", vd.action(), vd.Rule), Fix: vd.Fix,
			Findings: []Finding{{Proto: "icmp", Rule: vd.Rule, Reason: vd.action() + " by the firewall", Fix: vd.Fix}}}
	}
	return Result{Status: Pass, Detail: "echo requests are answered and not filtered"}
}

func checkFloodUDP(_ context.Context, s *Snapshot, _ Options) Result {
	return checkFlood(s, "udp", nil)
}

func checkFloodICMP(_ context.Context, s *Snapshot, _ Options) Result {
	var extra []Finding
	rl, err1 := s.Read(fileICMPRatelimit)
	rm, err2 := s.Read(fileICMPRatemask)
	if err1 == nil && err2 == nil {
		limit, e1 := ParseSysctlInt(rl)
		mask, e2 := ParseSysctlInt(rm)
		// Bit 0 of the mask is ICMP type 0, echo reply.
		if e1 == nil && e2 == nil && limit > 0 && mask&1 != 0 {
			extra = append(extra, Finding{Proto: "icmp", Reason: fmt.Sprintf("net.ipv4.icmp_ratelimit=%d ms applies to echo replies (icmp_ratemask=%d includes type 0)", limit, mask),
				Fix: fmt.Sprintf("sysctl -w net.ipv4.icmp_ratemask=%d (drop echo reply from the mask)", mask&^1)})
		}
	}
	return checkFlood(s, "icmp", extra)
}

func checkFlood(s *Snapshot, proto string, extra []Finding) Result {
	fw := loadFirewall(s)
	found := append([]Finding{}, extra...)
	found = append(found, fw.ipt.FloodRules(proto, "iptables")...)
	found = append(found, fw.ip6t.FloodRules(proto, "ip6tables")...)
	found = append(found, fw.nft.FloodRules(proto, fw.skip)...)
	up := strings.ToUpper(proto)
	if len(found) > 0 {
		var d, fx []string
		for _, f := range found {
			if f.Rule != "" {
				d = append(d, "rule: "+f.Rule)
			} else {
				d = append(d, f.Reason)
			}
			fx = append(fx, f.Fix)
		}
		return Result{Status: Warn, Findings: found,
			Detail: fmt.Sprintf("%s is rate-limited, which drops tunnel or probe traffic under load: %s", up, strings.Join(d, "; ")),
			Fix:    "remove the rate limit: " + strings.Join(uniq(fx), "; ")}
	}
	if fw.ipt == nil && fw.nft == nil {
		return skipf("firewall: " + fw.missingV4())
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("no rate limit applies to %s", up)}
}
