package tui

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/diag/suite"
)

var diagT0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

// feed sends n samples of a series: rtt in ms, every lossEvery-th lost.
func feed(m *DiagModel, name string, n, lossEvery int, rtt func(i int) float64) diag.Result {
	for i := range n {
		s := diag.Sample{Seq: i, Sent: diagT0.Add(time.Duration(i) * 50 * time.Millisecond), Size: 84}
		if lossEvery == 0 || i%lossEvery != 0 {
			s.RTT = time.Duration(rtt(i) * float64(time.Millisecond))
			s.Received = s.Sent.Add(s.RTT)
		}
		m.Update(diagSampleMsg{Name: name, Sample: s})
	}
	return diag.Result{}
}

func diagFrame(m *DiagModel) string { return ansi.Strip(m.render()) }

func dashboard(t *testing.T) *DiagModel {
	m := newDiagModel(colorprofile.ASCII)
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	hub, overlay, lanB := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.64.1"), netip.MustParseAddr("198.19.2.10")
	feed(m, suite.ProbeWANICMP, 20, 3, func(i int) float64 { return 20 + float64(i%5) })
	feed(m, suite.ProbeWANReflector, 20, 3, func(i int) float64 { return 21 + float64(i%4) })
	feed(m, suite.ProbeTunnelHub, 20, 2, func(i int) float64 { return 22 + float64(i%6) })
	feed(m, suite.ProbeTargetPrefix+lanB.String(), 20, 2, func(i int) float64 { return 30 + float64(i%3) })
	m.Update(diagRoundMsg{At: diagT0, Probes: map[string]diag.Result{
		suite.ProbeWANICMP:                      {Protocol: "icmp", Target: hub},
		suite.ProbeWANReflector:                 {Protocol: "udp", Target: hub, Port: diag.ReflectorPort},
		suite.ProbeTunnelHub:                    {Protocol: "udp", Target: overlay, Port: diag.ReflectorPort},
		suite.ProbeTargetPrefix + lanB.String(): {Protocol: "icmp", Target: lanB},
	}, Findings: []suite.Finding{
		{ID: "wan.loss", Severity: suite.SevError, Category: suite.CatQuality, Title: "WAN to the hub 198.18.0.1: heavy loss (35%)",
			Fix: "the loss is on the WAN path: check the WAN interface's errors (ip -s link), then the upstream link with the provider (mtr -n 198.18.0.1)"},
		{ID: "tunnel.hub", Severity: suite.SevError, Category: suite.CatLink, Title: "Through the tunnel to the hub's reflector 198.18.64.1:12345: heavy loss (50%)", CausedBy: []suite.FindingID{"wan.loss"}},
		{ID: "ccn.attached", Severity: suite.SevOK, Title: "Instance attached to a CCN"},
	}})
	return m
}

// TestGoldenDiagDashboard renders the dashboard at 80×24: before the first
// round, and with four targets and the findings of a lossy WAN.
func TestGoldenDiagDashboard(t *testing.T) {
	m := newDiagModel(colorprofile.ASCII)
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	f := diagFrame(m)
	checkFrame(t, f, 80, 24)
	golden(t, "diag-waiting_80x24", f)

	m = dashboard(t)
	f = diagFrame(m)
	checkFrame(t, f, 80, 24)
	golden(t, "diag-lossy-wan_80x24", f)
	for _, want := range []string{"wan.icmp", "198.18.64.1:12345 udp", "×", "loss", "jitter", "fix: the loss is on the WAN path", "caused by wan.loss", "(top)"} {
		if !strings.Contains(f, want) {
			t.Errorf("dashboard lacks %q:\n%s", want, f)
		}
	}
}

func TestDiagDashboardKeepsALimitedHistoryAndQuits(t *testing.T) {
	m := dashboard(t)
	feed(m, suite.ProbeWANICMP, 3*diagKeep, 0, func(int) float64 { return 1 })
	if n := len(m.probe(suite.ProbeWANICMP).Result.Samples); n != diagKeep {
		t.Errorf("%d samples kept; want %d", n, diagKeep)
	}
	if _, cmd := m.Update(keyMsg("q")); cmd == nil {
		t.Fatal("q: no command")
	} else if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("q does not quit")
	}
}

func TestRunDiagWithoutTTY(t *testing.T) {
	r, w := ioPipe(t)
	called := false
	err := RunDiag(t.Context(), func(context.Context, func(string, diag.Sample)) (map[string]diag.Result, []suite.Finding) {
		called = true
		return nil, nil
	}, Options{In: r, Out: w})
	if called {
		t.Error("a round ran without a terminal")
	}
	if err != ErrDiagNoTTY {
		t.Errorf("RunDiag without a terminal: %v; want ErrDiagNoTTY", err)
	}
}
