package precheck

import (
	"net/netip"
	"strings"
	"testing"
)

func TestEvalFirewallForwardAndOutput(t *testing.T) {
	ipt := `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan0 -o vcpe0 -d 198.19.2.0/24 -j DROP
-A OUTPUT -o wan0 -p udp --dport 4500 -j REJECT
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 198.19.1.0/24 -o vcpe0 -j SNAT --to-source 198.18.0.11
COMMIT
`
	s := NewSnapshot(map[string][]byte{fileIptables: []byte(ipt)})
	lan := netip.MustParseAddr("198.19.1.10")
	for _, c := range []struct {
		name    string
		path    Path
		p       Packet
		blocked bool
	}{
		{"LAN to the dropped prefix", PathForward, Packet{Proto: "icmp", InIface: "lan0", OutIface: "vcpe0", Src: lan, Dst: netip.MustParseAddr("198.19.2.1")}, true},
		{"LAN to another prefix", PathForward, Packet{Proto: "icmp", InIface: "lan0", OutIface: "vcpe0", Src: lan, Dst: netip.MustParseAddr("198.19.100.1")}, false},
		{"the other way", PathForward, Packet{Proto: "icmp", InIface: "vcpe0", OutIface: "lan0", Src: netip.MustParseAddr("198.19.2.1"), Dst: lan}, false},
		{"WireGuard out", PathOutput, Packet{Proto: "udp", DPort: 4500, OutIface: "wan0", Dst: netip.MustParseAddr("198.18.0.1")}, true},
		{"WireGuard out the wrong interface", PathOutput, Packet{Proto: "udp", DPort: 4500, OutIface: "eth9"}, false},
		{"input is not output", PathInput, Packet{Proto: "udp", DPort: 4500}, false},
	} {
		v, err := EvalFirewall(s, c.path, c.p)
		if err != nil {
			t.Fatal(err)
		}
		if v.Blocked != c.blocked {
			t.Errorf("%s: blocked %v (%s); want %v", c.name, v.Blocked, v.Rule, c.blocked)
		}
		if v.Blocked && !strings.HasPrefix(v.Fix, "iptables -t filter -D ") {
			t.Errorf("%s: fix %q; want the rule's deletion", c.name, v.Fix)
		}
	}
	rules, err := SourceNAT(s, Packet{OutIface: "vcpe0", Proto: "udp", Src: lan, Dst: netip.MustParseAddr("198.18.64.1")})
	if err != nil || len(rules) != 1 || rules[0].To != netip.MustParseAddr("198.18.0.11") || !strings.Contains(rules[0].Fix, "-D POSTROUTING") {
		t.Errorf("SourceNAT = %+v, %v; want the SNAT to 198.18.0.11 with its deletion", rules, err)
	}
	if rules, _ := SourceNAT(s, Packet{OutIface: "vcpe0", Proto: "udp", Src: netip.MustParseAddr("198.18.64.2")}); len(rules) != 0 {
		t.Errorf("SourceNAT of this host's own packet = %+v; want none (the rule is for the LAN)", rules)
	}
}

func TestForwardPolicyDropFixAllowsTheFlow(t *testing.T) {
	s := NewSnapshot(map[string][]byte{fileIptables: []byte("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")})
	p := Packet{Proto: "tcp", DPort: 443, InIface: "lan0", OutIface: "vcpe0", Dst: netip.MustParseAddr("198.19.2.1")}
	v, err := EvalFirewall(s, PathForward, p)
	if err != nil || !v.Blocked || v.Fix != "iptables -t filter -I FORWARD -i lan0 -o vcpe0 -d 198.19.2.1 -j ACCEPT" {
		t.Errorf("verdict %+v, %v; want blocked by the policy, fixed by an accept for the flow", v, err)
	}
}
