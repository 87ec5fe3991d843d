// Command vcpe is the operator's tool on a vCPE host: precheck, register,
// install, status, diag, probe and uninstall. It only parses flags and wires
// the packages together; the work lives in precheck, provision, dataplane
// and diag.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// newRootCmd builds the command tree.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:     "vcpe",
		Short:   "Turn this Linux host into a virtual CPE joined to a cloud network",
		Version: version,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.AddCommand(newPrecheckCmd(), newInstallCmd(), newRegisterCmd(), newStatusCmd(), newDiagCmd(), newProbeCmd(), newUninstallCmd())
	root.AddCommand(cli.DocsCommand(root))
	return root
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Execute(ctx, newRootCmd(), args, os.Stderr)
}
