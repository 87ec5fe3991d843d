// Command vcpe-lab runs the whole vcpe system on one machine, in network
// namespaces: `vcpe-lab up`, `status`, `exec NODE -- CMD`, `down`. It only
// parses flags; the sandbox lives in package lab.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/cmd/vcpe-lab/lab"
)

var version = "dev"

type options struct {
	prefix string
	runDir string
}

func (o *options) lab() *lab.Lab {
	dir := o.runDir
	if dir == "" {
		dir = filepath.Join("/run/vcpe-lab", o.prefix)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l := lab.New(o.prefix, dir, log)
	l.Adopt() // a running hub group shows all its nodes
	return l
}

func newRootCmd() *cobra.Command {
	o := &options{}
	root := &cobra.Command{
		Use:   "vcpe-lab",
		Short: "Run the whole vcpe system in network namespaces on this machine",
		Long: "vcpe-lab builds the lab topology (hub, cloud, site-a, site-a2, site-b, lan-a, lan-b,\n" +
			"joined by an \"internet\" segment) in network namespaces named PREFIX-NODE.\n" +
			"Every address is inside 198.18.0.0/15; the root namespace is never touched.",
		Version: version,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.PersistentFlags().StringVar(&o.prefix, "prefix", lab.DefaultPrefix, "namespace name prefix (namespaces are PREFIX-NODE)")
	root.PersistentFlags().StringVar(&o.runDir, "run-dir", "", "lab state, logs and pid files (default /run/vcpe-lab/PREFIX)")
	root.AddCommand(newUpCmd(o), newCheckCmd(o), newDownCmd(o), newStatusCmd(o), newExecCmd(o))
	return root
}

func newUpCmd(o *options) *cobra.Command {
	var networkOnly bool
	var controllers int
	var database string
	var hubs int
	var failback bool
	up := &cobra.Command{
		Use:   "up",
		Short: "Build the lab and run the whole system in it",
		Long: "up builds the namespaces and links, starts vcpe-hub serve on the hub, creates an\n" +
			"instance per site and the CCN \"corp\", registers every device and starts vcped on it,\n" +
			"then probes LAN to LAN and LAN to cloud. A failure removes everything it made.\n\n" +
			"--hubs 2 builds a hub group: a second hub (hub2, 198.18.0.2:4500) on the internet\n" +
			"segment, the cloud host behind both hubs on a switch (its gateway 198.19.100.1 held\n" +
			"by the live hub with the lowest name), the controller alone (--role controller) and\n" +
			"one vcpe-hub serve --role hub per hub; every device peers with both hubs.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if os.Geteuid() != 0 {
				return cli.Usagef("vcpe-lab up needs root to create network namespaces: run it with sudo")
			}
			l := o.lab()
			switch {
			case database != "sqlite" && database != "postgres":
				return cli.Usagef("--database %q: want sqlite (one controller, the default) or postgres", database)
			case controllers < 1 || controllers > 9:
				return cli.Usagef("--controllers %d: want 1 to 9", controllers)
			case hubs < 1 || hubs > lab.MaxHubs:
				return cli.Usagef("--hubs %d: want 1 (one hub, the default) to %d", hubs, lab.MaxHubs)
			case hubs > 1 && database != "sqlite":
				return cli.Usagef("--hubs %d with --database %s: the hub-group lab runs one controller on SQLite; drop one of the two", hubs, database)
			case failback && hubs < 2:
				return cli.Usagef("--failback needs --hubs 2: it is the hub group's setting")
			case controllers > 1 && database != "postgres":
				return cli.Usagef("--controllers %d needs --database postgres: replicas share a PostgreSQL database", controllers)
			case database == "postgres":
				l.Controllers = controllers
			}
			if hubs > 1 {
				l.UseHubs(hubs)
				l.HubFailback = failback
			}
			var b lab.Binaries
			if !networkOnly {
				if b, err = lab.FindBinaries(); err != nil {
					return cli.Usagef("%v", err)
				}
			}
			ctx := cmd.Context()
			if err := l.UpNetwork(ctx); err != nil {
				if errors.Is(err, lab.ErrAlreadyUp) {
					return cli.Usagef("%v", err)
				}
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "lab %s: %d nodes up\n", o.prefix, len(l.Topo.Nodes))
			if networkOnly {
				return nil
			}
			if err := l.StartSystem(ctx, b, lab.DefaultPlan()); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "vcpe-lab: starting the system failed; removing the lab")
				_ = l.Down()
				return err
			}
			switch {
			case l.Hubs > 1:
				fmt.Fprintf(out, "hub group: controller on %s (--role controller); hubs %s (--role hub, endpoints %s and %s); site-a primary hub, site-b primary hub2\n",
					lab.ControllerAddr, strings.Join(l.HubNodes(), ", "), lab.HubEndpointOf(0), lab.HubEndpointOf(1))
				fmt.Fprintf(out, "the cloud host's gateway %s is held by the live hub with the lowest name; failback %v\n", lab.CloudGateway.Addr(), l.HubFailback)
			case l.Controllers > 0:
				fmt.Fprintf(out, "controllers: %d vcpe-hub serve --role controller on PostgreSQL (%s); the hub's tunnel end: vcpe-hub serve --role hub\n",
					l.Controllers, strings.Join(lab.ControllerURLs(l.Controllers), ", "))
			default:
				fmt.Fprintf(out, "hub: vcpe-hub serve on %s; devices site-a (active), site-a2 (standby), site-b: tunnels up\n", lab.ControllerAddr)
			}
			fmt.Fprintf(out, "LAN A's gateway %s moves to the standby in under a second if the active fails\n\n", lab.LANAGateway.Addr())
			rs := l.Connectivity(ctx, b, l.Probes(), 5)
			lab.WriteConnectivity(out, rs)
			self := os.Args[0]
			fmt.Fprintf(out, "\nStep inside:   sudo %s exec lan-a -- ping 198.19.2.10\n", self)
			fmt.Fprintf(out, "               sudo %s exec site-a -- vcpe status\n", self)
			fmt.Fprintf(out, "               sudo %s exec hub -- vcpe-hub routes list --state %s\n", self, l.HubState())
			fmt.Fprintf(out, "               sudo %s exec site-a            (a shell on the device)\n", self)
			fmt.Fprintf(out, "The wizard:    sudo %s exec site-a2 -- vcpe uninstall --yes && sudo %s exec site-a2 -- vcpe install\n", self, self)
			fmt.Fprintf(out, "Fail over:     sudo %s exec site-a -- ip link set wan0 down   (then: vcpe-hub status on the hub)\n", self)
			if l.Hubs > 1 {
				fmt.Fprintf(out, "Hub failover:  sudo %s exec hub -- ip link set wan0 down   (then: vcpe status on site-a, vcpe-hub status on hub2)\n", self)
				fmt.Fprintf(out, "               sudo %s exec hub2 -- vcpe-hub status --state %s\n", self, l.GroupHubState("hub2"))
			}
			fmt.Fprintf(out, "Probe again:   sudo %s check\n", self)
			fmt.Fprintf(out, "Remove it all: sudo %s down\n", self)
			return connectivityFailed(rs)
		},
	}
	up.Flags().BoolVar(&networkOnly, "network-only", false, "build the namespaces and links only; start nothing")
	up.Flags().IntVar(&controllers, "controllers", 1, "controller replicas (more than 1 needs --database postgres)")
	up.Flags().IntVar(&hubs, "hubs", 1, "hubs: 2 builds a hub group (hub and hub2; every device peers with both)")
	up.Flags().BoolVar(&failback, "failback", false, "--hubs 2: traffic goes back to a device's primary hub once it has recovered")
	up.Flags().StringVar(&database, "database", "sqlite", "sqlite (one vcpe-hub serve, the default) or postgres (replicated controllers and a separate hub process)")
	return up
}

func newCheckCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Probe LAN to LAN and LAN to cloud through the running lab",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := lab.FindBinaries()
			if err != nil {
				return cli.Usagef("%v", err)
			}
			l := o.lab()
			rs := l.Connectivity(cmd.Context(), b, l.Probes(), 5)
			lab.WriteConnectivity(cmd.OutOrStdout(), rs)
			return connectivityFailed(rs)
		},
	}
}

func newDownCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop every process in the lab and remove its namespaces and state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l := o.lab()
			names, _ := l.Namespaces()
			if err := l.Down(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s is down: removed %d namespaces\n", o.prefix, len(names))
			return nil
		},
	}
}

func newStatusCmd(o *options) *cobra.Command {
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show which of the lab's namespaces exist",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l := o.lab()
			names, err := l.Namespaces()
			if err != nil {
				return err
			}
			exists := map[string]bool{}
			for _, n := range names {
				exists[n] = true
			}
			type nodeStatus struct {
				Node      string `json:"node"`
				Kind      string `json:"kind"`
				Namespace string `json:"namespace"`
				Up        bool   `json:"up"`
			}
			var st []nodeStatus
			up := 0
			for _, n := range l.Topo.Nodes {
				s := nodeStatus{n.Name, n.Kind, l.NS(n.Name), exists[l.NS(n.Name)]}
				if s.Up {
					up++
				}
				st = append(st, s)
			}
			if asJSON {
				return cli.WriteJSON(cmd.OutOrStdout(), map[string]any{"prefix": o.prefix, "up": up == len(st), "nodes": st})
			}
			for _, s := range st {
				word := "down"
				if s.Up {
					word = "up"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-9s %-7s %-5s %s\n", s.Node, s.Kind, word, s.Namespace)
			}
			if up != len(st) {
				return cli.Failed(fmt.Errorf("%d of %d nodes up", up, len(st)))
			}
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print a JSON document")
	return status
}

func newExecCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "exec NODE -- CMD [ARG...]",
		Short: "Run a command inside a node (a shell when no command is given)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l := o.lab()
			if _, ok := l.Node(args[0]); !ok {
				return cli.Usagef("unknown node %q: see 'vcpe-lab status' for the nodes", args[0])
			}
			argv := args[1:]
			if len(argv) == 0 {
				argv = []string{"/bin/bash"}
			}
			c := l.Command(cmd.Context(), args[0], argv...)
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
			// vcpe, vcped and vcpe-hub sit next to vcpe-lab: put them on the
			// PATH; on a device, point vcpe at the node's state and the lab's
			// controller, so `vcpe status` and `vcpe install` need no flags.
			c.Env = os.Environ()
			if self, err := os.Executable(); err == nil {
				c.Env = append(c.Env, "PATH="+filepath.Dir(self)+":"+os.Getenv("PATH"))
			}
			c.Env = append(c.Env, l.NodeEnv(args[0])...)
			err := c.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return cli.Failed(fmt.Errorf("%s exited %d", argv[0], ee.ExitCode()))
			}
			return err
		},
	}
}

// connectivityFailed is the first failed probe as a check failure (exit 1).
func connectivityFailed(rs []lab.ProbeResult) error {
	for _, r := range rs {
		if !r.OK {
			return cli.Failed(fmt.Errorf("connectivity check failed: %s", r.What))
		}
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := cli.Execute(ctx, newRootCmd(), os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}
