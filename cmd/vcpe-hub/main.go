// Command vcpe-hub is the cloud side of vcpe: the controller API (device
// registration, instances, CCNs, routes) and its admin commands, which talk
// to the running server over the unix socket in its state directory. It
// only parses flags and wires packages together; the work lives in
// controller.
package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// DefaultStateDir is where the controller keeps its state unless --state
// says otherwise.
const DefaultStateDir = "/var/lib/vcpe-hub"

// globals are the flags every command takes.
type globals struct {
	state string
	json  bool
}

// newRootCmd builds the command tree.
func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:     "vcpe-hub",
		Short:   "The vcpe controller and hub: registration, instances, CCNs and routes",
		Version: version,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.PersistentFlags().StringVar(&g.state, "state", DefaultStateDir, "controller state directory")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print a JSON document on stdout")
	root.AddCommand(newServeCmd(g), newFingerprintCmd(g), newStatusCmd(g),
		newInstanceCmd(g), newDeviceCmd(g), newCCNCmd(g), newRoutesCmd(g), newAuditCmd(g),
		newBackupCmd(g), newRestoreCmd(g))
	root.AddCommand(cli.DocsCommand(root))
	return root
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	return cli.Execute(context.Background(), newRootCmd(), args, os.Stderr)
}
