package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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

func TestWriteResult(t *testing.T) {
	v := map[string]int{"n": 1}
	text := func(w io.Writer) { fmt.Fprintln(w, "n is 1") }
	var j, h bytes.Buffer
	if err := WriteResult(&j, true, v, text); err != nil || j.String() != "{\n  \"n\": 1\n}\n" {
		t.Errorf("--json: %q, %v", j.String(), err)
	}
	if err := WriteResult(&h, false, v, text); err != nil || h.String() != "n is 1\n" {
		t.Errorf("text: %q, %v", h.String(), err)
	}
}
