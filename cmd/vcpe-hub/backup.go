package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/internal/atomicfile"
)

func newBackupCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Save the controller's state (store, CA, keys) to FILE, mode 0600, while it runs",
		Long: `Save a consistent snapshot of the controller state directory to FILE: the
store (an online SQLite copy, safe while vcpe-hub serve runs and devices
sync), the CA, the server certificate and the hub's WireGuard key, each
checksummed in a manifest. FILE is a tar archive written atomically with
mode 0600: it holds private keys, keep it as secret as the state directory.
vcpe-hub restore brings it back.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var buf bytes.Buffer
			m, err := controller.Backup(cmd.Context(), g.state, time.Now(), &buf)
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(args[0], buf.Bytes(), 0o600); err != nil {
				return fmt.Errorf("write backup %s: %w", args[0], err)
			}
			return cli.WriteResult(cmd.OutOrStdout(), g.json, m, func(w io.Writer) {
				fmt.Fprintf(w, "backed up %s to %s: %d files, store schema %d, CA %s\n", g.state, args[0], len(m.Files), m.Schema, m.Fingerprint)
			})
		},
	}
}

func newRestoreCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Bring back a backup into an empty state directory (vcpe-hub stopped)",
		Long: `Restore a vcpe-hub backup into the state directory (--state), which must be
empty or absent: stop vcpe-hub first. Every file is checked against the
backup's manifest before anything is written, and the directory appears
whole or not at all. The restored hub has the same CA and keys, so devices
keep their pinned fingerprint and credentials: no re-registration.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return cli.Usagef("backup file: %v", err)
			}
			defer f.Close()
			m, err := controller.Restore(f, g.state)
			if err != nil {
				return err
			}
			return cli.WriteResult(cmd.OutOrStdout(), g.json, m, func(w io.Writer) {
				fmt.Fprintf(w, "restored %s into %s: %d files, store schema %d, CA %s (taken %s)\n", args[0], g.state, len(m.Files), m.Schema, m.Fingerprint, m.Created.Format(time.RFC3339))
			})
		},
	}
}
