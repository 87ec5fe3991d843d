package components

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// StepItem is one step of a StepProgress.
type StepItem struct {
	ID      string
	Title   string
	State   State
	Message string // the latest progress or result message
}

// StepProgress is the list of install steps with their state and latest
// message.
type StepProgress struct {
	Steps []StepItem
}

// Set replaces the step with the same ID, or appends it.
func (p *StepProgress) Set(it StepItem) {
	for i := range p.Steps {
		if p.Steps[i].ID == it.ID {
			p.Steps[i] = it
			return
		}
	}
	p.Steps = append(p.Steps, it)
}

// Get returns the step with that ID.
func (p StepProgress) Get(id string) (StepItem, bool) {
	for _, s := range p.Steps {
		if s.ID == id {
			return s, true
		}
	}
	return StepItem{}, false
}

// Done counts the finished steps.
func (p StepProgress) Done() int {
	n := 0
	for _, s := range p.Steps {
		if s.State != Pending && s.State != Running {
			n++
		}
	}
	return n
}

// View renders the steps, one line each plus a wrapped message line.
func (p StepProgress) View(s Styles, spin string, width int) string {
	var out []string
	for _, st := range p.Steps {
		out = append(out, ansi.Truncate(s.Badge(st.State, spin)+" "+st.Title, width, "…"))
		if st.Message != "" && st.Message != st.Title {
			out = append(out, wrapIndent(st.Message, "         ", width)...)
		}
	}
	return strings.Join(out, "\n")
}
