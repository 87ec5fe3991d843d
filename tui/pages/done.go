package pages

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"charm.land/huh/v2"
	"github.com/openvcpe/vcpe/internal/atomicfile"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/openvcpe/vcpe/provision"
	"github.com/openvcpe/vcpe/tui/components"
)

// Done shows how the install ended: the summary, next steps and the LAN
// commands; after a failure, what failed and that the host was restored.
type Done struct {
	Summary provision.Summary
	Err     error
	Plan    *provision.Plan
	Probes  []components.Probe
	// Answers, when set after a successful install, can be saved as a
	// --config file (s), by default to SavePath.
	Answers  *provision.InstallInput
	SavePath string
	Colour   bool

	scroll  scroller
	save    *syncForm // the path field, while it is shown
	path    string
	saved   string // where the answers were saved
	saveErr error
}

// SavedMsg reports the answers file written (or why not).
type SavedMsg struct {
	Path string
	Err  error
}

var saveKey = key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "save answers as --config file"))

// Saving reports whether the path field is shown (letters are typed).
func (d *Done) Saving() bool { return d.save != nil }

func (d *Done) canSave() bool { return d.Answers != nil && d.Err == nil && d.Summary.OK }

func (*Done) Title() string { return "Done" }

func (d *Done) Update(msg tea.Msg, f Frame) tea.Cmd {
	if m, ok := msg.(SavedMsg); ok {
		d.saved, d.saveErr = m.Path, m.Err
		if m.Err != nil {
			d.saved = ""
		}
		d.scroll.off = math.MaxInt // the outcome is the last lines: show it
		return nil
	}
	if d.save != nil {
		if k, ok := msg.(tea.KeyPressMsg); ok && k.String() == "esc" {
			d.save = nil
			return nil
		}
		cmd := d.save.update(msg)
		if d.save.form.State == huh.StateCompleted {
			d.save = nil
			return tea.Batch(cmd, saveAnswers(strings.TrimSpace(d.path), *d.Answers))
		}
		return cmd
	}
	d.scroll.update(msg, f)
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil
	}
	if d.canSave() && key.Matches(k, saveKey) {
		d.path = d.SavePath
		if d.saved != "" {
			d.path = d.saved
		}
		theme := huh.ThemeFunc(huh.ThemeBase)
		if d.Colour {
			theme = huh.ThemeFunc(huh.ThemeCharm)
		}
		d.save = &syncForm{form: huh.NewForm(huh.NewGroup(
			huh.NewInput().Key("path").Title("Save the answers to").
				Description("a YAML file for `vcpe install --yes --config FILE`; the key is never written").
				Value(&d.path).Validate(func(s string) error {
				if strings.TrimSpace(s) == "" {
					return errors.New("enter a file name, e.g. vcpe-install.yaml")
				}
				return nil
			}),
		)).WithShowHelp(false).WithShowErrors(true).WithTheme(theme).WithWidth(min(f.Width, 100))}
		return d.save.form.Init()
	}
	if key.Matches(k, f.Keys.Continue, f.Keys.Quit) {
		return msgCmd(FinishMsg{})
	}
	return nil
}

// saveAnswers writes the answers file (0600, atomically) in a command.
func saveAnswers(path string, in provision.InstallInput) tea.Cmd {
	return func() tea.Msg {
		abs, err := filepath.Abs(path)
		if err != nil {
			return SavedMsg{Err: fmt.Errorf("save answers to %s: %w", path, err)}
		}
		b, err := in.ConfigFile()
		if err == nil {
			err = atomicfile.WriteFile(abs, b, 0o600)
		}
		if err != nil {
			return SavedMsg{Err: fmt.Errorf("save answers: %w", err)}
		}
		return SavedMsg{Path: abs}
	}
}

// saveLines offer to save the answers, or say where they were saved.
func (d *Done) saveLines(f Frame) []string {
	if !d.canSave() {
		return nil
	}
	var l []string
	add := func(s string) { l = append(l, wrap(s, f.Width)...) }
	l = append(l, "", f.Styles.Bold.Render("Set up the next site the same way"))
	switch {
	case d.save != nil:
		l = append(l, d.save.view(f)...)
	case d.saved != "":
		add("  saved to " + d.saved + " (0600); on the next host, with its own SN and key:")
		add("  vcpe install --yes --config " + d.saved + " --sn SN --key-file FILE")
	default:
		add("  press s to save these answers as a YAML file for `vcpe install --yes --config FILE` (the device key is never written)")
	}
	if d.saveErr != nil {
		add("  " + f.Styles.Fail.Render("✗ ") + d.saveErr.Error())
	}
	return l
}

// DoneLines renders the outcome as lines (also used by the plain mode).
func DoneLines(sum provision.Summary, err error, plan *provision.Plan, probes []components.Probe, s components.Styles, width int) []string {
	var l []string
	add := func(str string) { l = append(l, wrap(str, width)...) }
	switch {
	case err == nil && sum.OK:
		add(s.OK.Render("✓ Installed.") + " The tunnel is up and this device is registered.")
	case sum.RolledBack:
		add(s.Fail.Render("✗ The install did not complete: ") + errText(err, sum))
		add("Every change it made was undone; the host is as it was.")
	default:
		add(s.Fail.Render("✗ Stopped: ") + errText(err, sum))
	}
	l = append(l, "")
	for _, st := range sum.Steps {
		l = append(l, wrapHanging(fmt.Sprintf("%s %-12s ", s.Badge(StepState(st.Status), ""), st.Step), st.Message, width)...)
	}
	if len(probes) > 0 {
		l = append(l, "", s.Bold.Render("Connectivity"))
		for _, p := range probes {
			add("  " + p.Summary())
		}
	}
	if err == nil && sum.OK {
		if plan != nil && len(plan.LANCommands) > 0 {
			l = append(l, "", s.Bold.Render("Next: point the LAN at this device"))
			for _, c := range plan.LANCommands {
				add("  " + c)
			}
		}
		l = append(l, "", s.Bold.Render("Then"))
		add("  vcpe status        tunnel, peers and routes")
		add("  vcpe diag          probes and the diagnosis suite")
		add("  vcpe uninstall     undo everything this install did")
	} else {
		l = append(l, "", s.Bold.Render("Next"))
		add("  fix the cause above, then run `vcpe install` again;")
		add("  `vcpe precheck` re-checks the host without changing it.")
	}
	return l
}

func errText(err error, sum provision.Summary) string {
	if err != nil {
		return err.Error()
	}
	return sum.Error
}

func (d *Done) View(f Frame) string {
	lines := DoneLines(d.Summary, d.Err, d.Plan, d.Probes, f.Styles, f.Width)
	save := d.saveLines(f)
	if d.save != nil {
		// The path field is typed into: keep it on screen.
		top := max(len(lines)+len(save)-f.Height, 0)
		return clipLines(append(lines, save...)[top:], f.Height)
	}
	return d.scroll.clip(append(lines, save...), f)
}

func (d *Done) Help(f Frame) []key.Binding {
	if d.save != nil {
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "save")), key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel"))}
	}
	out := []key.Binding{key.NewBinding(key.WithKeys("enter", "q"), key.WithHelp("enter/q", "exit"))}
	if d.canSave() {
		out = append(out, saveKey)
	}
	return append(out, scrollKeys(f)...)
}
