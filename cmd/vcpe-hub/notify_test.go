package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestServeLoggerLeavesTheTimeToTheJournal(t *testing.T) {
	for _, journal := range []bool{false, true} {
		var b bytes.Buffer
		newServeLogger(&b, journal).Info("hello", "k", "v")
		if got := strings.Contains(b.String(), "time="); got == journal || !strings.Contains(b.String(), "msg=hello k=v") {
			t.Errorf("journal=%v: %q", journal, b.String())
		}
	}
}
