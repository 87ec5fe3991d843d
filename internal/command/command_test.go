package command

import (
	"context"
	"strings"
	"testing"
)

func TestExec(t *testing.T) {
	ctx := context.Background()
	out, err := Exec{}.Output(ctx, "sh", "-c", "echo out; echo err >&2")
	if err != nil || string(out) != "out\n" {
		t.Fatalf("Output = %q, %v; want stdout only, no error", out, err)
	}
	// stderr is "lA\nlB": neither line is in the command's own text.
	_, err = Exec{}.Output(ctx, "sh", "-c", "printf 'l1\\nl2\\n' | tr 12 AB >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "sh -c") || !strings.Contains(err.Error(), "lA") ||
		strings.Contains(err.Error(), "lB") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("failure = %v; want the command, the first stderr line and the exit status", err)
	}
	if _, err := (Exec{}).Output(ctx, "vcpe-no-such-command"); err == nil || !strings.Contains(err.Error(), "vcpe-no-such-command") {
		t.Errorf("missing command = %v; want an error naming it", err)
	}
	var called string
	f := Func(func(_ context.Context, name string, args ...string) ([]byte, error) {
		called = name + " " + strings.Join(args, " ")
		return []byte("x"), nil
	})
	var r Runner = f
	if out, _ := r.Output(ctx, "systemctl", "daemon-reload"); string(out) != "x" || called != "systemctl daemon-reload" {
		t.Errorf("Func: %q, %q", out, called)
	}
}
