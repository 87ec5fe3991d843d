package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// The hub case's address plan: site i (1..HubSites) reaches the hub over
// its own veth pair, WAN 198.18.i.0/24 with the hub at .1 and the site at
// .2; the overlay is 198.18.64.0/18 with the hub at .1 and site i at
// .10+i. Every variant has its own namespaces.
func hubWAN(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 1}), 24)
}
func siteWAN(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 2}), 24)
}
func siteOverlay(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 64, byte(10 + i)}), 18)
}

var hubOverlay = netip.MustParsePrefix("198.18.64.1/18")

// hubTopo is one variant of the hub case: a hub namespace, HubSites site
// namespaces each joined to it by a veth pair, a tunnel daemon per site
// and one for the hub (none for raw), and one iperf3 server per site in
// the hub's namespace (IperfPort+i-1): the sites send to the hub.
type hubTopo struct {
	variant string
	hub     string
	sites   []string
	targets []netip.Addr // what site i's iperf3 client dials
	hubd    *proc        // the hub's tunnel daemon; nil for raw
	sited   []*proc      // the sites' tunnel daemons
	servers []*proc
	env     []string
	hubEnv  []string // for the hub only, after env
	pin     bool
	vcped   string // the sites' vcped binary; "" for the one built
	profile string // directory for the daemons' CPU profiles; "" for none

	mems memTracker
}

// setupHub builds the variant's hub case in fresh namespaces.
func setupHub(ctx context.Context, o *Options, spec Spec, sites int) (*hubTopo, error) {
	t := &hubTopo{variant: spec.Name, env: spec.Env, hubEnv: spec.HubEnv, pin: spec.Pin, vcped: spec.Vcped, profile: o.ProfileDir}
	ok := false
	defer func() {
		if !ok {
			t.close()
		}
	}()
	var err error
	if t.hub, err = o.NewNamespace(); err != nil {
		return nil, fmt.Errorf("create hub namespace: %w", err)
	}
	for i := 1; i <= sites; i++ {
		ns, err := o.NewNamespace()
		if err != nil {
			return nil, fmt.Errorf("create site %d namespace: %w", i, err)
		}
		t.sites = append(t.sites, ns)
		if err := ipRun(ctx, "-n", ns, "link", "add", "wan", "type", "veth", "peer", "name", "s"+strconv.Itoa(i), "netns", t.hub); err != nil {
			return nil, err
		}
		for _, s := range []struct {
			ns, dev string
			addr    netip.Prefix
		}{{ns, "wan", siteWAN(i)}, {t.hub, "s" + strconv.Itoa(i), hubWAN(i)}} {
			if err := ipRun(ctx, "-n", s.ns, "addr", "add", s.addr.String(), "dev", s.dev); err != nil {
				return nil, err
			}
			if err := ipRun(ctx, "-n", s.ns, "link", "set", s.dev, "up"); err != nil {
				return nil, err
			}
		}
	}
	switch spec.Base {
	case VariantRaw:
		for i := 1; i <= sites; i++ {
			t.targets = append(t.targets, hubWAN(i).Addr())
		}
	case VariantUpstream:
		err = t.startUpstream(ctx, o.Bins)
	case VariantVcpe:
		err = t.startVcpe(ctx, o.Bins, o.TempDir)
	default:
		err = fmt.Errorf("unknown variant %q", spec.Base)
	}
	if err != nil {
		return nil, err
	}
	if err := t.waitReachable(ctx); err != nil {
		return nil, err
	}
	for i := range t.sites {
		p, err := startProc("iperf3-server", t.hub, nil, "iperf3", "-s", "-p", strconv.Itoa(IperfPort+i))
		if err != nil {
			return nil, err
		}
		t.servers = append(t.servers, p)
	}
	err = waitFor(ctx, 5*time.Second, func() error {
		for _, p := range t.servers {
			if !p.alive() {
				return fmt.Errorf("%w: iperf3 server: %s", errExited, p.output())
			}
		}
		out, err := namespace.Command(ctx, t.hub, "ss", "-Hltn").Output()
		if err != nil {
			return err
		}
		for i := range t.sites {
			if !strings.Contains(string(out), ":"+strconv.Itoa(IperfPort+i)+" ") {
				return errors.New("iperf3 servers not listening yet")
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("iperf3 servers in %s: %w", t.hub, err)
	}
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := t.mems.idle(t.daemons()); err != nil {
		return nil, err
	}
	ok = true
	return t, nil
}

func (t *hubTopo) daemons() []*proc {
	var ds []*proc
	if t.hubd != nil {
		ds = append(ds, t.hubd)
	}
	return append(ds, t.sited...)
}

// start runs a daemon; with pin the hub gets CPU 1 and the sites CPU 0.
func (t *hubTopo) start(role, ns string, env []string, bin string, args ...string) (*proc, error) {
	if t.pin {
		cpu := "0"
		if role == "hub" {
			cpu = "1"
		}
		args = append([]string{"-c", cpu, bin}, args...)
		bin = "taskset"
	}
	return startProc(role, ns, env, bin, args...)
}

func (t *hubTopo) startUpstream(ctx context.Context, bins Binaries) error {
	if bins.WireGuardGo == "" {
		return errors.New("not available: wireguard-go was not built")
	}
	hubKey, err := api.GeneratePrivateKey()
	if err != nil {
		return err
	}
	suffix := randomHex(3)
	type end struct {
		role, ns, ifname string
		priv             api.Key
		addr             netip.Prefix
		peers            []UAPIPeer
	}
	hub := end{role: "hub", ns: t.hub, ifname: "wg" + suffix + "h", priv: hubKey, addr: hubOverlay}
	var ends []end
	for i := 1; i <= len(t.sites); i++ {
		k, err := api.GeneratePrivateKey()
		if err != nil {
			return err
		}
		hub.peers = append(hub.peers, UAPIPeer{PublicKey: k.PublicKey(), Endpoint: netip.AddrPortFrom(siteWAN(i).Addr(), TunnelPort),
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(siteOverlay(i).Addr(), 32)}})
		ends = append(ends, end{role: "site" + strconv.Itoa(i), ns: t.sites[i-1], ifname: "wg" + suffix + strconv.Itoa(i), priv: k, addr: siteOverlay(i),
			peers: []UAPIPeer{{PublicKey: hubKey.PublicKey(), Endpoint: netip.AddrPortFrom(hubWAN(i).Addr(), TunnelPort),
				AllowedIPs: []netip.Prefix{netip.PrefixFrom(hubOverlay.Addr(), 32)}}}})
		t.targets = append(t.targets, hubOverlay.Addr())
	}
	for _, e := range append([]end{hub}, ends...) {
		env := append([]string{"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"}, t.env...)
		if e.role == "hub" {
			env = append(env, t.hubEnv...)
		}
		p, err := t.start(e.role, e.ns, env, bins.WireGuardGo, "-f", e.ifname)
		if err != nil {
			return err
		}
		if e.role == "hub" {
			t.hubd = p
		} else {
			t.sited = append(t.sited, p)
		}
		sock := filepath.Join(bins.UAPIDir, e.ifname+".sock")
		if err := waitFor(ctx, 5*time.Second, func() error {
			if !p.alive() {
				return errExited
			}
			_, err := os.Stat(sock)
			return err
		}); err != nil {
			return fmt.Errorf("wireguard-go %s: UAPI socket %s: %w\n%s", e.ifname, sock, err, p.output())
		}
		if err := UAPIDo(ctx, sock, UAPISet(e.priv, TunnelPort, e.peers...)); err != nil {
			return fmt.Errorf("configure wireguard-go %s: %w", e.ifname, err)
		}
		if err := ipRun(ctx, "-n", e.ns, "addr", "add", e.addr.String(), "dev", e.ifname); err != nil {
			return err
		}
		if err := ipRun(ctx, "-n", e.ns, "link", "set", e.ifname, "up"); err != nil {
			return err
		}
	}
	return nil
}

// startVcpe runs vcpe-hub serve --role hub, forwarding on a saved
// configuration (its static stability: the --controller it is given is a
// closed port on its own WAN address, so it never answers), and one
// static-mode vcped per site.
func (t *hubTopo) startVcpe(ctx context.Context, bins Binaries, tmp string) error {
	vcped := cmp.Or(t.vcped, bins.Vcped)
	if vcped == "" {
		return errors.New(bins.VcpedErr)
	}
	if bins.Hub == "" {
		return errors.New(bins.HubErr)
	}
	dir, err := os.MkdirTemp(tmp, "hub-")
	if err != nil {
		return fmt.Errorf("hub state: %w", err)
	}
	hubKey, err := api.GeneratePrivateKey()
	if err != nil {
		return err
	}
	cfg := api.HubConfig{Generation: 1, Overlay: hubOverlay.Masked(), HubOverlayAddr: hubOverlay.Addr()}
	type site struct {
		key   api.Key
		state string
		uapi  string
	}
	var sites []site
	for i := 1; i <= len(t.sites); i++ {
		k, err := api.GeneratePrivateKey()
		if err != nil {
			return err
		}
		sn := "BENCH-SITE-" + strconv.Itoa(i)
		ov := siteOverlay(i)
		cfg.Peers = append(cfg.Peers, api.HubPeer{SN: sn, CCN: "bench", PublicKey: k.PublicKey(), OverlayAddr: ov.Addr(),
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(ov.Addr(), 32)}, Active: true})
		st := &device.State{
			SN:         sn,
			PrivateKey: k,
			Config: api.DeviceConfig{
				Generation:     1,
				SN:             sn,
				InstanceID:     "bench-" + strconv.Itoa(i),
				InstanceName:   "bench-" + strconv.Itoa(i),
				OverlayAddr:    ov,
				HubOverlayAddr: hubOverlay.Addr(),
				HubPublicKey:   hubKey.PublicKey(),
				HubEndpoint:    netip.AddrPortFrom(hubWAN(i).Addr(), TunnelPort),
				Role:           api.RoleActive,
			},
		}
		s := site{key: k, state: filepath.Join(dir, "site"+strconv.Itoa(i)), uapi: filepath.Join(dir, "uapi-site"+strconv.Itoa(i))}
		if err := device.SaveState(s.state, st); err != nil {
			return fmt.Errorf("vcped site %d: %w", i, err)
		}
		if err := os.MkdirAll(s.uapi, 0o700); err != nil {
			return fmt.Errorf("vcped site %d: %w", i, err)
		}
		sites = append(sites, s)
		t.targets = append(t.targets, hubOverlay.Addr())
	}
	hubState := filepath.Join(dir, "hub")
	hubUAPI := filepath.Join(dir, "uapi-hub")
	for _, d := range []string{hubState, hubUAPI} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("hub state: %w", err)
		}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("hub config: %w", err)
	}
	// The file names of vcpe-hub's static stability (cmd/vcpe-hub/hubrole.go).
	for name, data := range map[string][]byte{
		"hub-config.json": b,
		"hub.key":         []byte(hubKey.String() + "\n"),
		"credential":      []byte(randomHex(16) + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(hubState, name), data, 0o600); err != nil {
			return fmt.Errorf("hub state: %w", err)
		}
	}
	unreachable := "https://" + netip.AddrPortFrom(hubWAN(1).Addr(), 9).String()
	args := append([]string{"serve"}, profileArgs(t.profile, t.variant, "hub")...)
	args = append(args, "--role", "hub", "--state", hubState,
		"--controller", unreachable, "--controller-fingerprint", "sha256:"+randomHex(32),
		"--hub-credential-file", filepath.Join(hubState, "credential"),
		"--tun", "vcpehub", "--uapi-dir", hubUAPI, "--reflector", "")
	if t.hubd, err = t.start("hub", t.hub, append(slices.Clone(t.env), t.hubEnv...), bins.Hub, args...); err != nil {
		return err
	}
	for i, s := range sites {
		role := "site" + strconv.Itoa(i+1)
		p, err := t.start(role, t.sites[i], t.env, vcped, append(profileArgs(t.profile, t.variant, role),
			"--state-dir", s.state, "--uapi-dir", s.uapi, "--tun", "vcpe"+strconv.Itoa(i+1), "--listen-port", strconv.Itoa(TunnelPort))...)
		if err != nil {
			return err
		}
		t.sited = append(t.sited, p)
	}
	return nil
}

// waitReachable pings the hub from every site until all answer.
func (t *hubTopo) waitReachable(ctx context.Context) error {
	err := waitFor(ctx, 30*time.Second, func() error {
		for _, d := range t.daemons() {
			if !d.alive() {
				return fmt.Errorf("%w: %s %s", errExited, d.role, d.name)
			}
		}
		for i, ns := range t.sites {
			c, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := namespace.Command(c, ns, "ping", "-c", "1", "-W", "1", "-q", t.targets[i].String()).Run()
			cancel()
			if err != nil {
				return fmt.Errorf("site %d: %w", i+1, err)
			}
		}
		return nil
	})
	if err != nil {
		var out []string
		for _, d := range t.daemons() {
			out = append(out, fmt.Sprintf("%s %s output:\n%s", d.role, d.name, d.output()))
		}
		return fmt.Errorf("%s hub case: hub not reachable: %w\n%s", t.variant, err, strings.Join(out, "\n"))
	}
	return nil
}

func (t *hubTopo) close() {
	for _, p := range t.servers {
		p.stop()
	}
	for _, d := range t.daemons() {
		d.stop()
	}
}

// memory returns the idle, highest sampled and peak RSS of the hub and
// the sites' daemons.
// iperf runs every site's iperf3 client at once. The sample's rate is the
// sum of the sites' goodputs; its CPU roles are "b" for the hub daemon,
// "a" for the sites' daemons together, and the iperf3 clients and servers
// each summed.
func (t *hubTopo) iperf(ctx context.Context, c Case, seconds, omit int, rate float64) (Sample, error) {
	if c.Proto != "tcp" || rate != 0 {
		return Sample{}, fmt.Errorf("hub case: only TCP at full rate is measured, not %s", c)
	}
	for _, d := range t.daemons() {
		if !d.alive() {
			return Sample{}, fmt.Errorf("%s %s exited: %s", d.name, d.role, lastLine(d.output()))
		}
	}
	for i, p := range t.servers {
		if !p.alive() {
			np, err := startProc("iperf3-server", t.hub, nil, "iperf3", "-s", "-p", strconv.Itoa(IperfPort+i))
			if err != nil {
				return Sample{}, err
			}
			t.servers[i] = np
			time.Sleep(300 * time.Millisecond)
		}
	}
	type group struct {
		role  string
		procs []*proc
	}
	groups := []group{{"b", nil}, {"a", t.sited}, {"iperf3-server", t.servers}}
	if t.hubd != nil {
		groups[0].procs = []*proc{t.hubd}
	}
	before := make([]uint64, len(groups))
	for i, g := range groups {
		for _, p := range g.procs {
			n, err := procTicks(p.pid())
			if err != nil {
				return Sample{}, err
			}
			before[i] += n
		}
	}
	hostBusy0, hostTotal0, err := hostTicks()
	if err != nil {
		return Sample{}, err
	}
	stopSampling := sampleEvery(func() { t.mems.sample(t.daemons()) })
	cctx, cancel := context.WithTimeout(ctx, time.Duration(seconds+omit+20)*time.Second)
	defer cancel()
	type out struct {
		m       Measurement
		err     error
		cpuUsed time.Duration
	}
	outs := make([]out, len(t.sites))
	var wg sync.WaitGroup
	began := time.Now()
	for i, ns := range t.sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var stdout, stderr strings.Builder
			cmd := namespace.Command(cctx, ns, append([]string{"iperf3"}, iperfArgsPort(c, t.targets[i], IperfPort+i, seconds, omit, 0)...)...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			runErr := cmd.Run()
			m, err := ParseIperf([]byte(stdout.String()))
			if err != nil && runErr != nil && stdout.Len() == 0 {
				err = fmt.Errorf("iperf3 site %d: %w: %s", i+1, runErr, strings.TrimSpace(stderr.String()))
			}
			outs[i] = out{m: m, err: err}
			if cmd.ProcessState != nil {
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
					outs[i].cpuUsed = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(began)
	stopSampling()

	run := Sample{Seconds: wall.Seconds()}
	var clientCPU time.Duration
	var errs []error
	for i, o := range outs {
		if o.err != nil {
			errs = append(errs, fmt.Errorf("site %d: %w", i+1, o.err))
			continue
		}
		run.BitsPerSecond += o.m.BitsPerSecond
		run.SentBitsPerSecond += o.m.SentBitsPerSecond
		run.Retransmits += o.m.Retransmits
		clientCPU += o.cpuUsed
	}
	if len(errs) > 0 {
		// A failed run can leave a server stuck on its old test.
		for _, p := range t.servers {
			p.stop()
		}
		return Sample{}, errors.Join(errs...)
	}
	pct := func(ticks uint64) float64 { return 100 * float64(ticks) / ClockTicks / wall.Seconds() }
	for i, g := range groups {
		if len(g.procs) == 0 {
			continue
		}
		var n uint64
		for _, p := range g.procs {
			v, err := procTicks(p.pid())
			if err != nil {
				return Sample{}, err
			}
			n += v
		}
		run.CPU = append(run.CPU, ProcCPU{Role: g.role, Percent: pct(n - before[i])})
	}
	run.CPU = append(run.CPU, ProcCPU{Role: "iperf3-client", Percent: 100 * clientCPU.Seconds() / wall.Seconds()})
	hostBusy1, hostTotal1, err := hostTicks()
	if err != nil {
		return Sample{}, err
	}
	if dt := hostTotal1 - hostTotal0; dt > 0 {
		run.HostCPU = 100 * float64(runtime.NumCPU()) * float64(hostBusy1-hostBusy0) / float64(dt)
	}
	return run, nil
}

func (t *hubTopo) memory() []ProcMemory { return t.mems.report(t.daemons()) }
