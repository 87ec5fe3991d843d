package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/dataplane"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the hub dataplane: peers, which device of each instance is active, role switches",
		Long: `Reads the running hub's status socket (STATE/hub.sock): every peer with its CCN and
whether it is the active device of its instance, and the multi-attach role switches
(device, reason, time) the hub's arbiter made. In a hub group it also shows this hub's
cloud side (degraded or not), the cloud gateway and which hub holds it, the other hubs
(up, degraded or down, last message, what they carry) and every device of the group:
whether it has a session here, whether this hub is its primary, the hub its claims name,
where this hub sends its traffic and whether this hub carries it; then the moves of
traffic and gateway. Exit 1 when the hub is not running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := dataplane.ReadStatus(filepath.Join(g.state, HubSocket))
			if err != nil {
				return fmt.Errorf("read hub status (is vcpe-hub serve running with --state %s?): %w", g.state, err)
			}
			if g.json {
				return cli.WriteJSON(cmd.OutOrStdout(), st)
			}
			dataplane.WriteText(cmd.OutOrStdout(), st, time.Now())
			return nil
		},
	}
}
