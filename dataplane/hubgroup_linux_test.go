package dataplane_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// anycast is an address every hub of the test's group holds on its
// loopback: whichever hub carries the device's traffic answers it.
const anycast = "198.19.200.1"

// hubGroupLab is a site whose vcped has two hubs, each a real hub
// process in its own namespace with its own key, endpoint and overlay
// address; both hold the anycast address.
type hubGroupLab struct {
	*lab
	a         *site
	h1, h2    api.HubInfo
	startHub2 func() *exec.Cmd
}

// newHubGroupLab starts it; hub1 runs the helper hub1Helper ("hub", or
// "claimhub" to answer the claims itself, see claimHubMain).
func newHubGroupLab(t *testing.T, failback bool, hub1Helper string) *hubGroupLab {
	l := newLab(t)
	a := l.addSite("site-a", "198.18.0.11", "198.19.1", netip.MustParseAddr("198.18.64.2"))

	hub2 := namespace.New(t)
	namespace.Veth(t, hub2, "wan", "198.18.0.2/24", l.hub, "h2", "")
	l.hub.Run("ip", "link", "set", "h2", "master", "br0")
	for _, ns := range []*namespace.NS{l.hub, hub2} {
		ns.Run("ip", "addr", "add", anycast+"/32", "dev", "lo")
	}
	hub2Key := mustKey(t)
	h1 := api.HubInfo{Name: "hub1", PublicKey: l.hubKey.PublicKey(), Endpoint: hubWAN, OverlayAddr: hubOver}
	h2 := api.HubInfo{Name: "hub2", PublicKey: hub2Key.PublicKey(), Endpoint: netip.MustParseAddrPort("198.18.0.2:4500"),
		OverlayAddr: netip.MustParseAddr("198.18.127.250")}

	peer := api.HubPeer{SN: a.name, InstanceID: "i-a", CCN: "blue", PublicKey: a.key.PublicKey(), OverlayAddr: a.overlay,
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(a.overlay, 32), netip.MustParsePrefix("198.19.1.0/24")}, Active: true}
	l.writeHub(api.HubConfig{Generation: 1, Overlay: overlay, HubOverlayAddr: h1.OverlayAddr, Peers: []api.HubPeer{peer}})
	if hub1Helper == "hub" {
		l.startHub()
	} else {
		l.hubCmd = l.hub.Start("env", helperEnv+"="+hub1Helper, l.self, l.hubFile)
		waitFor(t, 10*time.Second, "hub1 control socket", func() bool {
			_, err := dataplane.ReadStatus(l.hubCtl)
			return err == nil
		})
	}
	dir := t.TempDir()
	hub2File, hub2Ctl := filepath.Join(dir, "hub2.json"), filepath.Join(dir, "hub2.sock")
	b, _ := json.Marshal(map[string]any{"private_key": hub2Key, "uapi_dir": t.TempDir(), "control": hub2Ctl,
		"config": api.HubConfig{Generation: 1, Overlay: overlay, HubOverlayAddr: h2.OverlayAddr, Peers: []api.HubPeer{peer}}})
	if err := os.WriteFile(hub2File, b, 0o600); err != nil {
		t.Fatal(err)
	}
	startHub2 := func() *exec.Cmd {
		cmd := hub2.Start("env", helperEnv+"=hub", l.self, hub2File)
		waitFor(t, 10*time.Second, "hub2 control socket", func() bool {
			_, err := dataplane.ReadStatus(hub2Ctl)
			return err == nil
		})
		return cmd
	}
	startHub2()

	cfg := l.deviceConfig(a, "198.19.200.0/24")
	cfg.Hubs, cfg.Failback = []api.HubInfo{h1, h2}, failback
	a.writeState(t, cfg)
	l.startVcped(a)

	return &hubGroupLab{lab: l, a: a, h1: h1, h2: h2, startHub2: startHub2}
}

func carryingHub(st dataplane.Status) string {
	if c := st.CarryingHub(); c != nil {
		return c.Name
	}
	return ""
}

// TestHubGroupFailover runs a real vcped whose config names two hubs
// (two real hub processes in their own namespaces, each with its own key,
// endpoint and overlay address), checks that both sessions are up with
// the primary carrying, that 30 % random loss each way on the site's WAN
// for 20 s moves nothing, kills the primary hub with SIGKILL and checks that
// the traffic from the site's LAN moves to the secondary within a generous
// bound, that Status.Hubs, the events and vcpe status show the switch with
// its reason, and that the primary coming back does not take the traffic
// back (no failback configured).
func TestHubGroupFailover(t *testing.T) {
	g := newHubGroupLab(t, false, "hub")
	l, a, h1, h2 := g.lab, g.a, g.h1, g.h2
	carrying := carryingHub
	var st dataplane.Status
	waitFor(t, 20*time.Second, "both hub sessions up, hub1 carrying", func() bool {
		st = a.status(t)
		return len(st.Hubs) == 2 && st.Hubs[0].State == dataplane.HubUp && st.Hubs[1].State == dataplane.HubUp &&
			carrying(st) == "hub1" && st.State == dataplane.StateUp
	})
	if !st.Hubs[0].Primary || st.Hubs[1].Primary || st.Hubs[1].LastHandshake.IsZero() {
		t.Errorf("hub sessions: %+v", st.Hubs)
	}
	// The carrying hub's peer holds the routes, the other only its /32.
	if len(st.Peers) != 2 || st.Peers[0].Name != "hub" || st.Peers[0].PublicKey != h1.PublicKey ||
		!slices.Contains(st.Peers[0].AllowedIPs, netip.MustParsePrefix("198.19.200.0/24")) ||
		!slices.Equal(st.Peers[1].AllowedIPs, []netip.Prefix{netip.PrefixFrom(h2.OverlayAddr, 32)}) {
		t.Errorf("peers before the switch: %+v", st.Peers)
	}
	waitFor(t, 10*time.Second, "LAN reaches the anycast address through hub1", func() bool { return ping(a.lan, anycast) })

	// 30 % random loss each way on the site's WAN (nftables, both hubs'
	// tunnels) for 20 s: no switch, no hub judged down.
	a.ns.Run("nft", "add table ip loss")
	a.ns.Run("nft", "add chain ip loss o { type filter hook output priority 0 ; }")
	a.ns.Run("nft", "add chain ip loss i { type filter hook input priority 0 ; }")
	a.ns.Run("nft", "add rule ip loss o udp dport 4500 numgen random mod 100 < 30 counter drop")
	a.ns.Run("nft", "add rule ip loss i udp sport 4500 numgen random mod 100 < 30 counter drop")
	time.Sleep(20 * time.Second)
	out := a.ns.Run("nft", "list table ip loss")
	a.ns.Run("nft", "delete table ip loss")
	if m := counterRE.FindAllStringSubmatch(out, -1); len(m) != 2 || m[0][1] == "0" || m[1][1] == "0" {
		t.Fatalf("the loss rules dropped nothing:\n%s", out)
	}
	st = a.status(t)
	if carrying(st) != "hub1" || st.Hubs[0].Switches+st.Hubs[1].Switches != 0 {
		t.Errorf("30%% loss each way moved the traffic: %+v", st.Hubs)
	}
	for _, ev := range st.Events {
		if ev.Kind == "hub" {
			t.Errorf("hub event under random loss: %+v", ev)
		}
	}
	t.Logf("after 20 s of 30%% loss each way: hub1 %s (link %d/%d lost), hub2 %s", st.Hubs[0].State, st.Hubs[0].Link.Lost, st.Hubs[0].Link.Probes, st.Hubs[1].State)

	killed := time.Now()
	kill(t, l.hubCmd)
	waitFor(t, 10*time.Second, "hub2 carrying", func() bool { st = a.status(t); return carrying(st) == "hub2" })
	took := waitFor(t, 10*time.Second, "LAN reaches the anycast address through hub2", func() bool { return ping(a.lan, anycast) })
	t.Logf("traffic through hub2 %v after hub1 was killed", time.Since(killed).Round(10*time.Millisecond))
	st = a.status(t)
	var ev *dataplane.Event
	for i := range st.Events {
		if st.Events[i].Kind == "hub" && st.Events[i].Message == "traffic moved to hub hub2" {
			ev = &st.Events[i]
		}
	}
	if ev == nil || !strings.Contains(ev.Detail, "from hub hub1: hub hub1: no claim reply for") {
		t.Fatalf("no switch event with its reason: %+v", st.Events)
	}
	// Generous: the switch itself takes ~650 ms (6.5 claim intervals).
	if d := ev.Time.Sub(killed); d > 3*time.Second {
		t.Errorf("switched %v after the kill; want within 3s", d)
	}
	if took > 5*time.Second {
		t.Errorf("traffic back %v after the switch; want at once", took)
	}
	if st.Hubs[0].State != dataplane.HubDown || st.Hubs[1].Switches != 1 || st.Peers[0].PublicKey != h2.PublicKey ||
		!slices.Contains(st.Peers[0].AllowedIPs, netip.MustParsePrefix("198.19.200.0/24")) {
		t.Errorf("after the switch: hubs %+v peers %+v", st.Hubs, st.Peers)
	}
	text, _ := a.ns.Try(l.vcpe, "status", "--state-dir", a.dir)
	if !strings.Contains(text, "hub2") || !strings.Contains(text, "carrying") || !strings.Contains(text, "traffic moved to hub hub2") {
		t.Errorf("vcpe status does not show the switch:\n%s", text)
	}

	// hub1 comes back: without failback the traffic stays on hub2.
	l.startHub()
	waitFor(t, 20*time.Second, "hub1 up again", func() bool { st = a.status(t); return st.Hubs[0].State == dataplane.HubUp })
	time.Sleep(2 * time.Second)
	if st = a.status(t); carrying(st) != "hub2" || st.Hubs[1].Switches != 1 || st.Hubs[0].Switches != 0 {
		t.Errorf("hub1 back without failback: %+v; want the traffic to stay on hub2", st.Hubs)
	}
	if !ping(a.lan, anycast) {
		t.Errorf("LAN lost the anycast address after hub1 came back")
	}
}

// TestHubGroupFailback: with failback on, the traffic goes back to the
// primary once it has been up for the hold-down, with a "failback" event,
// and the LAN keeps reaching the anycast address.
func TestHubGroupFailback(t *testing.T) {
	g := newHubGroupLab(t, true, "hub")
	l, a := g.lab, g.a
	var st dataplane.Status
	waitFor(t, 20*time.Second, "both hub sessions up, hub1 carrying", func() bool {
		st = a.status(t)
		return len(st.Hubs) == 2 && st.Hubs[0].State == dataplane.HubUp && st.Hubs[1].State == dataplane.HubUp && carryingHub(st) == "hub1"
	})
	kill(t, l.hubCmd)
	waitFor(t, 10*time.Second, "hub2 carrying", func() bool { return carryingHub(a.status(t)) == "hub2" })
	l.startHub()
	var back time.Time
	waitFor(t, 20*time.Second, "hub1 up again", func() bool {
		st = a.status(t)
		back = time.Now()
		return st.Hubs[0].State == dataplane.HubUp
	})
	// Not before the hold-down...
	time.Sleep(dataplane.FailbackHold - 3*time.Second)
	if c := carryingHub(a.status(t)); c != "hub2" {
		t.Errorf("carrying %s %v after hub1 came back; want hub2 until the hold-down (%v) has passed", c, time.Since(back).Round(100*time.Millisecond), dataplane.FailbackHold)
	}
	// ...and soon after it.
	waitFor(t, 15*time.Second, "failback to hub1", func() bool { st = a.status(t); return carryingHub(st) == "hub1" })
	var ev *dataplane.Event
	for i := range st.Events {
		if st.Events[i].Kind == "hub" && st.Events[i].Message == "traffic moved to hub hub1" {
			ev = &st.Events[i]
		}
	}
	if ev == nil || !strings.Contains(ev.Detail, "failback: primary hub hub1 up again") {
		t.Errorf("no failback event: %+v", st.Events)
	}
	if st.Hubs[0].Switches != 1 || st.Hubs[1].Switches != 1 {
		t.Errorf("switches: %+v; want one onto each hub", st.Hubs)
	}
	waitFor(t, 10*time.Second, "LAN reaches the anycast address through hub1 again", func() bool { return ping(a.lan, anycast) })
}

// TestEdgeHubGroupApply changes the hub group of a running engine (real
// TUN, wireguard-go, UAPI) and checks the peers after each step: a single
// hub, a group of two (the carrier holds the routes, the other its /32),
// the carrier leaving the group (the remaining hub takes everything), and
// back to a config without hub groups.
func TestEdgeHubGroupApply(t *testing.T) {
	ns := namespace.New(t)
	enter(t, ns)
	k1, k2 := mustKey(t).PublicKey(), mustKey(t).PublicKey()
	e, err := dataplane.New(dataplane.EdgeOptions{PrivateKey: mustKey(t), UAPIDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cfg := staticConfig(k1)
	if err := e.Start(cfg); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	type peer struct {
		name string
		key  api.Key
		ips  []netip.Prefix
	}
	check := func(step string, hubs int, want ...peer) {
		t.Helper()
		st := e.Status()
		if len(st.Hubs) != hubs {
			t.Errorf("%s: %d hub sessions; want %d", step, len(st.Hubs), hubs)
		}
		if len(st.Peers) != len(want) {
			t.Fatalf("%s: peers %+v; want %d", step, st.Peers, len(want))
		}
		for i, w := range want {
			p := st.Peers[i]
			if p.Name != w.name || p.PublicKey != w.key || !slices.Equal(p.AllowedIPs, w.ips) {
				t.Errorf("%s: peer %d = %s %s %v; want %s %s %v", step, i, p.Name, p.PublicKey, p.AllowedIPs, w.name, w.key, w.ips)
			}
		}
	}
	check("one hub", 0, peer{"hub", k1, pfx("198.18.64.0/18", "198.19.2.0/24")})

	h1 := api.HubInfo{Name: "hub1", PublicKey: k1, Endpoint: hubWAN, OverlayAddr: hubOver}
	h2 := api.HubInfo{Name: "hub2", PublicKey: k2, Endpoint: netip.MustParseAddrPort("198.18.0.2:4500"), OverlayAddr: netip.MustParseAddr("198.18.127.250")}
	g := cfg
	g.Generation, g.Hubs = 2, []api.HubInfo{h1, h2}
	if err := e.Apply(g); err != nil {
		t.Fatal(err)
	}
	check("two hubs", 2, peer{"hub", k1, pfx("198.18.64.0/18", "198.18.64.1/32", "198.19.2.0/24")}, peer{"hub hub2", k2, pfx("198.18.127.250/32")})
	if st := e.Status(); st.CarryingHub() == nil || st.CarryingHub().Name != "hub1" || !st.Hubs[0].Primary {
		t.Errorf("two hubs: %+v; want hub1 primary and carrying", st.Hubs)
	}

	g.Generation, g.Hubs = 3, []api.HubInfo{h2}
	g.HubPublicKey, g.HubEndpoint, g.HubOverlayAddr = h2.PublicKey, h2.Endpoint, h2.OverlayAddr
	if err := e.Apply(g); err != nil {
		t.Fatal(err)
	}
	check("hub1 left", 1, peer{"hub", k2, pfx("198.18.64.0/18", "198.19.2.0/24")})

	cfg.Generation = 4
	if err := e.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	check("no hub groups again", 0, peer{"hub", k1, pfx("198.18.64.0/18", "198.19.2.0/24")})
}

// TestHubGroupGrayFailure: the carrying hub keeps answering claims but
// says it is degraded (its cloud side is gone): the device moves the
// traffic to the other hub, with the reason, and the LAN keeps reaching
// the anycast address.
func TestHubGroupGrayFailure(t *testing.T) {
	g := newHubGroupLab(t, false, "claimhub")
	l, a := g.lab, g.a
	var st dataplane.Status
	waitFor(t, 20*time.Second, "both hub sessions up, hub1 carrying", func() bool {
		st = a.status(t)
		return len(st.Hubs) == 2 && st.Hubs[0].State == dataplane.HubUp && st.Hubs[1].State == dataplane.HubUp && carryingHub(st) == "hub1"
	})
	waitFor(t, 10*time.Second, "LAN reaches the anycast address through hub1", func() bool { return ping(a.lan, anycast) })
	degraded := time.Now()
	if err := l.hubCmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "hub2 carrying", func() bool { st = a.status(t); return carryingHub(st) == "hub2" })
	t.Logf("hub2 carrying %v after hub1 said degraded", time.Since(degraded).Round(10*time.Millisecond))
	var ev *dataplane.Event
	for i := range st.Events {
		if st.Events[i].Kind == "hub" && st.Events[i].Message == "traffic moved to hub hub2" {
			ev = &st.Events[i]
		}
	}
	if ev == nil || !strings.Contains(ev.Detail, "hub hub1 is degraded") {
		t.Errorf("no switch event naming the degraded hub: %+v", st.Events)
	}
	if st.Hubs[0].State != dataplane.HubDegraded {
		t.Errorf("hub1 state %s; want degraded", st.Hubs[0].State)
	}
	if ev != nil && ev.Time.Sub(degraded) > 3*time.Second {
		t.Errorf("switched %v after hub1 said degraded; want within 3s", ev.Time.Sub(degraded))
	}
	waitFor(t, 10*time.Second, "LAN reaches the anycast address through hub2", func() bool { return ping(a.lan, anycast) })
}

// claimHubMain runs the hub dataplane with its claim port moved aside and
// answers the device's claims itself, as "hub1", the way a hub whose
// cloud-side health targets stopped answering does once it gets SIGUSR1:
// Degraded in every reply. It stands in for the gray failure of a hub in
// the device's tests.
func claimHubMain(args []string) int {
	return withHubFile(args[0], dataplane.DefaultClaimPort+50, func(_ *dataplane.Hub, f hubFile, log *slog.Logger) int {
		pc, err := net.ListenPacket("udp4", netip.AddrPortFrom(f.Config.HubOverlayAddr, dataplane.DefaultClaimPort).String())
		if err != nil {
			log.Error("claim socket", "err", err)
			return 1
		}
		defer pc.Close()
		var degraded atomic.Bool
		go func() {
			buf := make([]byte, 512)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				var c dataplane.Claim
				if json.Unmarshal(buf[:n], &c) != nil {
					continue
				}
				rep, _ := json.Marshal(dataplane.ClaimReply{Seq: c.Seq, Role: api.RoleActive, Active: c.SN, Members: 1, Hub: "hub1", Degraded: degraded.Load()})
				_, _ = pc.WriteTo(rep, from)
			}
		}()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
		for s := range sig {
			if s != syscall.SIGUSR1 {
				return 0
			}
			log.Info("degraded from now on")
			degraded.Store(true)
		}
		return 0
	})
}
