package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/diag/suite"
	"github.com/openvcpe/vcpe/tui"
)

// runDiagTUI runs the live dashboard: rounds of the same suite `vcpe diag`
// runs, drawn as they arrive.
func runDiagTUI(cmd *cobra.Command, opts suite.Options) error {
	round := func(ctx context.Context, onSample func(string, diag.Sample)) (map[string]diag.Result, []suite.Finding) {
		o := opts
		o.OnSample = onSample
		ev := suite.Collect(ctx, o)
		return ev.Probes, suite.Diagnose(*ev)
	}
	err := tui.RunDiag(cmd.Context(), round, tui.Options{})
	if errors.Is(err, tui.ErrDiagNoTTY) {
		return cli.Usagef("--tui: %v", err)
	}
	return err
}
