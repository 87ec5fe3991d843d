package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/diag/bundle"
	"github.com/openvcpe/vcpe/diag/suite"
)

func newDiagCmd() *cobra.Command {
	var (
		jsonOut, tuiOut bool
		stateDir        string
		targets         []string
		timeout         time.Duration
		fromBundle      string
	)
	cmd := &cobra.Command{
		Use:   "diag",
		Short: "Diagnose this device: what is broken, where, the evidence and the fix",
		Long: `Run the read-only diagnosis suite: configuration (daemon, TUN and its address,
routes against the controller, the route the kernel picks for each learned prefix
from this host and from each advertised prefix, forwarding, the firewall's input
and output hooks, source NAT, connection tracking, registration, CCN, prefix
overlaps), the LAN side (LAN interfaces and addresses, the firewall's forward hook),
the service link (controller, hub over ICMP / UDP 4500 / the reflector, handshake,
WAN path MTU) and Internet quality (WAN and tunnel loss, latency, jitter; tunnel
path MTU; and every learned prefix, probed at the reflector address the controller
names for it: the remote site's device, or the hub in a cloud-side prefix).
Findings come causes first (each declares what it explains), each with its
evidence and the exact fix; --json adds the commands that apply it here.
Exit 0 when no finding is an error (warnings allowed), 1 otherwise.

--from-bundle FILE.tar.gz judges the evidence a support bundle holds instead
of this host; --tui shows a live dashboard (needs a terminal).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var addrs []netip.Addr
			for _, t := range targets {
				a, err := netip.ParseAddr(t)
				if err != nil || !a.Is4() {
					return cli.Usagef("--target %q: want an IPv4 address behind the tunnel, for example 198.19.2.10", t)
				}
				addrs = append(addrs, a)
			}
			if timeout < time.Second || timeout > 5*time.Minute {
				return cli.Usagef("--timeout %s: want between 1s and 5m", timeout)
			}
			if fromBundle != "" && tuiOut {
				return cli.Usagef("--tui and --from-bundle: a bundle is not live; drop --tui")
			}
			if fromBundle != "" && len(addrs) > 0 {
				return cli.Usagef("--target and --from-bundle: a bundle holds the probes it was made with; drop --target")
			}
			opts := suite.Options{StateDir: stateDir, Targets: addrs, Timeout: timeout}
			if tuiOut {
				return runDiagTUI(cmd, opts)
			}
			// The one-shot run also asks the controller to probe this host
			// from outside (the dashboard, which repeats, does not).
			opts.Reach = outsideInFromState
			start := time.Now()
			var ev *suite.Evidence
			source := "live"
			if fromBundle != "" {
				var err error
				if ev, _, err = bundle.Load(fromBundle); err != nil {
					if errors.Is(err, os.ErrNotExist) {
						return cli.Usagef("--from-bundle %s: no such file; give a bundle written by 'vcpe diag bundle FILE.tar.gz'", fromBundle)
					}
					return cli.Usagef("--from-bundle %s: %v", fromBundle, err)
				}
				source = fromBundle
			} else {
				ev = suite.Collect(cmd.Context(), opts)
			}
			fs := suite.Diagnose(*ev)
			rep := suite.NewReport(fs, ev.Time, time.Since(start), source)
			out := cmd.OutOrStdout()
			var err error
			if jsonOut {
				err = rep.WriteJSON(out)
			} else {
				err = rep.WriteText(out, useColor(out))
			}
			if err != nil {
				return fmt.Errorf("write diagnosis: %w", err)
			}
			if !rep.OK {
				return cli.Failed(errors.New("diag: a finding is an error"))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&jsonOut, "json", false, "print the findings as a JSON document on stdout")
	f.BoolVar(&tuiOut, "tui", false, "live dashboard: per-target RTT, loss and jitter, and the findings (needs a terminal)")
	f.StringVar(&stateDir, "state-dir", defaultStateDir(), "device state directory ($VCPE_STATE_DIR)")
	f.StringSliceVar(&targets, "target", nil, "also probe `ADDR` (ICMP echo) through the tunnel (repeatable); it replaces the default target of the learned prefix it lies in (every learned prefix is probed by default at the reflector address the controller names)")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "bound of the whole run")
	f.StringVar(&fromBundle, "from-bundle", "", "judge the evidence in support bundle `FILE.tar.gz` instead of this host")
	cmd.AddCommand(newDiagBundleCmd(), newDiagCaptureCmd(), newDiagHACmd())
	return cmd
}
