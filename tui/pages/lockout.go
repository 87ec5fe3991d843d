package pages

import (
	"fmt"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/openvcpe/vcpe/provision"
)

// LockoutDoneMsg is the operator's answer: Force installs anyway.
type LockoutDoneMsg struct{ Force bool }

// Lockout is shown only when the plan would route a protected address
// (the SSH client, the controller, the hub) into the tunnel. It names the
// exact route and address and warns what overriding means; declining stops
// the install with nothing changed.
type Lockout struct {
	Err      provision.LockoutError
	answered bool
}

// NewLockout shows a lockout.
func NewLockout(e provision.LockoutError) *Lockout { return &Lockout{Err: e} }

// forceKey overrides the lockout guard; it is deliberately not enter or y.
var forceKey = key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "override (--force)"))

func (*Lockout) Title() string { return "Lockout guard" }

func (l *Lockout) Update(msg tea.Msg, f Frame) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || l.answered {
		return nil
	}
	switch {
	case key.Matches(k, forceKey):
		l.answered = true
		return msgCmd(LockoutDoneMsg{Force: true})
	case key.Matches(k, f.Keys.Decline):
		l.answered = true
		return msgCmd(LockoutDoneMsg{Force: false})
	}
	return nil
}

func (l *Lockout) View(f Frame) string {
	return clipLines(LockoutLines(l.Err, f.Styles.Warn.Render, f.Width), f.Height)
}

// LockoutLines explain a lockout: the route, what it captures, what
// overriding means (also used by the plain mode).
func LockoutLines(e provision.LockoutError, warn func(...string) string, width int) []string {
	var lines []string
	add := func(s string) { lines = append(lines, wrap(s, width)...) }
	add(warn("! This plan would cut this host off."))
	lines = append(lines, "")
	add(fmt.Sprintf("The route %s goes into the tunnel, and it contains %s, the address of %s.", e.Route, e.Protected.Addr, e.Protected.What))
	add(fmt.Sprintf("  route:     %s", e.Route))
	add(fmt.Sprintf("  captures:  %s (%s)", e.Protected.Addr, e.Protected.What))
	lines = append(lines, "")
	add("Override only if the path to that address really is meant to move into the tunnel: otherwise the SSH session hangs, or the device loses its controller or hub, as soon as vcped starts, and only console access can undo it.")
	lines = append(lines, "")
	add(fmt.Sprintf("Decline (n) to stop with nothing changed; then remove %s from the advertised prefixes or from the other sites', or connect from outside it.", e.Route))
	return lines
}

func (l *Lockout) Help(f Frame) []key.Binding {
	return []key.Binding{f.Keys.Decline, forceKey, f.Keys.Quit}
}
