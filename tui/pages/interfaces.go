package pages

import (
	"fmt"
	"net/netip"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/provision"
)

// InterfacesDoneMsg carries the chosen interfaces ("" keeps the guess).
type InterfacesDoneMsg struct{ WAN, LAN string }

// Interfaces lists the host's interfaces with their addresses and the one
// that carries the default route, and asks for the WAN and LAN interface,
// each checked with provision.ValidateInterface as for --wan-if and
// --lan-if.
type Interfaces struct {
	WAN, LAN string
	List     []provision.Interface

	form syncForm
	done bool
}

// NewInterfaces builds the page: the fields start with the interfaces
// given (flags, environment, config file), else the default route's for
// the WAN and the one with an address in an advertised prefix for the LAN.
func NewInterfaces(s provision.Suggestions, advertise []netip.Prefix, colour bool) *Interfaces {
	p := &Interfaces{List: s.Interfaces}
	p.WAN, p.LAN = InterfaceDefaults(s, advertise)
	theme := huh.ThemeFunc(huh.ThemeBase)
	if colour {
		theme = huh.ThemeFunc(huh.ThemeCharm)
	}
	p.form.form = huh.NewForm(huh.NewGroup(
		huh.NewInput().Key("wan").Title("WAN interface (towards the Internet and the hub)").
			Description("empty: the default route's").Value(&p.WAN).
			Validate(func(v string) error { return provision.ValidateInterface("--wan-if", v, p.List) }),
		huh.NewInput().Key("lan").Title("LAN interface (towards the LAN hosts)").
			Description("empty: the one with an address in an advertised prefix").Value(&p.LAN).
			Validate(func(v string) error { return CheckLANInterface(v, p.WAN, p.List) }),
	)).WithShowHelp(false).WithShowErrors(true).WithTheme(theme)
	return p
}

// InterfaceDefaults are the interfaces proposed: those given, else the
// default route's for the WAN and the one with an address in an
// advertised prefix for the LAN.
func InterfaceDefaults(s provision.Suggestions, advertise []netip.Prefix) (wan, lan string) {
	wan, lan = s.Given.WANInterface, s.Given.LANInterface
	if wan == "" {
		wan = s.WANInterface
	}
	if lan == "" {
		lan = lanGuess(s.Interfaces, advertise, wan)
	}
	return wan, lan
}

// CheckLANInterface is the LAN interface field's validation: one of the
// host's, and not the WAN interface.
func CheckLANInterface(v, wan string, ifs []provision.Interface) error {
	if err := provision.ValidateInterface("--lan-if", v, ifs); err != nil {
		return err
	}
	if v = strings.TrimSpace(v); v != "" && v == strings.TrimSpace(wan) {
		return &api.InputError{Field: "--lan-if", Msg: fmt.Sprintf("%s is the WAN interface; pick the interface of the LAN", v)}
	}
	return nil
}

// lanGuess is the first interface (not the WAN) with an address inside
// an advertised prefix.
func lanGuess(ifs []provision.Interface, advertise []netip.Prefix, wan string) string {
	for _, i := range ifs {
		if i.Name == wan {
			continue
		}
		for _, a := range i.Addrs {
			for _, p := range advertise {
				if p.Contains(a.Addr()) {
					return i.Name
				}
			}
		}
	}
	return ""
}

// Init starts the form.
func (p *Interfaces) Init() tea.Cmd { return p.form.form.Init() }

func (*Interfaces) Title() string { return "Interfaces" }

func (p *Interfaces) Update(msg tea.Msg, f Frame) tea.Cmd {
	if p.done {
		return nil
	}
	if ws, ok := msg.(tea.WindowSizeMsg); ok {
		p.form.form = p.form.form.WithWidth(min(ws.Width, 100))
	}
	cmd := p.form.update(msg)
	if p.form.form.State == huh.StateCompleted {
		p.done = true
		return tea.Batch(cmd, msgCmd(InterfacesDoneMsg{WAN: strings.TrimSpace(p.WAN), LAN: strings.TrimSpace(p.LAN)}))
	}
	return cmd
}

// Errors are the validation errors shown now.
func (p *Interfaces) Errors() []error { return p.form.form.Errors() }

// InterfaceLines lists the interfaces, one a line: name, addresses, and
// which carries the default route.
func InterfaceLines(ifs []provision.Interface, width int) []string {
	w := 0
	for _, i := range ifs {
		w = max(w, len(i.Name))
	}
	var l []string
	for _, i := range ifs {
		var as []string
		for _, a := range i.Addrs {
			as = append(as, a.String())
		}
		line := fmt.Sprintf("  %-*s  %s", w, i.Name, orDash(strings.Join(as, ", ")))
		if i.DefaultRoute {
			line += "  (default route)"
		}
		l = append(l, wrap(line, width)...)
	}
	return l
}

func (p *Interfaces) View(f Frame) string {
	lines := wrap("The WAN interface carries the tunnel to the hub; the LAN interface faces the hosts whose prefixes you advertise. This host has:", f.Width)
	lines = append(lines, InterfaceLines(p.List, f.Width)...)
	lines = append(lines, "")
	lines = append(lines, p.form.view(f)...)
	return clipLines(lines, f.Height)
}

func (p *Interfaces) Help(f Frame) []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("enter", "tab"), key.WithHelp("enter/tab", "next field")),
		key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous")),
		formQuit,
	}
}
