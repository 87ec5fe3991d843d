package suite

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
)

var (
	t0         = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	hubWAN     = netip.MustParseAddr("198.18.0.1")
	hubOverlay = netip.MustParseAddr("198.18.64.1")
	lanA       = netip.MustParsePrefix("198.19.1.0/24")
	lanB       = netip.MustParsePrefix("198.19.2.0/24")
	cloud      = netip.MustParsePrefix("198.19.100.0/24")
)

// series makes a probe result: one sample per rtt in ms, negative = lost.
func series(proto string, target netip.Addr, rtts ...float64) diag.Result {
	r := diag.Result{Protocol: proto, Target: target}
	if proto == "udp" {
		r.Port = diag.ReflectorPort
	}
	for i, ms := range rtts {
		s := diag.Sample{Seq: i, Sent: t0.Add(time.Duration(i) * 50 * time.Millisecond), Size: 84}
		if ms >= 0 {
			s.RTT = time.Duration(ms * float64(time.Millisecond))
			s.Received = s.Sent.Add(s.RTT)
		}
		r.Samples = append(r.Samples, s)
	}
	r.Stats = diag.Summarize(r.Samples)
	return r
}

func good(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = 1 + float64(i%3)*0.1
	}
	return v
}

func lossy(n, lostPct int) []float64 {
	v := good(n)
	for i := range v {
		if i*100/n < lostPct {
			v[i] = -1
		}
	}
	return v
}

// healthy is a device in the default lab with everything working.
func healthy() Evidence {
	cfg := api.DeviceConfig{
		Generation: 3, SN: "SN-A", InstanceName: "site-a", CCN: "corp",
		OverlayAddr: netip.MustParsePrefix("198.18.64.11/18"), HubOverlayAddr: hubOverlay,
		HubEndpoint: netip.AddrPortFrom(hubWAN, 4500), Routes: []netip.Prefix{lanB, cloud}, Advertised: []netip.Prefix{lanA},
	}
	st := &device.State{Version: 1, Controller: "https://198.18.0.1:8443", SN: "SN-A", Credential: "secret", Advertise: []netip.Prefix{lanA}, Config: cfg}
	status := &dataplane.Status{Role: "edge", State: dataplane.StateUp, Interface: "vcpe0", ListenPort: 4500,
		Routes: []netip.Prefix{lanB, cloud},
		Peers:  []dataplane.PeerStatus{{Name: "hub", Endpoint: "198.18.0.1:4500", LastHandshake: t0.Add(-30 * time.Second)}},
		Source: "daemon", Time: t0}
	c := cfg
	return Evidence{
		Time: t0, StateDir: "/var/lib/vcpe", State: st, Status: status, Config: &c,
		Precheck: &precheck.Report{OK: true, Checks: []precheck.Result{
			{ID: "ip.forward", Status: precheck.Pass, Title: "IPv4 forwarding", Detail: "IPv4 forwarding is on"},
			{ID: "ports.udp", Status: precheck.Pass, Title: "Required UDP ports free and unfiltered"},
			{ID: "flood.udp", Status: precheck.Pass, Title: "No UDP flood protection"},
		}},
		Controller: &Dial{Addr: netip.MustParseAddrPort("198.18.0.1:8443"), OK: true},
		Host: &Host{TUN: "vcpe0", TUNPresent: true, TUNUp: true, TUNMTU: 1420,
			Routes: []netip.Prefix{lanB, cloud, netip.MustParsePrefix("198.18.64.0/18")},
			Addresses: []IfAddr{{"wan0", netip.MustParsePrefix("198.18.0.11/24")}, {"lan0", netip.MustParsePrefix("198.19.1.1/24")},
				{"vcpe0", netip.MustParsePrefix("198.18.64.11/18")}, {"lo", netip.MustParsePrefix("127.0.0.1/8")}},
			WAN: "wan0",
			Links: []Link{{Name: "lo", Up: true, Carrier: true, MTU: 65536}, {Name: "wan0", Up: true, Carrier: true, MTU: 1500, Kind: "veth"},
				{Name: "lan0", Up: true, Carrier: true, MTU: 1500, Kind: "veth"}, {Name: "vcpe0", Up: true, Carrier: true, MTU: 1420, Kind: "tun"}},
			Lookups: []Lookup{
				{Prefix: lanA, To: netip.MustParseAddr("198.19.1.254"), Advertised: true, Dev: "lan0", Type: "unicast", Table: 254, Route: lanA},
				{Prefix: lanB, To: netip.MustParseAddr("198.19.2.1"), Dev: "vcpe0", Type: "unicast", Table: 254, Route: lanB},
				{Prefix: lanB, To: netip.MustParseAddr("198.19.2.1"), From: netip.MustParseAddr("198.19.1.254"), IIf: "lan0", Dev: "vcpe0", Type: "unicast", Table: 254, Route: lanB},
				{Prefix: cloud, To: netip.MustParseAddr("198.19.100.1"), Dev: "vcpe0", Type: "unicast", Table: 254, Route: cloud},
				{Prefix: cloud, To: netip.MustParseAddr("198.19.100.1"), From: netip.MustParseAddr("198.19.1.254"), IIf: "lan0", Dev: "vcpe0", Type: "unicast", Table: 254, Route: cloud},
			},
			Sysctls: map[string]int{"net.ipv4.conf.all.rp_filter": 0, "net.netfilter.nf_conntrack_count": 12, "net.netfilter.nf_conntrack_max": 262144}},
		Snapshot: precheck.NewSnapshot(map[string][]byte{"cmd/nft-ruleset.json": []byte(`{"nftables":[{"metainfo":{"version":"1.0.6"}}]}`)}),
		Probes: map[string]diag.Result{
			ProbeWANICMP:      series("icmp", hubWAN, good(20)...),
			ProbeWANReflector: series("udp", hubWAN, good(20)...),
			ProbeTunnelHub:    series("udp", hubOverlay, good(20)...),
		},
		MTU: &diag.MTUResult{Protocol: "udp", Target: hubOverlay, MTU: 1420, RouteMTU: 1420, Verdict: diag.MTUFull},
	}
}

// nftSnapshot is a host snapshot whose nft ruleset holds table t (and
// ip nat) with the given chain and rule objects.
func nftSnapshot(objs ...string) *precheck.Snapshot {
	doc := `{"nftables":[{"metainfo":{"version":"1.0.6"}},{"table":{"family":"inet","name":"t","handle":1}},{"table":{"family":"ip","name":"nat","handle":2}},` + strings.Join(objs, ",") + `]}`
	return precheck.NewSnapshot(map[string][]byte{"cmd/nft-ruleset.json": []byte(doc)})
}

func find(fs []Finding, id FindingID) (Finding, bool) {
	i := slices.IndexFunc(fs, func(f Finding) bool { return f.ID == id })
	if i < 0 {
		return Finding{}, false
	}
	return fs[i], true
}

func ids(fs []Finding) string {
	var s []string
	for _, f := range fs {
		s = append(s, string(f.ID)+"="+string(f.Severity))
	}
	return strings.Join(s, " ")
}

func TestHealthyDeviceHasNoProblem(t *testing.T) {
	fs := Diagnose(healthy())
	for _, f := range fs {
		if f.Severity != SevOK {
			t.Errorf("%s is %s on a healthy device: %s %v", f.ID, f.Severity, f.Title, f.Evidence)
		}
	}
	for _, id := range []FindingID{"device.state", "registration.valid", "daemon.running", "tun.present", "ip.forward",
		"routes.match", "ccn.attached", "prefix.overlap", "wan.reachable", "controller.reachable", "tunnel.handshake",
		"tunnel.hub", "wan.loss", "wan.latency", "wan.jitter", "tunnel.mtu", "hub.udp4500", "targets.unprobed"} {
		if _, ok := find(fs, id); !ok {
			t.Errorf("healthy device: no %s finding; got %s", id, ids(fs))
		}
	}
	if Failed(fs) {
		t.Error("Failed() on a healthy device")
	}
}

// ruleCase plants one fault in healthy().
type ruleCase struct {
	name    string
	plant   func(e *Evidence)
	top     FindingID
	sev     Severity
	fix     string      // substring of the top finding's fix
	symptom []FindingID // findings that must name top as a cause
}

// ruleCases are the planted faults of TestRules (and the corpus of
// TestCausesAreEmitted).
func ruleCases() []ruleCase {
	deadTunnel := func(e *Evidence) {
		e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 100)...)
	}
	return []ruleCase{
		{"no state", func(e *Evidence) {
			*e = Evidence{Time: t0, StateError: "read /var/lib/vcpe/device.json: no device state", StatusError: "connect: no such file", Precheck: e.Precheck}
		}, "device.state", SevError, "vcpe install", nil},
		{"revoked", func(e *Evidence) {
			e.Config, e.ConfigError = nil, &api.Error{Code: api.CodeRevoked, Message: "device revoked"}
			e.Status.State = dataplane.StateRevoked
			e.Status.Peers = nil
			e.Host.Routes = nil
			deadTunnel(e)
		}, "registration.valid", SevError, "vcpe-hub device reset-key SN-A", []FindingID{"tunnel.hub", "tunnel.handshake", "tunnel.routes"}},
		{"key reset", func(e *Evidence) {
			e.Config, e.ConfigError = nil, &api.Error{Code: api.CodeKeyReset, Message: "key reset"}
		}, "registration.valid", SevError, "vcpe install", nil},
		{"daemon down", func(e *Evidence) {
			e.Status, e.StatusError = nil, "connect to control socket /var/lib/vcpe/vcped.sock: connection refused"
			e.Host.TUNPresent, e.Host.Routes = false, nil
			deadTunnel(e)
		}, "daemon.running", SevError, "systemctl start vcped", []FindingID{"tunnel.hub", "tunnel.routes"}},
		{"tun down", func(e *Evidence) { e.Host.TUNUp = false; deadTunnel(e) }, "tun.present", SevError, "ip link set vcpe0 up", []FindingID{"tunnel.hub"}},
		{"forwarding off", func(e *Evidence) {
			e.Precheck.Checks[0] = precheck.Result{ID: "ip.forward", Status: precheck.Warn, Detail: "IPv4 forwarding is off"}
		}, "ip.forward", SevError, "sysctl -w net.ipv4.ip_forward=1", nil},
		{"route deleted", func(e *Evidence) { e.Host.Routes = []netip.Prefix{cloud} }, "routes.match", SevError, "ip route replace 198.19.2.0/24 dev vcpe0 proto 118 table 51820", nil},
		{"route guarded", func(e *Evidence) {
			e.Host.Routes = []netip.Prefix{cloud}
			e.Status.DroppedRoutes = []dataplane.GuardedRoute{{Prefix: netip.MustParsePrefix("198.19.2.0/24"),
				Protected: dataplane.Protected{Addr: netip.MustParseAddr("198.19.2.7"), What: "the SSH client 198.19.2.7"}}}
		}, "routes.guard.198.19.2.0/24", SevWarning, "--deny-prefix", nil},
		{"stale route", func(e *Evidence) { e.Host.Routes = append(e.Host.Routes, netip.MustParsePrefix("198.19.9.0/24")) }, "routes.match", SevWarning, "ip route del 198.19.9.0/24 proto 118 table 51820", nil},
		{"no ccn", func(e *Evidence) {
			e.Config.CCN, e.Config.Routes = "", nil
			e.State.Config.Routes, e.Host.Routes = nil, nil
		}, "ccn.attached", SevWarning, "vcpe-hub ccn attach CCN site-a", nil},
		{"overlap", func(e *Evidence) {
			e.Host.Addresses = append(e.Host.Addresses, IfAddr{"eth9", netip.MustParsePrefix("198.19.2.5/24")})
		}, "prefix.overlap", SevError, "renumber", nil},
		{"local rule drops 4500", func(e *Evidence) {
			e.Precheck.Checks[1] = precheck.Result{ID: "ports.udp", Status: precheck.Fail, Title: "Required UDP ports free and unfiltered", Detail: "UDP 4500 dropped",
				Fix:      "nft delete rule inet f out handle 4",
				Findings: []precheck.Finding{{Proto: "udp", Port: 4500, Rule: "udp dport 4500 drop", Reason: "dropped by inet f out", Fix: "nft delete rule inet f out handle 4"}}}
			deadTunnel(e)
		}, "hub.udp4500", SevError, "nft delete rule inet f out handle 4", []FindingID{"tunnel.hub", "precheck.ports.udp"}},
		{"path blocks 4500", func(e *Evidence) {
			deadTunnel(e)
			e.Status.Peers[0].Problem = "handshake not completing with peer X: last attempt 1s ago"
		}, "hub.udp4500", SevError, "allow UDP 4500", []FindingID{"tunnel.hub", "tunnel.handshake", "tunnel.routes"}},
		{"hub down", func(e *Evidence) {
			e.Config, e.ControllerError = nil, "controller https://198.18.0.1:8443 is unreachable"
			e.Controller = &Dial{Addr: e.Controller.Addr, Refused: true, Error: "connect: connection refused"}
			e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 100)...)
			deadTunnel(e)
		}, "hub.down", SevError, "systemctl start vcpe-hub", []FindingID{"controller.reachable", "tunnel.hub", "tunnel.routes"}},
		{"wan down", func(e *Evidence) {
			e.Config, e.ControllerError = nil, "unreachable"
			e.Controller = &Dial{Addr: e.Controller.Addr, Error: "i/o timeout"}
			e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 100)...)
			e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 100)...)
			e.Status.Peers[0].LastHandshake = t0.Add(-10 * time.Minute)
			deadTunnel(e)
		}, "wan.reachable", SevError, "ip route get 198.18.0.1", []FindingID{"controller.reachable", "tunnel.handshake", "tunnel.hub", "tunnel.routes"}},
		{"wan heavy loss", func(e *Evidence) {
			e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 60)...)
			e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 55)...)
			e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 65)...)
			e.Controller = &Dial{Addr: e.Controller.Addr, Error: "i/o timeout"}
		}, "wan.loss", SevError, "mtr -n 198.18.0.1", []FindingID{"tunnel.hub", "controller.reachable"}},
		{"hub filters ICMP", func(e *Evidence) {
			e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 100)...)
		}, "hub.icmp", SevWarning, "allow ICMP echo", nil},
		{"wan light loss", func(e *Evidence) {
			e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 5)...)
			e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 5)...)
		}, "wan.loss", SevWarning, "ip -s link", nil},
		{"wan latency", func(e *Evidence) {
			e.Probes[ProbeWANICMP] = series("icmp", hubWAN, 200, 201, 200, 202, 200)
			e.Probes[ProbeWANReflector] = series("udp", hubWAN, 200, 201, 200, 202, 200)
		}, "wan.latency", SevWarning, "mtr -n", nil},
		{"wan jitter", func(e *Evidence) {
			e.Probes[ProbeWANICMP] = series("icmp", hubWAN, 10, 200, 10, 200, 10, 200, 10, 200, 10, 200)
			delete(e.Probes, ProbeWANReflector)
		}, "wan.jitter", SevWarning, "bufferbloat", nil},
		{"mtu black hole", func(e *Evidence) {
			e.MTU = &diag.MTUResult{Protocol: "udp", Target: hubOverlay, MTU: 1300, RouteMTU: 1420, Verdict: diag.MTUBlackHole, Detail: "probes above 1300 vanish"}
		}, "tunnel.mtu", SevError, "ip link set vcpe0 mtu 1300", nil},
		{"mtu small", func(e *Evidence) {
			e.MTU = &diag.MTUResult{Protocol: "udp", Target: hubOverlay, MTU: 1200, RouteMTU: 1420, Verdict: diag.MTUFragNeeded}
		}, "tunnel.mtu", SevWarning, "maxseg", nil},
		{"target lost", func(e *Evidence) {
			e.Probes[ProbeTargetPrefix+"198.19.2.10"] = series("icmp", netip.MustParseAddr("198.19.2.10"), lossy(20, 100)...)
		}, "target.198.19.2.10", SevError, "ip route get 198.19.2.10", nil},
		{"target lost behind deleted route", func(e *Evidence) {
			e.Host.Routes = []netip.Prefix{cloud}
			e.Probes[ProbeTargetPrefix+"198.19.2.10"] = series("icmp", netip.MustParseAddr("198.19.2.10"), lossy(20, 100)...)
		}, "routes.match", SevError, "ip route replace 198.19.2.0/24", []FindingID{"target.198.19.2.10"}},
		{"precheck flood", func(e *Evidence) {
			e.Precheck.Checks[2] = precheck.Result{ID: "flood.udp", Status: precheck.Warn, Title: "No UDP flood protection", Detail: "hashlimit on UDP", Fix: "nft delete rule inet f in handle 9"}
		}, "precheck.flood.udp", SevWarning, "nft delete rule inet f in handle 9", nil},
		{"LAN interface down", func(e *Evidence) {
			e.Host.Links[2].Up, e.Host.Links[2].Carrier = false, false
		}, "lan.link", SevError, "ip link set lan0 up", nil},
		{"LAN address gone", func(e *Evidence) {
			e.Host.Addresses = slices.DeleteFunc(e.Host.Addresses, func(a IfAddr) bool { return a.Interface == "lan0" })
			e.Host.Lookups[0] = Lookup{Prefix: lanA, To: netip.MustParseAddr("198.19.1.254"), Advertised: true, Dev: "wan0", Gateway: netip.MustParseAddr("198.18.0.254"), Type: "unicast", Table: 254}
		}, "lan.addr", SevError, "ip addr add 198.19.1.1/24 dev lan0", nil},
		{"TUN lost its address", func(e *Evidence) {
			e.Host.Addresses = slices.DeleteFunc(e.Host.Addresses, func(a IfAddr) bool { return a.Interface == "vcpe0" })
			deadTunnel(e)
		}, "tun.addr", SevError, "ip addr replace 198.18.64.11/18 dev vcpe0", []FindingID{"tunnel.hub"}},
		{"learned route shadowed", func(e *Evidence) {
			for i := range e.Host.Lookups {
				if e.Host.Lookups[i].Prefix == lanB {
					e.Host.Lookups[i].Dev, e.Host.Lookups[i].Gateway, e.Host.Lookups[i].Route = "wan0", netip.MustParseAddr("198.18.0.254"), netip.MustParsePrefix("198.19.2.0/25")
				}
			}
		}, "route.path", SevError, "ip route del 198.19.2.0/25", nil},
		{"learned route black-holed", func(e *Evidence) {
			for i := range e.Host.Lookups {
				if e.Host.Lookups[i].Prefix == lanB {
					e.Host.Lookups[i] = Lookup{Prefix: lanB, To: e.Host.Lookups[i].To, From: e.Host.Lookups[i].From, IIf: e.Host.Lookups[i].IIf,
						Error: "invalid argument", Type: "blackhole", Table: 254, Route: netip.MustParsePrefix("198.19.2.0/25")}
				}
			}
		}, "route.path", SevError, "ip route del blackhole 198.19.2.0/25", nil},
		{"policy rule", func(e *Evidence) {
			for i := range e.Host.Lookups {
				if e.Host.Lookups[i].Prefix == lanB && e.Host.Lookups[i].From.IsValid() {
					e.Host.Lookups[i] = Lookup{Prefix: lanB, To: e.Host.Lookups[i].To, From: e.Host.Lookups[i].From, IIf: "lan0",
						Error: "permission denied", Rule: "priority 100: from 198.19.1.0/24 to 198.19.2.0/24 prohibit", RulePriority: 100, Table: 254, Route: lanB}
				}
			}
		}, "route.path", SevError, "ip rule del priority 100", nil},
		{"forward hook drops", func(e *Evidence) {
			e.Snapshot = nftSnapshot(`{"chain":{"family":"inet","table":"t","name":"fwd","handle":1,"type":"filter","hook":"forward","prio":0,"policy":"accept"}}`,
				`{"rule":{"family":"inet","table":"t","chain":"fwd","handle":4,"expr":[{"match":{"op":"==","left":{"meta":{"key":"oifname"}},"right":"vcpe0"}},{"drop":null}]}}`)
		}, "fw.forward", SevError, "nft delete rule inet t fwd handle 4", nil},
		{"output hook drops 4500", func(e *Evidence) {
			e.Snapshot = nftSnapshot(`{"chain":{"family":"inet","table":"t","name":"out","handle":1,"type":"filter","hook":"output","prio":0,"policy":"accept"}}`,
				`{"rule":{"family":"inet","table":"t","chain":"out","handle":7,"expr":[{"match":{"op":"==","left":{"meta":{"key":"oifname"}},"right":"wan0"}},{"match":{"op":"==","left":{"payload":{"protocol":"udp","field":"dport"}},"right":4500}},{"drop":null}]}}`)
			deadTunnel(e)
			e.Status.Peers[0].Problem = "handshake not completing"
		}, "fw.output", SevError, "nft delete rule inet t out handle 7", []FindingID{"tunnel.hub", "tunnel.handshake"}},
		{"SNAT into the tunnel", func(e *Evidence) {
			e.Snapshot = nftSnapshot(`{"chain":{"family":"ip","table":"nat","name":"post","handle":1,"type":"nat","hook":"postrouting","prio":100,"policy":"accept"}}`,
				`{"rule":{"family":"ip","table":"nat","chain":"post","handle":3,"expr":[{"match":{"op":"==","left":{"meta":{"key":"oifname"}},"right":"vcpe0"}},{"snat":{"addr":"198.18.0.11"}}]}}`)
			deadTunnel(e)
		}, "nat.tunnel", SevError, "nft delete rule ip nat post handle 3", []FindingID{"tunnel.hub"}},
		{"conntrack full", func(e *Evidence) {
			e.Host.Sysctls["net.netfilter.nf_conntrack_count"] = 262144
		}, "conntrack.full", SevError, "nf_conntrack_max=524288", nil},
		{"WAN MTU black hole", func(e *Evidence) {
			e.WANMTU = &diag.MTUResult{Protocol: "udp", Target: hubWAN, MTU: 1400, RouteMTU: 1500, Verdict: diag.MTUBlackHole}
			e.MTU = &diag.MTUResult{Protocol: "udp", Target: hubOverlay, MTU: 1340, RouteMTU: 1420, Verdict: diag.MTUBlackHole}
			e.Config, e.ControllerError = nil, "TLS handshake timeout"
		}, "wan.mtu", SevError, "ip link set wan0 mtu 1400", []FindingID{"controller.reachable", "tunnel.mtu"}},
		{"controller TLS broken", func(e *Evidence) {
			e.Config, e.ControllerError = nil, "certificate is not from the pinned CA"
		}, "controller.reachable", SevError, "fingerprint", nil},
		{"secondary hub down", func(e *Evidence) {
			hubGroup(e, 0)
			e.Status.Hubs[1].State, e.Status.Hubs[1].LastReply = dataplane.HubDown, t0.Add(-time.Minute)
		}, "hub.session.hub2", SevWarning, "vcpe-hub status", nil},
		{"primary hub down, traffic on the secondary", func(e *Evidence) {
			hubGroup(e, 1)
			e.Status.Hubs[0].State, e.Status.Hubs[0].LastReply = dataplane.HubDown, t0.Add(-time.Minute)
			e.Status.Events = append(e.Status.Events, dataplane.Event{Time: t0.Add(-time.Minute), Kind: "hub", Message: "traffic moved to hub hub2",
				Detail: "from hub hub1: hub hub1: no claim reply for 650ms"})
		}, "hub.session.hub1", SevWarning, "vcpe probe udp 198.18.0.1 (outside the tunnel)", nil},
		{"primary hub degraded", func(e *Evidence) {
			hubGroup(e, 1)
			e.Status.Hubs[0].State = dataplane.HubDegraded
		}, "hub.session.hub1", SevWarning, "--cloud-target", nil},
	}
}

// hubGroup makes the healthy device a member of a two-hub group with hub
// carrying the traffic, both sessions up.
func hubGroup(e *Evidence, carrying int) {
	ends := []string{"198.18.0.1:4500", "198.18.0.2:4500"}
	over := []netip.Addr{hubOverlay, netip.MustParseAddr("198.18.127.250")}
	e.Status.Hubs = nil
	for i, name := range []string{"hub1", "hub2"} {
		e.Status.Hubs = append(e.Status.Hubs, dataplane.HubSession{Name: name, Endpoint: ends[i], OverlayAddr: over[i], Primary: i == 0,
			Carrying: i == carrying, State: dataplane.HubUp, LastReply: t0.Add(-50 * time.Millisecond), LastHandshake: t0.Add(-time.Minute),
			Link: &dataplane.LinkHealth{State: dataplane.LinkUp, Probes: 60, RTT: time.Millisecond}})
	}
}

// TestHubGroupFindings: with hub groups every hub session is a finding
// (ok when it answers claims), and traffic on the secondary is told as
// information with the switch's reason and the failback setting.
func TestHubGroupFindings(t *testing.T) {
	e := healthy()
	hubGroup(&e, 0)
	fs := Diagnose(e)
	for _, id := range []FindingID{"hub.session.hub1", "hub.session.hub2"} {
		if f, ok := find(fs, id); !ok || f.Severity != SevOK {
			t.Errorf("%s: %+v (found %v); want ok", id, f, ok)
		}
	}
	if _, ok := find(fs, FindHubSecondary); ok {
		t.Errorf("hub.secondary while the primary carries")
	}
	e = healthy()
	hubGroup(&e, 1)
	e.Status.Events = []dataplane.Event{{Time: t0.Add(-time.Minute), Kind: "hub", Message: "traffic moved to hub hub2", Detail: "from hub hub1: hub hub1: no claim reply for 650ms"}}
	fs = Diagnose(e)
	f, ok := find(fs, FindHubSecondary)
	if !ok || f.Severity != SevOK || !strings.Contains(f.Title, "secondary hub hub2") ||
		!strings.Contains(strings.Join(f.Evidence, "\n"), "no claim reply for 650ms") || !strings.Contains(strings.Join(f.Evidence, "\n"), "failback is off") {
		t.Errorf("hub.secondary: %+v (found %v)", f, ok)
	}
	// "The hub" of the other rules and of the probes is the carrying one.
	h2 := api.HubInfo{Name: "hub2", Endpoint: netip.MustParseAddrPort("198.18.0.2:4500"), OverlayAddr: netip.MustParseAddr("198.18.127.250")}
	e.Config.Hubs = []api.HubInfo{{Name: "hub1", Endpoint: e.Config.HubEndpoint, OverlayAddr: e.Config.HubOverlayAddr}, h2}
	d := &diagnosis{e: e}
	if wan, over := d.hub(); wan != h2.Endpoint.Addr() || over != h2.OverlayAddr {
		t.Errorf("hub() with hub2 carrying = %s, %s; want hub2's", wan, over)
	}
	if c := ViaCarryingHub(*e.Config, nil); c.HubEndpoint != e.Config.HubEndpoint {
		t.Errorf("without a status the config must stay as it is: %s", c.HubEndpoint)
	}
	// The carrying hub down with no other up: an error.
	e = healthy()
	hubGroup(&e, 0)
	for i := range e.Status.Hubs {
		e.Status.Hubs[i].State = dataplane.HubDown
	}
	fs = Diagnose(e)
	if f, ok := find(fs, "hub.session.hub1"); !ok || f.Severity != SevError || !strings.Contains(f.Title, "cut off") {
		t.Errorf("carrying hub down, no other: %+v", f)
	}
}

// TestRules plants one fault per case and checks the top finding (the
// root cause), its severity and fix, and which symptoms name it as cause.
func TestRules(t *testing.T) {
	for _, c := range ruleCases() {
		t.Run(c.name, func(t *testing.T) {
			e := healthy()
			c.plant(&e)
			fs := Diagnose(e)
			if len(fs) == 0 {
				t.Fatal("no findings")
			}
			top := fs[0]
			if top.ID != c.top || top.Severity != c.sev {
				t.Fatalf("top finding %s (%s): %s; want %s (%s)\nall: %s", top.ID, top.Severity, top.Title, c.top, c.sev, ids(fs))
			}
			if !top.Root() {
				t.Errorf("top finding %s has causes %v", top.ID, top.CausedBy)
			}
			if !strings.Contains(top.Fix, c.fix) {
				t.Errorf("top finding's fix %q; want it to contain %q", top.Fix, c.fix)
			}
			if len(top.Evidence) == 0 && c.top != "ccn.attached" {
				t.Errorf("top finding %s carries no evidence", top.ID)
			}
			for _, s := range c.symptom {
				f, ok := find(fs, s)
				if !ok {
					t.Errorf("no %s finding; all: %s", s, ids(fs))
					continue
				}
				if !slices.Contains(f.CausedBy, c.top) {
					t.Errorf("%s (%s) caused by %v; want %s among them", s, f.Severity, f.CausedBy, c.top)
				}
			}
			if got, want := Failed(fs), c.sev == SevError; got != want {
				t.Errorf("Failed() = %v; want %v", got, want)
			}
		})
	}
}

// TestOrdering: problems before ok; among problems, root causes before
// the findings they explain, each group errors before warnings; a kept
// cause is found and at least as severe as what it explains.
func TestOrdering(t *testing.T) {
	e := healthy()
	e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 60)...)
	e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 60)...)
	e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 60)...)
	e.Config.CCN = "" // a warning
	fs := Diagnose(e)
	phase := func(f Finding) int {
		switch {
		case f.Severity == SevOK:
			return 4
		case f.Root():
			return sevRank(f.Severity)
		}
		return 2 + sevRank(f.Severity)
	}
	for i := 1; i < len(fs); i++ {
		if phase(fs[i]) < phase(fs[i-1]) {
			t.Fatalf("%s (%s, root %v) after %s (%s, root %v): %s", fs[i].ID, fs[i].Severity, fs[i].Root(), fs[i-1].ID, fs[i-1].Severity, fs[i-1].Root(), ids(fs))
		}
	}
	for _, f := range fs {
		for _, c := range f.CausedBy {
			cf, ok := find(fs, c)
			if !ok || cf.Severity == SevOK || sevRank(cf.Severity) > sevRank(f.Severity) {
				t.Errorf("%s (%s) caused by %s, which is %v", f.ID, f.Severity, c, cf.Severity)
			}
		}
	}
	if fs[0].ID != "wan.loss" {
		t.Errorf("top %s; want wan.loss: %s", fs[0].ID, ids(fs))
	}
}

func TestDiagnoseIsPure(t *testing.T) {
	e := healthy()
	e.Host.Routes = nil
	a, b := Diagnose(e), Diagnose(e)
	if ids(a) != ids(b) {
		t.Errorf("two runs differ:\n%s\n%s", ids(a), ids(b))
	}
}

func TestNoStateStillJudgesTheHost(t *testing.T) {
	e := Evidence{Time: t0, StateError: errors.New("no device state").Error(), Precheck: healthy().Precheck}
	fs := Diagnose(e)
	if fs[0].ID != "device.state" {
		t.Fatalf("top %s; want device.state: %s", fs[0].ID, ids(fs))
	}
	if _, ok := find(fs, "ip.forward"); !ok {
		t.Errorf("precheck findings missing without state: %s", ids(fs))
	}
}

func TestMultiAttachFinding(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	no := false
	for _, c := range []struct {
		name   string
		ha     dataplane.HAStatus
		wantID FindingID
		sev    Severity
	}{
		{"answered", dataplane.HAStatus{Check: dataplane.HealthCheck{Interval: 100 * time.Millisecond, Failures: 3}, LastReply: now.Add(-50 * time.Millisecond),
			Events: []dataplane.RoleEvent{{Time: now.Add(-time.Minute), SN: "SN-A2", Role: "active", Reason: "claims stopped"}}}, "ha.role", SevOK},
		{"hub silent", dataplane.HAStatus{Check: dataplane.HealthCheck{Interval: 100 * time.Millisecond, Failures: 3}, LastReply: now.Add(-5 * time.Second)}, "ha.role", SevWarning},
		{"LAN down", dataplane.HAStatus{Check: dataplane.HealthCheck{Interval: 100 * time.Millisecond, Failures: 3}, LastReply: now, LANOK: &no}, "ha.lan", SevWarning},
	} {
		t.Run(c.name, func(t *testing.T) {
			ha := c.ha
			fs := Diagnose(Evidence{Time: now, Status: &dataplane.Status{Role: "active", Source: "daemon", HA: &ha}})
			var got *Finding
			for i := range fs {
				if strings.HasPrefix(string(fs[i].ID), "ha.") {
					got = &fs[i]
				}
			}
			if got == nil || got.ID != c.wantID || got.Severity != c.sev {
				t.Fatalf("multi-attach finding %+v; want %s %s", got, c.wantID, c.sev)
			}
			if c.name == "answered" && !strings.Contains(strings.Join(got.Evidence, "\n"), "SN-A2 became active: claims stopped") {
				t.Errorf("evidence lacks the role switch: %q", got.Evidence)
			}
		})
	}
}

func TestOutsideInFinding(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	port := func(proto string, p uint16, status string) diag.PortReach {
		return diag.PortReach{ReachPort: api.ReachPort{Proto: proto, Port: p}, Status: status, Detail: proto + " detail", Fix: "allow " + proto}
	}
	for _, c := range []struct {
		name string
		ev   Evidence
		sev  Severity
	}{
		{"all arrived", Evidence{Reach: &diag.ReachReport{Ports: []diag.PortReach{port("udp", 4500, diag.ReachArrived), port("tcp", 10050, diag.ReachArrived)}}}, SevOK},
		{"UDP 4500 blocked", Evidence{Reach: &diag.ReachReport{Ports: []diag.PortReach{port("udp", 4500, diag.ReachNotArrived), port("tcp", 10050, diag.ReachArrived)}}}, SevError},
		{"a sample port blocked", Evidence{Reach: &diag.ReachReport{Ports: []diag.PortReach{port("udp", 4500, diag.ReachArrived), port("tcp", 10050, diag.ReachNotArrived)}}}, SevWarning},
		{"not run", Evidence{ReachError: "rate_limited: try again in 20 s"}, SevOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.ev.Time = now
			var got *Finding
			for _, f := range Diagnose(c.ev) {
				if f.ID == "wan.outside_in" {
					got = &f
				}
			}
			if got == nil || got.Severity != c.sev {
				t.Fatalf("wan.outside_in = %+v; want severity %s", got, c.sev)
			}
			if c.sev != SevOK && !strings.HasPrefix(got.Fix, "allow") {
				t.Errorf("fix %q; want the port's own fix", got.Fix)
			}
		})
	}
}

// TestBlockedNeedsEnoughEvidence: "blocked" only when every one of enough
// probes went unanswered, WireGuard's counters say nothing came back, and
// the hub answers other ports with little loss; else it is loss.
func TestBlockedNeedsEnoughEvidence(t *testing.T) {
	withCounters := func(e *Evidence, tx, rx uint64) {
		after := *e.Status
		after.Peers = slices.Clone(e.Status.Peers)
		after.Peers[0].TxBytes += tx
		after.Peers[0].RxBytes += rx
		e.StatusAfter = &after
	}
	for _, c := range []struct {
		name    string
		plant   func(e *Evidence)
		blocked bool
	}{
		{"silent tunnel, nothing back, clean WAN", func(e *Evidence) {
			e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 100)...)
			withCounters(e, 2000, 0)
		}, true},
		{"silent tunnel, but WireGuard receives", func(e *Evidence) {
			e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 100)...)
			withCounters(e, 2000, 640)
		}, false},
		{"only 3 probes", func(e *Evidence) {
			e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(3, 100)...)
			withCounters(e, 300, 0)
		}, false},
		{"heavy WAN loss", func(e *Evidence) {
			e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 70)...)
			e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 70)...)
			e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 100)...)
			withCounters(e, 2000, 0)
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := healthy()
			c.plant(&e)
			fs := Diagnose(e)
			f, _ := find(fs, FindHubUDP4500)
			if got := f.Severity == SevError; got != c.blocked {
				t.Errorf("hub.udp4500 %s (%s); want blocked %v\nall: %s", f.Severity, f.Title, c.blocked, ids(fs))
			}
			if c.name == "heavy WAN loss" && fs[0].ID != FindWANLoss {
				t.Errorf("top %s; want wan.loss with the measured figure: %s", fs[0].ID, ids(fs))
			}
		})
	}
}

// TestTunnelLossWithinWANLoss: the tunnel rides the WAN; a tunnel loss the
// WAN's measured loss accounts for is the WAN's, however the two samples
// happened to fall; a loss well above it is the tunnel's own, unless the
// WAN loses heavily.
func TestTunnelLossWithinWANLoss(t *testing.T) {
	e := healthy()
	e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 15)...)
	e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 15)...)
	e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 30)...)
	fs := Diagnose(e)
	tf, _ := find(fs, FindTunnelHub)
	if fs[0].ID != FindWANLoss || !slices.Contains(tf.CausedBy, FindWANLoss) {
		t.Errorf("top %s, tunnel.hub caused by %v; want wan.loss explaining it: %s", fs[0].ID, tf.CausedBy, ids(fs))
	}
	e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 5)...)
	e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 5)...)
	e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 80)...)
	if fs := Diagnose(e); fs[0].ID != FindTunnelHub {
		t.Errorf("tunnel loss far above the WAN's: top %s; want tunnel.hub: %s", fs[0].ID, ids(fs))
	}
	e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 10)...)
	e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 10)...)
	e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 60)...)
	if fs := Diagnose(e); fs[0].ID != FindTunnelHub {
		t.Errorf("60%% through the tunnel over 10%% on the WAN: top %s; want tunnel.hub: %s", fs[0].ID, ids(fs))
	}
	// At heavy WAN loss a tunnel series that loses more than the WAN's
	// share (failed handshakes) still follows from wan.loss, and the
	// evidence says to look again once the WAN is clean.
	e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 35)...)
	e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 35)...)
	e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 85)...)
	fs = Diagnose(e)
	tf, _ = find(fs, FindTunnelHub)
	if fs[0].ID != FindWANLoss || !slices.Contains(tf.CausedBy, FindWANLoss) || !slices.ContainsFunc(tf.Evidence, func(s string) bool { return strings.Contains(s, "once the WAN is clean") }) {
		t.Errorf("top %s; tunnel.hub caused by %v, evidence %q; want wan.loss explaining it, to be checked again once the WAN is clean", fs[0].ID, tf.CausedBy, tf.Evidence)
	}
}

// TestMTUNotJudgedUnderHeavyLoss: random loss makes large probes vanish
// too; a black hole is not claimed on such evidence.
func TestMTUNotJudgedUnderHeavyLoss(t *testing.T) {
	e := healthy()
	e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 60)...)
	e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 60)...)
	e.WANMTU = &diag.MTUResult{Protocol: "udp", Target: hubWAN, MTU: 900, RouteMTU: 1500, Verdict: diag.MTUBlackHole}
	e.MTU = &diag.MTUResult{Protocol: "udp", Target: hubOverlay, MTU: 800, RouteMTU: 1420, Verdict: diag.MTUBlackHole}
	fs := Diagnose(e)
	for _, id := range []FindingID{FindWANMTU, FindTunnelMTU} {
		if f, ok := find(fs, id); ok && f.Severity != SevOK {
			t.Errorf("%s %s under 60%% loss: %s", id, f.Severity, f.Title)
		}
	}
	if fs[0].ID != FindWANLoss {
		t.Errorf("top %s; want wan.loss: %s", fs[0].ID, ids(fs))
	}
}

// TestTimeoutUnderLoss: with the WAN losing an eighth to a sixth of its
// probes (a warning), a controller API that times out and a
// handshake gone stale follow from the loss: wan.loss is the top finding
// though they are errors. A controller that refuses the TLS pin, or the
// same timeout on a clean WAN, stays a root cause.
func TestTimeoutUnderLoss(t *testing.T) {
	lossyWAN := func(e Evidence) {
		e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 10)...)
		e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 15)...)
	}
	// The reflector too lossy for a clean WAN (hub.udp4500 needs one),
	// both together still a warning.
	lossierWAN := func(e Evidence) {
		e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 5)...)
		e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 25)...)
	}
	e := healthy()
	lossyWAN(e)
	e.Config, e.ControllerError = nil, `Get "https://198.18.0.1:8443/v1/device/config": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`
	fs := Diagnose(e)
	cf, _ := find(fs, FindController)
	if cf.Severity != SevError || fs[0].ID != FindWANLoss || !slices.Contains(cf.CausedBy, FindWANLoss) {
		t.Errorf("API timeout under loss: top %s, controller.reachable %s caused by %v; want wan.loss on top explaining it: %s", fs[0].ID, cf.Severity, cf.CausedBy, ids(fs))
	}
	if !Failed(fs) {
		t.Error("the controller's API fails: diag must still fail")
	}

	e = healthy()
	lossierWAN(e)
	e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 100)...)
	e.Status.Peers[0].Problem = "handshake not completing"
	fs = Diagnose(e)
	hf, _ := find(fs, FindHandshake)
	if hf.Severity != SevError || fs[0].ID != FindWANLoss || !slices.Contains(hf.CausedBy, FindWANLoss) {
		t.Errorf("stale handshake under loss: top %s, tunnel.handshake %s caused by %v; want wan.loss on top explaining it: %s", fs[0].ID, hf.Severity, hf.CausedBy, ids(fs))
	}

	e = healthy()
	lossyWAN(e)
	e.Config, e.ControllerError = nil, "certificate is not from the pinned CA"
	if fs := Diagnose(e); fs[0].ID != FindController {
		t.Errorf("pin refused under loss: top %s; want controller.reachable (loss does not explain a refusal): %s", fs[0].ID, ids(fs))
	}

	e = healthy()
	e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 5)...)
	e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 5)...)
	e.Config, e.ControllerError = nil, "context deadline exceeded"
	if fs := Diagnose(e); fs[0].ID != FindController {
		t.Errorf("API timeout with 5%% loss: top %s; want controller.reachable (too little loss to explain it): %s", fs[0].ID, ids(fs))
	}
}

// randomLoss is a series of n probes, each lost with probability p.
func randomLoss(r *rand.Rand, proto string, target netip.Addr, n int, p float64) diag.Result {
	v := good(n)
	for i := range v {
		if r.Float64() < p {
			v[i] = -1
		}
	}
	return series(proto, target, v...)
}

// TestRandomWANLossIsTheTop: random loss on the WAN, the same for every
// series (they all ride it), is told as wan.loss first however the
// samples fall, bar chance this test bounds: the WAN series are judged
// together, and a series through the tunnel is the WAN's loss seen again
// unless it loses more than chance allows (or the WAN loses heavily).
// Before, the better WAN series alone was judged, and the tunnel compared
// at 2.5 unpooled standard errors: with the seed below, 3.5 % of runs at
// 20 % loss and 1 % at 35 % put a tunnel series first (CI's lab test met
// it). Now 0.64 % and 0.18 %, and none at 60 %. Twenty probes a series
// cannot do much better without losing sight of a tunnel that adds its
// own loss.
func TestRandomWANLossIsTheTop(t *testing.T) {
	const runs = 10000
	r := rand.New(rand.NewPCG(7, 35))
	for _, c := range []struct {
		p        float64
		maxWrong int
	}{{0.2, runs / 100}, {0.35, runs / 400}, {0.6, runs / 400}} {
		wrong := map[FindingID]int{}
		n := 0
		for range runs {
			e := healthy()
			e.Targets = []api.ProbeTarget{{Prefix: lanB, Addr: netip.MustParseAddr("198.19.2.1"), Remote: true}, {Prefix: cloud, Addr: netip.MustParseAddr("198.19.100.1")}}
			e.Probes[ProbeWANICMP] = randomLoss(r, "icmp", hubWAN, 20, c.p)
			e.Probes[ProbeWANReflector] = randomLoss(r, "udp", hubWAN, 20, c.p)
			e.Probes[ProbeTunnelHub] = randomLoss(r, "udp", hubOverlay, 20, c.p)
			for _, tg := range e.Targets {
				e.Probes[ProbeTargetPrefix+tg.Addr.String()] = randomLoss(r, "udp", tg.Addr, 20, c.p)
			}
			if fs := Diagnose(e); fs[0].ID != FindWANLoss {
				wrong[fs[0].ID]++
				n++
			}
		}
		t.Logf("%.0f%% loss: top not wan.loss in %d of %d runs %v", 100*c.p, n, runs, wrong)
		if n > c.maxWrong {
			t.Errorf("%.0f%% loss: top not wan.loss in %d of %d runs %v; want at most %d", 100*c.p, n, runs, wrong, c.maxWrong)
		}
	}
}

// TestWANSeriesJudgedTogether: ICMP and the reflector count together
// unless one is filtered or loses far more than chance allows; the
// evidence says which way it was judged.
func TestWANSeriesJudgedTogether(t *testing.T) {
	for _, c := range []struct {
		name       string
		icmp, refl int // percent lost
		sev        Severity
		title, ev  string
	}{
		{"a lucky ICMP series does not hide the loss", 0, 35, SevWarning, "loss 18%", "both series together"},
		{"both lossy: one figure from 40 probes", 30, 40, SevError, "heavy loss (35%)", "14/40 lost"},
		{"ICMP filtered: the reflector alone", 100, 10, SevWarning, "loss 10%", "judged on wan.reflector alone"},
		{"UDP policed: ICMP alone", 0, 60, SevOK, "no loss", "judged on wan.icmp alone"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := healthy()
			e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, c.icmp)...)
			e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, c.refl)...)
			f, ok := find(Diagnose(e), FindWANLoss)
			if !ok || f.Severity != c.sev || !strings.Contains(f.Title, c.title) || !slices.ContainsFunc(f.Evidence, func(s string) bool { return strings.Contains(s, c.ev) }) {
				t.Errorf("wan.loss %v %s: %s %q; want %s, title with %q, evidence with %q", ok, f.Severity, f.Title, f.Evidence, c.sev, c.title, c.ev)
			}
		})
	}
}

// TestMTUJudgedWhenICMPFiltered: a path that filters ICMP echo (and, as
// such firewalls often do, "fragmentation needed") loses every ICMP probe
// but no reflector probe. That is not WAN loss: the black hole it hides
// is still reported. (Counting both series regardless read 50 % loss and
// left the MTU unjudged.)
func TestMTUJudgedWhenICMPFiltered(t *testing.T) {
	e := healthy()
	e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 100)...)
	e.WANMTU = &diag.MTUResult{Protocol: "udp", Target: hubWAN, MTU: 1400, RouteMTU: 1500, Verdict: diag.MTUBlackHole}
	fs := Diagnose(e)
	if f, _ := find(fs, FindWANMTU); f.Severity != SevError {
		t.Errorf("wan.mtu %s: %s; want the black hole reported: %s", f.Severity, f.Title, ids(fs))
	}
}
