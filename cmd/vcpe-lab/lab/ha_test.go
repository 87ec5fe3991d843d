package lab

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/provision"
)

// The multi-attach pair of site A: both devices on lansw-a, LAN hosts use
// the gateway address whichever is active.
var (
	haVIP      = netip.MustParsePrefix("198.19.1.254/24")
	haEchoAddr = "198.19.2.10:12399"
	// failoverBudget is the budget for the gap in the probe stream.
	failoverBudget = time.Second
)

type haLab struct {
	l    *Lab
	b    Binaries
	fp   string
	plan Plan
	dev  map[string]Issued
}

// haPlan is the multi-attach plan: instance site-a with devices site-a and
// site-a2 (gateway haVIP, LAN target lan-a) and site-b, in the CCN corp.
func haPlan() Plan {
	return Plan{Instances: []Instance{
		{Name: "site-a", CCN: "corp", Devices: []string{"site-a", "site-a2"}, Advertise: []netip.Prefix{LANA},
			LANGateway: haVIP, LANTargets: []netip.Addr{LANAHost}},
		{Name: "site-b", CCN: "corp", Devices: []string{"site-b"}, Advertise: []netip.Prefix{LANB}},
	}}
}

// startHA brings up the hub, instance site-a with devices site-a and
// site-a2 (gateway haVIP, LAN target lan-a), site-b, a UDP echo on lan-b
// and lan-a's default route via the gateway address.
func startHA(t testing.TB, ctx context.Context, l *Lab, b Binaries) *haLab {
	t.Helper()
	return startHAPlan(t, ctx, l, b, haPlan())
}

// startHAPlan is startHA with another plan (site-a's instance as in
// haPlan).
func startHAPlan(t testing.TB, ctx context.Context, l *Lab, b Binaries, plan Plan) *haLab {
	t.Helper()
	fp, issued, err := l.StartControlPlane(ctx, b, plan)
	if err != nil {
		t.Fatal(err)
	}
	h := &haLab{l: l, b: b, fp: fp, plan: plan, dev: map[string]Issued{}}
	for _, d := range issued {
		h.dev[d.Node] = d
		h.install(t, ctx, d.Node)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, d := range issued {
		if _, err := l.WaitTunnel(wctx, b, d.Node); err != nil {
			t.Fatal(err)
		}
	}
	// Devices installed before site-b learn its prefix at their next sync
	// with the controller; a standby that took over before that would have
	// no route to LAN B, and the gap would measure the sync, not the
	// failover.
	for _, d := range issued {
		if err := l.waitRoutes(wctx, b, d.Node, plan.learnedBy(d.Node)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := l.Run(ctx, "lan-a", "ip", "route", "replace", "default", "via", haVIP.Addr().String()); err != nil {
		t.Fatalf("lan-a default route: %v\n%s", err, out)
	}
	startEcho(t, l)
	return h
}

// startEcho runs a UDP echo on lan-b at haEchoAddr until the test ends.
func startEcho(t testing.TB, l *Lab) { startEchoAt(t, l, "lan-b", haEchoAddr) }

// startEchoAt runs a UDP echo on node at addr until the test ends.
func startEchoAt(t testing.TB, l *Lab, node, addr string) {
	t.Helper()
	var pc net.PacketConn
	if err := l.inNS(node, func() error {
		var err error
		pc, err = net.ListenPacket("udp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
}

func (h *haLab) install(t testing.TB, ctx context.Context, node string) {
	t.Helper()
	in := h.plan.instanceOf(node)
	if out, err := h.l.Install(ctx, h.b, h.fp, h.dev[node], in.Advertise, in.haArgs()...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

func (h *haLab) status(node string) (dataplane.Status, error) {
	return dataplane.ReadStatus(filepath.Join(h.l.DeviceState(node), dataplane.ControlSocket))
}

func (h *haLab) hubStatus() (dataplane.Status, error) {
	return dataplane.ReadStatus(filepath.Join(h.l.HubState(), "hub.sock"))
}

func (h *haLab) role(node string) string {
	st, err := h.status(node)
	if err != nil {
		return "down"
	}
	return st.Role
}

// waitRole waits until node reports role.
func (h *haLab) waitRole(t testing.TB, node, role string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for h.role(node) != role {
		if time.Now().After(deadline) {
			t.Fatalf("%s: role %q, want %q after %v\nvcped log:\n%s", node, h.role(node), role, within, h.l.DaemonLog(node, "vcped"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitTarget waits until node's stored config (vcped keeps the latest)
// names addr as the probe target of prefix.
func (h *haLab) waitTarget(t testing.TB, node string, prefix netip.Prefix, addr netip.Addr, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := device.LoadState(h.l.DeviceState(node))
		if err == nil && slices.ContainsFunc(st.Config.Targets, func(pt api.ProbeTarget) bool { return pt.Prefix == prefix && pt.Addr == addr }) {
			return
		}
		if time.Now().After(deadline) {
			var got []api.ProbeTarget
			if st != nil {
				got = st.Config.Targets
			}
			t.Fatalf("%s: probe targets %v (%v); want %s for %s within %v", node, got, err, addr, prefix, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill sends SIGKILL to node's vcped and waits until it is gone.
func (h *haLab) kill(t testing.TB, node string) {
	t.Helper()
	pid, ok := provision.RunningPID(filepath.Join(h.l.DeviceState(node), "vcped.pid"), h.b.Vcped)
	if !ok {
		t.Fatalf("%s: vcped not running", node)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for !gone(pid) {
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *haLab) active() string {
	for _, n := range []string{"site-a", "site-a2"} {
		if h.role(n) == api.RoleActive {
			return n
		}
	}
	return ""
}

func other(node string) string {
	if node == "site-a" {
		return "site-a2"
	}
	return "site-a"
}

// stream is a 100 packets/s UDP probe stream from lan-a to the echo on
// lan-b, through lan-a's gateway address, the active device, the hub and
// site-b. It records when each answer arrived.
type stream struct {
	what string // "lan-a → 198.19.2.10:12399"
	conn net.Conn
	mu   sync.Mutex
	got  []time.Time
	sent []time.Time
	done chan struct{}
}

func startStream(t testing.TB, ctx context.Context, l *Lab) *stream {
	t.Helper()
	return startStreamTo(t, ctx, l, "lan-a", haEchoAddr)
}

// startStreamTo is a 100 packets/s UDP probe stream from node to the echo
// at addr (startEchoAt).
func startStreamTo(t testing.TB, ctx context.Context, l *Lab, node, addr string) *stream {
	t.Helper()
	c, err := l.Dial(ctx, node, "udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{what: node + " → " + addr, conn: c, done: make(chan struct{})}
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, time.Now())
			s.mu.Unlock()
		}
	}()
	go func() {
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		var seq uint64
		b := make([]byte, 8)
		for {
			select {
			case <-s.done:
				return
			case <-tk.C:
			}
			seq++
			binary.BigEndian.PutUint64(b, seq)
			s.mu.Lock()
			s.sent = append(s.sent, time.Now())
			s.mu.Unlock()
			_, _ = c.Write(b)
		}
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *stream) stop() {
	select {
	case <-s.done:
	default:
		close(s.done)
		s.conn.Close()
	}
}

// flowing waits until answers arrive steadily (10 in the last 200 ms).
func (s *stream) flowing(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		s.mu.Lock()
		n := 0
		for _, at := range s.got {
			if time.Since(at) < 200*time.Millisecond {
				n++
			}
		}
		s.mu.Unlock()
		if n >= 10 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("probe stream %s not flowing (%d answers in the last 200ms)", s.what, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gap watches the stream for twice the failover budget after the fault at
// t0, waits until it flows again (or within passes) and returns the
// longest time without an answer from just before t0 on.
func (s *stream) gap(t0 time.Time, within time.Duration) (time.Duration, error) {
	time.Sleep(time.Until(t0.Add(2 * failoverBudget)))
	err := s.flowing(within)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _ := slices.BinarySearchFunc(s.got, t0, func(a, b time.Time) int { return a.Compare(b) })
	if i > 0 {
		i--
	}
	var worst time.Duration
	for j := i + 1; j < len(s.got); j++ {
		worst = max(worst, s.got[j].Sub(s.got[j-1]))
	}
	if err != nil && len(s.got) > 0 {
		worst = max(worst, time.Since(s.got[len(s.got)-1]))
	}
	return worst, err
}

func (h *haLab) logs(t testing.TB) {
	for _, n := range []string{"site-a", "site-a2", "site-b"} {
		t.Logf("vcped on %s:\n%s", n, h.l.DaemonLog(n, "vcped"))
	}
	t.Logf("vcpe-hub:\n%s", h.l.DaemonLog("hub", "vcpe-hub"))
}

// countActive counts switches to active, folded repeats included.
func countActive(evs []dataplane.RoleEvent) int {
	n := 0
	for _, e := range evs {
		if e.Role == api.RoleActive {
			n += e.Times()
		}
	}
	return n
}

// TestHAFailover runs the faults one after the other on one lab:
// each moves the role to the other device of site A within the budget of
// the probe stream, and the recovered device comes back as standby.
func TestHAFailover(t *testing.T) {
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h := startHA(t, ctx, l, b)
	defer func() {
		if t.Failed() {
			h.logs(t)
		}
	}()
	h.waitRole(t, "site-a", api.RoleActive, 5*time.Second)
	h.waitRole(t, "site-a2", api.RoleStandby, 5*time.Second)
	// site-b's default diag target for LAN A is the active device's own
	// LAN address, never the gateway address that moves.
	h.waitTarget(t, "site-b", LANA, netip.MustParseAddr("198.19.1.1"), 10*time.Second)
	s := startStream(t, ctx, l)
	if err := s.flowing(10 * time.Second); err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, what, from string, t0 time.Time) {
		t.Helper()
		g, err := s.gap(t0, 5*time.Second)
		t.Logf("%s: gap in the probe stream %v", what, g.Round(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if g > failoverBudget {
			t.Errorf("%s: gap %v, budget %v", what, g, failoverBudget)
		}
		h.waitRole(t, other(from), api.RoleActive, time.Second)
	}

	t.Run("kill -9 of the active daemon, then it returns as standby", func(t *testing.T) {
		t0 := time.Now()
		h.kill(t, "site-a")
		check(t, "kill -9", "site-a", t0)
		hs, _ := h.hubStatus()
		before := countActive(hs.HA.Events)
		h.install(t, ctx, "site-a")
		h.waitRole(t, "site-a", api.RoleStandby, 10*time.Second)
		if _, err := l.WaitTunnel(ctx, b, "site-a"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // time to flap, were it going to
		if r := h.role("site-a2"); r != api.RoleActive {
			t.Errorf("site-a2 is %s after site-a came back; want it to keep the role", r)
		}
		hs, _ = h.hubStatus()
		if n := countActive(hs.HA.Events) - before; n != 0 {
			t.Errorf("%d role changes after site-a came back; want none: %+v", n, hs.HA.Events)
		}
		if out, _ := l.Run(ctx, "site-a", "ip", "-o", "addr", "show", "to", haVIP.Addr().String()); out != "" {
			t.Errorf("the recovered standby still holds the gateway address: %s", out)
		}
		// The target followed the failover (site-b syncs every 5 s).
		h.waitTarget(t, "site-b", LANA, netip.MustParseAddr("198.19.1.2"), 10*time.Second)
	})

	t.Run("WAN cut of the active", func(t *testing.T) {
		act := h.active()
		t0 := time.Now()
		if out, err := l.Run(ctx, act, "ip", "link", "set", "wan0", "down"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		check(t, "WAN cut", act, t0)
		if out, err := l.Run(ctx, act, "ip", "link", "set", "wan0", "up"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		l.Run(ctx, act, "ip", "route", "replace", "default", "via", "198.18.0.254")
		h.waitRole(t, act, api.RoleStandby, 10*time.Second)
		if _, err := l.WaitTunnel(ctx, b, act); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("gray failure: LAN side broken, tunnel fine", func(t *testing.T) {
		act := h.active()
		t0 := time.Now()
		if out, err := l.Run(ctx, act, "ip", "link", "set", "lan0", "down"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		check(t, "gray failure", act, t0)
		if r := h.role(act); r != api.RoleStandby {
			t.Errorf("%s with a broken LAN is %s; want standby", act, r)
		}
		if out, err := l.Run(ctx, act, "ip", "link", "set", "lan0", "up"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	})

	t.Run("split: hub unreachable from the active only, never two active", func(t *testing.T) {
		act := h.active()
		if err := s.flowing(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		rule := []string{"nft", "add", "table", "inet", "hasplit", "{", "chain", "o", "{", "type", "filter", "hook", "output", "priority", "0", ";",
			"ip", "daddr", "198.18.0.1", "drop", ";", "}", ";", "chain", "i", "{", "type", "filter", "hook", "input", "priority", "0", ";",
			"ip", "saddr", "198.18.0.1", "drop", ";", "}", ";", "}"}
		t0 := time.Now()
		if out, err := l.Run(ctx, act, rule...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		both := 0
		var yielded time.Duration
		for time.Since(t0) < 2*time.Second {
			if h.role("site-a") == api.RoleActive && h.role("site-a2") == api.RoleActive {
				both++
			}
			if yielded == 0 && h.role(act) == api.RoleStandby {
				yielded = time.Since(t0)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if both > 0 {
			t.Errorf("both devices active in %d samples", both)
		}
		check(t, "split", act, t0)
		// The cut-off active heard the new active announce the gateway
		// address and yielded, before its own withdrawal (1 s without an
		// answer from the hub).
		t.Logf("split: %s standby after %v", act, yielded.Round(time.Millisecond))
		if yielded <= 0 || yielded >= 900*time.Millisecond {
			t.Errorf("%s, cut off from the hub, became standby after %v; want it to yield to the announcement well within 900ms", act, yielded)
		}
		l.Run(ctx, act, "nft", "delete", "table", "inet", "hasplit")
		h.waitRole(t, act, api.RoleStandby, 10*time.Second)
	})

	t.Run("both down, then only site-a2 back: site-a2 is active", func(t *testing.T) {
		h.kill(t, "site-a")
		h.kill(t, "site-a2")
		time.Sleep(time.Second)
		h.install(t, ctx, "site-a2")
		h.waitRole(t, "site-a2", api.RoleActive, 10*time.Second)
		if err := s.flowing(10 * time.Second); err != nil {
			t.Error(err)
		}
		var devs []struct {
			Node string
			SN   string `json:"sn"`
			Role string `json:"role"`
		}
		if err := l.Hub(ctx, b, &devs, "device", "list"); err != nil {
			t.Fatal(err)
		}
		out, err := l.Run(ctx, "site-a2", b.Vcpe, "diag", "ha", "--json", "--state-dir", l.DeviceState("site-a2"))
		var rep struct {
			OK   bool   `json:"ok"`
			Role string `json:"role"`
			HA   struct {
				Events []dataplane.RoleEvent `json:"events"`
			} `json:"ha"`
		}
		_ = json.Unmarshal([]byte(out), &rep)
		if err != nil || !rep.OK || rep.Role != api.RoleActive || countActive(rep.HA.Events) != 1 {
			t.Errorf("vcpe diag ha on site-a2: %v; want ok, active, one switch to active\n%s", err, out)
		}
		if out, err := l.Run(ctx, "hub", b.Hub, "status", "--state", l.HubState()); err != nil || !strings.Contains(out, "became active") {
			t.Errorf("vcpe-hub status shows no role switch: %v\n%s", err, out)
		}
		for _, d := range devs {
			if d.SN == h.dev["site-a2"].SN && d.Role != api.RoleActive {
				t.Errorf("controller says site-a2 is %q; want active (the hub reports switches)", d.Role)
			}
		}
	})
	_ = os.Getpid
}
