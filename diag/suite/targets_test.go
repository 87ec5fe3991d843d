package suite

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/precheck"
)

var (
	siteB   = netip.MustParseAddr("198.19.2.1")
	hubCld  = netip.MustParseAddr("198.19.100.1")
	targetB = api.ProbeTarget{Prefix: lanB, Addr: siteB, Remote: true}
	targetC = api.ProbeTarget{Prefix: cloud, Addr: hubCld}
)

// withTargets is healthy() with the controller's default targets probed:
// site-b's device in 198.19.2.0/24 and the hub in the cloud prefix.
func withTargets(e *Evidence) {
	e.Config.Targets = []api.ProbeTarget{targetB, targetC}
	e.State.Config.Targets = e.Config.Targets
	e.Targets = e.Config.Targets
	e.Probes[ProbeTargetPrefix+siteB.String()] = series("udp", siteB, good(20)...)
	e.Probes[ProbeTargetPrefix+hubCld.String()] = series("udp", hubCld, good(20)...)
}

func TestDefaultTargetsHealthy(t *testing.T) {
	e := healthy()
	withTargets(&e)
	fs := Diagnose(e)
	for _, tc := range []struct {
		id     FindingID
		prefix string
	}{{"target.198.19.2.1", "198.19.2.0/24"}, {"target.198.19.100.1", "198.19.100.0/24"}} {
		f, ok := find(fs, tc.id)
		if !ok || f.Severity != SevOK || !strings.Contains(f.Title, tc.prefix) || len(f.Evidence) < 2 {
			t.Errorf("%s: %+v (found %v); want ok, a title naming %s, and evidence", tc.id, f, ok, tc.prefix)
		}
	}
	if f, ok := find(fs, "targets.unprobed"); ok {
		t.Errorf("every learned prefix has a target, yet: %s", f.Title)
	}
	if Failed(fs) {
		t.Errorf("failed: %s", ids(fs))
	}
	// A prefix without a target is still listed as unprobed.
	e = healthy()
	withTargets(&e)
	e.Targets = e.Targets[1:]
	delete(e.Probes, ProbeTargetPrefix+siteB.String())
	if f, ok := find(Diagnose(e), "targets.unprobed"); !ok || !strings.Contains(f.Title, "198.19.2.0/24") || strings.Contains(f.Title, "198.19.100.0/24") {
		t.Errorf("unprobed finding %+v; want only 198.19.2.0/24 listed", f)
	}
}

// TestDefaultTargetRules: a remote device that does not answer while the
// hub does is the top finding, a root, and its fix sends the operator to
// that device; when the WAN (or the tunnel) is down, the target findings
// are caused by it instead.
func TestDefaultTargetRules(t *testing.T) {
	for _, c := range []struct {
		name    string
		plant   func(e *Evidence)
		top     FindingID
		fix     []string
		symptom []FindingID
	}{
		{"remote device down", func(e *Evidence) {
			e.Probes[ProbeTargetPrefix+siteB.String()] = series("udp", siteB, lossy(20, 100)...)
		}, "target.198.19.2.1", []string{"remote device 198.19.2.1", "vcpe diag"}, nil},
		{"remote device lossy", func(e *Evidence) {
			e.Probes[ProbeTargetPrefix+siteB.String()] = series("udp", siteB, lossy(20, 40)...)
		}, "target.198.19.2.1", []string{"remote device 198.19.2.1", "WAN loss"}, nil},
		{"hub's cloud reflector silent", func(e *Evidence) {
			e.Probes[ProbeTargetPrefix+hubCld.String()] = series("udp", hubCld, lossy(20, 100)...)
		}, "target.198.19.100.1", []string{"--reflector :12345", "198.19.100.1"}, nil},
		{"wan down", func(e *Evidence) {
			e.Config, e.ControllerError = nil, "unreachable"
			e.Controller = &Dial{Addr: e.Controller.Addr, Error: "i/o timeout"}
			for _, n := range []string{ProbeWANICMP, ProbeWANReflector, ProbeTunnelHub, ProbeTargetPrefix + siteB.String(), ProbeTargetPrefix + hubCld.String()} {
				r := e.Probes[n]
				e.Probes[n] = series(r.Protocol, r.Target, lossy(20, 100)...)
			}
		}, "wan.reachable", []string{"ip route get 198.18.0.1"}, []FindingID{"target.198.19.2.1", "target.198.19.100.1"}},
		{"tunnel down", func(e *Evidence) {
			e.Status.Peers[0].Problem = "handshake not completing with peer X: last attempt 1s ago"
			for _, n := range []string{ProbeTunnelHub, ProbeTargetPrefix + siteB.String()} {
				r := e.Probes[n]
				e.Probes[n] = series(r.Protocol, r.Target, lossy(20, 100)...)
			}
		}, "hub.udp4500", []string{"4500"}, []FindingID{"target.198.19.2.1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := healthy()
			withTargets(&e)
			c.plant(&e)
			fs := Diagnose(e)
			top := fs[0]
			if top.ID != c.top || top.Severity != SevError || !top.Root() {
				t.Fatalf("top %s (%s, caused by %v): %s; want %s, an error and a root\nall: %s", top.ID, top.Severity, top.CausedBy, top.Title, c.top, ids(fs))
			}
			for _, s := range c.fix {
				if !strings.Contains(top.Fix, s) {
					t.Errorf("fix %q; want it to contain %q", top.Fix, s)
				}
			}
			for _, s := range c.symptom {
				f, ok := find(fs, s)
				if !ok || f.Severity != SevError || !slices.Contains(f.CausedBy, c.top) || strings.Contains(f.Fix, "remote device") {
					t.Errorf("%s: %+v; want an error caused by %s that does not blame the remote device", s, f, c.top)
				}
			}
		})
	}
}

// TestStaleTargetIsNotARemoteFault: after the instance leaves its CCN the
// device still probes its stored targets; their silence is the
// detachment's, not the remote site's.
func TestStaleTargetIsNotARemoteFault(t *testing.T) {
	e := healthy()
	withTargets(&e)
	e.Probes[ProbeTargetPrefix+siteB.String()] = series("udp", siteB, lossy(20, 100)...)
	e.Config.CCN, e.Config.Routes, e.Config.Targets = "", nil, nil
	fs := Diagnose(e)
	if fs[0].ID != FindCCN {
		t.Fatalf("top %s; want ccn.attached: %s", fs[0].ID, ids(fs))
	}
	f, _ := find(fs, TargetFinding(siteB))
	if f.Severity != SevWarning || !slices.Contains(f.CausedBy, FindCCN) || strings.Contains(f.Title, "Remote site") {
		t.Errorf("target finding %+v; want a warning caused by ccn.attached, not blaming the remote site", f)
	}
}

// TestOwnSocketsAreNotConflicts: precheck cannot always name the process
// holding UDP 4500; when vcped runs with that port, it is vcped's.
func TestOwnSocketsAreNotConflicts(t *testing.T) {
	e := healthy()
	e.Precheck.Checks[1] = precheck.Result{ID: precheck.CheckPortsUDP, Status: precheck.Fail, Detail: "UDP 4500 bound by an unknown process",
		Findings: []precheck.Finding{{Proto: "udp", Port: 4500, Reason: "bound by an unknown process"}}}
	if fs := Diagnose(e); fs[0].Severity != SevOK {
		t.Errorf("vcped's own socket judged a conflict: %s", ids(fs))
	}
	e.Precheck.Checks[1].Findings[0].Process = "openvpn"
	if fs := Diagnose(e); fs[0].ID != PrecheckFinding(precheck.CheckPortsUDP) {
		t.Errorf("another process on UDP 4500 not reported: %s", ids(fs))
	}
}
