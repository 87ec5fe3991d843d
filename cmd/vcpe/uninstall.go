package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/internal/atomicfile"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/provision"
)

// uninstallResult is the --json document of vcpe uninstall.
type uninstallResult struct {
	OK      bool     `json:"ok"`
	Changed bool     `json:"changed"`
	Undone  []string `json:"undone"`
	// NotUndone lists what could not be undone, each with how to do it by
	// hand; OK is false when it is not empty.
	NotUndone []string `json:"not_undone,omitempty"`
	Error     string   `json:"error,omitempty"`
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
			"Nothing vcpe did not record is touched. Without a readable journal it undoes what the\n" +
			"state dir shows (the registration, vcped on that state dir, vcpe's files) and lists\n" +
			"what it could not undo with the command to do it by hand (exit 1). It takes the same\n" +
			"lock as install: while another install or uninstall runs it exits 2.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lock, err := provision.AcquireLock(stateDir, "uninstall")
			if err != nil {
				return &cli.UsageError{Err: err}
			}
			defer lock.Release()
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			res := uninstallResult{OK: true, Undone: []string{}}
			j, err := provision.OpenJournal(stateDir, provision.ProcSysctl{}, nil)
			var corrupt *provision.CorruptJournalError
			if errors.As(err, &corrupt) || err == nil && j.Len() == 0 && stateShowsInstall(stateDir) {
				// No journal to follow: undo what the state dir shows, and
				// say what only the journal knew.
				if err != nil {
					fmt.Fprintf(errw, "vcpe uninstall: %v\n", err)
				} else {
					fmt.Fprintf(errw, "vcpe uninstall: %s holds device files but no journal; undoing what they show\n", stateDir)
				}
				if !yes {
					return cli.Usagef("uninstall without a journal needs --yes")
				}
				sr := provision.UninstallWithoutJournal(context.WithoutCancel(cmd.Context()), stateDir, device.ClientOptions{})
				res.Undone = append(res.Undone, sr.Undone...)
				res.NotUndone, res.Changed = sr.Left, len(sr.Undone) > 0
				return finishUninstall(out, asJSON, res)
			}
			if err != nil {
				return err
			}
			for _, t := range atomicfile.RemoveTemps(stateDir) {
				res.Undone = append(res.Undone, "remove leftover temporary file "+filepath.Join(stateDir, t))
			}
			for i := len(j.Changes) - 1; i >= 0; i-- {
				res.Undone = append(res.Undone, j.Changes[i].Describe())
			}
			if len(j.Changes) == 0 {
				if asJSON {
					return cli.WriteJSON(out, res)
				}
				fmt.Fprintf(out, "nothing to uninstall: %s records no changes\n", stateDir)
				return nil
			}
			if !yes {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return cli.Usagef("uninstall would undo %d change(s); pass --yes to confirm when there is no terminal", len(j.Changes))
				}
				if !confirm(cmd.InOrStdin(), errw, fmt.Sprintf("Undo these %d change(s)?\n  %s\n", len(res.Undone), strings.Join(res.Undone, "\n  "))) {
					return cli.Failed(fmt.Errorf("uninstall declined"))
				}
			}
			for _, d := range res.Undone {
				fmt.Fprintf(errw, "undo: %s\n", d)
			}
			if err := j.Undo(context.WithoutCancel(cmd.Context())); err != nil {
				// Only what was undone is reported as undone.
				left := map[string]bool{}
				for _, c := range j.Changes {
					left[c.Describe()] = true
					res.NotUndone = append(res.NotUndone, c.Describe())
				}
				res.Undone = slices.DeleteFunc(res.Undone, func(d string) bool { return left[d] })
				res.NotUndone = append(res.NotUndone, err.Error())
				res.Changed = len(res.Undone) > 0
				return finishUninstall(out, asJSON, res)
			}
			res.Changed = true
			return finishUninstall(out, asJSON, res)
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

// stateShowsInstall tells whether the state dir holds files only an
// install leaves (the detached vcped's pid file and log) although its
// journal is gone. A device registered with vcpe register alone has no
// journal and is left alone.
func stateShowsInstall(dir string) bool {
	for _, f := range []string{provision.PIDFile, provision.LogFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// finishUninstall prints the result; anything not undone fails the run.
func finishUninstall(out io.Writer, asJSON bool, res uninstallResult) error {
	var err error
	if len(res.NotUndone) > 0 {
		res.OK = false
		err = fmt.Errorf("uninstall could not undo %d thing(s):\n  %s", len(res.NotUndone), strings.Join(res.NotUndone, "\n  "))
		res.Error = err.Error()
	}
	if asJSON {
		if werr := cli.WriteJSON(out, res); werr != nil {
			return werr
		}
		if err != nil {
			return cli.Failed(err)
		}
		return nil
	}
	if err != nil {
		if len(res.Undone) > 0 {
			fmt.Fprintf(out, "undid %d change(s):\n  %s\n", len(res.Undone), strings.Join(res.Undone, "\n  "))
		}
		return err
	}
	fmt.Fprintf(out, "uninstalled: undid %d change(s); the host is as it was before vcpe install\n", len(res.Undone))
	return nil
}
