package main

import "github.com/spf13/cobra"

func init() { subcommands = append(subcommands, newDiagCmd) }

// diagSubcommands are the children of vcpe diag; each lives in its own
// file and registers itself from init.
var diagSubcommands []func() *cobra.Command

func newDiagCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diag",
		Short: "Diagnose this device: what is broken, where, the evidence and the fix",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	for _, add := range diagSubcommands {
		cmd.AddCommand(add())
	}
	return cmd
}
