package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/diag/bundle"
	"github.com/openvcpe/vcpe/diag/suite"
	"github.com/openvcpe/vcpe/provision"
)

func newDiagBundleCmd() *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "bundle FILE.tar.gz",
		Short: "Write a support bundle: snapshot, status, state, config, probes, logs and findings, secrets redacted",
		Long: `Write a support bundle to FILE.tar.gz (mode 0600): the precheck snapshot, vcped's
status, the device state and the controller's configuration with every secret
redacted, the probes, routes and links the diagnosis judged, the tail of vcped's
log and the diagnosis findings, with a manifest (manifest.json: files and their SHA-256). Every file is
scrubbed of the device key (VCPE_KEY or VCPE_KEY_FILE), the WireGuard private key and the device
credential before it is written. 'vcpe diag --from-bundle FILE' judges the same
evidence offline and gives the same findings.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := args[0]
			if !strings.HasSuffix(out, ".tar.gz") && !strings.HasSuffix(out, ".tgz") {
				return cli.Usagef("FILE %q: give a file name ending in .tar.gz, e.g. vcpe diag bundle /tmp/vcpe-bundle.tar.gz", out)
			}
			if d := filepath.Dir(out); d != "" {
				if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
					return cli.Usagef("FILE %q: directory %s does not exist", out, d)
				}
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
			defer cancelT()
			host, _ := os.Hostname()
			// The diagnosis suite gathers the evidence once: the bundle holds
			// exactly what the findings in it were judged on.
			start := time.Now()
			ev := suite.Collect(ctx, suite.Options{StateDir: stateDir, Reach: outsideInFromState})
			report := suite.NewReport(suite.Diagnose(*ev), ev.Time, time.Since(start), "live")
			logs, logErr := bundleLogs(ctx, stateDir)
			b, secrets, err := bundle.FromEvidence(ev, bundle.Extras{
				Host: host, Report: report, Log: logs, LogError: logErr, DeviceKey: deviceKeyFromEnv(),
			})
			if err != nil {
				return err
			}
			if err := b.WriteFile(out, secrets); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d files)\n", out, len(b.Files())+1)
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", defaultStateDir(), "device state directory ($VCPE_STATE_DIR)")
	return cmd
}

// deviceKeyFromEnv is the device key as the operator's environment holds
// it (VCPE_KEY, or the file VCPE_KEY_FILE names), so the bundle can be
// scrubbed of it; empty when neither is set.
func deviceKeyFromEnv() string {
	if k := strings.TrimSpace(os.Getenv("VCPE_KEY")); k != "" {
		return k
	}
	if f := os.Getenv("VCPE_KEY_FILE"); f != "" {
		if b, err := os.ReadFile(f); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// bundleLogs is the tail of STATE/vcped.log, or journalctl's when systemd
// runs vcped.
func bundleLogs(ctx context.Context, stateDir string) ([]byte, error) {
	b, err := bundle.TailFile(filepath.Join(stateDir, provision.LogFile), bundle.LogTailBytes)
	if err == nil {
		return b, nil
	}
	if !provision.SystemdRunning() {
		return nil, fmt.Errorf("%w: %v, and systemd is not running", bundle.ErrNoLog, err)
	}
	out, jerr := exec.CommandContext(ctx, "journalctl", "-u", provision.UnitName, "--no-pager", "-n", "2000").Output()
	if jerr != nil {
		return out, fmt.Errorf("journalctl -u %s: %w", provision.UnitName, jerr)
	}
	return out, nil
}
