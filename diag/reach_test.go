package diag

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/api"
)

func TestJudgeReach(t *testing.T) {
	me := netip.MustParseAddr("198.18.0.11")
	hub := netip.MustParseAddr("198.18.0.1")
	res := api.ReachResponse{Target: me, Probes: []api.ReachProbe{
		{ReachPort: api.ReachPort{Proto: "udp", Port: 4500}, Sent: true},
		{ReachPort: api.ReachPort{Proto: "udp", Port: 10000}, Sent: true},
		{ReachPort: api.ReachPort{Proto: "udp", Port: 12345}, Sent: true},
		{ReachPort: api.ReachPort{Proto: "tcp", Port: 10000}, Error: "dial tcp4 198.18.0.11:10000: connect: connection refused"},
		{ReachPort: api.ReachPort{Proto: "tcp", Port: 10050}, Error: "i/o timeout"},
	}}
	arrived := map[api.ReachPort]arrival{{Proto: "udp", Port: 4500}: {hub, "capture"}}
	held := map[api.ReachPort]string{{Proto: "udp", Port: 4500}: "in use", {Proto: "udp", Port: 12345}: "in use"}
	local := map[netip.Addr]bool{me: true}

	r := judgeReach(res, arrived, held, nil, "wan0", local)
	want := map[string]string{"udp/4500": ReachArrived, "udp/10000": ReachNotArrived, "udp/12345": ReachNotArrived, "tcp/10000": ReachNotArrived, "tcp/10050": ReachNotArrived}
	for _, p := range r.Ports {
		if p.Status != want[p.String()] {
			t.Errorf("%s: status %s; want %s (%s)", p, p.Status, want[p.String()], p.Detail)
		}
		if p.Status == ReachNotArrived && !strings.Contains(p.Fix, "security group") {
			t.Errorf("%s: fix %q does not name what blocks it", p, p.Fix)
		}
	}
	if r.OK || r.NAT || !strings.Contains(r.Summary, "udp/10000") {
		t.Errorf("report = ok %v nat %v %q; want not ok, no NAT, udp/10000 named", r.OK, r.NAT, r.Summary)
	}
	if p, _ := r.Port("udp", 4500); p.Via != "capture" || p.From != hub {
		t.Errorf("udp/4500 = %+v; want seen by capture from the hub", p)
	}

	// Held ports without a capture are not checked, not "not arrived".
	r = judgeReach(res, arrived, held, errors.New("no WAN interface"), "", map[netip.Addr]bool{})
	if p, _ := r.Port("udp", 12345); p.Status != ReachNotChecked {
		t.Errorf("held port without capture = %s; want %s", p.Status, ReachNotChecked)
	}
	if !r.NAT || !strings.Contains(r.Summary, "NAT") {
		t.Errorf("target not local: nat=%v %q; want NAT named", r.NAT, r.Summary)
	}
}
