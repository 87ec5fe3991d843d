package suite

import (
	"errors"
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
				{"vcpe0", netip.MustParsePrefix("198.18.64.11/18")}, {"lo", netip.MustParsePrefix("127.0.0.1/8")}}},
		Probes: map[string]diag.Result{
			ProbeWANICMP:      series("icmp", hubWAN, good(20)...),
			ProbeWANReflector: series("udp", hubWAN, good(20)...),
			ProbeTunnelHub:    series("udp", hubOverlay, good(20)...),
		},
		MTU: &diag.MTUResult{Protocol: "udp", Target: hubOverlay, MTU: 1420, RouteMTU: 1420, Verdict: diag.MTUFull},
	}
}

func find(fs []Finding, id string) (Finding, bool) {
	i := slices.IndexFunc(fs, func(f Finding) bool { return f.ID == id })
	if i < 0 {
		return Finding{}, false
	}
	return fs[i], true
}

func ids(fs []Finding) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.ID+"="+f.Severity)
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
	for _, id := range []string{"device.state", "registration.valid", "daemon.running", "tun.present", "ip.forward",
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

// TestRules plants one fault per case and checks the top finding (the
// root cause), its severity and fix, and which symptoms name it as cause.
func TestRules(t *testing.T) {
	deadTunnel := func(e *Evidence) {
		e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 100)...)
	}
	for _, c := range []struct {
		name    string
		plant   func(e *Evidence)
		top     string
		sev     string
		fix     string   // substring of the top finding's fix
		symptom []string // findings that must name top as a cause
	}{
		{"no state", func(e *Evidence) {
			*e = Evidence{Time: t0, StateError: "read /var/lib/vcpe/device.json: no device state", StatusError: "connect: no such file", Precheck: e.Precheck}
		}, "device.state", SevError, "vcpe install", nil},
		{"revoked", func(e *Evidence) {
			e.Config, e.ConfigError = nil, &api.Error{Code: api.CodeRevoked, Message: "device revoked"}
			e.Status.State = dataplane.StateRevoked
			e.Status.Peers = nil
			e.Host.Routes = nil
			deadTunnel(e)
		}, "registration.valid", SevError, "vcpe-hub device reset-key SN-A", []string{"tunnel.hub", "tunnel.handshake", "tunnel.routes"}},
		{"key reset", func(e *Evidence) {
			e.Config, e.ConfigError = nil, &api.Error{Code: api.CodeKeyReset, Message: "key reset"}
		}, "registration.valid", SevError, "vcpe install", nil},
		{"daemon down", func(e *Evidence) {
			e.Status, e.StatusError = nil, "connect to control socket /var/lib/vcpe/vcped.sock: connection refused"
			e.Host.TUNPresent, e.Host.Routes = false, nil
			deadTunnel(e)
		}, "daemon.running", SevError, "systemctl start vcped", []string{"tunnel.hub", "tunnel.routes"}},
		{"tun down", func(e *Evidence) { e.Host.TUNUp = false; deadTunnel(e) }, "tun.present", SevError, "ip link set vcpe0 up", []string{"tunnel.hub"}},
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
		}, "hub.udp4500", SevError, "nft delete rule inet f out handle 4", []string{"tunnel.hub", "precheck.ports.udp"}},
		{"path blocks 4500", func(e *Evidence) {
			deadTunnel(e)
			e.Status.Peers[0].Problem = "handshake not completing with peer X: last attempt 1s ago"
		}, "hub.udp4500", SevError, "allow UDP 4500", []string{"tunnel.hub", "tunnel.handshake", "tunnel.routes"}},
		{"hub down", func(e *Evidence) {
			e.Config, e.ControllerError = nil, "controller https://198.18.0.1:8443 is unreachable"
			e.Controller = &Dial{Addr: e.Controller.Addr, Refused: true, Error: "connect: connection refused"}
			e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 100)...)
			deadTunnel(e)
		}, "hub.down", SevError, "systemctl start vcpe-hub", []string{"controller.reachable", "tunnel.hub", "tunnel.routes"}},
		{"wan down", func(e *Evidence) {
			e.Config, e.ControllerError = nil, "unreachable"
			e.Controller = &Dial{Addr: e.Controller.Addr, Error: "i/o timeout"}
			e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 100)...)
			e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 100)...)
			e.Status.Peers[0].LastHandshake = t0.Add(-10 * time.Minute)
			deadTunnel(e)
		}, "wan.reachable", SevError, "ip route get 198.18.0.1", []string{"controller.reachable", "tunnel.handshake", "tunnel.hub", "tunnel.routes"}},
		{"wan heavy loss", func(e *Evidence) {
			e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 60)...)
			e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 55)...)
			e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 65)...)
			e.Controller = &Dial{Addr: e.Controller.Addr, Error: "i/o timeout"}
		}, "wan.loss", SevError, "mtr -n 198.18.0.1", []string{"tunnel.hub", "controller.reachable"}},
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
		}, "routes.match", SevError, "ip route replace 198.19.2.0/24", []string{"target.198.19.2.10"}},
		{"precheck flood", func(e *Evidence) {
			e.Precheck.Checks[2] = precheck.Result{ID: "flood.udp", Status: precheck.Warn, Title: "No UDP flood protection", Detail: "hashlimit on UDP", Fix: "nft delete rule inet f in handle 9"}
		}, "precheck.flood.udp", SevWarning, "nft delete rule inet f in handle 9", nil},
		{"controller TLS broken", func(e *Evidence) {
			e.Config, e.ControllerError = nil, "certificate is not from the pinned CA"
		}, "controller.reachable", SevError, "fingerprint", nil},
	} {
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

// TestOrdering: errors, then warnings, then ok; roots before symptoms.
func TestOrdering(t *testing.T) {
	e := healthy()
	e.Probes[ProbeWANICMP] = series("icmp", hubWAN, lossy(20, 60)...)
	e.Probes[ProbeWANReflector] = series("udp", hubWAN, lossy(20, 60)...)
	e.Probes[ProbeTunnelHub] = series("udp", hubOverlay, lossy(20, 60)...)
	e.Config.CCN = "" // a warning
	fs := Diagnose(e)
	last, lastRoot := -1, true
	for _, f := range fs {
		r := sevRank(f.Severity)
		if r < last {
			t.Fatalf("%s (%s) after a less severe finding: %s", f.ID, f.Severity, ids(fs))
		}
		if r > last {
			lastRoot = true
		}
		if f.Root() && !lastRoot {
			t.Fatalf("root %s after a symptom of the same severity: %s", f.ID, ids(fs))
		}
		last, lastRoot = r, f.Root()
	}
	// Only causes that were found are kept.
	for _, f := range fs {
		for _, c := range f.CausedBy {
			cf, ok := find(fs, c)
			if !ok || cf.Severity == SevOK {
				t.Errorf("%s caused by %s, which is %v", f.ID, c, cf.Severity)
			}
		}
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
		wantID string
		sev    string
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
				if strings.HasPrefix(fs[i].ID, "ha.") {
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
		sev  string
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
