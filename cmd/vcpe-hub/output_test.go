package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestTableEscapesUntrustedText: an SN or error holding terminal escape
// codes, tabs or newlines is printed escaped, never raw.
func TestTableEscapesUntrustedText(t *testing.T) {
	var b bytes.Buffer
	table(&b, "WHO\tTARGET", [][]string{{"device@198.18.0.99", "VC\x1b[2J\x1b]0;pwned\x07\tX\nY"}, {"ok", "VC3KQ7M2ZB9XW4TD"}})
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07") || strings.Count(out, "\n") != 3 {
		t.Errorf("table output holds raw control characters:\n%q", out)
	}
	if !strings.Contains(out, `VC\x1b[2J`) || !strings.Contains(out, "VC3KQ7M2ZB9XW4TD") {
		t.Errorf("table output:\n%s", out)
	}
}
