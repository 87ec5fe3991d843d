package tui

import (
	"github.com/charmbracelet/colorprofile"

	"github.com/openvcpe/vcpe/tui/components"
)

// newStyles picks the styles for a colour profile: no colour at all for
// NO_COLOR / Ascii terminals (bold, faint and reverse only), colours for a
// light or a dark background otherwise. Meaning never depends on colour:
// every state also has a symbol and a word.
func newStyles(p colorprofile.Profile, isDark bool) components.Styles {
	return components.NewStyles(hasColour(p), isDark)
}

func hasColour(p colorprofile.Profile) bool { return p > colorprofile.Ascii }
