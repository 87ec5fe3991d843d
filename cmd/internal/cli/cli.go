// Package cli holds what every vcpe command shares: the exit-code contract
// (0 success, 1 a check or step failed, 2 usage or input error) and the
// error types that carry it. It does no I/O beyond writing the final error.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes, a contract with scripts: 0 success (warnings allowed), 1 a
// check or step failed, 2 usage or input error.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// UsageError is bad input from the user: a flag, a file or a value. Its
// message names the field and the fix.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// FailedError means the command ran and what it checked or did failed. When
// Quiet is set the command has already reported the failure (for example in
// its --json document) and nothing more is printed.
type FailedError struct {
	Err   error
	Quiet bool
}

func (e *FailedError) Error() string { return e.Err.Error() }
func (e *FailedError) Unwrap() error { return e.Err }

// Failed returns a FailedError that has already been reported to the user.
func Failed(err error) error { return &FailedError{Err: err, Quiet: true} }

// ExitCode maps an error returned by a command to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitFailed
}

// Report writes err to w the way every vcpe binary does ("vcpe: <err>"),
// unless the command has already reported it, and returns the exit code.
func Report(w io.Writer, prog string, err error) int {
	if err == nil {
		return ExitOK
	}
	var fe *FailedError
	if !(errors.As(err, &fe) && fe.Quiet) {
		fmt.Fprintf(w, "%s: %v\n", prog, err)
	}
	return ExitCode(err)
}

// Execute runs a command tree under the exit-code contract and returns the
// process exit code: bad flags, an unknown command or wrong arguments
// (anything that fails before a command's own code starts) exit 2 with a
// pointer to --help; a command's errors exit as ExitCode says. It sets the
// root's PersistentPreRun and silences cobra's own error printing.
func Execute(ctx context.Context, root *cobra.Command, args []string, stderr io.Writer) int {
	cobra.EnableTraverseRunHooks = true
	started := false
	root.PersistentPreRun = func(*cobra.Command, []string) { started = true }
	root.SilenceUsage, root.SilenceErrors = true, true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil && !started {
		err = &UsageError{Err: fmt.Errorf("%w (see '%s --help')", err, root.Name())}
	}
	return Report(stderr, root.Name(), err)
}

// WriteJSON writes v as a command's indented --json document.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// WriteResult writes a command's result: v as the --json document when
// asJSON, else text's rendering of it.
func WriteResult(w io.Writer, asJSON bool, v any, text func(io.Writer)) error {
	if asJSON {
		return WriteJSON(w, v)
	}
	text(w)
	return nil
}
