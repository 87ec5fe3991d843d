package bench

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCounters(t *testing.T) {
	c := Counters{}
	snmp, err := os.ReadFile("testdata/snmp.txt")
	if err != nil {
		t.Fatal(err)
	}
	snmp = append(snmp, []byte("Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n")...)
	if err := ParseSNMP(snmp, c); err != nil {
		t.Fatalf("ParseSNMP: %v", err)
	}
	links := `[{"ifname":"wan","stats64":{"rx":{"dropped":3},"tx":{"dropped":0}}},{"ifname":"wgab","stats64":{"rx":{"dropped":0},"tx":{"dropped":7}}}]`
	if err := ParseLinkStats([]byte(links), c); err != nil {
		t.Fatalf("ParseLinkStats: %v", err)
	}
	qdiscs := `[{"kind":"noqueue","dev":"wan","root":true,"drops":0},{"kind":"fq_codel","dev":"wgab","root":true,"drops":12},{"kind":"fq_codel","dev":"x","root":false,"drops":5}]`
	if err := ParseQdiscStats([]byte(qdiscs), c); err != nil {
		t.Fatalf("ParseQdiscStats: %v", err)
	}
	if err := ParseSoftnet([]byte("00744df5 0000000a 00000000\n00784260 00000001 00000000\n"), c); err != nil {
		t.Fatalf("ParseSoftnet: %v", err)
	}
	want := Counters{
		"udp NoPorts": 0, "udp InErrors": 0, "udp RcvbufErrors": 0, "udp SndbufErrors": 0, "udp MemErrors": 0,
		"wan rx_dropped": 3, "wan tx_dropped": 0, "wgab rx_dropped": 0, "wgab tx_dropped": 7,
		"qdisc wgab drops": 12, "host backlog drops": 11,
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	before := Counters{"wan rx_dropped": 1, "qdisc wgab drops": 12}
	if diff := cmp.Diff(Counters{"wan rx_dropped": 2, "wgab tx_dropped": 7, "host backlog drops": 11}, c.Delta(before)); diff != "" {
		t.Errorf("Delta (-want +got):\n%s", diff)
	}
}

func TestParseCountersErrors(t *testing.T) {
	for name, f := range map[string]func() error{
		"snmp without udp":    func() error { return ParseSNMP([]byte("Ip: a b\nIp: 1 2\n"), Counters{}) },
		"snmp short udp line": func() error { return ParseSNMP([]byte("Udp: NoPorts InErrors\nUdp: 1\n"), Counters{}) },
		"links not json":      func() error { return ParseLinkStats([]byte("1: lo"), Counters{}) },
		"qdiscs not json":     func() error { return ParseQdiscStats([]byte("qdisc noqueue"), Counters{}) },
		"softnet not hex":     func() error { return ParseSoftnet([]byte("0 zz\n"), Counters{}) },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: nil error; want one", name)
		}
	}
}

func TestParseSocketDrops(t *testing.T) {
	ss := []byte("UNCONN 0      0      0.0.0.0:4500 0.0.0.0:*\n\t skmem:(r0,rb14680064,t0,tb14680064,f0,w0,o0,bl0,d17)\n" +
		"UNCONN 0      0      [::]:4500 *:*\n\t skmem:(r0,rb14680064,t0,tb14680064,f0,w0,o0,bl0,d3)\n" +
		"ESTAB 0      0      198.18.64.12:5201 198.18.64.11:4500\n\t skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d1000)\n")
	c := Counters{}
	if err := ParseSocketDrops(ss, 4500, c); err != nil {
		t.Fatal(err)
	}
	if got := c["udp :4500 drops"]; got != 20 {
		t.Errorf("udp :4500 drops = %d; want 20 (the peer port of the third socket is not its own)", got)
	}
	if err := ParseSocketDrops([]byte("UNCONN 0 0 0.0.0.0:4500 0.0.0.0:* skmem:(r0,dX)"), 4500, Counters{}); err == nil {
		t.Error("a bad drop count parsed")
	}
}
