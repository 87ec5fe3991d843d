package pages

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/x/ansi"

	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"
)

// syncForm drives a huh form so that moving to the next field happens in
// the same Update as the enter or tab that asked for it. huh itself moves
// in a command, asynchronously, so keys typed (or pasted) right after an
// enter could land in the field just left: a URL would get the first
// letter of the fingerprint.
type syncForm struct {
	form *huh.Form
	// submitting is set once the last field was accepted, until the form
	// completes: keys then are dropped rather than typed into the last
	// field (the device key).
	submitting bool
}

func (s *syncForm) apply(msg tea.Msg) tea.Cmd {
	m, cmd := s.form.Update(msg)
	s.form = m.(*huh.Form)
	return cmd
}

func (s *syncForm) update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		cmd := s.apply(msg)
		if s.submitting && fmt.Sprintf("%T", msg) == "huh.nextGroupMsg" && s.form.State == huh.StateNormal {
			s.submitting = false // the group refused to submit; typing works again
		}
		return cmd
	}
	if s.submitting {
		return nil
	}
	switch k.String() {
	case "enter", "tab":
		field := s.form.GetFocusedField()
		s.apply(k) // validates the field; its asynchronous NextField is replaced below
		if field.Error() != nil {
			return nil
		}
		cmd := s.apply(huh.NextField())
		if s.form.GetFocusedField() == field {
			s.submitting = true // it was the last field: the form completes next
		}
		return cmd
	case "shift+tab":
		return s.apply(huh.PrevField())
	}
	return s.apply(k)
}

// view is the form's view with its error lines (" * …", which huh wraps
// to column 0) wrapped again under their text, in the frame's Fail style.
func (s *syncForm) view(f Frame) []string {
	lines := strings.Split(s.form.View(), "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		l := ansi.Strip(lines[i])
		if !strings.HasPrefix(l, " * ") {
			out = append(out, lines[i])
			continue
		}
		for i+1 < len(lines) && lines[i+1] != "" && !strings.HasPrefix(ansi.Strip(lines[i+1]), " ") {
			i++
			l += " " + ansi.Strip(lines[i])
		}
		for _, w := range wrap(strings.TrimRight(l, " "), f.Width) {
			out = append(out, f.Styles.Fail.Render(w))
		}
	}
	return out
}
