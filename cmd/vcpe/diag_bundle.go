package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/diag/bundle"
	"github.com/openvcpe/vcpe/diag/suite"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
	"github.com/openvcpe/vcpe/provision"
)

func newDiagBundleCmd() *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "bundle FILE.tar.gz",
		Short: "Write a support bundle: snapshot, status, state, config, probes, logs and findings, secrets redacted",
		Long: `Write a support bundle to FILE.tar.gz (mode 0600): the precheck snapshot, vcped's
status, the device state and the controller's configuration with every secret
redacted, a few probes to the hub, the tail of vcped's log and the diagnosis
findings, with a manifest (manifest.json: files and their SHA-256). Every file is
scrubbed of the device key (VCPE_KEY or VCPE_KEY_FILE), the WireGuard private key and the device
credential before it is written. 'vcpe diag --from-bundle FILE' analyses it offline.`,
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
			b, secrets, err := bundle.Collect(ctx, evidenceSources(ev, report, stateDir, host))
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

// evidenceSources feeds a bundle from the suite's evidence and report.
func evidenceSources(ev *suite.Evidence, report any, stateDir, host string) bundle.Sources {
	return bundle.Sources{
		StateDir: stateDir,
		Host:     host,
		Now:      time.Now,
		Gather: func(context.Context) (*precheck.Snapshot, error) {
			if ev.Snapshot == nil {
				return nil, errors.New("the host snapshot could not be taken")
			}
			return ev.Snapshot, nil
		},
		Status: func(dir string) (dataplane.Status, error) {
			if ev.Status != nil {
				return *ev.Status, nil
			}
			return readStatus(dir) // the state file's view when vcped is down
		},
		Config: func(context.Context, *device.State) (api.DeviceConfig, error) {
			switch {
			case ev.Config != nil:
				return *ev.Config, nil
			case ev.ConfigError != nil:
				return api.DeviceConfig{}, ev.ConfigError
			case ev.ControllerError != "":
				return api.DeviceConfig{}, errors.New(ev.ControllerError)
			}
			return api.DeviceConfig{}, errors.New("the controller was not asked (no device state)")
		},
		Probes: func(context.Context, api.DeviceConfig) (map[string]diag.Result, map[string]error) {
			errs := map[string]error{}
			for name, e := range ev.ProbeErrors {
				errs[name] = errors.New(e)
			}
			return ev.Probes, errs
		},
		Logs:      bundleLogs,
		Suite:     func(context.Context) (any, error) { return report, nil },
		DeviceKey: deviceKeyFromEnv(),
	}
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
