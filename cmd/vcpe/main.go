// Command vcpe is the operator's tool on a vCPE host: precheck, register,
// install, status, diag, probe and uninstall. It only parses flags and wires
// the packages together; the work lives in precheck, provision, dataplane
// and diag.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// newRootCmd builds the command tree. *started is set once a command's own
// code begins to run, so an error before that (unknown command, wrong
// arguments) is a usage error.
func newRootCmd(started *bool) *cobra.Command {
	root := &cobra.Command{
		Use:              "vcpe",
		Short:            "Turn this Linux host into a virtual CPE joined to a cloud network",
		Version:          version,
		SilenceUsage:     true,
		SilenceErrors:    true,
		Args:             cobra.NoArgs,
		RunE:             func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRun: func(*cobra.Command, []string) { *started = true },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &cli.UsageError{Err: err}
	})
	for _, add := range subcommands {
		root.AddCommand(add())
	}
	return root
}

// subcommands is filled by the init functions of the files that define them,
// so each command lives in its own file.
var subcommands []func() *cobra.Command

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cobra.EnableTraverseRunHooks = true
	var started bool
	root := newRootCmd(&started)
	root.SetArgs(args)
	err := root.Execute()
	if err != nil && !started {
		err = &cli.UsageError{Err: fmt.Errorf("%w (see 'vcpe --help')", err)}
	}
	return cli.Report(os.Stderr, "vcpe", err)
}
