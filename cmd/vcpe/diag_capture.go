package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/internal/device"
)

func newDiagCaptureCmd() *cobra.Command {
	var (
		seconds  int
		wanIf    string
		port     uint16
		stateDir string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "capture",
		Short: "Capture WireGuard packets on the WAN interface: do initiations leave, do responses come back?",
		Long: `Capture WireGuard messages (UDP 4500) on the WAN interface for --seconds with an
AF_PACKET socket, decode each message type (handshake initiation, response, cookie
reply, transport data) and say whether initiations leave and responses come back,
with counts and times. Read-only; needs root. The WAN interface is the one of the
route to the hub (from the device state) unless --wan-if names it.
Exit code 1 when initiations leave and no response comes back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if seconds < 1 || seconds > 600 {
				return cli.Usagef("--seconds %d: give a number from 1 to 600", seconds)
			}
			if wanIf == "" {
				st, err := device.LoadState(stateDir)
				if err != nil || !st.Config.HubEndpoint.IsValid() {
					return cli.Usagef("--wan-if: no hub endpoint in the device state (%v); name the WAN interface, e.g. --wan-if eth0", err)
				}
				if wanIf, err = diag.WANInterface(st.Config.HubEndpoint.Addr()); err != nil {
					return cli.Usagef("--wan-if: %v", err)
				}
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			c, err := diag.OpenCapture(wanIf)
			if err != nil {
				return err
			}
			defer c.Close()
			fmt.Fprintf(cmd.ErrOrStderr(), "capturing WireGuard on %s UDP %d for %ds...\n", wanIf, port, seconds)
			r, err := c.WireGuard(ctx, port, time.Duration(seconds)*time.Second)
			if err != nil {
				return err
			}
			if err := cli.WriteResult(cmd.OutOrStdout(), asJSON, r, func(w io.Writer) { writeCapture(w, r) }); err != nil {
				return err
			}
			if r.InitiationsLeave && !r.ResponsesComeBack {
				return cli.Failed(fmt.Errorf("no handshake response"))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&seconds, "seconds", 10, "how long to capture")
	fl.StringVar(&wanIf, "wan-if", "", "WAN interface (default: the one of the route to the hub)")
	fl.Uint16Var(&port, "port", dataplane.DefaultListenPort, "WireGuard UDP port")
	fl.StringVar(&stateDir, "state-dir", defaultStateDir(), "device state directory ($VCPE_STATE_DIR)")
	fl.BoolVar(&asJSON, "json", false, "print the capture report as a JSON document")
	return cmd
}

func writeCapture(w io.Writer, r diag.CaptureReport) {
	for _, p := range r.Packets {
		dir := "in "
		if p.Outgoing {
			dir = "out"
		}
		fmt.Fprintf(w, "%s %s %s → %s %s (%d bytes)\n", p.Time.Format("15:04:05.000"), dir, p.Src, p.Dst, p.Type, p.Length)
	}
	fmt.Fprintf(w, "\n%s UDP %d, %s:\n", r.Interface, r.Port, r.Duration.Round(time.Millisecond))
	for _, t := range []diag.WGType{diag.WGInitiation, diag.WGResponse, diag.WGCookieReply, diag.WGTransport} {
		fmt.Fprintf(w, "  %-21s sent %4d  received %4d\n", t.String(), r.Sent[t], r.Received[t])
	}
	if r.Other > 0 {
		fmt.Fprintf(w, "  %d other UDP packet(s) on the port are not WireGuard\n", r.Other)
	}
	fmt.Fprintf(w, "initiations leave: %v; responses come back: %v\n%s\n", yesNo(r.InitiationsLeave), yesNo(r.ResponsesComeBack), r.Verdict)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
