package dataplane_test

import (
	"maps"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// TestAttackSpoofAndPrefixMove is the packet side of tenant isolation: a
// real hub and real vcped devices (wireguard-go) in namespaces.
//
//   - A device sending with another site's LAN address as source (even a
//     member of the same CCN, whose accept rules would pass it) gets
//     nothing through: the hub's WireGuard drops a source outside the
//     sending peer's own prefixes.
//   - When a prefix moved to another peer moves away again (withdrawal,
//     failover), the peer that owns it gets it back: the cloud reaches the
//     victim's LAN again, nothing stays black-holed.
func TestAttackSpoofAndPrefixMove(t *testing.T) {
	l := newLab(t)
	a := l.addSite("attacker", "198.18.0.11", "198.19.1", netip.MustParseAddr("198.18.64.2"))
	b := l.addSite("victim", "198.18.0.12", "198.19.2", netip.MustParseAddr("198.18.64.3"))
	peer := func(s *site, lans ...string) api.HubPeer {
		ips := append([]netip.Prefix{netip.PrefixFrom(s.overlay, 32)}, pfx(lans...)...)
		return api.HubPeer{SN: s.name, InstanceID: "i-" + s.name, CCN: "blue", PublicKey: s.key.PublicKey(),
			OverlayAddr: s.overlay, AllowedIPs: ips, Active: true}
	}
	cfg := api.HubConfig{Generation: 1, Overlay: overlay, HubOverlayAddr: hubOver, CloudPrefixes: []netip.Prefix{cloudNet},
		Peers: []api.HubPeer{peer(a, "198.19.1.0/24"), peer(b, "198.19.2.0/24")}}
	l.writeHub(cfg)
	l.startHub()
	a.writeState(t, l.deviceConfig(a, "198.19.100.0/24"))
	b.writeState(t, l.deviceConfig(b, "198.19.100.0/24"))
	for _, s := range []*site{a, b} {
		l.startVcped(s)
		waitFor(t, 15*time.Second, s.name+" tunnel up", func() bool { return s.status(t).State == dataplane.StateUp })
	}
	if !ping(l.cloud, "198.19.2.10") {
		t.Fatal("cloud → victim LAN before the attack: no answer")
	}

	t.Run("spoofed source", func(t *testing.T) {
		addCounter(l.cloud, "ip saddr 198.19.2.99")
		a.ns.Run("ip", "addr", "add", "198.19.2.99/32", "dev", "lo")
		for range 3 {
			_, _ = a.ns.Try("ping", "-c", "1", "-W", "1", "-I", "198.19.2.99", "198.19.100.10")
		}
		if n := counter(t, l.cloud); n != 0 {
			t.Errorf("%d packets with the victim's source address reached the cloud; want 0", n)
		}
	})

	t.Run("prefix back to its owner", func(t *testing.T) {
		// The attacker's peer is given the victim's prefix (state the
		// controller no longer produces; the hub must still recover).
		cfg.Generation = 2
		cfg.Peers = []api.HubPeer{peer(a, "198.19.1.0/24", "198.19.2.0/24"), peer(b, "198.19.2.0/24")}
		l.writeHub(cfg)
		_ = l.hubCmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, 10*time.Second, "hub reload", func() bool { st, err := dataplane.ReadStatus(l.hubCtl); return err == nil && st.Generation == 2 })
		// The attacker withdraws.
		cfg.Generation = 3
		cfg.Peers = []api.HubPeer{peer(a, "198.19.1.0/24"), peer(b, "198.19.2.0/24")}
		l.writeHub(cfg)
		_ = l.hubCmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, 10*time.Second, "hub reload", func() bool { st, err := dataplane.ReadStatus(l.hubCtl); return err == nil && st.Generation == 3 })
		st, _ := dataplane.ReadStatus(l.hubCtl)
		for _, p := range st.Peers {
			if p.Name == b.name && !containsPrefix(p.AllowedIPs, "198.19.2.0/24") {
				t.Errorf("victim's peer in WireGuard after the withdrawal: %v; want 198.19.2.0/24 back", p.AllowedIPs)
			}
		}
		if !ping(l.cloud, "198.19.2.10") {
			t.Error("cloud → victim LAN after the attacker withdrew: no answer (black-holed)")
		}
	})
}

func containsPrefix(ps []netip.Prefix, s string) bool {
	for _, p := range ps {
		if p.String() == s {
			return true
		}
	}
	return false
}

// TestAttackHubCannotBeSteered: even a HubConfig holding prefixes of the
// hub's own networks (which the controller refuses) cannot replace a route
// of the hub's main table. vcpe's routes live in their own table, behind
// the main table's specific routes, the main table is untouched by Apply
// and Close, and WireGuard's own packets (fwmark) never use vcpe's table.
func TestAttackHubCannotBeSteered(t *testing.T) {
	ns := namespace.New(t)
	namespace.Veth(t, ns, "host0", "198.19.50.1/24", namespace.New(t), "eth0", "198.19.50.254/24")
	ns.Run("ip", "route", "add", "198.19.60.0/24", "via", "198.19.50.254", "dev", "host0")
	ns.Run("ip", "route", "add", "default", "via", "198.19.50.254", "dev", "host0")
	// The main table apart from the overlay's connected route (the hub's
	// address on its TUN).
	mainTable := func() string {
		var keep []string
		for _, l := range strings.Split(ns.Run("ip", "route", "show", "table", "main"), "\n") {
			if !strings.Contains(l, "dev "+dataplane.DefaultTUN+" proto kernel") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	mainBefore := mainTable()
	enter(t, ns)
	// What the controller is told to protect (vcpe-hub serve).
	hn, err := dataplane.HostNetworks()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"198.19.50.1/32", "198.19.50.0/24", "198.19.50.254/32"} {
		found := false
		for _, h := range hn {
			found = found || h.Prefix.String() == want
		}
		if !found {
			t.Errorf("HostNetworks %v lacks %s", hn, want)
		}
	}
	attacker := mustKey(t).PublicKey()
	cfg := api.HubConfig{Generation: 1, Overlay: overlay, HubOverlayAddr: hubOver,
		Peers: []api.HubPeer{{SN: "evil", CCN: "blue", PublicKey: attacker, OverlayAddr: netip.MustParseAddr("198.18.64.2"),
			AllowedIPs: pfx("198.18.64.2/32", "198.19.50.0/24", "198.19.60.0/24", "198.19.50.254/32", "198.19.70.0/24"), Active: true}}}
	h, err := dataplane.NewHub(dataplane.HubOptions{PrivateKey: mustKey(t), UAPIDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(cfg); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dev := func(args ...string) string {
		out := ns.Run("ip", append([]string{"route", "get"}, args...)...)
		f := strings.Fields(out)
		for i := range f[:len(f)-1] {
			if f[i] == "dev" {
				return f[i+1]
			}
		}
		t.Fatalf("ip route get %v: %s", args, out)
		return ""
	}
	for _, dst := range []string{"198.19.50.7", "198.19.60.5", "198.19.50.254"} {
		if d := dev(dst); d != "host0" {
			t.Errorf("hub's route to %s goes via %s; want host0 (the operator's route, not the device's)", dst, d)
		}
	}
	// A prefix nothing specific covers goes to the tunnel (beats only the
	// default route)…
	if d := dev("198.19.70.1"); d != dataplane.DefaultTUN {
		t.Errorf("route to the device's own prefix goes via %s; want %s", d, dataplane.DefaultTUN)
	}
	// …but never for WireGuard's own packets.
	if d := dev("198.19.70.1", "mark", strconv.Itoa(dataplane.DefaultFwMark)); d != "host0" {
		t.Errorf("WireGuard's packets to 198.19.70.1 go via %s; want host0 (exempt from tunnel routes)", d)
	}
	if got := mainTable(); got != mainBefore {
		t.Errorf("main table changed by Start:\nbefore:\n%s\nafter:\n%s", mainBefore, got)
	}
	cfg.Generation = 2
	cfg.Peers[0].AllowedIPs = pfx("198.18.64.2/32")
	if err := h.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if got := ownRouteDsts(t); len(got) != 0 {
		t.Errorf("vcpe routes after withdrawal: %v; want none", got)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	mainAfter := mainTable()
	if mainAfter != mainBefore {
		t.Errorf("main table after Close:\n%s\nwant as before:\n%s", mainAfter, mainBefore)
	}
	if rules := ns.Run("ip", "rule", "show"); strings.Contains(rules, strconv.Itoa(dataplane.DefaultRouteTable)) {
		t.Errorf("policy rules left after Close:\n%s", rules)
	}
}

// TestAttackDeviceGuardsEveryConfig: a learned route that would capture
// the hub endpoint, the controller or the SSH client connected now is not
// installed, on the first config and on every later one, and the status
// says which and why (vcpe diag turns it into a finding).
func TestAttackDeviceGuardsEveryConfig(t *testing.T) {
	ns := namespace.New(t)
	peerNS := namespace.New(t)
	namespace.Veth(t, ns, "mgmt", "198.19.5.1/24", peerNS, "eth0", "198.19.5.2/24")
	// An SSH session to this device: a listener on port 22, a client in
	// the other namespace holding the connection open.
	ns.Start("env", helperEnv+"=tcplisten", os.Args[0], "198.19.5.1:22")
	waitFor(t, 5*time.Second, "SSH stand-in listening", func() bool {
		_, err := ns.Try("sh", "-c", "grep -q ' 010513C6:0016 00000000:0000 0A ' /proc/net/tcp")
		return err == nil
	})
	peerNS.Start("env", helperEnv+"=tcphold", os.Args[0], "198.19.5.1:22")
	enter(t, ns)
	waitFor(t, 5*time.Second, "SSH stand-in connected", func() bool {
		b, _ := os.ReadFile("/proc/thread-self/net/tcp")
		return strings.Contains(string(b), "010513C6:0016 020513C6") // 198.19.5.1:22 ← 198.19.5.2 (little-endian)
	})
	ctrl := netip.MustParseAddr("198.19.6.9")
	e, err := dataplane.New(dataplane.EdgeOptions{PrivateKey: mustKey(t), UAPIDir: t.TempDir(),
		Protect: func() []dataplane.Protected { return []dataplane.Protected{{Addr: ctrl, What: "the controller"}} }})
	if err != nil {
		t.Fatal(err)
	}
	cfg := staticConfig(mustKey(t).PublicKey())
	cfg.Routes = pfx("198.19.2.0/24", "198.18.0.0/24") // the second covers the hub endpoint
	if err := e.Start(cfg); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	check := func(wantInstalled []string, wantDropped map[string]string) {
		t.Helper()
		if got := ownRouteDsts(t); !slices.Equal(got, wantInstalled) {
			t.Errorf("installed routes %v; want %v", got, wantInstalled)
		}
		st := e.Status()
		got := map[string]string{}
		for _, d := range st.DroppedRoutes {
			got[d.Prefix.String()] = d.Protected.Addr.String()
		}
		if !maps.Equal(got, wantDropped) {
			t.Errorf("status dropped routes %v; want %v", got, wantDropped)
		}
	}
	check([]string{"198.19.2.0/24"}, map[string]string{"198.18.0.0/24": "198.18.0.1"})

	cfg.Generation = 2
	cfg.Routes = pfx("198.19.2.0/24", "198.19.5.0/25", "198.19.6.0/24", "198.19.7.0/24")
	if err := e.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	check([]string{"198.19.2.0/24", "198.19.7.0/24"}, map[string]string{"198.19.5.0/25": "198.19.5.2", "198.19.6.0/24": "198.19.6.9"})
	// A learned route carries traffic into the tunnel, but never
	// WireGuard's own packets (fwmark), on the device as on the hub.
	if out := ns.Run("ip", "route", "get", "198.19.7.1"); !strings.Contains(out, "dev "+dataplane.DefaultTUN) {
		t.Errorf("route to a learned prefix: %s; want via %s", out, dataplane.DefaultTUN)
	}
	if out, _ := ns.Try("ip", "route", "get", "198.19.7.1", "mark", strconv.Itoa(dataplane.DefaultFwMark)); strings.Contains(out, "dev "+dataplane.DefaultTUN) {
		t.Errorf("WireGuard's own packets to a learned prefix: %s; want them exempt from the tunnel", out)
	}
	// Nothing in the kernel sends the SSH client into the tunnel.
	if out := ns.Run("ip", "route", "get", "198.19.5.2"); strings.Contains(out, dataplane.DefaultTUN) {
		t.Errorf("route to the SSH client: %s", out)
	}
}
