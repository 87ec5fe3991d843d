package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/device"
)

func newStatusCmd() *cobra.Command {
	var stateDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the tunnel: state, last handshake, bytes, routes, controller sync",
		Long: `Show the dataplane's status, read from vcped's control socket (STATE-DIR/vcped.sock).
When vcped is not running, the last known configuration is read from the state file and
the output says so. A damaged, missing or left-over file of the state dir (device state,
journal, pid file, temporary files) is listed as a problem with its repair.
Exit code 0 when the tunnel is up and the state dir has no problem, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			problems := device.CheckStateDir(stateDir)
			st, err := readStatus(stateDir)
			if err != nil {
				if len(problems) == 0 {
					return err
				}
				st = dataplane.Status{State: dataplane.StateStopped, Reason: err.Error(), Routes: []netip.Prefix{}, Peers: []dataplane.PeerStatus{}, Source: "state dir", Time: time.Now()}
			}
			doc := statusDoc{Status: st, Problems: problems}
			out := cmd.OutOrStdout()
			if err := cli.WriteResult(out, asJSON, doc, func(w io.Writer) {
				dataplane.WriteText(w, st, time.Now())
				writeProblems(w, problems)
			}); err != nil {
				return err
			}
			if len(problems) > 0 {
				return cli.Failed(fmt.Errorf("the state dir %s has %d problem(s); the tunnel is %s", stateDir, len(problems), st.State))
			}
			if st.State != dataplane.StateUp {
				return cli.Failed(fmt.Errorf("tunnel is %s", st.State))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", defaultStateDir(), "device state directory ($VCPE_STATE_DIR)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as a JSON document")
	return cmd
}

// readStatus asks vcped, or falls back to the state file.
func readStatus(dir string) (dataplane.Status, error) {
	sock := filepath.Join(dir, dataplane.ControlSocket)
	st, sockErr := dataplane.ReadStatus(sock)
	if sockErr == nil {
		return st, nil
	}
	s, err := device.LoadState(dir)
	if err != nil {
		if errors.Is(err, device.ErrNoState) {
			return dataplane.Status{}, cli.Usagef("--state-dir %s holds no device state: %v", dir, err)
		}
		return dataplane.Status{}, err
	}
	c := s.Config
	st = dataplane.Status{
		Role: api.RoleStandby, State: dataplane.StateStopped,
		Reason:    fmt.Sprintf("vcped is not running (%v); showing the last known configuration from the state file", sockErr),
		Interface: dataplane.DefaultTUN, ListenPort: dataplane.DefaultListenPort,
		PublicKey: s.PrivateKey.PublicKey(), OverlayAddr: c.OverlayAddr, Generation: c.Generation,
		Routes: c.Routes, Peers: []dataplane.PeerStatus{}, Source: "state file", Time: time.Now(),
	}
	if st.Routes == nil {
		st.Routes = []netip.Prefix{}
	}
	if !c.HubPublicKey.IsZero() {
		st.Peers = append(st.Peers, dataplane.PeerStatus{Name: "hub", PublicKey: c.HubPublicKey, Endpoint: c.HubEndpoint.String()})
	}
	for i, h := range c.Hubs {
		st.Hubs = append(st.Hubs, dataplane.HubSession{Name: h.Name, PublicKey: h.PublicKey, Endpoint: h.Endpoint.String(),
			OverlayAddr: h.OverlayAddr, Primary: i == 0, State: dataplane.StateStopped})
	}
	return st, nil
}

// statusDoc is the --json document of vcpe status: vcped's status and the
// problems of the state dir's files.
type statusDoc struct {
	dataplane.Status
	Problems []device.StateProblem `json:"problems,omitempty"`
}

func writeProblems(w io.Writer, ps []device.StateProblem) {
	for _, p := range ps {
		fmt.Fprintf(w, "%-10s %s: %s\n", "problem:", p.File, p.Problem)
		fmt.Fprintf(w, "%-10s %s\n", "  fix:", p.Fix)
	}
}
