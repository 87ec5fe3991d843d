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

// AttachDoneMsg carries the multi-attach answers (zero: one device).
type AttachDoneMsg struct{ Attach provision.Attach }

// Attach asks, once the controller has told about the instance, whether
// this site has two devices and, if so, for the shared LAN gateway and the
// LAN hosts to watch. When the instance already has an active device it
// says so and proposes that device's gateway, which both must share. The
// answers are checked with provision.ParseLANGateway (inside the LAN
// prefixes) and ParseLANTargets, as for --lan-gateway and --lan-target.
type Attach struct {
	Q       provision.AttachQuestion
	Two     bool
	Gateway string
	Targets string

	form syncForm
	done bool
}

// NewAttach builds the page, prefilled with the values given, else the
// other device's gateway.
func NewAttach(q provision.AttachQuestion, colour bool) *Attach {
	a := &Attach{Q: q}
	a.Two, a.Gateway, a.Targets = AttachDefaults(q)
	theme := huh.ThemeFunc(huh.ThemeBase)
	if colour {
		theme = huh.ThemeFunc(huh.ThemeCharm)
	}
	a.form.form = huh.NewForm(huh.NewGroup(
		// A select, not a confirm: its cursor shows the choice without
		// colour (NO_COLOR).
		huh.NewSelect[bool]().Key("two").Title("Devices at this site").
			Options(huh.NewOption("two devices: an active one and a standby (multi-attach)", true),
				huh.NewOption("one device", false)).Value(&a.Two),
		huh.NewInput().Key("gateway").Title("Shared LAN gateway ADDR/LEN").
			Description("the address LAN hosts route through; whichever device is active holds it").
			Placeholder(placeholderGateway(q.LAN)).Value(&a.Gateway).
			Validate(a.checkGateway),
		huh.NewInput().Key("targets").Title("LAN hosts to watch").
			Description("comma separated; when none answers, the device gives up the active role").
			Placeholder("198.19.1.10").Value(&a.Targets).
			Validate(func(v string) error {
				if !a.Two {
					return nil
				}
				_, err := provision.ParseLANTargets([]string{v})
				return err
			}),
	)).WithShowHelp(false).WithShowErrors(true).WithTheme(theme)
	return a
}

func placeholderGateway(lan []netip.Prefix) string {
	if len(lan) == 0 {
		return "198.19.1.254/24"
	}
	// The last host address of the first LAN prefix.
	p := lan[0].Masked()
	a := p.Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n |= ^uint32(0) >> p.Bits()
	n--
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), p.Bits()).String()
}

// checkGateway is the gateway field's validation (when two devices).
func (a *Attach) checkGateway(v string) error {
	if !a.Two {
		return nil
	}
	return CheckSharedGateway(v, a.Q)
}

// CheckSharedGateway checks the shared gateway of a pair: required, inside
// the LAN prefixes, and the other device's when it has one.
func CheckSharedGateway(v string, q provision.AttachQuestion) error {
	if strings.TrimSpace(v) == "" {
		return &api.InputError{Field: "--lan-gateway", Msg: "missing; two devices need the shared address LAN hosts route through, e.g. " + placeholderGateway(q.LAN)}
	}
	gw, err := provision.ParseLANGateway(v, q.LAN)
	if err != nil {
		return err
	}
	if pg := q.PeerGateway; pg.IsValid() && gw != pg {
		return &api.InputError{Field: "--lan-gateway", Msg: fmt.Sprintf("the other device of %s uses %s; both devices must share the same gateway", q.Instance, pg)}
	}
	return nil
}

// AttachDefaults are the proposed answers: two devices or not, the
// gateway (given, else the other device's) and the targets given.
func AttachDefaults(q provision.AttachQuestion) (two bool, gateway, targets string) {
	gw := q.Given.LANGateway
	if !gw.IsValid() {
		gw = q.PeerGateway
	}
	if gw.IsValid() {
		gateway = gw.String()
	}
	var ts []string
	for _, t := range q.Given.LANTargets {
		ts = append(ts, t.String())
	}
	return gw.IsValid() || q.ActiveSN != "" || q.Role == api.RoleStandby, gateway, strings.Join(ts, ", ")
}

// Init starts the form.
func (a *Attach) Init() tea.Cmd { return a.form.form.Init() }

func (*Attach) Title() string { return "Multi-attach" }

func (a *Attach) Update(msg tea.Msg, f Frame) tea.Cmd {
	if a.done {
		return nil
	}
	if ws, ok := msg.(tea.WindowSizeMsg); ok {
		a.form.form = a.form.form.WithWidth(min(ws.Width, 100))
	}
	cmd := a.form.update(msg)
	if a.form.form.State == huh.StateCompleted {
		a.done = true
		var out provision.Attach
		if a.Two {
			out.LANGateway, _ = provision.ParseLANGateway(a.Gateway, a.Q.LAN)
			out.LANTargets, _ = provision.ParseLANTargets([]string{a.Targets})
		}
		return tea.Batch(cmd, msgCmd(AttachDoneMsg{out}))
	}
	return cmd
}

// Errors are the validation errors shown now.
func (a *Attach) Errors() []error { return a.form.form.Errors() }

// AttachIntro says what the controller told about the instance.
func AttachIntro(q provision.AttachQuestion) string {
	name := q.Instance
	if name == "" {
		name = "this device's instance"
	}
	switch {
	case q.ActiveSN != "" && q.PeerGateway.IsValid():
		return fmt.Sprintf("The controller says %s already has an active device, %s, with the shared LAN gateway %s. This device joins it as the standby and takes the gateway over when the active one fails: keep the same gateway.", name, q.ActiveSN, q.PeerGateway)
	case q.ActiveSN != "":
		return fmt.Sprintf("The controller says %s already has an active device, %s. This device joins it as the standby: give the shared LAN gateway the other device uses.", name, q.ActiveSN)
	case q.Slots > 1:
		return fmt.Sprintf("%s has room for %d devices. If this site has two, LAN hosts route through a shared gateway address that whichever device is active holds.", name, q.Slots)
	}
	return fmt.Sprintf("If this site has two devices of %s, LAN hosts route through a shared gateway address that whichever device is active holds.", name)
}

func (a *Attach) View(f Frame) string {
	lines := wrap(AttachIntro(a.Q), f.Width)
	lines = append(lines, "")
	lines = append(lines, a.form.view(f)...)
	return clipLines(lines, f.Height)
}

func (a *Attach) Help(f Frame) []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("enter", "tab"), key.WithHelp("enter/tab", "next field")),
		key.NewBinding(key.WithKeys("up", "down"), key.WithHelp("↑/↓", "choose")),
		formQuit,
	}
}
