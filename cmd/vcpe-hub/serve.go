package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/cmd/internal/profile"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/device"
)

// serveOptions are serve's flags.
type serveOptions struct {
	tuning      tuningOptions
	state       string
	listen      string
	hubEndpoint string
	overlay     string
	cloud       []string
	lanPools    []string
	deny        []string
	auditAge    time.Duration
	auditRows   int
	routeQuota  int
	names       []string
	hub         hubOptions
	db          databaseOptions
	role        string
	remote      remoteOptions
	hubName     string
	failback    bool
}

// endpoint is the hub endpoint devices dial.
func (o serveOptions) endpoint() (netip.AddrPort, error) {
	opts, err := o.controllerOptions()
	return opts.HubEndpoint, err
}

// controllerOptions turns flags into controller options, deriving the hub
// endpoint from a specific --listen address when it is not given.
func (o serveOptions) controllerOptions() (controller.Options, error) {
	opts := controller.Options{StateDir: o.state, RouteQuota: o.routeQuota, Names: o.names, AuditMaxAge: o.auditAge, AuditMaxRows: o.auditRows,
		HubName: o.hubName, Failback: o.failback, EmbeddedHub: (o.role == roleAll || o.role == "") && !o.hub.disabled}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return opts, cli.Usagef("--listen %q: want ADDR:PORT or :PORT (for example :8443)", o.listen)
	}
	switch {
	case o.hubEndpoint != "":
		if opts.HubEndpoint, err = netip.ParseAddrPort(o.hubEndpoint); err != nil {
			return opts, cli.Usagef("--hub-endpoint %q: want ADDR:PORT, the address devices dial (for example 198.18.0.1:4500)", o.hubEndpoint)
		}
	default:
		a, err := netip.ParseAddr(host)
		if err != nil || a.IsUnspecified() || a.IsLoopback() {
			return opts, cli.Usagef("--hub-endpoint is required when --listen (%s) names no public address: pass the address devices dial, for example --hub-endpoint 198.18.0.1:4500", o.listen)
		}
		opts.HubEndpoint = netip.AddrPortFrom(a, 4500)
	}
	if opts.Overlay, err = netip.ParsePrefix(o.overlay); err != nil {
		return opts, cli.Usagef("--overlay %q: want a prefix (default 198.18.64.0/18)", o.overlay)
	}
	for _, c := range o.cloud {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return opts, cli.Usagef("--cloud-prefix %q: want a prefix such as 198.19.100.0/24", c)
		}
		opts.CloudPrefixes = append(opts.CloudPrefixes, p)
	}
	for _, f := range []struct {
		flag string
		in   []string
		out  *[]netip.Prefix
	}{{"--lan-pool", o.lanPools, &opts.LANPools}, {"--deny-prefix", o.deny, &opts.DenyPrefixes}} {
		for _, c := range f.in {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return opts, cli.Usagef("%s %q: want an IPv4 prefix such as 10.0.0.0/8", f.flag, c)
			}
			*f.out = append(*f.out, p)
		}
	}
	if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
		opts.ControllerAddr = a
	}
	return opts, nil
}

// reflectorAddrs are the hub host's addresses inside the cloud prefixes
// where its probe reflector answers: the devices' default probe targets
// for those prefixes. None when the reflector is off.
func (o serveOptions) reflectorAddrs(cloud []netip.Prefix) ([]netip.Addr, error) {
	if o.hub.disabled || o.hub.reflector == "" || len(cloud) == 0 {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(o.hub.reflector)
	if err != nil {
		return nil, cli.Usagef("--reflector %q: want [ADDR]:PORT (default :12345)", o.hub.reflector)
	}
	ifaddrs, err := device.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
		ifaddrs = []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}
	}
	return device.ProbeAddrsIn(ifaddrs, cloud, netip.Addr{}), nil
}

// newServer builds the controller from serve's options; the hub dataplane
// is wired to it with Server.Subscribe.
func newServer(ctx context.Context, o serveOptions, log *slog.Logger) (*controller.Server, error) {
	opts, err := o.controllerOptions()
	if err != nil {
		return nil, err
	}
	opts.Logger = log
	if opts.Store, err = o.db.openStore(ctx); err != nil {
		return nil, err
	}
	if opts.HubAddrs, err = o.reflectorAddrs(opts.CloudPrefixes); err != nil {
		return nil, err
	}
	// No device may advertise a prefix covering the hub's own addresses,
	// connected networks or gateways.
	hn, err := dataplane.HostNetworks()
	if err != nil && !errors.Is(err, dataplane.ErrUnsupported) {
		return nil, err
	}
	for _, h := range hn {
		opts.HostNetworks = append(opts.HostNetworks, controller.HostNetwork{Prefix: h.Prefix, What: h.What})
	}
	srv, err := controller.New(ctx, opts)
	if err != nil && opts.Store != nil {
		opts.Store.Close()
	}
	var oe *controller.OptionError
	if errors.As(err, &oe) {
		return nil, &cli.UsageError{Err: err}
	}
	if err != nil {
		return nil, err
	}
	return srv, nil
}

func newServeCmd(g *globals) *cobra.Command {
	o := serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the controller (device API over HTTPS, admin socket) and/or the hub's tunnel end (--role)",
		Long: `Run the controller. The first start creates the state directory (0700), the
store, a CA and a server certificate, and the hub's WireGuard key; every start
prints the CA's SHA-256 fingerprint, which devices pin with
vcpe register --controller-fingerprint. Stop it with SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.state = g.state
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := newServeLogger(os.Stderr, os.Getenv("JOURNAL_STREAM") != "")
			if err := o.hub.checkFlags(); err != nil {
				return err // before anything starts
			}
			if err := o.tuning.apply(o.role != roleController && !o.hub.disabled, log); err != nil {
				return err
			}
			stopProfile, err := profile.Flag(o.tuning.cpuProfile, log)
			if err != nil {
				return err
			}
			defer stopProfile()
			switch o.role {
			case roleAll, roleController:
			case roleHub:
				return serveHub(ctx, o, log)
			default:
				return cli.Usagef("--role %q: want all (controller and hub in one process, the default), controller or hub", o.role)
			}
			if o.role == roleController {
				o.hub.disabled = true
			}
			srv, err := newServer(ctx, o, log)
			if err != nil {
				return err
			}
			defer srv.Close()
			stopHub, err := startHub(ctx, srv, o, log)
			if err != nil {
				return err
			}
			defer stopHub()
			if g.json {
				if err := cli.WriteJSON(cmd.OutOrStdout(), map[string]string{"fingerprint": srv.Fingerprint(), "listen": o.listen, "hub_public_key": srv.HubPublicKey().String()}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "controller CA fingerprint: %s\n", srv.Fingerprint())
				fmt.Fprintf(cmd.OutOrStdout(), "devices register with: vcpe register --controller %s --controller-fingerprint %s --sn SN --advertise PREFIX\n", controllerURL(o.listen), srv.Fingerprint())
			}
			return listenAndServe(ctx, srv, o.listen, o.state)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", ":8443", "HTTPS address of the device API")
	f.StringVar(&o.hubEndpoint, "hub-endpoint", "", "WireGuard endpoint devices dial, ADDR:PORT (default: the --listen address, port 4500)")
	f.StringVar(&o.overlay, "overlay", controller.DefaultOverlay.String(), "overlay address pool; the hub takes the first address")
	f.StringSliceVar(&o.cloud, "cloud-prefix", nil, "cloud-side prefix behind the hub, learnt by CCN members (repeatable)")
	f.StringSliceVar(&o.lanPools, "lan-pool", nil, "prefix devices may advertise inside (repeatable; default the private ranges 10/8, 100.64/10, 172.16/12, 192.168/16, 198.18/15)")
	f.StringSliceVar(&o.deny, "deny-prefix", nil, "prefix no device may advertise into (repeatable)")
	f.DurationVar(&o.auditAge, "audit-max-age", controller.DefaultAuditMaxAge, "audit log entries older than this are pruned")
	f.IntVar(&o.auditRows, "audit-max-rows", controller.DefaultAuditMaxRows, "the audit log keeps at most this many entries")
	f.IntVar(&o.routeQuota, "route-quota", controller.DefaultRouteQuota, "default number of prefixes a device may advertise (up to 50)")
	f.StringVar(&o.db.url, "database", "", "store: sqlite (default, in --state) or postgres://USER@HOST[:PORT]/DB for replicas; default $"+DatabaseEnv+"; never put the password here")
	f.StringVar(&o.db.passwordFile, "database-password-file", "", "file holding the PostgreSQL password (or PGPASSWORD, PGPASSFILE)")
	f.StringSliceVar(&o.names, "name", nil, "extra DNS name or IP address for the server certificate (repeatable)")
	f.StringVar(&o.role, "role", roleAll, "all (controller and hub in one process), controller (APIs and store only), or hub (tunnel end only, configured by --controller)")
	f.StringSliceVar(&o.remote.controllers, "controller", nil, "--role hub: URL of the controller, https://HOST:8443 (repeatable: its replicas, tried in turn)")
	f.StringVar(&o.remote.fingerprint, "controller-fingerprint", "", "--role hub: the controller CA's fingerprint (vcpe-hub fingerprint)")
	f.StringVar(&o.remote.credentialFile, "hub-credential-file", "", "--role hub: file holding the hub credential (vcpe-hub hub credential NAME), or $"+HubCredentialEnv)
	f.StringVar(&o.hubName, "hub-name", controller.DefaultHubName, "hub groups: the name of the hub this controller runs itself (--role all) in the group of registered hubs")
	f.BoolVar(&o.failback, "hub-failback", false, "hub groups: devices give the traffic back to their primary hub once it has recovered (default: it stays on the hub that carries it)")
	f.BoolVar(&o.hub.disabled, "no-dataplane", false, "run the controller only: no tunnel endpoint, no reflector")
	f.StringVar(&o.hub.tun, "tun", "vcpe-hub", "name of the hub's TUN interface")
	f.StringVar(&o.hub.uapiDir, "uapi-dir", dataplane.DefaultUAPIDir, "directory of the WireGuard UAPI socket (wg show)")
	f.StringVar(&o.hub.reflector, "reflector", ":12345", "UDP address of the probe reflector; empty disables it. It answers only on the overlay and cloud-side addresses (and the hub endpoint, see --reflector-endpoint)")
	f.BoolVar(&o.hub.reflectorEndpoint, "reflector-endpoint", true, "let the reflector answer on the hub endpoint's address too (devices' vcpe diag measures WAN loss with it); no other WAN address ever answers")
	f.DurationVar(&o.hub.check.Interval, "ha-interval", dataplane.DefaultHAInterval, "multi-attach: the claim interval devices use")
	f.IntVar(&o.hub.check.Failures, "ha-failures", dataplane.DefaultHAFailures, "multi-attach: claim intervals missed before the active device counts as down")
	f.BoolVar(&o.hub.preempt, "ha-preempt", false, "multi-attach: give the role back to the first-registered device when it recovers")
	o.hub.addGroupFlags(f)
	addTuningFlags(f, &o.tuning)
	return cmd
}

// controllerURL is the URL devices use for a --listen address, with HOST
// standing for an unspecified one.
func controllerURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "https://HOST"
	}
	if a, err := netip.ParseAddr(host); host == "" || (err == nil && a.IsUnspecified()) {
		host = "HOST"
	}
	return "https://" + net.JoinHostPort(host, port)
}

func newFingerprintCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "fingerprint",
		Short: "Print the controller CA's SHA-256 fingerprint (devices pin it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fp, err := controller.ReadFingerprint(g.state)
			if err != nil {
				return fmt.Errorf("%w (has vcpe-hub serve --state %s run once?)", err, g.state)
			}
			if g.json {
				return cli.WriteJSON(cmd.OutOrStdout(), map[string]string{"fingerprint": fp})
			}
			fmt.Fprintln(cmd.OutOrStdout(), fp)
			return nil
		},
	}
}
