package pages

import (
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/provision"
)

// RegisterDoneMsg carries the validated registration fields (Advertise is
// asked on the routes page).
type RegisterDoneMsg struct{ Reg provision.Registration }

// Register is the registration form: controller URL, its fingerprint, the
// SN and the masked device key, each validated inline with the provision
// validators.
type Register struct {
	Controller, Fingerprint, SN, Key string

	form  syncForm
	given provision.Registration
	theme huh.Theme
	done  bool
}

// NewRegister builds the form, prefilled with values already given (flags,
// environment, config file).
func NewRegister(given provision.Registration, colour bool) *Register {
	r := &Register{given: given, Controller: given.Controller, Fingerprint: given.Fingerprint, SN: given.SN}
	if !given.Key.IsZero() {
		r.Key = given.Key.Reveal()
	}
	r.theme = huh.ThemeFunc(huh.ThemeBase)
	if colour {
		r.theme = huh.ThemeFunc(huh.ThemeCharm)
	}
	r.form.form = huh.NewForm(huh.NewGroup(
		huh.NewInput().Key("controller").Title("Controller URL").
			Description("https://HOST:PORT, as `vcpe-hub serve` printed it").
			Placeholder("https://198.18.0.1:8443").Value(&r.Controller).
			Validate(checkController),
		huh.NewInput().Key("fingerprint").Title("Controller CA fingerprint").
			Description("the sha256:… line `vcpe-hub serve` printed").
			Placeholder("sha256:…").Value(&r.Fingerprint).
			Validate(checkFingerprint),
		huh.NewInput().Key("sn").Title("Serial number (SN)").
			Description("from `vcpe-hub instance create`").Value(&r.SN).
			Validate(func(s string) error { return api.ValidateSN(strings.TrimSpace(s)) }),
		huh.NewInput().Key("key").Title("Device key").
			Description("issued with the SN; it is not shown and never logged").
			EchoMode(huh.EchoModePassword).Value(&r.Key).
			Validate(func(s string) error {
				if strings.TrimSpace(s) == "" {
					return &api.InputError{Field: "key", Msg: "missing; paste the key issued with the SN"}
				}
				return nil
			}),
	)).WithShowHelp(false).WithShowErrors(true).WithTheme(r.theme)
	return r
}

// Init starts the form (focus, cursor).
func (r *Register) Init() tea.Cmd { return r.form.form.Init() }

func (*Register) Title() string { return "Registration" }

func (r *Register) Update(msg tea.Msg, f Frame) tea.Cmd {
	if r.done {
		return nil
	}
	if ws, ok := msg.(tea.WindowSizeMsg); ok {
		r.form.form = r.form.form.WithWidth(min(ws.Width, 100))
	}
	cmd := r.form.update(msg)
	if r.form.form.State == huh.StateCompleted {
		r.done = true
		fp, _ := device.ParseFingerprint(r.Fingerprint)
		reg := r.given
		reg.Controller = strings.TrimSpace(r.Controller)
		reg.Fingerprint = fp
		reg.SN = strings.TrimSpace(r.SN)
		reg.Key = provision.NewSecret(strings.TrimSpace(r.Key))
		r.Key = "" // the Secret holds it now
		return tea.Batch(cmd, msgCmd(RegisterDoneMsg{reg}))
	}
	return cmd
}

// Errors are the validation errors shown now.
func (r *Register) Errors() []error { return r.form.form.Errors() }

func (r *Register) View(f Frame) string {
	intro := wrap("Enter what the controller issued for this device. Values given as flags or VCPE_* variables are filled in.", f.Width)
	return clipLines(append(intro, r.form.view(f)...), f.Height)
}

func (r *Register) Help(f Frame) []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("enter", "tab"), key.WithHelp("enter/tab", "next field")),
		key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous")),
		formQuit,
	}
}

// checkController is the controller field's validation: required, then
// device.ParseControllerURL, as for --controller.
func checkController(s string) error {
	if strings.TrimSpace(s) == "" {
		return &api.InputError{Field: "--controller", Msg: "missing; enter the controller's URL, e.g. https://198.18.0.1:8443"}
	}
	_, err := device.ParseControllerURL(strings.TrimSpace(s))
	return err
}

// checkFingerprint is the fingerprint field's validation: required, then
// device.ParseFingerprint, as for --controller-fingerprint.
func checkFingerprint(s string) error {
	if strings.TrimSpace(s) == "" {
		return &api.InputError{Field: "--controller-fingerprint", Msg: "missing; copy the sha256:… line vcpe-hub serve printed"}
	}
	_, err := device.ParseFingerprint(s)
	return err
}

// CheckController and CheckFingerprint are the form's validators, for the
// plain mode's prompts.
var (
	CheckController  = checkController
	CheckFingerprint = checkFingerprint
)
