package precheck

import (
	"encoding/json"
	"net/netip"
	"strings"
)

// NATRule is a source-NAT rule a packet meets on its way out.
type NATRule struct {
	Rule       string     // as the tool prints it
	Masquerade bool       // rewrites to the outgoing interface's address
	To         netip.Addr // SNAT's address (zero for masquerade or one not given as an address)
	ToText     string     // SNAT's target as written
	Fix        string     // the command that removes the rule
}

// SourceNAT lists the source-NAT rules (SNAT, MASQUERADE; nft snat,
// masquerade) of the postrouting hook that packet p certainly matches, in
// the order the kernel meets them: iptables first, then the nft ruleset.
func SourceNAT(s *Snapshot, p Packet) ([]NATRule, error) {
	fw := loadFirewall(s)
	if !fw.known() {
		return nil, errNoFirewall(fw)
	}
	var out []NATRule
	if t := fw.ipt.table("nat"); t != nil {
		if c := t.chain("POSTROUTING"); c != nil {
			for _, r := range c.Rules {
				if (r.Target != "SNAT" && r.Target != "MASQUERADE") || r.match(p) != yes {
					continue
				}
				n := NATRule{Rule: iptRuleText("iptables", r), Masquerade: r.Target == "MASQUERADE", Fix: iptDeleteCmd("iptables", r)}
				if _, after, ok := strings.Cut(r.Raw, "--to-source "); ok {
					n.ToText = strings.Fields(after)[0]
					n.To, _ = netip.ParseAddr(strings.Split(n.ToText, ":")[0])
				}
				out = append(out, n)
			}
		}
	}
	if fw.nft != nil {
		for _, c := range fw.nft.Chains {
			if c.Type != "nat" || c.Hook != "postrouting" || (c.Family != "ip" && c.Family != "inet") || fw.skip[c.Family+" "+c.Table] {
				continue
			}
			for _, r := range fw.nft.rulesOf(c) {
				n, ok := nftSourceNAT(r, p)
				if ok {
					out = append(out, n)
				}
			}
		}
	}
	return out, nil
}

// nftSourceNAT: r is a snat or masquerade rule whose matches p passes.
func nftSourceNAT(r *NftRule, p Packet) (NATRule, bool) {
	n := NATRule{Rule: "nft " + r.Text(), Fix: r.DeleteCmd()}
	nat := false
	res := yes
	for _, e := range r.Expr {
		for k, v := range e {
			switch k {
			case "match":
				var m nftMatch
				if json.Unmarshal(v, &m) != nil {
					res = res.and(maybe)
					continue
				}
				res = res.and(m.eval(p))
			case "masquerade":
				nat, n.Masquerade = true, true
			case "snat":
				nat = true
				var x struct {
					Addr any `json:"addr"`
				}
				_ = json.Unmarshal(v, &x)
				if s, ok := x.Addr.(string); ok {
					n.ToText = s
					n.To, _ = netip.ParseAddr(s)
				}
			case "counter", "log", "comment":
			default:
				res = res.and(maybe)
			}
		}
	}
	return n, nat && res == yes
}
