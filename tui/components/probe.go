package components

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/openvcpe/vcpe/diag"
)

// Probe is one named series of probes, as the install's connectivity step
// and `vcpe diag` report them: a diag.Result (growing while the series
// runs) with a name, and optionally the path MTU found. Event.Data of a
// connectivity progress event carries a Probe, a []Probe or a bare
// diag.Result.
type Probe struct {
	Name   string      `json:"name"` // "hub", "cloud", "site-b LAN"
	Result diag.Result `json:"result"`
	// Done is set when the series is complete.
	Done bool `json:"done"`
	// MTU is the path-MTU search's result, nil when not measured.
	MTU *diag.MTUResult `json:"mtu,omitempty"`
	// Err is why the series could not run at all.
	Err string `json:"error,omitempty"`
}

// Stats summarises the samples so far with diag.Summarize.
func (p Probe) Stats() diag.Stats { return diag.Summarize(p.Result.Samples) }

// Target names where the probes go: "198.18.64.1 icmp",
// "198.19.100.10:12345 udp".
func (p Probe) Target() string {
	r := p.Result
	if !r.Target.IsValid() {
		return r.Protocol
	}
	t := r.Target.String()
	if r.Port != 0 {
		t = fmt.Sprintf("%s:%d", t, r.Port)
	}
	if r.Protocol != "" {
		t += " " + r.Protocol
	}
	return t
}

var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// LostMark is the sparkline cell of a probe without an echo reply (lost,
// or answered by an ICMP error).
const LostMark = '×'

// Sparkline renders the last width probes (duplicates left out) as block
// characters scaled between the lowest and the highest RTT shown; a probe
// without a reply is LostMark, so loss reads without colour.
func Sparkline(samples []diag.Sample, width int) string {
	if width <= 0 {
		return ""
	}
	var ss []diag.Sample
	for _, s := range samples {
		if !s.Duplicate {
			ss = append(ss, s)
		}
	}
	if len(ss) > width {
		ss = ss[len(ss)-width:]
	}
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for _, s := range ss {
		if s.Replied() {
			lo, hi = min(lo, s.RTT), max(hi, s.RTT)
		}
	}
	var b strings.Builder
	for _, s := range ss {
		if !s.Replied() {
			b.WriteRune(LostMark)
			continue
		}
		i := 0
		if hi > lo {
			i = int(float64(s.RTT-lo) / float64(hi-lo) * float64(len(sparkBlocks)-1))
		}
		b.WriteRune(sparkBlocks[i])
	}
	return b.String()
}

// State is how the series looks: Fail when nothing came back or it could
// not run, Warn on partial loss or a black-holing path, OK otherwise,
// Running until Done.
func (p Probe) State() State {
	st := p.Stats()
	switch {
	case p.Err != "":
		return Fail
	case !p.Done:
		return Running
	case st.Sent == 0 || st.Received == 0:
		return Fail
	case st.Received < st.Sent || p.MTU != nil && p.MTU.Verdict == diag.MTUBlackHole:
		return Warn
	}
	return OK
}

// fmtDur prints a duration in milliseconds with one decimal.
func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func figures(st diag.Stats) string {
	s := fmt.Sprintf("loss %d/%d (%.0f%%)", st.Sent-st.Received, st.Sent, st.LossPct)
	if st.Received > 0 {
		s += fmt.Sprintf("  rtt min/avg/max %s/%s/%s  jitter %s", fmtDur(st.Min), fmtDur(st.Avg), fmtDur(st.Max), fmtDur(st.Jitter))
	}
	return s
}

// ProbeView renders one series in three lines or more: name, target and
// state; the sparkline; loss, RTT and jitter (and the path MTU).
func ProbeView(s Styles, p Probe, spin string, width int) string {
	// Each label once: a series named by its target shows the target alone.
	head := s.Badge(p.State(), spin) + " " + s.Bold.Render(p.Name)
	if t := p.Target(); t != p.Name {
		head += "  " + s.Subtle.Render(t)
	}
	lines := []string{ansi.Truncate(head, width, "…")}
	if p.Err != "" {
		lines = append(lines, wrapIndent(p.Err, "         ", width)...)
		return strings.Join(lines, "\n")
	}
	lines = append(lines, "         "+Sparkline(p.Result.Samples, max(width-9, 1)))
	fig := figures(p.Stats())
	if p.MTU != nil && p.MTU.MTU > 0 {
		fig += fmt.Sprintf("  path mtu %d", p.MTU.MTU)
	}
	lines = append(lines, wrapIndent(fig, "         ", width)...)
	if p.MTU != nil && p.MTU.Verdict == diag.MTUBlackHole && p.MTU.Detail != "" {
		lines = append(lines, wrapIndent(p.MTU.Detail, "         ", width)...)
	}
	return strings.Join(lines, "\n")
}

// label is the name and the target, each once.
func (p Probe) label() string {
	if t := p.Target(); t != p.Name {
		return p.Name + " " + t
	}
	return p.Name
}

// Summary is a one-line summary of a series for plain output and the done
// page.
func (p Probe) Summary() string {
	if p.Err != "" {
		return fmt.Sprintf("%s: %s", p.label(), p.Err)
	}
	st := p.Stats()
	s := fmt.Sprintf("%s: loss %d/%d (%.0f%%)", p.label(), st.Sent-st.Received, st.Sent, st.LossPct)
	if st.Received > 0 {
		s += fmt.Sprintf(", rtt avg %s, jitter %s", fmtDur(st.Avg), fmtDur(st.Jitter))
	}
	if p.MTU != nil && p.MTU.MTU > 0 {
		s += fmt.Sprintf(", path mtu %d", p.MTU.MTU)
	}
	return s
}
