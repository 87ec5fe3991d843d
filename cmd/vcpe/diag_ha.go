package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/dataplane"
)

// haReport is the --json document of vcpe diag ha.
type haReport struct {
	OK     bool                `json:"ok"`
	Role   string              `json:"role"`
	Detail string              `json:"detail"`
	Fix    string              `json:"fix,omitempty"`
	HA     *dataplane.HAStatus `json:"ha,omitempty"`
}

func newDiagHACmd() *cobra.Command {
	var stateDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ha",
		Short: "Multi-attach: this device's role, LAN health and every role switch (device, reason, time)",
		Long: `Reads vcped's status and reports the device's multi-attach role, whether the hub
answers its claims, the LAN targets' health and the recent role switches. Read-only.
Exit 0 when the hub answers the claims, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := readStatus(stateDir)
			if err != nil {
				return err
			}
			rep := judgeHA(st, time.Now())
			out := cmd.OutOrStdout()
			if err := cli.WriteResult(out, asJSON, rep, func(w io.Writer) { writeHA(w, rep) }); err != nil {
				return err
			}
			if !rep.OK {
				return cli.Failed(fmt.Errorf("%s", rep.Detail))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", defaultStateDir(), "device state directory ($VCPE_STATE_DIR)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON document")
	return cmd
}

// judgeHA turns a status into the diagnosis; a pure function.
func judgeHA(st dataplane.Status, now time.Time) haReport {
	rep := haReport{Role: st.Role, HA: st.HA}
	switch {
	case st.Source != "daemon" || st.HA == nil:
		rep.Detail = "vcped is not running: this device holds no role"
		rep.Fix = "start it again (vcpe install with the same inputs); it comes back as standby"
	case !st.HA.ClaimsAnswered(now):
		rep.Detail = "the hub does not answer this device's claims: the claim is withdrawn (standby)"
		rep.Fix = "check the tunnel (vcpe status) and the WAN path to the hub"
	case st.HA.LANOK != nil && !*st.HA.LANOK:
		rep.OK = true
		rep.Detail = "none of the LAN targets answers: the hub will not make this device active"
		rep.Fix = "check the LAN interface and the --lan-target hosts"
	default:
		rep.OK = true
		rep.Detail = "the hub answers the claims; role " + st.Role
	}
	return rep
}

func writeHA(w io.Writer, rep haReport) {
	fmt.Fprintf(w, "%-8s %s\n%-8s %s\n", "role:", rep.Role, "health:", rep.Detail)
	if rep.Fix != "" {
		fmt.Fprintf(w, "%-8s %s\n", "fix:", rep.Fix)
	}
	if rep.HA == nil {
		return
	}
	if rep.HA.LANGateway.IsValid() {
		fmt.Fprintf(w, "%-8s %s\n", "gateway:", rep.HA.LANGateway)
	}
	if len(rep.HA.Events) == 0 {
		fmt.Fprintln(w, "no role switch since vcped started")
	}
	for _, ev := range rep.HA.Events {
		line := fmt.Sprintf("%s  %s became %s: %s", ev.Time.Format(time.RFC3339Nano), ev.SN, ev.Role, ev.Reason)
		if n := ev.Times(); n > 1 {
			line += fmt.Sprintf(" (×%d, last at %s)", n, ev.Last.Format(time.RFC3339Nano))
		}
		fmt.Fprintln(w, line)
	}
}
