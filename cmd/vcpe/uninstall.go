package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/provision"
)

// uninstallResult is the --json document of vcpe uninstall.
type uninstallResult struct {
	OK      bool     `json:"ok"`
	Changed bool     `json:"changed"`
	Undone  []string `json:"undone"`
	Error   string   `json:"error,omitempty"`
}

func newUninstallCmd() *cobra.Command {
	var (
		yes      bool
		asJSON   bool
		stateDir string
	)
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Undo everything vcpe install changed on this host",
		Long: "uninstall reverts, newest first, every change vcpe recorded in its journal\n" +
			"(STATE-DIR/journal.json): the daemon, its unit or pid file, sysctls and files.\n" +
			"Nothing vcpe did not record is touched.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			j, err := provision.OpenJournal(stateDir, provision.ProcSysctl{}, nil)
			if err != nil {
				return err
			}
			res := uninstallResult{OK: true, Undone: []string{}}
			for i := len(j.Changes) - 1; i >= 0; i-- {
				res.Undone = append(res.Undone, j.Changes[i].Describe())
			}
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if len(res.Undone) == 0 {
				if asJSON {
					return cli.WriteJSON(out, res)
				}
				fmt.Fprintf(out, "nothing to uninstall: %s records no changes\n", stateDir)
				return nil
			}
			if !yes {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return cli.Usagef("uninstall would undo %d change(s); pass --yes to confirm when there is no terminal", len(res.Undone))
				}
				if !confirm(cmd.InOrStdin(), errw, fmt.Sprintf("Undo these %d change(s)?\n  %s\n", len(res.Undone), strings.Join(res.Undone, "\n  "))) {
					return cli.Failed(fmt.Errorf("uninstall declined"))
				}
			}
			for _, d := range res.Undone {
				fmt.Fprintf(errw, "undo: %s\n", d)
			}
			if err := j.Undo(context.WithoutCancel(cmd.Context())); err != nil {
				res.OK, res.Error = false, err.Error()
				if asJSON {
					_ = cli.WriteJSON(out, res)
					return cli.Failed(err)
				}
				return fmt.Errorf("uninstall left changes it could not undo (still listed in %s/%s): %w", stateDir, provision.JournalFile, err)
			}
			res.Changed = true
			if asJSON {
				return cli.WriteJSON(out, res)
			}
			fmt.Fprintf(out, "uninstalled: undid %d change(s); the host is as it was before vcpe install\n", len(res.Undone))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON document on stdout")
	cmd.Flags().StringVar(&stateDir, "state-dir", defaultStateDir(), "device state directory ($VCPE_STATE_DIR)")
	return cmd
}

func confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprintf(out, "%s[y/N] ", question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	line = strings.ToLower(strings.TrimSpace(line))
	return line == "y" || line == "yes"
}
