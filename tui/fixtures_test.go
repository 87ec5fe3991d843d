package tui

import (
	"net/netip"
	"time"

	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/precheck"
	"github.com/openvcpe/vcpe/provision"
	"github.com/openvcpe/vcpe/tui/components"
)

const (
	testController  = "https://198.18.0.1:8443"
	testFingerprint = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// report is a precheck report: everything passes except what is given.
func report(over ...precheck.Result) precheck.Report {
	rep := precheck.Report{OK: true}
	for _, c := range precheck.Catalogue() {
		r := precheck.Result{ID: c.ID, Title: c.Title, Status: precheck.Pass, Detail: "fine"}
		for _, o := range over {
			if o.ID == c.ID {
				r = o
				r.Title = c.Title
			}
		}
		if r.Status == precheck.Fail {
			rep.OK = false
		}
		rep.Checks = append(rep.Checks, r)
	}
	return rep
}

var (
	warnICMP = precheck.Result{ID: "icmp.echo", Status: precheck.Warn,
		Detail: "net.ipv4.icmp_echo_ignore_all is 1: the hub's health probes will time out",
		Fix:    "sysctl -w net.ipv4.icmp_echo_ignore_all=0"}
	failPorts = precheck.Result{ID: "ports.udp", Status: precheck.Fail,
		Detail: "UDP 4500 is bound by charon (pid 812)",
		Fix:    "systemctl disable --now strongswan"}
	skipWAN = precheck.Result{ID: "wan.internet", Status: precheck.Skip, Detail: "not checked: no controller URL given yet"}
)

func suggestions() provision.Suggestions {
	return provision.Suggestions{
		LANPrefixes:  []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")},
		WANInterface: "eth0",
	}
}

func testPlan() provision.Plan {
	return provision.Plan{
		StateDir:    "/var/lib/vcpe",
		SN:          "SN-A-0001",
		OverlayAddr: netip.MustParsePrefix("198.18.64.11/18"),
		HubEndpoint: netip.MustParseAddrPort("198.18.0.1:4500"),
		Role:        "edge",
		Advertised:  []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")},
		Routes:      []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24"), netip.MustParsePrefix("198.19.100.0/24")},
		Changes: []string{
			"write /var/lib/vcpe/state.json (0600)",
			"set net.ipv4.ip_forward = 1 (was 0)",
			"install and start vcped.service",
		},
		LANCommands: []string{
			"ip route add 198.19.2.0/24 via 198.19.1.1",
			"ip route add 198.19.100.0/24 via 198.19.1.1",
		},
		Warnings: []string{"ICMP echo is ignored: health probes will time out"},
	}
}

func probe(name, target string, rtts ...int) components.Probe {
	ap := netip.MustParseAddrPort(target)
	r := diag.Result{Protocol: "icmp", Target: ap.Addr(), Port: ap.Port(), Size: 84}
	if ap.Port() != 0 {
		r.Protocol = "udp"
	}
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for i, v := range rtts {
		s := diag.Sample{Seq: i, Sent: t0.Add(time.Duration(i) * time.Second), Size: 84}
		if v >= 0 {
			s.RTT = time.Duration(v) * 100 * time.Microsecond
			s.Received = s.Sent.Add(s.RTT)
		}
		r.Samples = append(r.Samples, s)
	}
	r.Stats = diag.Summarize(r.Samples)
	return components.Probe{Name: name, Result: r, Done: true}
}

func testProbes() []components.Probe {
	return []components.Probe{
		probe("hub", "198.18.64.1:0", 12, 11, 13, 12, 15, 12, 11, 12, 14, 12),
		probe("cloud", "198.19.100.10:12345", 21, 22, -1, 20, 25, 21, 22, 30, 21, 22),
		probe("site-b LAN", "198.19.2.1:0", -1, -1, -1, -1),
	}
}

// hostSuggestions are suggestions with the host's interfaces listed.
func hostSuggestions() provision.Suggestions {
	s := suggestions()
	s.Interfaces = []provision.Interface{
		{Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.11/24")}, DefaultRoute: true},
		{Name: "lan0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.19.1.1/24")}},
		{Name: "mgmt0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.200.5/24"), netip.MustParsePrefix("198.18.201.5/24")}},
	}
	return s
}

// standbyQuestion is the multi-attach question for the second device of
// a pair whose active device registered with a shared gateway.
func standbyQuestion() provision.AttachQuestion {
	return provision.AttachQuestion{Instance: "site-a", Role: "standby", Slots: 2, ActiveSN: "SN-A-0001",
		PeerGateway: netip.MustParsePrefix("198.19.1.254/24"), LAN: []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")},
		Given: provision.Registration{LANTargets: []netip.Addr{netip.MustParseAddr("198.19.1.10")}}}
}

func testLockout() provision.LockoutError {
	return provision.LockoutError{Route: netip.MustParsePrefix("198.18.0.0/16"),
		Protected: provision.Protected{Addr: netip.MustParseAddr("198.18.0.5"), What: "the SSH client (SSH_CONNECTION)"}}
}
