package cli

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"plain error", errors.New("boom"), ExitFailed},
		{"usage", Usagef("--root %q: no such directory", "/x"), ExitUsage},
		{"wrapped usage", fmt.Errorf("precheck: %w", Usagef("bad")), ExitUsage},
		{"failed", Failed(errors.New("2 checks failed")), ExitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d; want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestReport(t *testing.T) {
	var buf bytes.Buffer
	if code := Report(&buf, "vcpe", Failed(errors.New("quiet"))); code != ExitFailed || buf.Len() != 0 {
		t.Errorf("quiet failure: code %d, output %q; want 1 and nothing", code, buf.String())
	}
	buf.Reset()
	if code := Report(&buf, "vcpe", Usagef("--sn: empty; pass the serial number")); code != ExitUsage || buf.String() != "vcpe: --sn: empty; pass the serial number\n" {
		t.Errorf("usage: code %d, output %q", code, buf.String())
	}
}
