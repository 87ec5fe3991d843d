package precheck

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

var statusWord = map[Status]struct{ word, symbol, color string }{
	Pass: {"PASS", "✓", "\x1b[32m"},
	Warn: {"WARN", "!", "\x1b[33m"},
	Fail: {"FAIL", "✗", "\x1b[31m"},
	Skip: {"SKIP", "-", "\x1b[2m"},
}

// WriteText writes the human report: one line per check (status word,
// symbol, ID, finding), the fix under anything that does not pass, and a
// summary line. Colour is an aid only (the word carries the meaning).
func (r Report) WriteText(w io.Writer, color bool) error {
	var b strings.Builder
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.ID))
	}
	for _, c := range r.Checks {
		s := statusWord[c.Status]
		mark := s.word + " " + s.symbol
		if color {
			mark = s.color + mark + "\x1b[0m"
		}
		fmt.Fprintf(&b, "%s  %-*s  %s\n", mark, width, c.ID, c.Detail)
		if c.Fix != "" && c.Status != Pass && c.Status != Skip {
			fmt.Fprintf(&b, "        %*s  fix: %s\n", width, "", c.Fix)
		}
	}
	n := r.Counts()
	verdict := "ready: nothing fails"
	if n[Warn] > 0 {
		verdict = "ready, with warnings: review them above"
	}
	if !r.OK {
		verdict = "NOT READY: fix the failures above"
	}
	fmt.Fprintf(&b, "\n%d checks: %d pass, %d warn, %d fail, %d skip; %s\n",
		len(r.Checks), n[Pass], n[Warn], n[Fail], n[Skip], verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as the stable --json document.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
