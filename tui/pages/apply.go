package pages

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/openvcpe/vcpe/provision"
	"github.com/openvcpe/vcpe/tui/components"
)

// Apply shows the install steps' progress from the Engine's events.
type Apply struct {
	Steps  components.StepProgress
	scroll scroller
}

// StepTitles are the titles shown for the Engine's steps before their
// started event names them.
var StepTitles = map[provision.StepID]string{
	provision.StepPrecheck:     "Check the host",
	provision.StepRegister:     "Register with the controller",
	provision.StepPlan:         "Plan the changes",
	provision.StepReview:       "Review the plan",
	provision.StepApply:        "Apply the changes",
	provision.StepStart:        "Start the dataplane daemon",
	provision.StepTunnel:       "Wait for the tunnel",
	provision.StepConnectivity: "Test connectivity",
	provision.StepRollback:     "Undo the changes",
}

// NewApply lists the steps after the precheck as pending.
func NewApply() *Apply {
	a := &Apply{}
	for _, id := range []provision.StepID{provision.StepRegister, provision.StepPlan, provision.StepReview, provision.StepApply, provision.StepStart, provision.StepTunnel, provision.StepConnectivity} {
		a.Steps.Set(components.StepItem{ID: string(id), Title: StepTitles[id]})
	}
	return a
}

// StepState maps an Engine status to a component state.
func StepState(s provision.Status) components.State {
	switch s {
	case provision.StatusOK:
		return components.OK
	case provision.StatusUnchanged:
		return components.Unchanged
	case provision.StatusWarn:
		return components.Warn
	case provision.StatusFailed:
		return components.Fail
	case provision.StatusSkipped:
		return components.Skipped
	}
	return components.Pending
}

// Event applies an Engine event.
func (a *Apply) Event(ev provision.Event) {
	it, ok := a.Steps.Get(string(ev.Step))
	if !ok {
		it = components.StepItem{ID: string(ev.Step), Title: StepTitles[ev.Step]}
	}
	switch ev.Kind {
	case provision.EventStarted:
		it.State = components.Running
		if ev.Message != "" {
			if it.Title == "" {
				it.Title = ev.Message
			} else if ev.Step == provision.StepRollback {
				it.Message = ev.Message
			}
		}
	case provision.EventProgress:
		it.State = components.Running
		it.Message = ev.Message
	case provision.EventFinished:
		it.State = StepState(ev.Status)
		it.Message = ev.Message
	}
	if it.Title == "" {
		it.Title = string(ev.Step)
	}
	a.Steps.Set(it)
}

func (*Apply) Title() string { return "Apply" }

func (a *Apply) Update(msg tea.Msg, f Frame) tea.Cmd {
	a.scroll.update(msg, f)
	return nil
}

func (a *Apply) View(f Frame) string {
	head := []string{fmt.Sprintf("Applying the plan: %d of %d step(s) done.", a.Steps.Done(), len(a.Steps.Steps)), ""}
	sub := f
	sub.Height = f.Height - len(head)
	return strings.Join(head, "\n") + "\n" + a.scroll.clip(strings.Split(a.Steps.View(f.Styles, f.Spin, f.Width), "\n"), sub)
}

func (a *Apply) Help(f Frame) []key.Binding { return append(scrollKeys(f), f.Keys.Quit) }
