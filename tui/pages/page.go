package pages

import (
	"regexp"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/openvcpe/vcpe/tui/components"
)

// Frame is what a page is drawn with: styles, keys, the shared spinner's
// current frame and the size of the body area.
type Frame struct {
	Styles components.Styles
	Keys   components.KeyMap
	Spin   string
	Width  int
	Height int
}

// Page is one screen of the wizard.
type Page interface {
	// Title names the page in the header.
	Title() string
	// Update handles a message (key presses, window size) and may return a
	// command, whose message reports a decision.
	Update(msg tea.Msg, f Frame) tea.Cmd
	// View renders the body, at most f.Width × f.Height cells.
	View(f Frame) string
	// Help lists the keys that work on the page now.
	Help(f Frame) []key.Binding
}

// Messages pages send when the operator decides.
type (
	// StartMsg: leave the welcome page and start the install.
	StartMsg struct{}
	// FinishMsg: leave the connectivity or done page.
	FinishMsg struct{}
)

func msgCmd(m tea.Msg) tea.Cmd { return func() tea.Msg { return m } }

// scroller keeps a scroll offset for a body taller than the page.
type scroller struct {
	off  int
	page int // lines shown by the last clip: a page up or down moves by this
}

func (s *scroller) update(msg tea.Msg, f Frame) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return
	}
	switch {
	case key.Matches(k, f.Keys.Up):
		s.off--
	case key.Matches(k, f.Keys.Down):
		s.off++
	case key.Matches(k, f.Keys.PageUp):
		s.off -= max(s.page, 1)
	case key.Matches(k, f.Keys.PageDown):
		s.off += max(s.page, 1)
	}
	if s.off < 0 {
		s.off = 0
	}
}

// clip shows height lines from the offset, clamping it, with a marker line
// when more is above or below.
func (s *scroller) clip(lines []string, f Frame) string {
	h := f.Height
	if h <= 0 || len(lines) <= h {
		s.off, s.page = 0, max(h, 1)
		return strings.Join(lines, "\n")
	}
	s.page = h - 1
	maxOff := len(lines) - (h - 1)
	s.off = min(s.off, maxOff)
	vis := lines[s.off : s.off+h-1]
	more := ""
	switch {
	case s.off == 0:
		more = "↓ more below (↑/↓ scroll)"
	case s.off >= maxOff:
		more = "↑ more above (↑/↓ scroll)"
	default:
		more = "↑↓ more above and below"
	}
	return strings.Join(append(append([]string{}, vis...), f.Styles.Subtle.Render(more)), "\n")
}

func scrollKeys(f Frame) []key.Binding { return []key.Binding{f.Keys.Up, f.Keys.Down} }

// wrap word-wraps a paragraph to the width. Continuation lines keep the
// first line's indent (its leading spaces and a list marker: "! ", "1. ",
// "- "), so a long item never falls back to column 0.
func wrap(s string, width int) []string {
	width = max(width, 10)
	if ansi.StringWidth(s) <= width {
		return []string{s}
	}
	ind := hangingIndent(s)
	if ind == 0 || ind > width/2 {
		return strings.Split(ansi.Wrap(s, width, ""), "\n")
	}
	head, body := s[:ind], s[ind:]
	lines := strings.Split(ansi.Wrap(body, width-ind, ""), "\n")
	pad := strings.Repeat(" ", ind)
	for i := range lines {
		if i == 0 {
			lines[i] = head + lines[i]
		} else {
			lines[i] = pad + lines[i]
		}
	}
	return lines
}

// wrapHanging wraps text after prefix (a label, a badge) so that every
// continuation line starts under the text, not at column 0.
func wrapHanging(prefix, text string, width int) []string {
	width = max(width, 10)
	ind := ansi.StringWidth(prefix)
	if ind > width/2 {
		return wrap(prefix+text, width)
	}
	lines := strings.Split(ansi.Wrap(text, width-ind, ""), "\n")
	pad := strings.Repeat(" ", ind)
	for i := range lines {
		if i == 0 {
			lines[i] = prefix + lines[i]
		} else {
			lines[i] = pad + lines[i]
		}
	}
	return lines
}

// listMarker matches an item's leading spaces and list marker.
var listMarker = regexp.MustCompile(`^ *(?:(?:[!*•-]|\d+\.) )?`)

// hangingIndent is the width (in bytes, all ASCII) continuation lines of
// s are indented by: the leading spaces and list marker of an item, only
// for lines that start with a space (plain paragraphs wrap flush).
func hangingIndent(s string) int {
	if !strings.HasPrefix(s, " ") {
		return 0
	}
	return len(listMarker.FindString(s))
}

// clipLines keeps the first height lines.
func clipLines(lines []string, height int) string {
	if height > 0 && len(lines) > height {
		lines = lines[:height]
	}
	return strings.Join(lines, "\n")
}

// formQuit is the quit key on pages where letters are typed.
var formQuit = key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit"))
