package precheck

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseOSRelease(t *testing.T) {
	got := ParseOSRelease([]byte("# c\nID=ubuntu\nVERSION_ID=\"18.04\"\nNAME='Ubuntu'\nX=\"a \\\"q\\\" b\"\nbad line\n\n"))
	want := map[string]string{"ID": "ubuntu", "VERSION_ID": "18.04", "NAME": "Ubuntu", "X": `a "q" b`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestParseReleaseFile(t *testing.T) {
	for in, want := range map[string]string{
		"CentOS Linux release 7.6.1810 (Core)\n":              "7.6.1810",
		"Red Hat Enterprise Linux Server release 7.5 (Maipo)": "7.5",
		"Anolis OS release 8.8":                               "8.8",
	} {
		v, ok := ParseReleaseFile([]byte(in))
		if !ok || verString(v, "") != want {
			t.Errorf("%q: %v %v; want %s", in, v, ok, want)
		}
	}
}

func TestParseKernel(t *testing.T) {
	k, err := ParseKernel("3.10.0-957.21.3.el7.x86_64\n")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Kernel{Version: Version{3, 10, 0}, Release: Version{957, 21, 3}, Raw: "3.10.0-957.21.3.el7.x86_64"}, k); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	k, _ = ParseKernel("4.15.0-213-generic")
	if k.Version.Compare(Version{4, 15}) != 0 || k.Release.Compare(Version{213}) != 0 {
		t.Fatalf("4.15.0-213-generic: %+v", k)
	}
}

func TestParseProcNet(t *testing.T) {
	in := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0B0012C6:1194 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0
   1: 0100007F:0016 010012C6:D5C2 01 00000000:00000000 00:00000000 00000000  1000        0 77 1 0
`
	got, err := ParseProcNet([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{Local: netip.MustParseAddrPort("198.18.0.11:4500"), Remote: netip.MustParseAddrPort("0.0.0.0:0"), State: stateClose, Inode: 4242},
		{Local: netip.MustParseAddrPort("127.0.0.1:22"), Remote: netip.MustParseAddrPort("198.18.0.1:54722"), State: stateEstablished, UID: 1000, Inode: 77},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	in6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0
   1: 0000000000000000FFFF00000B0012C6:1194 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 6 1 0
   2: 000080FE00000000FF3E1602563412FE:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1 0
`
	got, err = ParseProcNet([]byte(in6))
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []string{"[::]:22", "198.18.0.11:4500", "[fe80::216:3eff:fe12:3456]:22"} {
		if got[i].Local.String() != w {
			t.Errorf("line %d: %s; want %s", i, got[i].Local, w)
		}
	}
	if _, err := ParseProcNet([]byte("hdr\n 0: zz:1 00000000:0000 07 a b c d e f\n")); err == nil {
		t.Error("bad address accepted")
	}
}

func TestParseRoutes(t *testing.T) {
	in := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth1\t00000000\t010012C6\t0003\t0\t0\t200\t00000000\t0\t0\t0\n" +
		"eth0\t00000000\t010012C6\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"eth0\t000012C6\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
	rs, err := ParseRoutes([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if rs[2].Dst != netip.MustParsePrefix("198.18.0.0/24") {
		t.Errorf("dst %s", rs[2].Dst)
	}
	d, ok := DefaultRoute(rs)
	if !ok || d.Iface != "eth0" || d.Gateway != netip.MustParseAddr("198.18.0.1") {
		t.Fatalf("default route %+v %v; want eth0 via 198.18.0.1 (lowest metric)", d, ok)
	}
}

func TestParseIptablesSave(t *testing.T) {
	in := `*filter
:INPUT DROP [0:0]
:MINE - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT ! -p tcp -m comment --comment "a \"quoted\" comment" -j MINE
-A MINE -p udp -m multiport --dports 53,10000:10100 -m conntrack --ctstate NEW -j REJECT --reject-with icmp-port-unreachable
COMMIT
`
	rs, err := ParseIptablesSave([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	f := rs.table("filter")
	if c := f.chain("INPUT"); c == nil || c.Policy != "DROP" || len(c.Rules) != 2 {
		t.Fatalf("INPUT: %+v", c)
	}
	r := f.chain("MINE").Rules[0]
	if r.Proto != "udp" || len(r.DPorts) != 2 || r.DPorts[1] != (portRange{10000, 10100}) || r.Target != "REJECT" || r.Undecidable {
		t.Fatalf("MINE rule: %+v", r)
	}
	if r2 := f.chain("INPUT").Rules[1]; !r2.ProtoNeg || r2.Target != "MINE" {
		t.Fatalf("negated rule: %+v", r2)
	}
	for _, tc := range []struct {
		p    Packet
		want bool
	}{
		{Packet{Proto: "udp", DPort: 10050, InIface: "eth0"}, true},
		{Packet{Proto: "udp", DPort: 4500, InIface: "eth0"}, true}, // policy DROP
		{Packet{Proto: "udp", DPort: 4500, InIface: "lo"}, false},
	} {
		if v := rs.EvalInput(tc.p, "iptables"); v.Blocked != tc.want {
			t.Errorf("%+v: blocked %v (%s); want %v", tc.p, v.Blocked, v.Rule, tc.want)
		}
	}
	if _, err := ParseIptablesSave([]byte("-A INPUT -j DROP\n")); err == nil {
		t.Error("rule outside a table accepted")
	}
}

func TestParseNftJSON(t *testing.T) {
	b, err := loadFixture(t, "rocky9-firewalled").Read(fileNft)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ParseNftJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Chains) != 2 || len(rs.Rules) != 5 || rs.Chains[0].Policy != "drop" || rs.Chains[0].Prio != 10 {
		t.Fatalf("parsed %d chains %d rules: %+v", len(rs.Chains), len(rs.Rules), rs.Chains[0])
	}
	if v := rs.EvalInput(Packet{Proto: "tcp", DPort: 22, InIface: "eth0"}, nil); v.Blocked {
		t.Fatalf("ssh blocked: %+v", v)
	}
	if v := rs.EvalInput(Packet{Proto: "udp", DPort: 4500, InIface: "eth0"}, nil); !v.Blocked || !strings.Contains(v.Rule, "policy drop") {
		t.Fatalf("udp 4500 not blocked by policy: %+v", v)
	}
	if _, err := ParseNftJSON([]byte(`{"nftables": 3}`)); err == nil {
		t.Error("bad document accepted")
	}
}

func TestParseSSHDPorts(t *testing.T) {
	if got := ParseSSHDPorts([]byte("Port 2222\nport 22022\nMatch all\nPort 1\n")); !cmp.Equal(got, []uint16{2222, 22022}) {
		t.Fatalf("got %v", got)
	}
	if got := ParseSSHDPorts(nil); !cmp.Equal(got, []uint16{22}) {
		t.Fatalf("default %v", got)
	}
}
