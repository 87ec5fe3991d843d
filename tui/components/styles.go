package components

import (
	"image/color"

	"charm.land/lipgloss/v2"
)

// Styles are the lipgloss styles every page and component draws with. Build
// them with NewStyles; the zero value renders plain text.
type Styles struct {
	Title    lipgloss.Style
	Subtle   lipgloss.Style
	Bold     lipgloss.Style
	OK       lipgloss.Style
	Warn     lipgloss.Style
	Fail     lipgloss.Style
	Running  lipgloss.Style
	Key      lipgloss.Style
	Selected lipgloss.Style
	Box      lipgloss.Style
}

// NewStyles returns the styles for a terminal. With colour false (NO_COLOR,
// a monochrome terminal) only bold, faint and reverse are used. isDark picks
// colours readable on a dark or a light background.
func NewStyles(colour, isDark bool) Styles {
	s := Styles{
		Title:    lipgloss.NewStyle().Bold(true),
		Subtle:   lipgloss.NewStyle().Faint(true),
		Bold:     lipgloss.NewStyle().Bold(true),
		OK:       lipgloss.NewStyle(),
		Warn:     lipgloss.NewStyle().Bold(true),
		Fail:     lipgloss.NewStyle().Bold(true),
		Running:  lipgloss.NewStyle(),
		Key:      lipgloss.NewStyle().Bold(true),
		Selected: lipgloss.NewStyle().Reverse(true),
		Box:      lipgloss.NewStyle().Border(lipgloss.NormalBorder()).Padding(0, 1),
	}
	if !colour {
		return s
	}
	ld := lipgloss.LightDark(isDark)
	c := func(light, dark string) color.Color { return ld(lipgloss.Color(light), lipgloss.Color(dark)) }
	s.Title = s.Title.Foreground(c("#1f4e99", "#8cb4ff"))
	s.OK = s.OK.Foreground(c("#116611", "#6fdc6f"))
	s.Warn = s.Warn.Foreground(c("#8a5a00", "#ffcc55"))
	s.Fail = s.Fail.Foreground(c("#b00020", "#ff6b6b"))
	s.Running = s.Running.Foreground(c("#1f4e99", "#8cb4ff"))
	s.Key = s.Key.Foreground(c("#5a2d91", "#c9a7ff"))
	s.Box = s.Box.BorderForeground(c("#888888", "#666666"))
	return s
}

// State is the state of a check, a step or a probe, as components show it.
type State int

// States. Each renders with a symbol and a word, never by colour alone.
const (
	Pending State = iota
	Running
	OK
	Unchanged
	Warn
	Fail
	Skipped
)

// Badge renders a state as a fixed-width symbol and word; spin is the
// spinner frame shown for Running.
func (s Styles) Badge(st State, spin string) string {
	switch st {
	case Running:
		if spin == "" {
			spin = "*"
		}
		return s.Running.Render(spin + " run ")
	case OK:
		return s.OK.Render("✓ ok  ")
	case Unchanged:
		return s.OK.Render("= same")
	case Warn:
		return s.Warn.Render("! warn")
	case Fail:
		return s.Fail.Render("✗ FAIL")
	case Skipped:
		return s.Subtle.Render("- skip")
	default:
		return s.Subtle.Render("· wait")
	}
}
