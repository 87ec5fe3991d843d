package pages

import (
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/openvcpe/vcpe/precheck"
	"github.com/openvcpe/vcpe/provision"
	"github.com/openvcpe/vcpe/tui/components"
)

// PrecheckDecisionMsg is the operator's answer to the precheck report.
type PrecheckDecisionMsg struct{ Decision provision.PrecheckDecision }

// Precheck shows the host checks live, then asks whether to continue,
// re-run or abort. Failed checks block continuing; warnings may be
// accepted.
type Precheck struct {
	List   components.CheckList
	Report *precheck.Report // set once the Engine asks
	// Notice explains why a key did nothing (continuing with failures).
	Notice string
	scroll scroller
}

// NewPrecheck lists the catalogue's checks as pending.
func NewPrecheck() *Precheck {
	p := &Precheck{}
	p.Reset()
	return p
}

// Reset shows every check pending again (a re-run starts).
func (p *Precheck) Reset() {
	p.List = components.CheckList{}
	for _, c := range precheck.Catalogue() {
		p.List.Set(components.CheckItem{ID: string(c.ID), Title: c.Title, State: components.Pending})
	}
	p.Report, p.Notice = nil, ""
}

// Running marks every check not yet finished as running.
func (p *Precheck) Running() {
	for i := range p.List.Items {
		if p.List.Items[i].State == components.Pending {
			p.List.Items[i].State = components.Running
		}
	}
}

// SetResult shows one check's result.
func (p *Precheck) SetResult(r precheck.Result) {
	title := r.Title
	for _, it := range p.List.Items {
		if it.ID == string(r.ID) && title == "" {
			title = it.Title
		}
	}
	if title == "" {
		title = string(r.ID)
	}
	p.List.Set(components.CheckItem{ID: string(r.ID), Title: title, State: CheckState(r.Status), Detail: r.Detail, Fix: r.Fix})
}

// Ask shows the full report and waits for the decision.
func (p *Precheck) Ask(rep precheck.Report) {
	for _, r := range rep.Checks {
		p.SetResult(r)
	}
	p.Report = &rep
	p.Notice = ""
}

// CheckState maps a precheck status to a component state.
func CheckState(s precheck.Status) components.State {
	switch s {
	case precheck.Pass:
		return components.OK
	case precheck.Warn:
		return components.Warn
	case precheck.Fail:
		return components.Fail
	case precheck.Skip:
		return components.Skipped
	}
	return components.Pending
}

func (*Precheck) Title() string { return "Precheck" }

func (p *Precheck) Update(msg tea.Msg, f Frame) tea.Cmd {
	p.scroll.update(msg, f)
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || p.Report == nil {
		return nil
	}
	switch {
	case key.Matches(k, f.Keys.Continue):
		if n := p.Report.Counts()[precheck.Fail]; n > 0 {
			p.Notice = fmt.Sprintf("Cannot continue: %d check(s) failed. Apply the fixes shown, then press r to re-run.", n)
			return nil
		}
		return msgCmd(PrecheckDecisionMsg{provision.PrecheckContinue})
	case key.Matches(k, f.Keys.Rerun):
		p.Reset()
		return msgCmd(PrecheckDecisionMsg{provision.PrecheckRerun})
	case key.Matches(k, f.Keys.Abort):
		return msgCmd(PrecheckDecisionMsg{provision.PrecheckAbort})
	}
	return nil
}

func (p *Precheck) View(f Frame) string {
	var head []string
	if p.Report == nil {
		head = append(head, "Checking the host (read-only)…")
	} else {
		c := p.Report.Counts()
		head = append(head, fmt.Sprintf("%d passed, %d warning(s), %d failed, %d not checked.",
			c[precheck.Pass], c[precheck.Warn], c[precheck.Fail], c[precheck.Skip]))
		switch {
		case p.Notice != "":
			head = append(head, wrap(f.Styles.Fail.Render(p.Notice), f.Width)...)
		case c[precheck.Fail] > 0:
			head = append(head, wrap("Failed checks block the install: apply each fix, then re-run.", f.Width)...)
		case c[precheck.Warn] > 0:
			head = append(head, wrap("Read the warnings; you may continue despite them.", f.Width)...)
		default:
			head = append(head, "The host is ready.")
		}
	}
	head = append(head, "")
	list := p.List
	if p.Report != nil {
		// Problems first: they are what the operator must read.
		list.Items = slices.Clone(list.Items)
		slices.SortStableFunc(list.Items, func(a, b components.CheckItem) int { return rank(a.State) - rank(b.State) })
	}
	body := list.Lines(f.Styles, f.Spin, f.Width)
	sub := f
	sub.Height = f.Height - len(head)
	return strings.Join(head, "\n") + "\n" + p.scroll.clip(body, sub)
}

// rank orders states for the finished report: fail, warn, skip, ok.
func rank(s components.State) int {
	switch s {
	case components.Fail:
		return 0
	case components.Warn:
		return 1
	case components.Skipped:
		return 2
	}
	return 3
}

func (p *Precheck) Help(f Frame) []key.Binding {
	if p.Report == nil {
		return append(scrollKeys(f), f.Keys.Quit)
	}
	keys := []key.Binding{}
	if p.Report.Counts()[precheck.Fail] == 0 {
		keys = append(keys, f.Keys.Continue)
	}
	return append(append(keys, f.Keys.Rerun, f.Keys.Abort), append(scrollKeys(f), f.Keys.Quit)...)
}
