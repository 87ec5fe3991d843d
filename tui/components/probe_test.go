package components

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func samples(rtts ...float64) []ProbeSample {
	var out []ProbeSample
	for i, r := range rtts {
		if r < 0 {
			out = append(out, ProbeSample{Seq: i, Lost: true})
		} else {
			out = append(out, ProbeSample{Seq: i, RTT: ms(r)})
		}
	}
	return out
}

func TestProbeStats(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []ProbeSample
		want ProbeStats
	}{
		{"none", nil, ProbeStats{}},
		{"all lost", samples(-1, -1), ProbeStats{Sent: 2, Loss: 1}},
		{"steady", samples(10, 10, 10), ProbeStats{Sent: 3, Received: 3, Min: ms(10), Avg: ms(10), Max: ms(10)}},
		// jitter: |12-10| and |11-12| (the lost probe is skipped) → 1.5ms
		{"loss and jitter", samples(10, 12, -1, 11), ProbeStats{Sent: 4, Received: 3, Loss: 0.25, Min: ms(10), Avg: ms(11), Max: ms(12), Jitter: ms(1.5)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Probe{Samples: tc.in}.Stats()); diff != "" {
				t.Errorf("Stats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSparkline(t *testing.T) {
	for _, tc := range []struct {
		in    []ProbeSample
		width int
		want  string
	}{
		{samples(1, 2, 3, 4, 5, 6, 7, 8), 8, "▁▂▃▄▅▆▇█"},
		{samples(5, 5, 5), 8, "▁▁▁"},
		{samples(1, -1, 8), 8, "▁×█"},
		{samples(1, 2, 3, 4), 2, "▁█"}, // the last width samples, rescaled
		{samples(1), 0, ""},
	} {
		if got := Sparkline(tc.in, tc.width); got != tc.want {
			t.Errorf("Sparkline(%v, %d) = %q; want %q", tc.in, tc.width, got, tc.want)
		}
	}
}

func TestProbeStateNeverByColourAlone(t *testing.T) {
	s := NewStyles(false, true)
	for _, tc := range []struct {
		p    Probe
		want string
	}{
		{Probe{Name: "hub", Samples: samples(1, 2), Done: true}, "✓ ok"},
		{Probe{Name: "hub", Samples: samples(1, -1), Done: true}, "! warn"},
		{Probe{Name: "hub", Samples: samples(-1), Done: true}, "✗ FAIL"},
		{Probe{Name: "hub", Samples: samples(1)}, "* run"},
		{Probe{Name: "hub", Err: "no route to 198.19.2.1"}, "✗ FAIL"},
	} {
		v := ProbeView(s, tc.p, "*", 80)
		if !strings.Contains(v, tc.want) {
			t.Errorf("%+v renders\n%s\nwithout %q", tc.p, v, tc.want)
		}
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
