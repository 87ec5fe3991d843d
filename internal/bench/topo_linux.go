package bench

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// The address plan of every variant's pair of namespaces (the lab's WAN
// and overlay prefixes, cmd/vcpe-lab/lab/topology.go):
// WAN 198.18.0.0/24 with end A at .11 and end B at .12, overlay
// 198.18.64.0/18 with A at .11 and B at .12. Each variant has its own pair
// of namespaces, so the same addresses never meet.
var (
	wanA     = netip.MustParsePrefix("198.18.0.11/24")
	wanB     = netip.MustParsePrefix("198.18.0.12/24")
	overlayA = netip.MustParsePrefix("198.18.64.11/18")
	overlayB = netip.MustParsePrefix("198.18.64.12/18")
)

// TunnelPort is the UDP port both tunnel ends listen on.
const TunnelPort = 4500

// topo is one variant, set up: two namespaces joined by a veth pair, the
// tunnel daemons (none for raw) and an iperf3 server in B.
type topo struct {
	variant string
	a, b    string     // namespace names
	target  netip.Addr // what the iperf3 client in A dials
	tunA    string     // tunnel interface in A ("" for raw)
	tunB    string     // tunnel interface in B ("" for raw)
	daemons []*proc    // roles "a" and "b"
	server  *proc
	env     []string
	pin     bool
	vcped   string // the vcped binary; "" for the one built
	profile string // directory for the daemons' CPU profiles; "" for none

	mems memTracker
}

// setup builds the variant in two fresh namespaces.
func setup(ctx context.Context, o *Options, spec Spec) (*topo, error) {
	a, err := o.NewNamespace()
	if err != nil {
		return nil, fmt.Errorf("create namespace A: %w", err)
	}
	b, err := o.NewNamespace()
	if err != nil {
		return nil, fmt.Errorf("create namespace B: %w", err)
	}
	t := &topo{variant: spec.Name, a: a, b: b, env: spec.Env, pin: spec.Pin, vcped: spec.Vcped, profile: o.ProfileDir}
	ok := false
	defer func() {
		if !ok {
			t.close()
		}
	}()
	if err := ipRun(ctx, "-n", a, "link", "add", "wan", "type", "veth", "peer", "name", "wan", "netns", b); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		ns   string
		addr netip.Prefix
	}{{a, wanA}, {b, wanB}} {
		if err := ipRun(ctx, "-n", s.ns, "addr", "add", s.addr.String(), "dev", "wan"); err != nil {
			return nil, err
		}
		if err := ipRun(ctx, "-n", s.ns, "link", "set", "wan", "up"); err != nil {
			return nil, err
		}
	}
	switch spec.Base {
	case VariantRaw:
		t.target = wanB.Addr()
	case VariantUpstream:
		err = t.startUpstream(ctx, o.Bins)
	case VariantVcpe:
		err = t.startVcpe(ctx, o.Bins, o.TempDir)
	default:
		err = fmt.Errorf("unknown variant %q (want %s, %s or %s)", spec.Base, VariantRaw, VariantUpstream, VariantVcpe)
	}
	if err != nil {
		return nil, err
	}
	if err := t.waitReachable(ctx); err != nil {
		return nil, err
	}
	if spec.TxQLen > 0 {
		for _, e := range []struct{ ns, tun string }{{a, t.tunA}, {b, t.tunB}} {
			if err := ipRun(ctx, "-n", e.ns, "link", "set", e.tun, "txqueuelen", strconv.Itoa(spec.TxQLen)); err != nil {
				return nil, err
			}
		}
	}
	if t.server, err = t.startServer(); err != nil {
		return nil, err
	}
	// Let the daemons settle after the handshake before the idle reading.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := t.mems.idle(t.daemons); err != nil {
		return nil, err
	}
	ok = true
	return t, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// keyPair generates the private keys of a tunnel's two ends.
func keyPair() (a, b api.Key, err error) {
	if a, err = api.GeneratePrivateKey(); err != nil {
		return a, b, err
	}
	b, err = api.GeneratePrivateKey()
	return a, b, err
}

func (t *topo) startUpstream(ctx context.Context, bins Binaries) error {
	if bins.WireGuardGo == "" {
		return errors.New("not available: wireguard-go was not built")
	}
	privA, privB, err := keyPair()
	if err != nil {
		return err
	}
	// The UAPI directory is shared by every upstream topology built from
	// these binaries, so the interface names are unique.
	suffix := randomHex(3)
	ends := []struct {
		role, ns, ifname string
		priv, peer       api.Key
		wanPeer          netip.Addr
		overlay, peerOvl netip.Prefix
	}{
		{"a", t.a, "wg" + suffix + "a", privA, privB.PublicKey(), wanB.Addr(), overlayA, overlayB},
		{"b", t.b, "wg" + suffix + "b", privB, privA.PublicKey(), wanA.Addr(), overlayB, overlayA},
	}
	for _, e := range ends {
		p, err := t.startDaemon(e.role, e.ns, append([]string{"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"}, t.env...), bins.WireGuardGo, "-f", e.ifname)
		if err != nil {
			return err
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
		peer := UAPIPeer{
			PublicKey:  e.peer,
			Endpoint:   netip.AddrPortFrom(e.wanPeer, TunnelPort),
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(e.peerOvl.Addr(), 32)},
		}
		if err := UAPIDo(ctx, sock, UAPISet(e.priv, TunnelPort, peer)); err != nil {
			return fmt.Errorf("configure wireguard-go %s: %w", e.ifname, err)
		}
		if err := ipRun(ctx, "-n", e.ns, "addr", "add", e.overlay.String(), "dev", e.ifname); err != nil {
			return err
		}
		if err := ipRun(ctx, "-n", e.ns, "link", "set", e.ifname, "up"); err != nil {
			return err
		}
	}
	t.tunA, t.tunB = ends[0].ifname, ends[1].ifname
	t.target = overlayB.Addr()
	return nil
}

func (t *topo) startVcpe(ctx context.Context, bins Binaries, tmp string) error {
	bin := cmp.Or(t.vcped, bins.Vcped)
	if bin == "" {
		return errors.New(bins.VcpedErr)
	}
	privA, privB, err := keyPair()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(tmp, "vcped-")
	if err != nil {
		return fmt.Errorf("vcped state: %w", err)
	}
	ends := []struct {
		role, ns, tun    string
		priv, peer       api.Key
		wanPeer          netip.Addr
		overlay, peerOvl netip.Prefix
	}{
		{"a", t.a, "vcpea", privA, privB.PublicKey(), wanB.Addr(), overlayA, overlayB},
		{"b", t.b, "vcpeb", privB, privA.PublicKey(), wanA.Addr(), overlayB, overlayA},
	}
	for _, e := range ends {
		// Each end is the other's hub; no controller: static mode.
		st := &device.State{
			SN:         "BENCH-" + strings.ToUpper(e.role),
			PrivateKey: e.priv,
			Config: api.DeviceConfig{
				Generation:     1,
				SN:             "BENCH-" + strings.ToUpper(e.role),
				InstanceID:     "bench",
				InstanceName:   "bench",
				OverlayAddr:    e.overlay,
				HubOverlayAddr: e.peerOvl.Addr(),
				HubPublicKey:   e.peer,
				HubEndpoint:    netip.AddrPortFrom(e.wanPeer, TunnelPort),
				Role:           api.RoleActive,
			},
		}
		stateDir := filepath.Join(dir, "state-"+e.role)
		uapiDir := filepath.Join(dir, "uapi-"+e.role)
		if err := device.SaveState(stateDir, st); err != nil {
			return fmt.Errorf("vcped %s: %w", e.role, err)
		}
		if err := os.MkdirAll(uapiDir, 0o700); err != nil {
			return fmt.Errorf("vcped %s: %w", e.role, err)
		}
		if _, err := t.startDaemon(e.role, e.ns, t.env, bin, append(profileArgs(t.profile, t.variant, e.role),
			"--state-dir", stateDir, "--uapi-dir", uapiDir, "--tun", e.tun, "--listen-port", strconv.Itoa(TunnelPort))...); err != nil {
			return err
		}
	}
	t.tunA, t.tunB = ends[0].tun, ends[1].tun
	t.target = overlayB.Addr()
	return nil
}

var errExited = errors.New("process exited")

// profileArgs is the --cpu-profile flag for a vcpe daemon of variant in
// role, or none when dir is empty.
func profileArgs(dir, variant, role string) []string {
	if dir == "" {
		return nil
	}
	return []string{"--cpu-profile", filepath.Join(dir, profileName(variant)+"-"+role+".pprof")}
}

// profileName is variant as a file name: what is not a letter, a digit,
// '.' or '-' becomes '_'.
func profileName(variant string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, variant)
}

// waitReachable pings B's address from A until it answers: for the
// tunnels this also completes the handshake.
func (t *topo) waitReachable(ctx context.Context) error {
	err := waitFor(ctx, 20*time.Second, func() error {
		for _, d := range t.daemons {
			if !d.alive() {
				return fmt.Errorf("%w: %s", errExited, d.name)
			}
		}
		c, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return namespace.Command(c, t.a, "ping", "-c", "1", "-W", "1", "-q", t.target.String()).Run()
	})
	if err != nil {
		var out []string
		for _, d := range t.daemons {
			out = append(out, fmt.Sprintf("%s %s output:\n%s", d.role, d.name, d.output()))
		}
		return fmt.Errorf("%s: %s not reachable from A: %w\n%s", t.variant, t.target, err, strings.Join(out, "\n"))
	}
	return nil
}

func (t *topo) startServer() (*proc, error) {
	p, err := startProc("iperf3-server", t.b, nil, "iperf3", "-s", "-p", strconv.Itoa(IperfPort))
	if err != nil {
		return nil, err
	}
	err = waitFor(context.Background(), 5*time.Second, func() error {
		if !p.alive() {
			return errExited
		}
		out, err := namespace.Command(context.Background(), t.b, "ss", "-Hltn", "sport", "=", ":"+strconv.Itoa(IperfPort)).Output()
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(out)) == 0 {
			return errors.New("not listening yet")
		}
		return nil
	})
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("iperf3 server in %s: %w\n%s", t.b, err, p.output())
	}
	return p, nil
}

// restartServer replaces an iperf3 server that may be stuck after a
// failed run.
func (t *topo) restartServer() error {
	if t.server != nil {
		t.server.stop()
	}
	var err error
	t.server, err = t.startServer()
	return err
}

func (t *topo) startDaemon(role, ns string, env []string, bin string, args ...string) (*proc, error) {
	if t.pin {
		// Each end on its own CPU, as two real sites would be.
		cpu := "0"
		if role == "b" {
			cpu = "1"
		}
		args = append([]string{"-c", cpu, bin}, args...)
		bin = "taskset"
	}
	p, err := startProc(role, ns, env, bin, args...)
	if err != nil {
		return nil, err
	}
	t.daemons = append(t.daemons, p)
	return p, nil
}

// close stops everything the topology started; the namespaces belong to
// whoever made them.
func (t *topo) close() {
	if t.server != nil {
		t.server.stop()
	}
	for _, d := range t.daemons {
		d.stop()
	}
}

// memory returns the idle, highest sampled and peak RSS of the daemons.
// notes describes what the harness can see of the variant's tuning: the
// UDP socket buffers of end A and, when ethtool is installed, the
// offloads of its TUN.
func (t *topo) notes(ctx context.Context) []string {
	var notes []string
	if t.tunA == "" {
		return nil
	}
	if out, err := namespace.Command(ctx, t.a, "ss", "-Huanm", "sport", "=", ":"+strconv.Itoa(TunnelPort)).Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) > 0 {
			notes = append(notes, "end A UDP socket memory "+f[len(f)-1])
		}
	}
	if out, err := exec.CommandContext(ctx, "ip", "-n", t.a, "-d", "link", "show", t.tunA).Output(); err == nil {
		f := strings.Fields(string(out))
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "mtu" || f[i] == "gso_max_size" || f[i] == "gro_max_size" {
				notes = append(notes, fmt.Sprintf("end A %s %s %s", t.tunA, f[i], f[i+1]))
			}
		}
	}
	if _, err := exec.LookPath("ethtool"); err != nil {
		notes = append(notes, "TUN offloads not shown: ethtool is not installed")
		return notes
	}
	if out, err := namespace.Command(ctx, t.a, "ethtool", "-k", t.tunA).Output(); err == nil {
		var on []string
		for _, line := range strings.Split(string(out), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
			if ok && strings.HasPrefix(v, "on") && (strings.Contains(k, "segmentation") || strings.Contains(k, "receive-offload") || strings.Contains(k, "checksum")) {
				on = append(on, k)
			}
		}
		notes = append(notes, fmt.Sprintf("end A %s offloads on: %s", t.tunA, strings.Join(on, ", ")))
	}
	return notes
}

// counters reads the drop counters of both namespaces, named "A …" and
// "B …" (the tunnel interface as "tun"), and the host's backlog drops.
func (t *topo) counters(ctx context.Context) (Counters, error) {
	c := Counters{}
	for _, s := range []struct{ tag, ns, tun string }{{"A", t.a, t.tunA}, {"B", t.b, t.tunB}} {
		one := Counters{}
		out, err := namespace.Command(ctx, s.ns, "cat", "/proc/net/snmp").Output()
		if err == nil {
			err = ParseSNMP(out, one)
		}
		if err != nil {
			return nil, fmt.Errorf("udp counters of %s: %w", s.ns, err)
		}
		if out, err = exec.CommandContext(ctx, "ip", "-n", s.ns, "-s", "-j", "link", "show").Output(); err == nil {
			err = ParseLinkStats(out, one)
		}
		if err != nil {
			return nil, fmt.Errorf("link counters of %s: %w", s.ns, err)
		}
		if out, err = namespace.Command(ctx, s.ns, "ss", "-Huanm").Output(); err == nil {
			err = ParseSocketDrops(out, TunnelPort, one)
		}
		if err != nil {
			return nil, fmt.Errorf("socket counters of %s: %w", s.ns, err)
		}
		if out, err = exec.CommandContext(ctx, "tc", "-n", s.ns, "-s", "-j", "qdisc", "show").Output(); err == nil {
			err = ParseQdiscStats(out, one)
		}
		if err != nil {
			return nil, fmt.Errorf("qdisc counters of %s: %w", s.ns, err)
		}
		for k, v := range one {
			if s.tun != "" {
				k = strings.ReplaceAll(k, s.tun, "tun")
			}
			c[s.tag+" "+k] = v
		}
	}
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err == nil {
		err = ParseSoftnet(b, c)
	}
	if err != nil {
		return nil, fmt.Errorf("host backlog counters: %w", err)
	}
	return c, nil
}

// proc is a process the harness started in a namespace.
type proc struct {
	role, name string
	cmd        *exec.Cmd
	out        *tailBuffer
	done       chan struct{}
}

func startProc(role, ns string, env []string, name string, args ...string) (*proc, error) {
	// ip netns exec execs the command in place, so the PID is the
	// command's own.
	cmd := namespace.Command(context.Background(), ns, append([]string{name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out := &tailBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", name, ns, err)
	}
	p := &proc{role: role, name: filepath.Base(name), cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) output() string { return p.out.String() }

// stop asks the process to end (SIGTERM), then kills it after 3 s.
func (p *proc) stop() {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = b.buf[len(b.buf)-b.max:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func ipRun(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// waitFor calls f every 100 ms until it returns nil or limit passes.
func waitFor(ctx context.Context, limit time.Duration, f func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil || errors.Is(err, errExited) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %s: %w", limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (t *topo) memory() []ProcMemory { return t.mems.report(t.daemons) }
