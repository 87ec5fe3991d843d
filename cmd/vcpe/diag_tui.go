package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/diag/suite"
)

func runDiagTUI(cmd *cobra.Command, opts suite.Options) error {
	return cli.Usagef("--tui: %v", errors.New("not built yet"))
}
