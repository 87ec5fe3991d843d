package components

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openvcpe/vcpe/diag"
)

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// samples builds diag samples: an RTT in ms, or -1 for a lost probe.
func samples(rtts ...float64) []diag.Sample {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var out []diag.Sample
	for i, r := range rtts {
		s := diag.Sample{Seq: i, Sent: t0.Add(time.Duration(i) * time.Second)}
		if r >= 0 {
			s.RTT = ms(r)
			s.Received = s.Sent.Add(s.RTT)
		}
		out = append(out, s)
	}
	return out
}

func TestProbeStatsAreDiagSummarize(t *testing.T) {
	p := Probe{Result: diag.Result{Samples: samples(10, 12, -1, 11)}}
	if diff := cmp.Diff(diag.Summarize(p.Result.Samples), p.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	if st := p.Stats(); st.Sent != 4 || st.Received != 3 {
		t.Errorf("stats %+v; want 3 of 4", st)
	}
}

func TestSparkline(t *testing.T) {
	dup := samples(5, 5)
	dup[1].Seq, dup[1].Duplicate = 0, true
	icmpErr := samples(1, 8, 1)
	icmpErr[1].ICMP = &diag.ICMPError{}
	for _, tc := range []struct {
		name  string
		in    []diag.Sample
		width int
		want  string
	}{
		{"scaled", samples(1, 2, 3, 4, 5, 6, 7, 8), 8, "▁▂▃▄▅▆▇█"},
		{"flat", samples(5, 5, 5), 8, "▁▁▁"},
		{"lost", samples(1, -1, 8), 8, "▁×█"},
		{"last width, rescaled", samples(1, 2, 3, 4), 2, "▁█"},
		{"duplicates left out", dup, 8, "▁"},
		{"icmp error is no reply", icmpErr, 8, "▁×▁"},
		{"no width", samples(1), 0, ""},
	} {
		if got := Sparkline(tc.in, tc.width); got != tc.want {
			t.Errorf("%s: Sparkline = %q; want %q", tc.name, got, tc.want)
		}
	}
}

func TestProbeStateNeverByColourAlone(t *testing.T) {
	s := NewStyles(false, true)
	res := func(rtts ...float64) diag.Result {
		return diag.Result{Protocol: "icmp", Target: netip.MustParseAddr("198.18.64.1"), Samples: samples(rtts...)}
	}
	for _, tc := range []struct {
		p    Probe
		want string
	}{
		{Probe{Name: "hub", Result: res(1, 2), Done: true}, "✓ ok"},
		{Probe{Name: "hub", Result: res(1, -1), Done: true}, "! warn"},
		{Probe{Name: "hub", Result: res(-1), Done: true}, "✗ FAIL"},
		{Probe{Name: "hub", Result: res(1)}, "* run"},
		{Probe{Name: "hub", Err: "no route to 198.19.2.1"}, "✗ FAIL"},
		{Probe{Name: "hub", Result: res(1), Done: true, MTU: &diag.MTUResult{MTU: 1400, Verdict: diag.MTUBlackHole, Detail: "packets over 1400 bytes vanish"}}, "! warn"},
	} {
		v := ProbeView(s, tc.p, "*", 80)
		if !strings.Contains(v, tc.want) || !strings.Contains(v, "hub") {
			t.Errorf("%+v renders\n%s\nwithout %q", tc.p, v, tc.want)
		}
	}
	p := Probe{Name: "cloud", Result: diag.Result{Protocol: "udp", Target: netip.MustParseAddr("198.19.100.10"), Port: 12345, Samples: samples(2, -1)}, Done: true,
		MTU: &diag.MTUResult{MTU: 1420, Verdict: diag.MTUFull}}
	if got, want := p.Summary(), "cloud 198.19.100.10:12345 udp: loss 1/2 (50%), rtt avg 2.0ms, jitter 0.0ms, path mtu 1420"; got != want {
		t.Errorf("Summary = %q; want %q", got, want)
	}
}

func TestStylesNoColourHasNoColourCodes(t *testing.T) {
	for _, st := range []State{Pending, Running, OK, Unchanged, Warn, Fail, Skipped} {
		b := NewStyles(false, true).Badge(st, "*")
		if strings.Contains(b, "[3") || strings.Contains(b, ";2;") {
			t.Errorf("badge %d has a colour code without colour: %q", st, b)
		}
	}
	dark, light := NewStyles(true, true).Badge(Fail, ""), NewStyles(true, false).Badge(Fail, "")
	if dark == light {
		t.Errorf("the same colours on dark and light backgrounds: %q", dark)
	}
}

func TestCheckListShowsFixOnlyForProblems(t *testing.T) {
	var c CheckList
	c.Set(CheckItem{ID: "a", Title: "A", State: OK, Detail: "fine", Fix: "never shown"})
	c.Set(CheckItem{ID: "b", Title: "B", State: Fail, Detail: "broken", Fix: "repair b"})
	c.Set(CheckItem{ID: "a", Title: "A", State: Warn, Detail: "meh", Fix: "tune a"})
	got := c.View(Styles{}, "*", 80)
	want := "! warn A\n         meh\n         fix: tune a\n✗ FAIL B\n         broken\n         fix: repair b"
	if got != want {
		t.Errorf("CheckList.View:\n%s\nwant:\n%s", got, want)
	}
}
