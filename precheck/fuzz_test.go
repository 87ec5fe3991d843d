package precheck

import (
	"os"
	"path/filepath"
	"testing"
)

// seedFiles adds every fixture's copy of a snapshot file to the corpus.
func seedFiles(f *testing.F, rel string) {
	paths, _ := filepath.Glob(filepath.Join("..", "testdata", "snapshots", "*", filepath.FromSlash(rel)))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzParseOSRelease(f *testing.F) {
	seedFiles(f, fileOSRelease)
	f.Add([]byte("ID=\"a\\\nVERSION_ID='7.6'\n=x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kv := ParseOSRelease(b)
		for k := range kv {
			if k == "" {
				t.Fatal("empty key")
			}
		}
		if v, ok := ParseVersion(kv["VERSION_ID"]); ok && len(v) == 0 {
			t.Fatal("ok with no components")
		}
		ParseReleaseFile(b)
	})
}

func FuzzParseKernel(f *testing.F) {
	for _, s := range []string{"3.10.0-957.21.3.el7.x86_64", "4.15.0-213-generic", "6.8.0", "3.10", "x", "3.10.0-9999999999999999999.el7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKernel(s)
		if err != nil {
			return
		}
		if len(k.Version) != 3 {
			t.Fatalf("%q: version %v", s, k.Version)
		}
		_ = k.Release.Compare(minEL7Kernel)
	})
}

func FuzzParseProcNet(f *testing.F) {
	for _, p := range []string{fileTCP, fileTCP6, fileUDP, fileUDP6} {
		seedFiles(f, p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		socks, err := ParseProcNet(b)
		if err != nil {
			return
		}
		for _, s := range socks {
			if !s.Local.IsValid() || !s.Remote.IsValid() {
				t.Fatalf("invalid address parsed: %+v", s)
			}
		}
	})
}

func FuzzParseRoutes(f *testing.F) {
	seedFiles(f, fileRoute)
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := ParseRoutes(b)
		if err != nil {
			return
		}
		if d, ok := DefaultRoute(rs); ok && d.Dst.Bits() != 0 {
			t.Fatalf("default route with /%d", d.Dst.Bits())
		}
	})
}

func FuzzParseIptablesSave(f *testing.F) {
	seedFiles(f, fileIptables)
	seedFiles(f, fileIp6tables)
	f.Add([]byte("*filter\n:INPUT DROP [0:0]\n:X - [0:0]\n-A INPUT -j X\n-A X -j INPUT\n-A X ! -p udp --dport 1:2 -j DROP\nCOMMIT\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := ParseIptablesSave(b)
		if err != nil {
			return
		}
		for _, tb := range rs.Tables {
			for _, c := range tb.Chains {
				for _, r := range c.Rules {
					if r.Chain == "" {
						t.Fatal("rule without chain")
					}
				}
			}
		}
		// Evaluation must terminate (loops between chains) and not panic.
		rs.EvalInput(Packet{Proto: "udp", DPort: 4500, InIface: "eth0"}, "iptables")
		rs.EvalInput(Packet{Proto: "icmp", ICMPType: "echo-request"}, "iptables")
		rs.FloodRules("udp", "iptables")
	})
}

func FuzzParseNftJSON(f *testing.F) {
	seedFiles(f, fileNft)
	f.Add([]byte(`{"nftables":[{"chain":{"family":"ip","table":"t","name":"c","hook":"input","policy":"drop"}},{"rule":{"family":"ip","table":"t","chain":"c","expr":[{"jump":{"target":"c"}}]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := ParseNftJSON(b)
		if err != nil {
			return
		}
		rs.EvalInput(Packet{Proto: "udp", DPort: 4500, InIface: "eth0"}, nil)
		rs.EvalInput(Packet{Proto: "icmp", ICMPType: "echo-request"}, nil)
		rs.FloodRules("udp", nil)
		for _, r := range rs.Rules {
			_ = r.Text()
		}
	})
}
