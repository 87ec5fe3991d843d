package suite

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is the --json document of `vcpe diag`.
type Report struct {
	OK         bool      `json:"ok"` // no finding is an error
	Time       time.Time `json:"time"`
	DurationMS int64     `json:"duration_ms,omitempty"`
	Source     string    `json:"source"` // "live" or the bundle's path
	Findings   []Finding `json:"findings"`
}

// NewReport wraps findings.
func NewReport(fs []Finding, at time.Time, took time.Duration, source string) Report {
	if fs == nil {
		fs = []Finding{}
	}
	return Report{OK: !Failed(fs), Time: at, DurationMS: took.Milliseconds(), Source: source, Findings: fs}
}

// WriteJSON writes the report as an indented JSON document.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

var categories = []Category{CatConfig, CatLAN, CatLink, CatQuality}

// mark is a finding's severity as text; colour only adds to it.
func mark(sev Severity, color bool) string {
	m := map[Severity]string{SevError: "ERROR", SevWarning: "WARN ", SevOK: "ok   "}[sev]
	if !color {
		return m
	}
	c := map[Severity]string{SevError: "31;1", SevWarning: "33", SevOK: "32"}[sev]
	return "\x1b[" + c + "m" + m + "\x1b[0m"
}

// WriteText writes the report for a person: the top finding first with
// its evidence and fix, then every finding grouped by category.
func (r Report) WriteText(w io.Writer, color bool) error {
	var b strings.Builder
	if len(r.Findings) > 0 && r.Findings[0].Severity != SevOK {
		top := r.Findings[0]
		fmt.Fprintf(&b, "TOP FINDING: %s [%s]\n", top.Title, top.ID)
		for _, ev := range top.Evidence {
			fmt.Fprintf(&b, "  evidence: %s\n", ev)
		}
		if top.Fix != "" {
			fmt.Fprintf(&b, "  fix: %s\n", top.Fix)
		}
		b.WriteString("\n")
	} else {
		b.WriteString("No problem found.\n\n")
	}
	for _, cat := range categories {
		var in []Finding
		for _, f := range r.Findings {
			if f.Category == cat {
				in = append(in, f)
			}
		}
		if len(in) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s\n", strings.ToUpper(string(cat[:1]))+string(cat[1:]))
		for _, f := range in {
			fmt.Fprintf(&b, "  %s %s [%s]\n", mark(f.Severity, color), f.Title, f.ID)
			if f.Severity == SevOK {
				continue
			}
			if len(f.CausedBy) > 0 {
				fmt.Fprintf(&b, "        caused by: %s\n", joinIDs(f.CausedBy))
			}
			for _, ev := range f.Evidence {
				fmt.Fprintf(&b, "        evidence: %s\n", ev)
			}
			if f.Fix != "" && len(f.CausedBy) == 0 {
				fmt.Fprintf(&b, "        fix: %s\n", f.Fix)
			}
		}
	}
	c := map[Severity]int{}
	for _, f := range r.Findings {
		c[f.Severity]++
	}
	fmt.Fprintf(&b, "\n%d errors, %d warnings, %d ok", c[SevError], c[SevWarning], c[SevOK])
	if r.DurationMS > 0 {
		fmt.Fprintf(&b, " (%.1fs)", float64(r.DurationMS)/1000)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func joinIDs(ids []FindingID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}
