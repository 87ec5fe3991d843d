package pages

import (
	"fmt"

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
	scroll  scroller
}

func (*Done) Title() string { return "Done" }

func (d *Done) Update(msg tea.Msg, f Frame) tea.Cmd {
	d.scroll.update(msg, f)
	if k, ok := msg.(tea.KeyPressMsg); ok && key.Matches(k, f.Keys.Continue, f.Keys.Quit) {
		return msgCmd(FinishMsg{})
	}
	return nil
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
		add(fmt.Sprintf("%s %-12s %s", s.Badge(StepState(st.Status), ""), st.Step, st.Message))
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
	return d.scroll.clip(DoneLines(d.Summary, d.Err, d.Plan, d.Probes, f.Styles, f.Width), f)
}

func (d *Done) Help(f Frame) []key.Binding {
	return append([]key.Binding{key.NewBinding(key.WithKeys("enter", "q"), key.WithHelp("enter/q", "exit"))}, scrollKeys(f)...)
}
