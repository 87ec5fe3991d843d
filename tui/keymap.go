package tui

import (
	"charm.land/bubbles/v2/key"

	"github.com/openvcpe/vcpe/tui/components"
)

// DefaultKeyMap is the wizard's keys. Every page shows the ones that work
// on it in its help line.
func DefaultKeyMap() components.KeyMap {
	b := func(keys []string, help, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return components.KeyMap{
		Continue: b([]string{"enter", "c"}, "enter", "continue"),
		Rerun:    b([]string{"r"}, "r", "re-run"),
		Abort:    b([]string{"a", "esc"}, "a", "abort"),
		Accept:   b([]string{"y", "enter"}, "y/enter", "accept"),
		Decline:  b([]string{"n", "esc"}, "n", "decline"),
		Up:       b([]string{"up", "k"}, "↑/k", "up"),
		Down:     b([]string{"down", "j"}, "↓/j", "down"),
		PageUp:   b([]string{"pgup"}, "pgup", "page up"),
		PageDown: b([]string{"pgdown", "space"}, "pgdn", "page down"),
		Quit:     b([]string{"ctrl+c", "q"}, "q/ctrl+c", "quit"),
		Yes:      b([]string{"y"}, "y", "yes"),
		No:       b([]string{"n", "esc"}, "n/esc", "no"),
	}
}
