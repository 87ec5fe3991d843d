package pages

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// Welcome explains what the wizard will do.
type Welcome struct{}

func (*Welcome) Title() string { return "Welcome" }

func (*Welcome) Update(msg tea.Msg, f Frame) tea.Cmd {
	if k, ok := msg.(tea.KeyPressMsg); ok && key.Matches(k, f.Keys.Continue) {
		return msgCmd(StartMsg{})
	}
	return nil
}

func (*Welcome) View(f Frame) string {
	var lines []string
	lines = append(lines, f.Styles.Title.Render("Turn this host into a vCPE"), "")
	for _, p := range []string{
		"This wizard joins this site's LAN to your cloud network over a WireGuard tunnel. It will:",
		"  1. check the host (read-only) and explain every problem with its fix;",
		"  2. ask for the device's serial number and key from the controller;",
		"  3. ask which LAN prefixes to advertise;",
		"  4. show you every change before making it;",
		"  5. apply the changes, start the tunnel and test connectivity.",
		"",
		"Nothing on this host changes until you accept the plan. If anything fails, or you quit while changes are being made, everything done so far is undone.",
		"",
		"For scripts and fleet tools, run `vcpe install --yes` instead.",
	} {
		lines = append(lines, wrap(p, f.Width)...)
	}
	return clipLines(lines, f.Height)
}

func (*Welcome) Help(f Frame) []key.Binding { return []key.Binding{f.Keys.Continue, f.Keys.Quit} }
