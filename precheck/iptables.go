package precheck

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// IptRuleset is the parsed output of iptables-save (or ip6tables-save).
type IptRuleset struct {
	Tables []*IptTable
}

// IptTable is one *table section.
type IptTable struct {
	Name   string
	Chains []*IptChain
}

// IptChain is a chain with its policy ("-" for user chains) and rules.
type IptChain struct {
	Name   string
	Policy string
	Rules  []*IptRule
}

// IptRule is one -A line, with the conditions the firewall evaluation
// understands pulled out.
type IptRule struct {
	Table, Chain string
	Raw          string // the line as saved, "-A INPUT ..."

	Proto       string
	ProtoNeg    bool
	InIface     string
	InNeg       bool
	OutIface    string
	OutNeg      bool
	Src, Dst    netip.Prefix // zero: any
	SrcNeg      bool
	DstNeg      bool
	DPorts      []portRange
	DPortNeg    bool
	ICMPType    string
	ICMPNeg     bool
	CtStates    []string
	CtNeg       bool
	Matches     []string // -m modules
	Target      string
	Undecidable bool // has a condition that cannot be judged statically
}

type portRange struct{ lo, hi uint16 }

func (p portRange) has(port uint16) bool { return port >= p.lo && port <= p.hi }

// table returns the named table or nil.
func (rs *IptRuleset) table(name string) *IptTable {
	if rs == nil {
		return nil
	}
	for _, t := range rs.Tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (t *IptTable) chain(name string) *IptChain {
	if t == nil {
		return nil
	}
	for _, c := range t.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// ParseIptablesSave parses iptables-save / ip6tables-save output.
func ParseIptablesSave(b []byte) (*IptRuleset, error) {
	rs := &IptRuleset{}
	var cur *IptTable
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '*':
			cur = &IptTable{Name: line[1:]}
			rs.Tables = append(rs.Tables, cur)
		case line == "COMMIT":
			cur = nil
		case line[0] == ':':
			if cur == nil {
				return nil, fmt.Errorf("iptables-save line %d: chain outside a table", n)
			}
			f := strings.Fields(line[1:])
			if len(f) < 2 {
				return nil, fmt.Errorf("iptables-save line %d: want ':CHAIN POLICY [p:b]'", n)
			}
			cur.Chains = append(cur.Chains, &IptChain{Name: f[0], Policy: f[1]})
		case strings.HasPrefix(line, "-A ") || strings.HasPrefix(line, "-I "):
			if cur == nil {
				return nil, fmt.Errorf("iptables-save line %d: rule outside a table", n)
			}
			r, err := parseIptRule(line)
			if err != nil {
				return nil, fmt.Errorf("iptables-save line %d: %w", n, err)
			}
			r.Table = cur.Name
			c := cur.chain(r.Chain)
			if c == nil {
				c = &IptChain{Name: r.Chain, Policy: "-"}
				cur.Chains = append(cur.Chains, c)
			}
			c.Rules = append(c.Rules, r)
		default:
			return nil, fmt.Errorf("iptables-save line %d: unexpected %q", n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read iptables-save: %w", err)
	}
	return rs, nil
}

// splitArgs splits a saved rule into words, honouring "double quotes".
func splitArgs(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			quoted = !quoted
			in = true
		case !quoted && (c == ' ' || c == '\t'):
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// neutralModules have no condition of their own beyond the options parsed below.
var neutralModules = map[string]bool{
	"udp": true, "tcp": true, "multiport": true, "icmp": true, "icmp6": true, "ipv6-icmp": true,
	"conntrack": true, "state": true, "comment": true, "addrtype": true,
}

// RateLimitModules are the iptables matches that rate-limit or cap traffic.
var rateLimitModules = map[string]bool{"limit": true, "hashlimit": true, "recent": true, "connlimit": true}

func parseIptRule(line string) (*IptRule, error) {
	args, err := splitArgs(line)
	if err != nil {
		return nil, err
	}
	r := &IptRule{Raw: line}
	neg := false
	val := func(i int) (string, error) {
		if i+1 >= len(args) {
			return "", fmt.Errorf("option %s needs a value", args[i])
		}
		return args[i+1], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "!" {
			neg = true
			continue
		}
		if r.Target != "" {
			// What follows the target are its options (--reject-with,
			// --log-prefix ...), not conditions.
			continue
		}
		takes := true
		v, verr := val(i)
		switch a {
		case "-A", "-I":
			r.Chain = v
		case "-p", "--protocol":
			r.Proto, r.ProtoNeg = strings.ToLower(v), neg
		case "-i", "--in-interface":
			r.InIface, r.InNeg = v, neg
		case "-o", "--out-interface":
			r.OutIface, r.OutNeg = v, neg
		case "-s", "--source", "-d", "--destination":
			if v == "0.0.0.0/0" || v == "::/0" {
				break
			}
			pf, err := parsePrefixArg(v)
			if err != nil {
				r.Undecidable = true
				break
			}
			if a == "-s" || a == "--source" {
				r.Src, r.SrcNeg = pf, neg
			} else {
				r.Dst, r.DstNeg = pf, neg
			}
		case "-m", "--match":
			r.Matches = append(r.Matches, v)
			if !neutralModules[v] {
				r.Undecidable = true
			}
		case "-j", "--jump", "-g", "--goto":
			r.Target = v
		case "--dport", "--destination-port", "--dports", "--destination-ports":
			pr, err := parsePortList(v)
			if err != nil {
				return nil, err
			}
			r.DPorts, r.DPortNeg = pr, neg
		case "--icmp-type", "--icmpv6-type":
			r.ICMPType, r.ICMPNeg = v, neg
		case "--ctstate", "--state":
			r.CtStates, r.CtNeg = strings.Split(strings.ToUpper(v), ","), neg
		case "--comment":
		case "--dst-type":
			if v != "LOCAL" || neg {
				r.Undecidable = true
			}
		case "--syn":
			takes = false
			if neg {
				r.Undecidable = true
			}
		case "-f", "--fragment":
			takes = false
			r.Undecidable = true
		default:
			if !strings.HasPrefix(a, "-") {
				return nil, fmt.Errorf("unexpected word %q", a)
			}
			// An option of a module: its values follow until the next option.
			r.Undecidable = true
			takes = false
			for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && args[i+1] != "!" {
				i++
			}
		}
		if takes {
			if verr != nil {
				return nil, verr
			}
			i++
		}
		neg = false
	}
	if r.Chain == "" {
		return nil, fmt.Errorf("rule %q names no chain", line)
	}
	return r, nil
}

// parsePrefixArg parses an iptables address: "198.19.2.0/24" or "198.19.2.10".
func parsePrefixArg(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parsePortList parses "4500", "10000:10100", "53,500,10000:10100".
func parsePortList(s string) ([]portRange, error) {
	var out []portRange
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		pl, err := parsePortOr(lo, 0)
		if err != nil {
			return nil, err
		}
		ph := pl
		if isRange {
			if ph, err = parsePortOr(hi, 65535); err != nil {
				return nil, err
			}
		}
		out = append(out, portRange{pl, ph})
	}
	return out, nil
}

func parsePortOr(s string, def uint16) (uint16, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %q: want 0-65535", s)
	}
	return uint16(n), nil
}

// IsRateLimit reports whether the rule uses a rate-limiting match.
func (r *IptRule) IsRateLimit() bool {
	for _, m := range r.Matches {
		if rateLimitModules[m] {
			return true
		}
	}
	return false
}

// protoCovers reports whether the rule's protocol condition can match proto.
func (r *IptRule) protoCovers(proto string) bool {
	p := normProto(r.Proto)
	if p == "" || p == "all" {
		return true
	}
	return (p == proto) != r.ProtoNeg
}

// match judges the rule against a packet.
func (r *IptRule) match(p Packet) tri {
	res := yes
	if rp := normProto(r.Proto); rp != "" && rp != "all" {
		res = res.and(boolTri((rp == p.Proto) != r.ProtoNeg))
	}
	if r.InIface != "" {
		res = res.and(ifaceMatch(r.InIface, p.InIface, "+").neg(r.InNeg))
	}
	if r.OutIface != "" {
		res = res.and(ifaceMatch(r.OutIface, p.OutIface, "+").neg(r.OutNeg))
	}
	if r.Src.IsValid() {
		res = res.and(prefixMatch(r.Src, p.Src).neg(r.SrcNeg))
	}
	if r.Dst.IsValid() {
		res = res.and(prefixMatch(r.Dst, p.Dst).neg(r.DstNeg))
	}
	if len(r.DPorts) > 0 {
		if p.Proto != "udp" && p.Proto != "tcp" {
			res = res.and(no)
		} else {
			in := false
			for _, pr := range r.DPorts {
				in = in || pr.has(p.DPort)
			}
			res = res.and(boolTri(in != r.DPortNeg))
		}
	}
	if r.ICMPType != "" {
		if p.Proto != "icmp" {
			res = res.and(no)
		} else {
			t := r.ICMPType
			m := t == "any" || t == "echo-request" || t == "8" || strings.HasPrefix(t, "8/")
			res = res.and(boolTri(m != r.ICMPNeg))
		}
	}
	if len(r.CtStates) > 0 {
		in := false
		for _, s := range r.CtStates {
			in = in || s == "NEW"
		}
		res = res.and(boolTri(in != r.CtNeg))
	}
	if r.Undecidable {
		res = res.and(maybe)
	}
	return res
}
