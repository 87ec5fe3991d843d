package suite

import (
	"strings"
	"testing"
)

func TestTextNamesTopFindingAndNoColourWithoutTTY(t *testing.T) {
	e := healthy()
	e.Host.Routes = nil
	rep := NewReport(Diagnose(e), t0, 0, "live")
	var b strings.Builder
	if err := rep.WriteText(&b, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, "TOP FINDING: Learned routes missing") || !strings.Contains(out, "ip route replace 198.19.2.0/24 dev vcpe0 proto 118 table 51820") {
		t.Errorf("text output:\n%s", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour codes without colour")
	}
	for _, h := range []string{"Configuration\n", "Service link\n", "Internet quality\n"} {
		if !strings.Contains(out, h) {
			t.Errorf("no %q group", h)
		}
	}
}
