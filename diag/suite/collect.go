package suite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
)

// Options tune Collect. The zero value (with StateDir) is the default run.
type Options struct {
	StateDir string
	// Targets are extra addresses to probe (ICMP echo) through the tunnel,
	// one series each. The controller's probe target of every learned
	// prefix (api.DeviceConfig.Targets) is probed with the reflector by
	// default; a Target inside a prefix replaces that prefix's default.
	Targets []netip.Addr
	// Timeout bounds the whole collection (default 10 s); each probe
	// series is bounded well inside it.
	Timeout time.Duration
	// Count and Interval of each probe series (default 20 every 50 ms).
	Count    int
	Interval time.Duration
	// OnSample, when set, sees every probe sample as it arrives, by probe
	// name (the live dashboard).
	OnSample func(name string, s diag.Sample)
	Log      *slog.Logger

	// Replaceable parts (tests).
	Now         func() time.Time
	Gather      func(ctx context.Context) (*precheck.Snapshot, error)
	ReadStatus  func(path string) (dataplane.Status, error)
	FetchConfig func(ctx context.Context, st *device.State, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (api.DeviceConfig, error)
	Dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	ReadHost    func(q HostQuery) (*Host, error)
	PingICMP    func(ctx context.Context, target netip.Addr, o diag.Options) (diag.Result, error)
	PingUDP     func(ctx context.Context, target netip.AddrPort, o diag.Options) (diag.Result, error)
	PathMTU     func(ctx context.Context, target netip.Addr, o diag.MTUOptions) (diag.MTUResult, error)
	// Reach runs the outside-in check (the controller probes this host's
	// public address); nil leaves it out.
	Reach func(ctx context.Context, st *device.State) (diag.ReachReport, error)
}

func (o *Options) defaults() {
	if o.StateDir == "" {
		o.StateDir = device.DefaultStateDir
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Count <= 0 {
		o.Count = 20
	}
	if o.Interval <= 0 {
		o.Interval = 50 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Gather == nil {
		o.Gather = func(ctx context.Context) (*precheck.Snapshot, error) {
			return precheck.Gather(ctx, precheck.GatherOptions{})
		}
	}
	if o.ReadStatus == nil {
		o.ReadStatus = dataplane.ReadStatus
	}
	if o.Dial == nil {
		o.Dial = (&net.Dialer{}).DialContext
	}
	if o.FetchConfig == nil {
		o.FetchConfig = func(ctx context.Context, st *device.State, dial func(context.Context, string, string) (net.Conn, error)) (api.DeviceConfig, error) {
			c, err := device.NewClientFromState(st, device.ClientOptions{Timeout: 4 * time.Second, Dial: dial})
			if err != nil {
				return api.DeviceConfig{}, err
			}
			return c.DeviceConfig(ctx)
		}
	}
	if o.ReadHost == nil {
		o.ReadHost = readHost
	}
	if o.PingICMP == nil {
		o.PingICMP = diag.PingICMP
	}
	if o.PingUDP == nil {
		o.PingUDP = diag.PingUDP
	}
	if o.PathMTU == nil {
		o.PathMTU = diag.PathMTU
	}
}

// Collect gathers the Evidence: the device state first (it names the hub
// and the controller), then everything else concurrently, each part
// bounded so the whole run ends within Options.Timeout. It changes
// nothing on the host. What cannot be gathered is recorded as such.
func Collect(ctx context.Context, o Options) *Evidence {
	o.defaults()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	e := &Evidence{Time: o.Now(), StateDir: o.StateDir, Probes: map[string]diag.Result{}, ProbeErrors: map[string]string{}}
	st, err := device.LoadState(o.StateDir)
	if err != nil {
		e.StateError = err.Error()
	} else {
		e.State = st
	}
	e.StateFiles = device.CheckStateDir(o.StateDir)
	// vcped's status first (a local socket): in a hub group it says which
	// hub carries the traffic, and the probes of "the hub" go to that one.
	if s, err := o.ReadStatus(filepath.Join(o.StateDir, dataplane.ControlSocket)); err != nil {
		e.StatusError = err.Error()
	} else {
		e.Status = &s
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	// Leave a margin for the slowest part to report before the deadline.
	budget := o.Timeout * 8 / 10

	// The outside-in check listens on required ports: it starts only once
	// the host snapshot is taken, so precheck never sees its own sockets.
	gathered := make(chan struct{})
	// It asks the controller: it waits for the config fetch, and does not
	// run when the controller does not answer.
	fetched := make(chan struct{})
	wg.Go(func() {
		defer close(gathered)
		pctx, cancel := context.WithTimeout(ctx, budget)
		defer cancel()
		snap, err := o.Gather(pctx)
		if err != nil {
			o.Log.Warn("gather host snapshot", "err", err)
			return
		}
		rep := precheck.Run(pctx, snap, precheck.Options{})
		mu.Lock()
		e.Snapshot, e.Precheck = snap, &rep
		mu.Unlock()
	})
	wg.Go(func() {
		q := HostQuery{TUN: dataplane.DefaultTUN}
		if st != nil {
			q.Learned, q.Advertised = st.Config.Routes, st.Advertise
			if len(st.Config.Advertised) > 0 {
				q.Advertised = st.Config.Advertised
			}
			q.Targets = map[netip.Prefix]netip.Addr{}
			for _, t := range st.Config.Targets {
				q.Targets[t.Prefix] = t.Addr
			}
		}
		h, err := o.ReadHost(q)
		if err != nil {
			o.Log.Warn("read host routes", "err", err)
			return
		}
		mu.Lock()
		e.Host = h
		mu.Unlock()
	})
	if st != nil && o.Reach != nil {
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, budget)
			defer cancel()
			for _, ch := range []chan struct{}{gathered, fetched} {
				select {
				case <-ch:
				case <-rctx.Done():
					return
				}
			}
			mu.Lock()
			c := e.Controller
			mu.Unlock()
			if c != nil && !c.OK {
				mu.Lock()
				e.ReachError = fmt.Sprintf("not run: the controller %s does not answer over TCP", c.Addr)
				mu.Unlock()
				return
			}
			r, err := o.Reach(rctx, st)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				e.ReachError = err.Error()
				return
			}
			e.Reach = &r
		})
	}
	if st != nil {
		// The TCP connect to the controller is the config fetch's own
		// (no extra connection for the hub to log); a separate connect only
		// when the fetch made none.
		ctlAddr, ctlErr := controllerAddr(st.Controller)
		var dialed *Dial
		recordDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := o.Dial(ctx, network, addr)
			if ctlErr == nil && addr == ctlAddr.String() {
				d := Dial{Addr: ctlAddr, OK: err == nil}
				if err != nil {
					d.Error, d.Refused = err.Error(), errors.Is(err, syscall.ECONNREFUSED)
				}
				mu.Lock()
				if dialed == nil {
					dialed = &d
				}
				mu.Unlock()
			}
			return c, err
		}
		wg.Go(func() {
			defer close(fetched)
			cctx, cancel := context.WithTimeout(ctx, min(budget, 5*time.Second))
			defer cancel()
			cfg, err := o.FetchConfig(cctx, st, recordDial)
			mu.Lock()
			d := dialed
			switch ae := (*api.Error)(nil); {
			case errors.As(err, &ae):
				e.ConfigError = ae
			case err != nil:
				e.ControllerError = err.Error()
			default:
				e.Config = &cfg
			}
			mu.Unlock()
			if d == nil && ctlErr == nil {
				dd := dialTCP(cctx, o.Dial, ctlAddr)
				d = &dd
			}
			mu.Lock()
			e.Controller = d
			mu.Unlock()
		})
		probeCfg := ViaCarryingHub(st.Config, e.Status)
		hubWAN, hubOverlay := probeCfg.HubEndpoint.Addr(), probeCfg.HubOverlayAddr
		po := diag.Options{Count: o.Count, Interval: o.Interval, Timeout: time.Second}
		series := func(name string, run func(context.Context, diag.Options) (diag.Result, error)) {
			wg.Go(func() {
				sctx, cancel := context.WithTimeout(ctx, budget)
				defer cancel()
				opt := po
				if o.OnSample != nil {
					opt.OnSample = func(s diag.Sample) { o.OnSample(name, s) }
				}
				r, err := run(sctx, opt)
				mu.Lock()
				defer mu.Unlock()
				if len(r.Samples) > 0 {
					e.Probes[name] = r
				}
				if err != nil {
					e.ProbeErrors[name] = err.Error()
				}
			})
		}
		if hubWAN.IsValid() {
			wg.Go(func() {
				mctx, cancel := context.WithTimeout(ctx, budget)
				defer cancel()
				m, err := o.PathMTU(mctx, hubWAN, diag.MTUOptions{UDP: true, Timeout: 300 * time.Millisecond, Tries: 2})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					e.WANMTUError = err.Error()
					return
				}
				e.WANMTU = &m
			})
			series(ProbeWANICMP, func(c context.Context, op diag.Options) (diag.Result, error) { return o.PingICMP(c, hubWAN, op) })
			series(ProbeWANReflector, func(c context.Context, op diag.Options) (diag.Result, error) {
				return o.PingUDP(c, netip.AddrPortFrom(hubWAN, diag.ReflectorPort), op)
			})
		}
		for _, t := range TunnelTargets(probeCfg, o.Targets) {
			series(t.Name, func(c context.Context, op diag.Options) (diag.Result, error) { return o.PingUDP(c, t.Addr, op) })
		}
		if hubOverlay.IsValid() {
			wg.Go(func() {
				mctx, cancel := context.WithTimeout(ctx, budget)
				defer cancel()
				m, err := o.PathMTU(mctx, hubOverlay, diag.MTUOptions{UDP: true, Timeout: 300 * time.Millisecond, Tries: 2})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					e.MTUError = err.Error()
					return
				}
				e.MTU = &m
			})
		}
		for _, t := range o.Targets {
			series(ProbeTargetPrefix+t.String(), func(c context.Context, op diag.Options) (diag.Result, error) { return o.PingICMP(c, t, op) })
		}
		e.Targets = defaultTargets(st.Config.Targets, o.Targets)
	}
	wg.Wait()
	if e.Status != nil {
		// Again, for WireGuard's counters over the time the probes ran.
		if s, err := o.ReadStatus(filepath.Join(o.StateDir, dataplane.ControlSocket)); err == nil {
			e.StatusAfter = &s
		}
	}
	return e
}

// defaultTargets are the controller's probe targets the operator's own
// targets leave: none for a prefix that holds one of them.
func defaultTargets(cfg []api.ProbeTarget, explicit []netip.Addr) []api.ProbeTarget {
	var out []api.ProbeTarget
	for _, t := range cfg {
		if !t.Addr.IsValid() || !t.Prefix.Contains(t.Addr) || slices.ContainsFunc(explicit, t.Prefix.Contains) {
			continue
		}
		out = append(out, t)
	}
	return out
}

// controllerAddr is the TCP address of the controller URL in the state.
func controllerAddr(raw string) (netip.AddrPort, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("controller URL %q: %w", raw, err)
	}
	return resolveAddrPort(u)
}

func resolveAddrPort(u *url.URL) (netip.AddrPort, error) {
	port := 443
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("controller port %q: %w", p, err)
		}
		port = n
	}
	a, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("controller host %q is not an address: %w", u.Hostname(), err)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

func dialTCP(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), ap netip.AddrPort) Dial {
	d := Dial{Addr: ap}
	c, err := dial(ctx, "tcp", ap.String())
	if err != nil {
		d.Error = err.Error()
		d.Refused = errors.Is(err, syscall.ECONNREFUSED)
		return d
	}
	c.Close()
	d.OK = true
	return d
}
