package pages

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/openvcpe/vcpe/provision"
)

// ReviewDoneMsg is the operator's answer to the plan.
type ReviewDoneMsg struct{ Accept bool }

// Review shows the plan (every host change, the routes, the LAN commands,
// warnings) and asks to accept or decline it.
type Review struct {
	Plan     provision.Plan
	answered bool
	scroll   scroller
}

// NewReview shows a plan.
func NewReview(p provision.Plan) *Review { return &Review{Plan: p} }

func (*Review) Title() string { return "Review the plan" }

func (r *Review) Update(msg tea.Msg, f Frame) tea.Cmd {
	r.scroll.update(msg, f)
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || r.answered {
		return nil
	}
	switch {
	case key.Matches(k, f.Keys.Accept):
		r.answered = true
		return msgCmd(ReviewDoneMsg{Accept: true})
	case key.Matches(k, f.Keys.Decline):
		r.answered = true
		return msgCmd(ReviewDoneMsg{Accept: false})
	}
	return nil
}

// PlanLines renders a plan as text lines (also used by the plain mode).
func PlanLines(p provision.Plan, width int, bold func(string) string) []string {
	var l []string
	add := func(s string) { l = append(l, wrap(s, width)...) }
	add(fmt.Sprintf("Device %s, %s, overlay %s, hub %s", p.SN, orDash(p.Role), orDash(p.OverlayAddr.String()), orDash(p.HubEndpoint.String())))
	if p.StateDir != "" {
		add("State in " + p.StateDir)
	}
	if len(p.Warnings) > 0 {
		l = append(l, "", bold("Warnings"))
		for _, w := range p.Warnings {
			add("  ! " + w)
		}
	}
	l = append(l, "", bold(fmt.Sprintf("Changes to this host (%d, in order)", len(p.Changes))))
	for i, c := range p.Changes {
		add(fmt.Sprintf("  %d. %s", i+1, c))
	}
	var adv []string
	for _, a := range p.Advertised {
		adv = append(adv, a.String())
	}
	l = append(l, "", bold("Routes"))
	add("  advertised: " + orDash(strings.Join(adv, ", ")))
	var rs []string
	for _, r := range p.Routes {
		rs = append(rs, r.String())
	}
	add("  into the tunnel: " + orDash(strings.Join(rs, ", ")))
	if len(p.LANCommands) > 0 {
		l = append(l, "", bold("On the LAN's router or hosts, afterwards"))
		for _, c := range p.LANCommands {
			add("  " + c)
		}
	}
	return l
}

func orDash(s string) string {
	if s == "" || s == "invalid Prefix" || s == "invalid AddrPort" {
		return "—"
	}
	return s
}

func (r *Review) View(f Frame) string {
	head := wrap("Nothing has changed yet. Accept to apply exactly these changes; a failure or quitting undoes them.", f.Width)
	head = append(head, "")
	sub := f
	sub.Height = f.Height - len(head)
	return strings.Join(head, "\n") + "\n" + r.scroll.clip(PlanLines(r.Plan, f.Width, func(s string) string { return f.Styles.Bold.Render(s) }), sub)
}

func (r *Review) Help(f Frame) []key.Binding {
	return append([]key.Binding{f.Keys.Accept, f.Keys.Decline}, append(scrollKeys(f), f.Keys.Quit)...)
}
