package precheck

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// NftRuleset is the parsed output of `nft -j list ruleset`.
type NftRuleset struct {
	Tables []NftTable
	Chains []*NftChain
	Rules  []*NftRule
}

// NftTable is a table of the ruleset.
type NftTable struct{ Family, Name string }

// NftChain is a chain; Hook is empty for a regular (non-base) chain.
type NftChain struct {
	Family, Table, Name string
	Type, Hook, Policy  string
	Prio                int
}

// NftRule is a rule with its expressions kept raw and its verdict pulled out.
type NftRule struct {
	Family, Table, Chain string
	Handle               int
	Expr                 []map[string]json.RawMessage
	Verdict              string // accept, drop, reject, return, jump, goto, or empty
	Target               string // jump/goto target
}

// ParseNftJSON parses `nft -j list ruleset`.
func ParseNftJSON(b []byte) (*NftRuleset, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse nft ruleset: %w", err)
	}
	rs := &NftRuleset{}
	for _, obj := range doc.Nftables {
		if raw, ok := obj["table"]; ok {
			var t struct{ Family, Name string }
			if err := json.Unmarshal(raw, &t); err != nil {
				return nil, fmt.Errorf("parse nft table: %w", err)
			}
			rs.Tables = append(rs.Tables, NftTable{t.Family, t.Name})
		}
		if raw, ok := obj["chain"]; ok {
			var c struct {
				Family, Table, Name, Type, Hook, Policy string
				Prio                                    json.RawMessage
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				return nil, fmt.Errorf("parse nft chain: %w", err)
			}
			prio, _ := strconv.Atoi(string(c.Prio))
			rs.Chains = append(rs.Chains, &NftChain{c.Family, c.Table, c.Name, c.Type, c.Hook, c.Policy, prio})
		}
		if raw, ok := obj["rule"]; ok {
			var r struct {
				Family, Table, Chain string
				Handle               int
				Expr                 []map[string]json.RawMessage
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return nil, fmt.Errorf("parse nft rule: %w", err)
			}
			rule := &NftRule{Family: r.Family, Table: r.Table, Chain: r.Chain, Handle: r.Handle, Expr: r.Expr}
			for _, e := range r.Expr {
				for k, v := range e {
					switch k {
					case "accept", "drop", "reject", "return":
						rule.Verdict = k
					case "jump", "goto":
						var t struct{ Target string }
						if json.Unmarshal(v, &t) == nil {
							rule.Verdict, rule.Target = k, t.Target
						}
					}
				}
			}
			rs.Rules = append(rs.Rules, rule)
		}
	}
	return rs, nil
}

func (rs *NftRuleset) chain(family, table, name string) *NftChain {
	for _, c := range rs.Chains {
		if c.Family == family && c.Table == table && c.Name == name {
			return c
		}
	}
	return nil
}

func (rs *NftRuleset) rulesOf(c *NftChain) []*NftRule {
	var out []*NftRule
	for _, r := range rs.Rules {
		if r.Family == c.Family && r.Table == c.Table && r.Chain == c.Name {
			out = append(out, r)
		}
	}
	return out
}

// nftMatch is a "match" expression.
type nftMatch struct {
	Op    string          `json:"op"`
	Left  json.RawMessage `json:"left"`
	Right json.RawMessage `json:"right"`
}

type nftLeft struct {
	Payload *struct{ Protocol, Field string } `json:"payload"`
	Meta    *struct{ Key string }             `json:"meta"`
	Ct      *struct{ Key string }             `json:"ct"`
}

// neutralNft are statements that neither match nor decide.
var neutralNft = map[string]bool{"counter": true, "log": true, "mangle": true, "notrack": true, "comment": true}

// rateNft are the rate-limiting statements.
var rateNft = map[string]bool{"limit": true, "ct count": true, "quota": true, "meter": true}

func (r *NftRule) match(p Packet) tri {
	res := yes
	for _, e := range r.Expr {
		for k, v := range e {
			switch {
			case k == "match":
				var m nftMatch
				if json.Unmarshal(v, &m) != nil {
					res = res.and(maybe)
					continue
				}
				res = res.and(m.eval(p))
			case neutralNft[k], k == "accept", k == "drop", k == "reject", k == "return", k == "jump", k == "goto":
			default:
				res = res.and(maybe)
			}
		}
	}
	return res
}

func (m nftMatch) eval(p Packet) tri {
	var l nftLeft
	if json.Unmarshal(m.Left, &l) != nil {
		return maybe
	}
	var t tri
	switch {
	case l.Payload != nil:
		pl := l.Payload
		switch {
		case (pl.Protocol == "udp" || pl.Protocol == "tcp" || pl.Protocol == "th") && pl.Field == "dport":
			if p.Proto != "udp" && p.Proto != "tcp" || (pl.Protocol != "th" && pl.Protocol != p.Proto) {
				return no
			}
			t = m.cmp(func(v any) bool { return numEq(v, int(p.DPort)) }, func(lo, hi int) bool { return int(p.DPort) >= lo && int(p.DPort) <= hi })
		case pl.Protocol == "icmp" && pl.Field == "type":
			if p.Proto != "icmp" {
				return no
			}
			t = m.cmp(func(v any) bool { return v == "echo-request" || numEq(v, 8) }, func(lo, hi int) bool { return 8 >= lo && 8 <= hi })
		case pl.Protocol == "ip" && pl.Field == "protocol":
			t = m.cmp(protoEq(p.Proto), nil)
		case pl.Protocol == "ip" && (pl.Field == "saddr" || pl.Field == "daddr"):
			a := p.Src
			if pl.Field == "daddr" {
				a = p.Dst
			}
			if !a.IsValid() {
				return maybe
			}
			t = m.cmp(func(v any) bool { return nftAddrHas(v, a) }, nil)
		default:
			return maybe
		}
	case l.Meta != nil:
		switch l.Meta.Key {
		case "l4proto":
			t = m.cmp(protoEq(p.Proto), nil)
		case "iifname":
			if p.InIface == "" {
				return maybe
			}
			t = m.cmp(func(v any) bool { s, _ := v.(string); return ifaceMatch(s, p.InIface, "*") == yes }, nil)
		case "oifname":
			if p.OutIface == "" {
				return maybe
			}
			t = m.cmp(func(v any) bool { s, _ := v.(string); return ifaceMatch(s, p.OutIface, "*") == yes }, nil)
		case "nfproto":
			t = m.cmp(func(v any) bool { return v == "ipv4" }, nil)
		case "protocol":
			t = m.cmp(func(v any) bool { return v == "ip" }, nil)
		default:
			return maybe
		}
	case l.Ct != nil && l.Ct.Key == "state":
		t = m.cmp(func(v any) bool { return v == "new" }, nil)
	default:
		return maybe
	}
	return t
}

// nftAddrHas reports whether an address value of nft's JSON ("198.19.2.10",
// "198.19.2.0/24" or {"prefix": {"addr": ..., "len": ...}}) holds a.
func nftAddrHas(v any, a netip.Addr) bool {
	switch x := v.(type) {
	case string:
		if p, err := netip.ParsePrefix(x); err == nil {
			return p.Masked().Contains(a)
		}
		b, err := netip.ParseAddr(x)
		return err == nil && b == a
	case map[string]any:
		pf, _ := x["prefix"].(map[string]any)
		addr, _ := pf["addr"].(string)
		l, _ := pf["len"].(float64)
		b, err := netip.ParseAddr(addr)
		if err != nil {
			return false
		}
		p, err := b.Prefix(int(l))
		return err == nil && p.Contains(a)
	}
	return false
}

func protoEq(proto string) func(any) bool {
	return func(v any) bool {
		switch x := v.(type) {
		case string:
			return normProto(x) == proto
		case float64:
			return normProto(strconv.Itoa(int(x))) == proto
		}
		return false
	}
}

func numEq(v any, n int) bool {
	f, ok := v.(float64)
	return ok && int(f) == n
}

// cmp evaluates the right-hand side: a value, {"set": [...]}, {"range": [a, b]}
// or a list of flags, with op ==, != or in (membership).
func (m nftMatch) cmp(eq func(any) bool, inRange func(lo, hi int) bool) tri {
	var right any
	if json.Unmarshal(m.Right, &right) != nil {
		return maybe
	}
	var hit func(v any) (bool, bool)
	hit = func(v any) (bool, bool) {
		switch x := v.(type) {
		case map[string]any:
			if set, ok := x["set"].([]any); ok {
				for _, e := range set {
					h, ok := hit(e)
					if !ok {
						return false, false
					}
					if h {
						return true, true
					}
				}
				return false, true
			}
			if _, ok := x["prefix"]; ok {
				return eq(x), true
			}
			if rg, ok := x["range"].([]any); ok && len(rg) == 2 && inRange != nil {
				lo, ok1 := rg[0].(float64)
				hi, ok2 := rg[1].(float64)
				if ok1 && ok2 {
					return inRange(int(lo), int(hi)), true
				}
			}
			return false, false
		case []any:
			return hit(map[string]any{"set": x})
		default:
			return eq(x), true
		}
	}
	h, ok := hit(right)
	if !ok {
		return maybe
	}
	if m.Op == "!=" {
		h = !h
	}
	return boolTri(h)
}

// IsRateLimit reports whether the rule rate-limits: limit, ct count, quota,
// a meter, or a set/dynset statement carrying one of those.
func (r *NftRule) IsRateLimit() bool {
	for _, e := range r.Expr {
		for k, v := range e {
			if rateNft[k] {
				return true
			}
			if k == "set" || k == "dynset" {
				s := string(v)
				if strings.Contains(s, `"limit"`) || strings.Contains(s, `"ct count"`) || strings.Contains(s, `"quota"`) {
					return true
				}
			}
		}
	}
	return false
}

// protos returns the L4 protocols the rule is restricted to (nil: any).
func (r *NftRule) protos() []string {
	var out []string
	for _, e := range r.Expr {
		raw, ok := e["match"]
		if !ok {
			continue
		}
		var m nftMatch
		var l nftLeft
		if json.Unmarshal(raw, &m) != nil || json.Unmarshal(m.Left, &l) != nil || m.Op == "!=" {
			continue
		}
		switch {
		case l.Payload != nil && l.Payload.Field != "protocol" && l.Payload.Protocol != "ip" && l.Payload.Protocol != "ip6" && l.Payload.Protocol != "th":
			out = append(out, normProto(l.Payload.Protocol))
		case l.Payload != nil && l.Payload.Protocol == "ip" && l.Payload.Field == "protocol",
			l.Meta != nil && l.Meta.Key == "l4proto":
			for _, pr := range []string{"udp", "tcp", "icmp", "icmpv6"} {
				if m.cmp(protoEq(pr), nil) == yes {
					out = append(out, pr)
				}
			}
			if len(out) == 0 {
				out = append(out, "other")
			}
		}
	}
	return out
}

// covers reports whether the rule can apply to proto.
func (r *NftRule) covers(proto string) bool {
	ps := r.protos()
	if len(ps) == 0 {
		return true
	}
	for _, p := range ps {
		if p == proto || (proto == "icmp" && p == "icmpv6") {
			return true
		}
	}
	return false
}

// FloodRules returns the rules that rate-limit traffic of proto.
func (rs *NftRuleset) FloodRules(proto string, skipTables map[string]bool) []Finding {
	if rs == nil {
		return nil
	}
	var out []Finding
	for _, r := range rs.Rules {
		if skipTables[r.Family+" "+r.Table] || !r.IsRateLimit() || !r.covers(proto) {
			continue
		}
		out = append(out, Finding{Proto: proto, Rule: "nft " + r.Text(), Reason: "rate limit", Fix: r.DeleteCmd()})
	}
	return out
}

// DeleteCmd is the command that removes the rule.
func (r *NftRule) DeleteCmd() string {
	return fmt.Sprintf("nft delete rule %s %s %s handle %d", r.Family, r.Table, r.Chain, r.Handle)
}

// Text renders the rule close to nft's own syntax, prefixed with where it is.
func (r *NftRule) Text() string {
	var parts []string
	for _, e := range r.Expr {
		for k, v := range e {
			parts = append(parts, nftStmtText(k, v))
		}
	}
	return fmt.Sprintf("table %s %s chain %s handle %d: %s", r.Family, r.Table, r.Chain, r.Handle, strings.Join(parts, " "))
}

func nftStmtText(k string, v json.RawMessage) string {
	switch k {
	case "match":
		var m nftMatch
		var l nftLeft
		if json.Unmarshal(v, &m) != nil || json.Unmarshal(m.Left, &l) != nil {
			break
		}
		left := string(m.Left)
		switch {
		case l.Payload != nil:
			left = l.Payload.Protocol + " " + l.Payload.Field
		case l.Meta != nil:
			left = "meta " + l.Meta.Key
		case l.Ct != nil:
			left = "ct " + l.Ct.Key
		}
		op := ""
		if m.Op == "!=" {
			op = "!= "
		}
		return left + " " + op + nftValueText(m.Right)
	case "limit":
		var l struct {
			Rate  float64
			Per   string
			Inv   bool
			Burst float64
		}
		if json.Unmarshal(v, &l) == nil {
			over := ""
			if l.Inv {
				over = "over "
			}
			return fmt.Sprintf("limit rate %s%g/%s", over, l.Rate, l.Per)
		}
	case "ct count":
		var c struct {
			Val float64
			Inv bool
		}
		if json.Unmarshal(v, &c) == nil {
			over := ""
			if c.Inv {
				over = "over "
			}
			return fmt.Sprintf("ct count %s%g", over, c.Val)
		}
	case "accept", "drop", "reject", "return", "counter":
		return k
	case "jump", "goto":
		var t struct{ Target string }
		if json.Unmarshal(v, &t) == nil {
			return k + " " + t.Target
		}
	}
	if string(v) == "null" {
		return k
	}
	return k + " " + string(v)
}

func nftValueText(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	var f func(any) string
	f = func(v any) string {
		switch x := v.(type) {
		case string:
			return x
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		case []any:
			var s []string
			for _, e := range x {
				s = append(s, f(e))
			}
			return "{ " + strings.Join(s, ", ") + " }"
		case map[string]any:
			if set, ok := x["set"].([]any); ok {
				return f(set)
			}
			if rg, ok := x["range"].([]any); ok && len(rg) == 2 {
				return f(rg[0]) + "-" + f(rg[1])
			}
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	return f(v)
}
