package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/diag/bundle"
	"github.com/openvcpe/vcpe/precheck"
	"github.com/openvcpe/vcpe/provision"
	"github.com/openvcpe/vcpe/provision/api"
)

func init() { diagSubcommands = append(diagSubcommands, newDiagBundleCmd) }

// runSuite runs the diagnosis suite for the bundle's diag.json; the lead
// wires it to the suite. While it is nil, diag.json is null.
var runSuite func(ctx context.Context) (any, error)

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
			b, secrets, err := bundle.Collect(ctx, bundle.Sources{
				StateDir: stateDir,
				Host:     host,
				Now:      time.Now,
				Gather: func(ctx context.Context) (*precheck.Snapshot, error) {
					return precheck.Gather(ctx, precheck.GatherOptions{})
				},
				Status:    readStatus,
				Config:    bundleConfig,
				Probes:    bundleProbes,
				Logs:      bundleLogs,
				Suite:     runSuite,
				DeviceKey: deviceKeyFromEnv(),
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

func bundleConfig(ctx context.Context, st *provision.State) (api.DeviceConfig, error) {
	c, err := provision.NewClientFromState(st, provision.ClientOptions{Timeout: 10 * time.Second})
	if err != nil {
		return api.DeviceConfig{}, err
	}
	return c.DeviceConfig(ctx)
}

// bundleProbes runs three short probes to the hub concurrently: ICMP to
// its WAN address, UDP to its reflector, ICMP to its overlay address
// through the tunnel.
func bundleProbes(ctx context.Context, cfg api.DeviceConfig) (map[string]diag.Result, map[string]error) {
	res, errs := map[string]diag.Result{}, map[string]error{}
	o := diag.Options{Count: 3, Interval: 200 * time.Millisecond, Timeout: time.Second}
	type probe struct {
		name string
		run  func() (diag.Result, error)
	}
	var ps []probe
	if hub := cfg.HubEndpoint.Addr(); hub.IsValid() {
		ps = append(ps,
			probe{"hub_wan_icmp", func() (diag.Result, error) { return diag.PingICMP(ctx, hub, o) }},
			probe{"hub_wan_udp", func() (diag.Result, error) {
				return diag.PingUDP(ctx, netip.AddrPortFrom(hub, diag.ReflectorPort), o)
			}})
	} else {
		errs["hub_wan"] = errors.New("no hub endpoint in the configuration")
	}
	if ov := cfg.HubOverlayAddr; ov.IsValid() {
		ps = append(ps, probe{"hub_overlay_icmp", func() (diag.Result, error) { return diag.PingICMP(ctx, ov, o) }})
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.run()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[p.name] = err
				return
			}
			res[p.name] = r
		}()
	}
	wg.Wait()
	return res, errs
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
