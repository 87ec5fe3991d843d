package precheck

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Packet is a new IPv4 packet as the firewall evaluation imagines it: on
// the input path, from an arbitrary Internet source; on the forward and
// output paths, with the interfaces and addresses the route gives it. A
// field left empty makes a rule that tests it "maybe" match, and a rule
// that only maybe matches is assumed not to.
type Packet struct {
	Proto    string     // udp, tcp or icmp
	DPort    uint16     // udp/tcp
	ICMPType string     // icmp: echo-request
	InIface  string     // the interface it arrives on; empty when unknown (output: none)
	OutIface string     // the interface it leaves by (forward, output)
	Src, Dst netip.Addr // zero: unknown
}

// Path is the way a packet takes through netfilter.
type Path string

// The paths.
const (
	PathInput   Path = "input"   // arriving for this host
	PathForward Path = "forward" // routed through this host
	PathOutput  Path = "output"  // sent by this host
)

// prefixMatch compares a rule's address prefix with the packet's address.
func prefixMatch(p netip.Prefix, a netip.Addr) tri {
	if !a.IsValid() {
		return maybe
	}
	return boolTri(p.Contains(a))
}

// tri is a three-valued match result: a rule whose conditions cannot be
// judged statically "maybe" matches and is assumed not to.
type tri int8

const (
	no tri = iota
	maybe
	yes
)

func boolTri(b bool) tri {
	if b {
		return yes
	}
	return no
}

func (a tri) and(b tri) tri { return min(a, b) }

func (a tri) neg(n bool) tri {
	if !n || a == maybe {
		return a
	}
	if a == yes {
		return no
	}
	return yes
}

// ifaceMatch compares an interface pattern (a trailing wildcard allowed) with
// the packet's interface.
func ifaceMatch(pattern, iface, wildcard string) tri {
	if iface == "" {
		return maybe
	}
	if pre, ok := strings.CutSuffix(pattern, wildcard); ok {
		return boolTri(strings.HasPrefix(iface, pre))
	}
	return boolTri(pattern == iface)
}

// normProto maps protocol names and numbers to udp, tcp, icmp.
func normProto(p string) string {
	switch strings.ToLower(p) {
	case "17", "udp":
		return "udp"
	case "6", "tcp":
		return "tcp"
	case "1", "icmp":
		return "icmp"
	case "58", "icmpv6", "ipv6-icmp":
		return "icmpv6"
	case "0", "all":
		return "all"
	}
	return strings.ToLower(p)
}

// Verdict is what the firewall does with a packet, and the rule that decided.
type Verdict struct {
	Blocked bool   // dropped or rejected
	Action  string // drop or reject when Blocked
	Rule    string // the deciding rule, as the tool prints it
	Fix     string // command that removes the rule or changes the policy
	// Policy is set when a chain's policy decided: where an accept rule
	// must go ("iptables -t filter -I INPUT" or "nft insert rule inet t c").
	Policy string
}

// action is the verb for the verdict: dropped or rejected.
func (v Verdict) action() string {
	if v.Action == "reject" {
		return "rejected"
	}
	return "dropped"
}

// iptPaths are the iptables chains a new packet meets on each path, in
// order (the filtering ones: raw, mangle, filter).
var iptPaths = map[Path][][2]string{
	PathInput:   {{"raw", "PREROUTING"}, {"mangle", "PREROUTING"}, {"mangle", "INPUT"}, {"filter", "INPUT"}},
	PathForward: {{"raw", "PREROUTING"}, {"mangle", "PREROUTING"}, {"mangle", "FORWARD"}, {"filter", "FORWARD"}, {"mangle", "POSTROUTING"}},
	PathOutput:  {{"raw", "OUTPUT"}, {"mangle", "OUTPUT"}, {"filter", "OUTPUT"}, {"mangle", "POSTROUTING"}},
}

// EvalInput runs the packet through the IPv4 input path of an iptables
// ruleset (tool is "iptables" or "ip6tables", used in the fix).
func (rs *IptRuleset) EvalInput(p Packet, tool string) Verdict {
	return rs.EvalPath(PathInput, p, tool)
}

// EvalPath runs the packet through the iptables chains of path.
func (rs *IptRuleset) EvalPath(path Path, p Packet, tool string) Verdict {
	for _, tc := range iptPaths[path] {
		t := rs.table(tc[0])
		c := t.chain(tc[1])
		if c == nil {
			continue
		}
		v, decided := rs.evalChain(t, c, p, tool, 0)
		if decided && v.Blocked {
			return v
		}
		if !decided && (c.Policy == "DROP" || c.Policy == "REJECT") {
			return Verdict{
				Blocked: true, Action: strings.ToLower(c.Policy),
				Rule:   "policy " + c.Policy + " of iptables -t " + t.Name + " chain " + c.Name,
				Fix:    tool + " -t " + t.Name + " -I " + c.Name + " " + allowArgs(p) + " -j ACCEPT",
				Policy: tool + " -t " + t.Name + " -I " + c.Name,
			}
		}
	}
	return Verdict{}
}

// evalChain returns the verdict and whether a rule decided (false: the chain
// ran to its end or returned).
func (rs *IptRuleset) evalChain(t *IptTable, c *IptChain, p Packet, tool string, depth int) (Verdict, bool) {
	if depth > 16 {
		return Verdict{}, false
	}
	for _, r := range c.Rules {
		if r.match(p) != yes {
			continue
		}
		switch r.Target {
		case "ACCEPT":
			return Verdict{Rule: iptRuleText(tool, r)}, true
		case "DROP", "REJECT":
			return Verdict{Blocked: true, Action: strings.ToLower(r.Target), Rule: iptRuleText(tool, r), Fix: iptDeleteCmd(tool, r)}, true
		case "RETURN":
			return Verdict{}, false
		default:
			if sub := t.chain(r.Target); sub != nil {
				if v, ok := rs.evalChain(t, sub, p, tool, depth+1); ok {
					return v, true
				}
			}
		}
	}
	return Verdict{}, false
}

func allowArgs(p Packet) string {
	if p.OutIface != "" {
		// forward and output: allow the flow between its interfaces
		// and addresses, every protocol.
		var a []string
		if p.InIface != "" {
			a = append(a, "-i "+p.InIface)
		}
		a = append(a, "-o "+p.OutIface)
		if p.Dst.IsValid() {
			a = append(a, "-d "+p.Dst.String())
		}
		return strings.Join(a, " ")
	}
	switch p.Proto {
	case "icmp":
		return "-p icmp --icmp-type echo-request"
	default:
		return "-p " + p.Proto + " --dport " + itoa(int(p.DPort))
	}
}

func iptRuleText(tool string, r *IptRule) string { return tool + " -t " + r.Table + " " + r.Raw }

// iptDeleteCmd turns a saved "-A CHAIN ..." rule into the command that
// deletes it.
func iptDeleteCmd(tool string, r *IptRule) string {
	rest := strings.TrimPrefix(strings.TrimPrefix(r.Raw, "-A "), "-I ")
	return tool + " -t " + r.Table + " -D " + rest
}

// FloodRules returns the rules of every table and chain that rate-limit
// traffic of proto (udp or icmp; icmp also matches icmpv6 rules).
func (rs *IptRuleset) FloodRules(proto, tool string) []Finding {
	var out []Finding
	if rs == nil {
		return nil
	}
	for _, t := range rs.Tables {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				if !r.IsRateLimit() {
					continue
				}
				if !r.protoCovers(proto) && !(proto == "icmp" && r.protoCovers("icmpv6")) {
					continue
				}
				out = append(out, Finding{Proto: proto, Rule: iptRuleText(tool, r), Reason: "rate limit", Fix: iptDeleteCmd(tool, r)})
			}
		}
	}
	return out
}

// nftInputHooks in the order a new inbound packet meets them.
var nftHookOrder = map[Path]map[string]int{
	PathInput:   {"prerouting": 0, "input": 1},
	PathForward: {"prerouting": 0, "forward": 1, "postrouting": 2},
	PathOutput:  {"output": 0, "postrouting": 1},
}

// EvalInput runs the packet through the base chains of the ip and inet
// families on the prerouting and input hooks, in hook and priority order.
// Tables in skipTables ("family table") are left out (iptables-nft's own
// tables when iptables-save already covers them).
func (rs *NftRuleset) EvalInput(p Packet, skipTables map[string]bool) Verdict {
	return rs.EvalPath(PathInput, p, skipTables)
}

// EvalPath runs the packet through the filter base chains of the ip and
// inet families on the hooks of path, in hook and priority order.
func (rs *NftRuleset) EvalPath(path Path, p Packet, skipTables map[string]bool) Verdict {
	if rs == nil {
		return Verdict{}
	}
	order := nftHookOrder[path]
	var base []*NftChain
	for _, c := range rs.Chains {
		if _, ok := order[c.Hook]; !ok || (c.Family != "ip" && c.Family != "inet") || skipTables[c.Family+" "+c.Table] {
			continue
		}
		if c.Type != "" && c.Type != "filter" {
			continue
		}
		base = append(base, c)
	}
	slices.SortStableFunc(base, func(a, b *NftChain) int {
		if c := cmp.Compare(order[a.Hook], order[b.Hook]); c != 0 {
			return c
		}
		return cmp.Compare(a.Prio, b.Prio)
	})
	for _, c := range base {
		v, decided := rs.evalChain(c, p, 0)
		if decided && v.Blocked {
			return v
		}
		if !decided && c.Policy == "drop" {
			return Verdict{
				Blocked: true, Action: "drop",
				Rule:   "policy drop of nft chain " + c.Family + " " + c.Table + " " + c.Name,
				Fix:    "nft insert rule " + c.Family + " " + c.Table + " " + c.Name + " " + nftAllow(p),
				Policy: "nft insert rule " + c.Family + " " + c.Table + " " + c.Name,
			}
		}
	}
	return Verdict{}
}

func nftAllow(p Packet) string {
	if p.OutIface != "" {
		var a []string
		if p.InIface != "" {
			a = append(a, `iifname "`+p.InIface+`"`)
		}
		a = append(a, `oifname "`+p.OutIface+`"`)
		if p.Dst.IsValid() {
			a = append(a, "ip daddr "+p.Dst.String())
		}
		return strings.Join(a, " ") + " accept"
	}
	if p.Proto == "icmp" {
		return "icmp type echo-request accept"
	}
	return p.Proto + " dport " + itoa(int(p.DPort)) + " accept"
}

func (rs *NftRuleset) evalChain(c *NftChain, p Packet, depth int) (Verdict, bool) {
	if depth > 16 {
		return Verdict{}, false
	}
	for _, r := range rs.rulesOf(c) {
		if r.match(p) != yes {
			continue
		}
		switch r.Verdict {
		case "accept":
			return Verdict{Rule: "nft " + r.Text()}, true
		case "drop", "reject":
			return Verdict{Blocked: true, Action: r.Verdict, Rule: "nft " + r.Text(), Fix: r.DeleteCmd()}, true
		case "return":
			return Verdict{}, false
		case "jump", "goto":
			if sub := rs.chain(c.Family, c.Table, r.Target); sub != nil {
				if v, ok := rs.evalChain(sub, p, depth+1); ok {
					return v, true
				}
				if r.Verdict == "goto" {
					return Verdict{}, false
				}
			}
		}
	}
	return Verdict{}, false
}

func itoa(n int) string { return strconv.Itoa(n) }
