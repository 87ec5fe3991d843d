package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
)

func newProbeReachCmd() *cobra.Command {
	var (
		controller, fingerprint, wanIf string
		stateDir                       string
		asJSON                         bool
	)
	cmd := &cobra.Command{
		Use:   "reach [--controller URL --controller-fingerprint FP]",
		Short: "Outside-in check: the controller probes this host's public address; which ports arrive?",
		Long: `Ask the controller to probe the address it sees this host at (and only that
address) on UDP 4500, UDP 12345 and samples of 10000-10100 over UDP and TCP, and
report which probes arrived, naming what likely blocks the others (a cloud
security group, an upstream firewall or NAT). Free ports are listened on; ports
already in use (vcped holds UDP 4500 and 12345) are watched with a capture on
the WAN interface, which needs root. No registration needed: the controller
comes from the flags, $VCPE_CONTROLLER and $VCPE_CONTROLLER_FINGERPRINT, or the
device state of a registered device. Exit 1 when a probed port does not arrive.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			controller, fingerprint = controllerDefaults(controller, fingerprint, stateDir)
			if controller == "" || fingerprint == "" {
				return cli.Usagef("--controller and --controller-fingerprint are required on an unregistered host, e.g. --controller https://198.18.0.1:8443 --controller-fingerprint sha256:…")
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			r, err := runOutsideIn(ctx, controller, fingerprint, wanIf)
			if err != nil {
				return err
			}
			if err := cli.WriteResult(cmd.OutOrStdout(), asJSON, r, func(w io.Writer) { writeReach(w, r) }); err != nil {
				return err
			}
			if !r.OK {
				return cli.Failed(errors.New(r.Summary))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&controller, "controller", "", "controller URL, https://HOST:8443")
	fl.StringVar(&fingerprint, "controller-fingerprint", "", "sha256 fingerprint of the controller's CA, as vcpe-hub serve prints it")
	fl.StringVar(&wanIf, "wan-if", "", "WAN interface to watch ports in use on (default: the one of the route to the controller)")
	fl.StringVar(&stateDir, "state-dir", defaultStateDir(), "device state directory ($VCPE_STATE_DIR); a registered device's controller is the default")
	fl.BoolVar(&asJSON, "json", false, "print the report as a JSON document")
	return cmd
}

// controllerDefaults fills an unset controller URL and fingerprint from
// $VCPE_CONTROLLER and $VCPE_CONTROLLER_FINGERPRINT, then from the device
// state when the device is registered.
func controllerDefaults(controller, fingerprint, stateDir string) (string, string) {
	if controller == "" {
		controller = os.Getenv("VCPE_CONTROLLER")
	}
	if fingerprint == "" {
		fingerprint = os.Getenv("VCPE_CONTROLLER_FINGERPRINT")
	}
	if controller == "" || fingerprint == "" {
		if st, err := device.LoadState(stateDir); err == nil {
			if controller == "" {
				controller = st.Controller
			}
			if fingerprint == "" {
				fingerprint = st.ControllerFingerprint
			}
		}
	}
	return controller, fingerprint
}

// hubEndpoints asks the controller which hubs its devices dial, for
// wan.internet to probe; nil (the controller's host) when it does not say.
func hubEndpoints(ctx context.Context, controller, fingerprint string) []netip.AddrPort {
	c, err := device.NewClient(controller, fingerprint, device.ClientOptions{})
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	eps, _ := c.HubEndpoints(ctx)
	return eps
}

// runOutsideIn runs diag.OutsideIn against the controller, watching held
// ports on wanIf (default: the interface of the route to the controller).
func runOutsideIn(ctx context.Context, controller, fingerprint, wanIf string) (diag.ReachReport, error) {
	c, err := device.NewClient(controller, fingerprint, device.ClientOptions{Timeout: 15 * time.Second})
	if err != nil {
		var ie *api.InputError
		if errors.As(err, &ie) {
			return diag.ReachReport{}, cli.Usagef("%v", err)
		}
		return diag.ReachReport{}, err
	}
	if wanIf == "" {
		if u, err := url.Parse(controller); err == nil {
			if a, err := netip.ParseAddr(u.Hostname()); err == nil {
				wanIf, _ = diag.WANInterface(a)
			}
		}
	}
	return diag.OutsideIn(ctx, c, diag.ReachOptions{WANInterface: wanIf})
}

// outsideInFromState runs the outside-in check as the registered device.
func outsideInFromState(ctx context.Context, st *device.State) (diag.ReachReport, error) {
	return runOutsideIn(ctx, st.Controller, st.ControllerFingerprint, "")
}

// outsideInHook is precheck's view of the outside-in check: the verdict
// on UDP 4500.
func outsideInHook(controller, fingerprint, wanIf string) func(context.Context) (precheck.OutsideInAnswer, error) {
	return func(ctx context.Context) (precheck.OutsideInAnswer, error) {
		r, err := runOutsideIn(ctx, controller, fingerprint, wanIf)
		if err != nil {
			return precheck.OutsideInAnswer{}, err
		}
		p, ok := r.Port("udp", 4500)
		if !ok {
			return precheck.OutsideInAnswer{}, fmt.Errorf("the controller did not probe UDP 4500")
		}
		return precheck.OutsideInAnswer{Checked: p.Status != diag.ReachNotChecked, Arrived: p.Status == diag.ReachArrived, Detail: p.Detail, Fix: p.Fix}, nil
	}
}

func writeReach(w io.Writer, r diag.ReachReport) {
	fmt.Fprintf(w, "the controller probed %s", r.Target)
	if r.NAT {
		fmt.Fprint(w, " (this host is behind NAT)")
	}
	fmt.Fprintln(w)
	for _, p := range r.Ports {
		fmt.Fprintf(w, "  %-10s %-12s %s\n", p.String(), p.Status, p.Detail)
		if p.Fix != "" {
			fmt.Fprintf(w, "  %-10s %-12s fix: %s\n", "", "", p.Fix)
		}
	}
	fmt.Fprintln(w, r.Summary)
}
