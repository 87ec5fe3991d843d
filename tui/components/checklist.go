package components

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// CheckItem is one line of a CheckList.
type CheckItem struct {
	ID     string
	Title  string
	State  State
	Detail string // what was found
	Fix    string // the exact command or edit that resolves it
}

// CheckList is a live list of checks: pending ones wait, running ones spin,
// finished ones show their state and, when not OK, the detail and the fix.
type CheckList struct {
	Items []CheckItem
}

// Set replaces the item with the same ID, or appends it.
func (c *CheckList) Set(it CheckItem) {
	for i := range c.Items {
		if c.Items[i].ID == it.ID {
			c.Items[i] = it
			return
		}
	}
	c.Items = append(c.Items, it)
}

// Lines renders the list as lines at most width cells wide.
func (c CheckList) Lines(s Styles, spin string, width int) []string {
	var out []string
	for _, it := range c.Items {
		line := s.Badge(it.State, spin) + " " + it.Title
		if it.State != Pending && it.State != Running && it.State != OK && it.Detail != "" {
			out = append(out, ansi.Truncate(line, width, "…"))
			out = append(out, wrapIndent(it.Detail, "         ", width)...)
		} else {
			out = append(out, ansi.Truncate(line, width, "…"))
		}
		if it.Fix != "" && (it.State == Warn || it.State == Fail) {
			out = append(out, wrapIndent("fix: "+it.Fix, "         ", width)...)
		}
	}
	return out
}

// View renders the list.
func (c CheckList) View(s Styles, spin string, width int) string {
	return strings.Join(c.Lines(s, spin, width), "\n")
}

// wrapIndent word-wraps text to width with every line indented.
func wrapIndent(text, indent string, width int) []string {
	w := width - ansi.StringWidth(indent)
	if w < 10 {
		w = 10
	}
	var out []string
	for _, para := range strings.Split(text, "\n") {
		for _, l := range strings.Split(ansi.Wrap(para, w, ""), "\n") {
			out = append(out, indent+l)
		}
	}
	return out
}
