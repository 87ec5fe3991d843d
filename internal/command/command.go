// Package command is the project's one way to run a system command
// (iptables-save, nft, systemctl …) behind a small interface, so tests can
// stand in for the commands.
//
// It imports nothing of the project.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs a command and returns its standard output.
type Runner interface {
	Output(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Func adapts a function to Runner (tests use it for fakes).
type Func func(ctx context.Context, name string, args ...string) ([]byte, error)

// Output calls f.
func (f Func) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	return f(ctx, name, args...)
}

// Exec runs real commands with os/exec.
type Exec struct{}

// Output runs name with args and returns its standard output. A failure
// names the command and carries the first line of its standard error.
func (Exec) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		return out, nil
	}
	what := strings.Join(append([]string{name}, args...), " ")
	if line := firstLine(stderr.String()); line != "" {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out, fmt.Errorf("%s: %s (%v)", what, line, err)
		}
		return out, fmt.Errorf("%s: %w: %s", what, err, line)
	}
	return out, fmt.Errorf("%s: %w", what, err)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
