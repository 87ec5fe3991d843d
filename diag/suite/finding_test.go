package suite

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/precheck"
)

// corpus is every evidence the unit tests plant: healthy, each rule case,
// and with the controller's probe targets.
func corpus() []Evidence {
	out := []Evidence{healthy()}
	for _, c := range ruleCases() {
		e := healthy()
		c.plant(&e)
		out = append(out, e)
		e = healthy()
		withTargets(&e)
		c.plant(&e)
		out = append(out, e)
	}
	// Every precheck result the suite repeats, failing; multi-attach
	// without LAN targets answering; the outside-in check.
	e := healthy()
	for _, id := range precheckRules {
		e.Precheck.Checks = append(e.Precheck.Checks, precheck.Result{ID: id, Status: precheck.Fail, Detail: "planted"})
	}
	no := false
	e.Status.HA = &dataplane.HAStatus{Check: dataplane.HealthCheck{Interval: 100 * time.Millisecond, Failures: 3}, LastReply: t0, LANOK: &no}
	e.Reach = &diag.ReachReport{Ports: []diag.PortReach{{ReachPort: api.ReachPort{Proto: "udp", Port: 4500}, Status: diag.ReachNotArrived}}}
	out = append(out, e)
	e = healthy()
	e.Status.HA = &dataplane.HAStatus{Check: dataplane.HealthCheck{Interval: 100 * time.Millisecond, Failures: 3}, LastReply: t0}
	out = append(out, e)
	return out
}

// findingConstants are the FindingID constants declared in finding.go, by
// their Go name, read from its syntax tree.
func findingConstants(t *testing.T) map[string]FindingID {
	f, err := parser.ParseFile(token.NewFileSet(), "finding.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]FindingID{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			v := s.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "FindingID" || len(v.Values) != 1 {
				continue
			}
			lit, ok := v.Values[0].(*ast.BasicLit)
			if !ok {
				continue
			}
			s, _ := strconv.Unquote(lit.Value)
			out[v.Names[0].Name] = FindingID(s)
		}
	}
	if len(out) < 10 {
		t.Fatalf("found %d FindingID constants in finding.go; the parser is out of step with the file", len(out))
	}
	return out
}

// TestCausesAreEmitted: every ID a rule names in CausedBy (before settle
// keeps only the found ones) is an ID some rule emits, and every declared
// finding ID is emitted by some rule on the test corpus. A renamed or
// misspelled cause fails here.
func TestCausesAreEmitted(t *testing.T) {
	emitted := map[FindingID]bool{}
	named := map[FindingID]FindingID{} // cause → a finding naming it
	for _, e := range corpus() {
		d := &diagnosis{e: e}
		d.run()
		for _, f := range d.out {
			emitted[f.ID] = true
			for _, c := range f.CausedBy {
				named[c] = f.ID
			}
		}
	}
	for c, by := range named {
		if !emitted[c] {
			t.Errorf("%s names %s as a cause; no rule emits it on the test corpus", by, c)
		}
	}
	for name, id := range findingConstants(t) {
		if !emitted[id] {
			t.Errorf("%s (%s) is declared; no rule emits it on the test corpus", name, id)
		}
	}
}
