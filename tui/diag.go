package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/diag/suite"
	"github.com/openvcpe/vcpe/tui/components"
)

// DiagRound runs one round of the diagnosis suite (collect and diagnose):
// it calls onSample for every probe sample as it arrives and returns the
// probe series and the findings. The dashboard never probes itself.
type DiagRound func(ctx context.Context, onSample func(name string, s diag.Sample)) (map[string]diag.Result, []suite.Finding)

// ErrDiagNoTTY is returned at once when there is no terminal to draw on.
var ErrDiagNoTTY = errors.New("vcpe diag --tui needs a terminal on standard input and output; run vcpe diag (or vcpe diag --json) instead")

// diagKeep is how many samples per target the sparklines remember.
const diagKeep = 120

// diagPause is the pause between rounds.
const diagPause = 2 * time.Second

// Messages of the dashboard.
type (
	diagSampleMsg struct {
		Name   string
		Sample diag.Sample
	}
	diagRoundMsg struct {
		Probes   map[string]diag.Result
		Findings []suite.Finding
		At       time.Time
	}
)

// DiagModel is the live dashboard of `vcpe diag --tui`: per target an RTT
// sparkline, loss and jitter, refreshing with every sample; below, the
// findings of the last round with their fixes.
type DiagModel struct {
	styles        components.Styles
	probes        []components.Probe
	seq           map[string]int
	findings      []suite.Finding
	rounds        int
	last          time.Time
	width, height int
}

func newDiagModel(p colorprofile.Profile) *DiagModel {
	return &DiagModel{styles: newStyles(p, true), seq: map[string]int{}, width: 80, height: 24}
}

// Init starts nothing: rounds come from RunDiag's goroutine.
func (m *DiagModel) Init() tea.Cmd { return nil }

func (m *DiagModel) probe(name string) *components.Probe {
	for i := range m.probes {
		if m.probes[i].Name == name {
			return &m.probes[i]
		}
	}
	m.probes = append(m.probes, components.Probe{Name: name})
	slices.SortStableFunc(m.probes, func(a, b components.Probe) int {
		if c := probeRank(a.Name) - probeRank(b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return m.probe(name)
}

// probeRank orders the series from the WAN inwards: WAN, tunnel, targets.
func probeRank(name string) int {
	switch name {
	case suite.ProbeWANICMP:
		return 0
	case suite.ProbeWANReflector:
		return 1
	case suite.ProbeTunnelHub:
		return 2
	}
	return 3
}

// Update applies a message.
func (m *DiagModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.KeyPressMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		}
	case diagSampleMsg:
		p := m.probe(msg.Name)
		s := msg.Sample
		if s.Status() == "lost" && slices.ContainsFunc(p.Result.Samples, func(o diag.Sample) bool { return o.Sent.Equal(s.Sent) }) {
			break // already shown
		}
		s.Seq = m.seq[msg.Name]
		m.seq[msg.Name]++
		p.Result.Samples = append(p.Result.Samples, s)
		if n := len(p.Result.Samples); n > diagKeep {
			p.Result.Samples = slices.Clone(p.Result.Samples[n-diagKeep:])
		}
	case diagRoundMsg:
		for name, r := range msg.Probes {
			p := m.probe(name)
			p.Result.Protocol, p.Result.Target, p.Result.Port = r.Protocol, r.Target, r.Port
			p.Done = true
		}
		m.findings, m.last = msg.Findings, msg.At
		m.rounds++
	}
	return m, nil
}

// View draws the dashboard.
func (m *DiagModel) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	return v
}

func (m *DiagModel) render() string {
	s := m.styles
	w, h := max(m.width, 20), max(m.height, 5)
	head := s.Title.Render("vcpe diag") + " · live"
	if m.rounds > 0 {
		head += s.Subtle.Render(fmt.Sprintf(" · round %d at %s", m.rounds, m.last.UTC().Format("15:04:05")))
	} else {
		head += s.Subtle.Render(" · first round running…")
	}
	out := []string{ansi.Truncate(head, w, "…"), ""}
	for _, p := range m.probes {
		out = append(out, strings.Split(components.ProbeView(s, p, "*", w), "\n")...)
	}
	if len(m.probes) == 0 {
		out = append(out, s.Subtle.Render("waiting for the first probes…"))
	}
	out = append(out, "")
	var bad []suite.Finding
	ok := 0
	for _, f := range m.findings {
		if f.Severity == suite.SevOK {
			ok++
		} else {
			bad = append(bad, f)
		}
	}
	if m.rounds > 0 {
		out = append(out, s.Bold.Render(fmt.Sprintf("Findings: %d problems, %d ok", len(bad), ok)))
		if len(bad) == 0 {
			out = append(out, "  "+s.Badge(components.OK, "")+" no problem found")
		}
		for i, f := range bad {
			st := components.Warn
			if f.Severity == suite.SevError {
				st = components.Fail
			}
			line := s.Badge(st, "") + " " + f.Title
			if i == 0 && f.Root() {
				line += s.Subtle.Render(" (top)")
			}
			out = append(out, ansi.Truncate(line, w, "…"))
			switch {
			case len(f.CausedBy) > 0:
				out = append(out, ansi.Truncate(s.Subtle.Render("       caused by "+joinCauses(f.CausedBy)), w, "…"))
			case f.Fix != "":
				out = append(out, ansi.Truncate("       fix: "+f.Fix, w, "…"))
			}
		}
	}
	help := s.Subtle.Render("q quit · refreshes every " + diagPause.String())
	if len(out) > h-1 {
		out = out[:h-1]
	}
	for len(out) < h-1 {
		out = append(out, "")
	}
	return strings.Join(append(out, help), "\n")
}

// RunDiag runs the dashboard until the operator quits or ctx ends: rounds
// of the suite one after the other (a pause between them), every sample
// drawn as it arrives. Without a terminal it returns ErrDiagNoTTY at once.
func RunDiag(ctx context.Context, round DiagRound, o Options) error {
	o = o.withDefaults()
	mode, profile, err := Detect(o)
	if err != nil || mode == ModePlain {
		return ErrDiagNoTTY
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := newDiagModel(profile)
	p := tea.NewProgram(m, tea.WithInput(o.In), tea.WithOutput(o.Out), tea.WithEnvironment(o.Env),
		tea.WithColorProfile(profile), tea.WithContext(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			probes, fs := round(ctx, func(name string, s diag.Sample) { p.Send(diagSampleMsg{Name: name, Sample: s}) })
			if ctx.Err() != nil {
				return
			}
			p.Send(diagRoundMsg{Probes: probes, Findings: fs, At: time.Now()})
			select {
			case <-ctx.Done():
			case <-time.After(diagPause):
			}
		}
	}()
	_, err = p.Run()
	cancel()
	<-done
	if err != nil && !errors.Is(err, tea.ErrProgramKilled) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("terminal: %w", err)
	}
	return nil
}

func joinCauses(ids []suite.FindingID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}
