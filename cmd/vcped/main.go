// Command vcped is the headless dataplane daemon on a vCPE device. It runs
// in the foreground on the state that registration wrote (--state-dir),
// brings the tunnel up with the dataplane package, keeps the configuration
// in sync with the controller (or runs static on the saved configuration
// when the state names no controller), and serves status on
// STATE-DIR/vcped.sock. It only parses flags and wires packages together.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/cmd/internal/profile"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/internal/supervise"
)

var version = "dev"

type options struct {
	stateDir      string
	tun           string
	listenPort    uint16
	uapiDir       string
	metricsListen string
	logLevel      string
	syncInterval  time.Duration
	reflector     string
	lanGateway    string
	lanIf         string
	lanTargets    []string
	check         dataplane.HealthCheck
	gomaxprocs    int
	memoryLimit   int64
	log           logOptions
	pmtuInterval  time.Duration
	supervise     bool
	pidFile       string
	cpuProfile    string
}

// newRootCmd builds vcped's command; run reads the flags from o.
func newRootCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:           "vcped --state-dir DIR",
		Short:         "vcpe dataplane daemon: the device's WireGuard tunnel to the hub",
		Version:       version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.supervise {
				return runSupervisor(cmd.Context(), *o)
			}
			return run(cmd.Context(), *o)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	f := cmd.Flags()
	f.StringVar(&o.stateDir, "state-dir", device.DefaultStateDir, "device state directory (written by registration)")
	f.StringVar(&o.tun, "tun", dataplane.DefaultTUN, "TUN interface name")
	f.Uint16Var(&o.listenPort, "listen-port", dataplane.DefaultListenPort, "WireGuard UDP port")
	f.StringVar(&o.uapiDir, "uapi-dir", dataplane.DefaultUAPIDir, "directory of the WireGuard UAPI socket (wg show reads "+dataplane.DefaultUAPIDir+")")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus metrics on this loopback address (e.g. 127.0.0.1:9586)")
	f.IntVar(&o.gomaxprocs, "gomaxprocs", 0, "Go processors for the daemon (0: $GOMAXPROCS if set, else half the CPUs, at least 1, leaving the rest to the kernel's packet processing)")
	f.Int64Var(&o.memoryLimit, "memory-limit", 0, fmt.Sprintf("soft memory limit of the daemon in MiB (0: $GOMEMLIMIT if set, else %d)", dataplane.DefaultMemoryLimitMiB))
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.log.file, "log-file", "", "write the log to this file, rotated by size, instead of stderr (detached mode; under systemd the log goes to the journal)")
	f.IntVar(&o.log.maxMiB, "log-max-size", 10, "with --log-file: rotate when the log reaches this many MiB")
	f.IntVar(&o.log.backups, "log-max-backups", 3, "with --log-file: rotated logs to keep (FILE.1 … FILE.N)")
	f.DurationVar(&o.syncInterval, "sync-interval", 5*time.Second, "how often to poll the controller for configuration")
	f.StringVar(&o.reflector, "reflector", ":12345", "UDP address of the probe reflector (vcpe probe udp); empty disables it")
	f.StringVar(&o.lanGateway, "lan-gateway", "", "multi-attach: LAN gateway ADDR/LEN the active device holds (e.g. 198.19.1.254/24)")
	f.StringVar(&o.lanIf, "lan-if", "", "multi-attach: interface for --lan-gateway (default: the one with an address in its prefix)")
	f.StringSliceVar(&o.lanTargets, "lan-target", nil, "multi-attach: LAN host to probe; none answering makes the device unhealthy")
	f.DurationVar(&o.pmtuInterval, "pmtu-interval", dataplane.DefaultPathMTUInterval, "how often to check that packets of the tunnel's MTU reach the hub (a black hole lowers the MTU); 0 turns the check off")
	f.DurationVar(&o.check.Interval, "ha-interval", dataplane.DefaultHAInterval, "multi-attach: probe and claim interval")
	f.DurationVar(&o.check.Timeout, "ha-timeout", 0, "multi-attach: LAN probe timeout (default: the interval)")
	f.IntVar(&o.check.Failures, "ha-failures", dataplane.DefaultHAFailures, "multi-attach: failed probes (or missed hub replies) before down")
	f.DurationVar(&o.check.RTTThreshold, "ha-rtt-threshold", 0, "multi-attach: a LAN probe slower than this counts as failed (0: no threshold)")
	f.BoolVar(&o.supervise, "supervise", false, "run as a supervisor that restarts vcped (with the other flags) within a second after it dies, one copy at a time; for hosts without systemd")
	f.StringVar(&o.cpuProfile, "cpu-profile", "", "write a CPU profile (pprof) of the daemon to this file when it stops; make pgo builds vcped from such profiles")
	f.StringVar(&o.pidFile, "pid-file", "", "with --supervise: write the supervisor's pid here before the daemon starts")
	cmd.AddCommand(cli.DocsCommand(cmd))
	return cmd
}

func main() {
	var o options
	cmd := newRootCmd(&o)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Report(os.Stderr, "vcped", cmd.ExecuteContext(ctx)))
}

func newLogger(level string, lo logOptions) (*slog.Logger, io.Closer, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, cli.Usagef("--log-level %q: use debug, info, warn or error", level)
	}
	w, closer, err := lo.writer(os.Stderr)
	if err != nil {
		return nil, nil, err
	}
	opts := &slog.HandlerOptions{Level: l}
	if os.Getenv("JOURNAL_STREAM") != "" { // journald stamps lines itself
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts)), closer, nil
}

func run(ctx context.Context, o options) error {
	log, logCloser, err := newLogger(o.logLevel, o.log)
	if err != nil {
		return err
	}
	defer logCloser.Close()
	procs, err := dataplane.ChooseProcs(o.gomaxprocs, os.Getenv("GOMAXPROCS"), runtime.GOMAXPROCS(0))
	if err != nil {
		return cli.Usagef("%v", err)
	}
	mem, err := dataplane.ChooseMemoryLimit(o.memoryLimit, os.Getenv("GOMEMLIMIT"), dataplane.DefaultMemoryLimitMiB)
	if err != nil {
		return cli.Usagef("%v", err)
	}
	runtime.GOMAXPROCS(procs.N)
	if mem.MiB > 0 {
		debug.SetMemoryLimit(mem.MiB << 20)
	}
	stopProfile, err := profile.Flag(o.cpuProfile, log)
	if err != nil {
		return err
	}
	defer stopProfile()
	log.Info("go processors", "gomaxprocs", procs.N, "available", procs.Available, "source", procs.Source)
	log.Info("soft memory limit", "limit_mib", debug.SetMemoryLimit(-1)>>20, "source", mem.Source)
	var metricsAddr netip.AddrPort
	if o.metricsListen != "" {
		if metricsAddr, err = netip.ParseAddrPort(o.metricsListen); err != nil || !metricsAddr.Addr().IsLoopback() {
			return cli.Usagef("--metrics-listen %q must be a loopback address and port, e.g. 127.0.0.1:9586", o.metricsListen)
		}
	}
	ha := dataplane.EdgeHA{Check: o.check, LANInterface: o.lanIf}
	if o.lanGateway != "" {
		if ha.LANGateway, err = netip.ParsePrefix(o.lanGateway); err != nil {
			return cli.Usagef("--lan-gateway %q: want ADDR/LEN, e.g. 198.19.1.254/24", o.lanGateway)
		}
	}
	for _, t := range o.lanTargets {
		a, err := netip.ParseAddr(t)
		if err != nil || !a.Is4() {
			return cli.Usagef("--lan-target %q: want an IPv4 address of a LAN host", t)
		}
		ha.LANTargets = append(ha.LANTargets, a)
	}
	st, err := device.LoadState(o.stateDir)
	if err != nil {
		return err
	}
	pmtu := o.pmtuInterval
	switch {
	case pmtu < 0:
		return cli.Usagef("--pmtu-interval %v: want a positive duration, or 0 to turn the check off", pmtu)
	case pmtu == 0:
		pmtu = -1 // off
	}
	eng, err := dataplane.New(dataplane.EdgeOptions{
		PrivateKey: st.PrivateKey, TUN: o.tun, ListenPort: o.listenPort, UAPIDir: o.uapiDir, Logger: log, HA: ha,
		Protect:         controllerProtected(st.Controller),
		PathMTUInterval: pmtu,
	})
	if err != nil {
		return cli.Usagef("%v", err)
	}

	// The reflector answers on the overlay and LAN addresses only, never
	// on the WAN: it is for probes through the tunnel.
	reflectorScope := &scope{}
	reflectorScope.set(st.Config)
	var syncer *dataplane.Syncer
	static := dataplane.SyncStatus{Mode: "static", State: dataplane.SyncStatic, Generation: st.Config.Generation, SavedGeneration: st.Config.Generation}
	switch {
	case st.Controller == "":
		log.Info("no controller in the state file: running static on the saved configuration")
	default:
		src, err := device.NewClientFromState(st, device.ClientOptions{Timeout: 10 * time.Second})
		if err != nil {
			return fmt.Errorf("controller client: %w", err)
		}
		syncer = dataplane.NewSyncer(src, eng, st.Config.Generation)
		syncer.Interval, syncer.Logger = o.syncInterval, log
		syncer.Save = func(cfg api.DeviceConfig) error {
			cur, err := device.LoadState(o.stateDir)
			if err != nil {
				return err
			}
			cur.Config = cfg
			reflectorScope.set(cfg)
			return device.SaveState(o.stateDir, cur)
		}
	}
	if syncer != nil {
		eng.SetSyncStatus(syncer.Status)
	} else {
		eng.SetSyncStatus(func() dataplane.SyncStatus { return static })
	}

	if err := eng.Start(st.Config); err != nil {
		return err
	}
	defer eng.Close()

	ctl, err := dataplane.ListenControl(filepath.Join(o.stateDir, dataplane.ControlSocket), eng.Status, log)
	if err != nil {
		return err
	}
	defer ctl.Close()

	if metricsAddr.IsValid() {
		reg := prometheus.NewRegistry()
		reg.MustRegister(dataplane.NewCollector(eng.Status))
		ln, err := net.Listen("tcp", metricsAddr.String())
		if err != nil {
			return fmt.Errorf("metrics listener %s: %w", metricsAddr, err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		log.Info("serving metrics", "addr", metricsAddr)
	}

	if syncer != nil {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go syncer.Run(sctx)
	}

	if o.reflector != "" {
		pc, err := net.ListenPacket("udp4", o.reflector)
		if err != nil {
			return fmt.Errorf("probe reflector on %s: %w (pass another --reflector address, or --reflector= to disable it)", o.reflector, err)
		}
		defer pc.Close()
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			r := &diag.Reflector{AllowDst: reflectorScope.allow}
			if err := r.Serve(rctx, pc); err != nil && rctx.Err() == nil {
				log.Error("probe reflector stopped", "err", err)
			}
		}()
	}

	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	watchdog, _ := daemon.SdWatchdogEnabled(false)
	tick := 5 * time.Second
	if watchdog > 0 && watchdog/2 < tick {
		tick = watchdog / 2
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	last := ""
	notifyStatus := func() {
		s := eng.Status()
		line := "tunnel " + s.State
		if s.Reason != "" {
			line += ": " + s.Reason
		}
		if line != last {
			_, _ = daemon.SdNotify(false, "STATUS="+line)
			last = line
		}
	}
	notifyStatus()
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
			return nil
		case <-t.C:
			notifyStatus()
			// The watchdog is fed only while the engine answers: a wedged
			// engine (its lock held forever) gets vcped restarted.
			if watchdog > 0 {
				_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			}
		}
	}
}

// controllerProtected is the controller's address, which no learned route
// may capture (the engine adds the hub endpoint and the SSH clients). A
// name is resolved once, at start.
func controllerProtected(controller string) func() []dataplane.Protected {
	u, err := url.Parse(controller)
	if controller == "" || err != nil || u.Hostname() == "" {
		return nil
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(u.Hostname()); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ips, _ := net.DefaultResolver.LookupNetIP(ctx, "ip4", u.Hostname())
		cancel()
		for _, a := range ips {
			addrs = append(addrs, a.Unmap())
		}
	}
	out := make([]dataplane.Protected, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, dataplane.Protected{Addr: a, What: "the controller " + a.String()})
	}
	return func() []dataplane.Protected { return out }
}

// scope is where the device's reflector answers: its overlay network, its
// advertised LAN prefixes and loopback; it follows the configuration.
type scope struct {
	ps atomic.Pointer[[]netip.Prefix]
}

func (s *scope) set(cfg api.DeviceConfig) {
	ps := append([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, cfg.Advertised...)
	if cfg.OverlayAddr.IsValid() {
		ps = append(ps, cfg.OverlayAddr.Masked())
	}
	s.ps.Store(&ps)
}

func (s *scope) allow(a netip.Addr) bool {
	for _, p := range *s.ps.Load() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// runSupervisor runs vcped under internal/supervise: the same command line
// without --supervise and --pid-file.
func runSupervisor(ctx context.Context, o options) error {
	// The supervisor logs its few lines to stderr (where the install sends
	// them); the daemon it runs keeps --log-file and its rotation.
	log, _, err := newLogger(o.logLevel, logOptions{})
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("supervise: find vcped: %w", err)
	}
	argv := []string{exe}
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--supervise" || strings.HasPrefix(a, "--supervise="):
		case a == "--pid-file":
			i++
		case strings.HasPrefix(a, "--pid-file="):
		default:
			argv = append(argv, a)
		}
	}
	return supervise.Run(ctx, supervise.Options{Argv: argv, PIDFile: o.pidFile, Log: log})
}
