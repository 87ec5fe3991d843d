package pages

import (
	"fmt"
	"net/netip"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"

	"github.com/openvcpe/vcpe/provision"
)

// RoutesDoneMsg carries the LAN prefixes to advertise.
type RoutesDoneMsg struct{ Prefixes []netip.Prefix }

// Routes asks which LAN prefixes to advertise, suggesting the prefixes of
// the host's non-WAN interfaces. Conflicts (overlaps, bad masks) are
// flagged by provision.ParseAdvertise, as for --advertise.
type Routes struct {
	Value       string
	Suggestions provision.Suggestions

	form syncForm
	done bool
}

// NewRoutes builds the page; the field starts with the prefixes already
// given, or else the suggested ones.
func NewRoutes(s provision.Suggestions, colour bool) *Routes {
	r := &Routes{Suggestions: s}
	pre := s.Given.Advertise
	if len(pre) == 0 {
		pre = s.LANPrefixes
	}
	var ps []string
	for _, p := range pre {
		ps = append(ps, p.String())
	}
	r.Value = strings.Join(ps, ", ")
	theme := huh.ThemeFunc(huh.ThemeBase)
	if colour {
		theme = huh.ThemeFunc(huh.ThemeCharm)
	}
	r.form.form = huh.NewForm(huh.NewGroup(
		huh.NewInput().Key("advertise").Title("LAN prefixes to advertise").
			Description("comma separated, e.g. 198.19.1.0/24, 198.19.3.0/24; empty advertises none").
			Value(&r.Value).
			Validate(func(v string) error {
				_, err := provision.ParseAdvertise([]string{v})
				return err
			}),
	)).WithShowHelp(false).WithShowErrors(true).WithTheme(theme)
	return r
}

// Init starts the form.
func (r *Routes) Init() tea.Cmd { return r.form.form.Init() }

func (*Routes) Title() string { return "Routes" }

func (r *Routes) Update(msg tea.Msg, f Frame) tea.Cmd {
	if r.done {
		return nil
	}
	if ws, ok := msg.(tea.WindowSizeMsg); ok {
		r.form.form = r.form.form.WithWidth(min(ws.Width, 100))
	}
	cmd := r.form.update(msg)
	if r.form.form.State == huh.StateCompleted {
		r.done = true
		ps, _ := provision.ParseAdvertise([]string{r.Value})
		return tea.Batch(cmd, msgCmd(RoutesDoneMsg{ps}))
	}
	return cmd
}

// Errors are the validation errors shown now.
func (r *Routes) Errors() []error { return r.form.form.Errors() }

func (r *Routes) View(f Frame) string {
	var lines []string
	lines = append(lines, wrap("These prefixes are announced to the cloud network; every other member of it will route them to this device.", f.Width)...)
	lines = append(lines, "")
	if len(r.Suggestions.LANPrefixes) > 0 {
		var ps []string
		for _, p := range r.Suggestions.LANPrefixes {
			ps = append(ps, p.String())
		}
		wan := ""
		if r.Suggestions.WANInterface != "" {
			wan = fmt.Sprintf(" (WAN %s excluded)", r.Suggestions.WANInterface)
		}
		lines = append(lines, wrap("Found on this host's LAN interfaces"+wan+": "+strings.Join(ps, ", "), f.Width)...)
	} else {
		lines = append(lines, wrap("No LAN prefixes found on this host's non-WAN interfaces: type them.", f.Width)...)
	}
	lines = append(lines, "")
	lines = append(lines, r.form.view(f)...)
	return clipLines(lines, f.Height)
}

func (r *Routes) Help(f Frame) []key.Binding {
	return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "accept")), formQuit}
}
