package suite

import (
	"cmp"
	"slices"
)

// Categories of findings.
const (
	CatConfig  = "configuration"
	CatLink    = "service link"
	CatQuality = "internet quality"
)

// Severities of findings.
const (
	SevError   = "error"
	SevWarning = "warning"
	SevOK      = "ok"
)

// Finding is one judgement of the suite.
type Finding struct {
	// ID is stable across releases: "wan.loss", "tunnel.handshake".
	ID       string   `json:"id"`
	Category string   `json:"category"`
	Severity string   `json:"severity"`
	Title    string   `json:"title"`
	Evidence []string `json:"evidence,omitempty"` // the measured facts
	Fix      string   `json:"fix,omitempty"`      // the exact command or action
	// CausedBy names the findings (present and not ok) this one follows
	// from; a finding without causes is a root cause.
	CausedBy []string `json:"caused_by,omitempty"`
}

// Root reports whether f follows from no other finding.
func (f Finding) Root() bool { return len(f.CausedBy) == 0 }

// Failed reports whether any finding is an error.
func Failed(fs []Finding) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Severity == SevError })
}

func sevRank(s string) int {
	switch s {
	case SevError:
		return 0
	case SevWarning:
		return 1
	}
	return 2
}

// settle keeps in each finding's CausedBy only the causes that were found
// (not ok), then orders the findings: errors before warnings before ok;
// within a severity, root causes first; then by the rule's priority (the
// order of the rules in Diagnose).
func settle(fs []Finding) []Finding {
	bad := map[string]bool{}
	for _, f := range fs {
		if f.Severity != SevOK {
			bad[f.ID] = true
		}
	}
	prio := map[string]int{}
	for i := range fs {
		prio[fs[i].ID] = i
		var keep []string
		if fs[i].Severity != SevOK {
			for _, c := range fs[i].CausedBy {
				if bad[c] && c != fs[i].ID && !slices.Contains(keep, c) {
					keep = append(keep, c)
				}
			}
		}
		fs[i].CausedBy = keep
	}
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if c := cmp.Compare(sevRank(a.Severity), sevRank(b.Severity)); c != 0 {
			return c
		}
		if a.Root() != b.Root() {
			if a.Root() {
				return -1
			}
			return 1
		}
		return cmp.Compare(prio[a.ID], prio[b.ID])
	})
	return fs
}
