package components

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// ProbeSample is one probe: its round-trip time, or lost.
type ProbeSample struct {
	Seq  int
	RTT  time.Duration
	Lost bool
}

// Probe is a series of probes to one target, as the install's connectivity
// step and `vcpe diag` report them (Event.Data of a connectivity progress
// event carries a Probe or a []Probe).
type Probe struct {
	Name    string        `json:"name"`   // "hub", "cloud", "site-b LAN"
	Target  string        `json:"target"` // "198.18.64.1 (icmp)"
	Samples []ProbeSample `json:"samples"`
	// Done is set when the series is complete.
	Done bool `json:"done"`
	// MTU is the path MTU found, 0 when not measured.
	MTU int `json:"mtu,omitempty"`
	// Err is why the series could not run at all.
	Err string `json:"error,omitempty"`
}

// ProbeStats summarise a Probe.
type ProbeStats struct {
	Sent, Received int
	Loss           float64 // 0..1
	Min, Avg, Max  time.Duration
	// Jitter is the mean absolute difference between consecutive
	// received RTTs (RFC 3550's idea, unsmoothed).
	Jitter time.Duration
}

// Stats computes a Probe's summary. It is pure.
func (p Probe) Stats() ProbeStats {
	var st ProbeStats
	var sum, jsum time.Duration
	var prev time.Duration
	havePrev, jn := false, 0
	for _, s := range p.Samples {
		st.Sent++
		if s.Lost {
			continue
		}
		st.Received++
		sum += s.RTT
		if st.Received == 1 || s.RTT < st.Min {
			st.Min = s.RTT
		}
		if s.RTT > st.Max {
			st.Max = s.RTT
		}
		if havePrev {
			d := s.RTT - prev
			if d < 0 {
				d = -d
			}
			jsum += d
			jn++
		}
		prev, havePrev = s.RTT, true
	}
	if st.Received > 0 {
		st.Avg = sum / time.Duration(st.Received)
	}
	if jn > 0 {
		st.Jitter = jsum / time.Duration(jn)
	}
	if st.Sent > 0 {
		st.Loss = float64(st.Sent-st.Received) / float64(st.Sent)
	}
	return st
}

var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// LostMark is the sparkline cell of a lost probe.
const LostMark = '×'

// Sparkline renders the last width samples as block characters scaled
// between the lowest and the highest RTT shown; a lost probe is LostMark,
// so loss reads without colour.
func Sparkline(samples []ProbeSample, width int) string {
	if width <= 0 {
		return ""
	}
	if len(samples) > width {
		samples = samples[len(samples)-width:]
	}
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for _, s := range samples {
		if s.Lost {
			continue
		}
		lo, hi = min(lo, s.RTT), max(hi, s.RTT)
	}
	var b strings.Builder
	for _, s := range samples {
		if s.Lost {
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

// State is how the probe series looks: Fail when everything was lost or it
// could not run, Warn on partial loss, OK otherwise, Running until Done.
func (p Probe) State() State {
	st := p.Stats()
	switch {
	case p.Err != "":
		return Fail
	case !p.Done:
		return Running
	case st.Sent == 0 || st.Received == 0:
		return Fail
	case st.Received < st.Sent:
		return Warn
	}
	return OK
}

// fmtDur prints a duration in milliseconds with one decimal.
func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// ProbeView renders one probe in three lines: name and state, the sparkline,
// and loss / RTT / jitter figures.
func ProbeView(s Styles, p Probe, spin string, width int) string {
	st := p.Stats()
	head := s.Badge(p.State(), spin) + " " + s.Bold.Render(p.Name) + "  " + s.Subtle.Render(p.Target)
	lines := []string{ansi.Truncate(head, width, "…")}
	if p.Err != "" {
		lines = append(lines, wrapIndent(p.Err, "         ", width)...)
		return strings.Join(lines, "\n")
	}
	lines = append(lines, "         "+Sparkline(p.Samples, max(width-9, 1)))
	fig := fmt.Sprintf("loss %d/%d (%.0f%%)", st.Sent-st.Received, st.Sent, st.Loss*100)
	if st.Received > 0 {
		fig += fmt.Sprintf("  rtt min/avg/max %s/%s/%s  jitter %s", fmtDur(st.Min), fmtDur(st.Avg), fmtDur(st.Max), fmtDur(st.Jitter))
	}
	if p.MTU > 0 {
		fig += fmt.Sprintf("  mtu %d", p.MTU)
	}
	lines = append(lines, wrapIndent(fig, "         ", width)...)
	return strings.Join(lines, "\n")
}

// Summary is a one-line summary of a probe for plain output and the done
// page.
func (p Probe) Summary() string {
	if p.Err != "" {
		return fmt.Sprintf("%s %s: %s", p.Name, p.Target, p.Err)
	}
	st := p.Stats()
	s := fmt.Sprintf("%s %s: loss %d/%d (%.0f%%)", p.Name, p.Target, st.Sent-st.Received, st.Sent, st.Loss*100)
	if st.Received > 0 {
		s += fmt.Sprintf(", rtt avg %s, jitter %s", fmtDur(st.Avg), fmtDur(st.Jitter))
	}
	if p.MTU > 0 {
		s += fmt.Sprintf(", mtu %d", p.MTU)
	}
	return s
}
