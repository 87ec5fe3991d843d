package dataplane

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netns"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// inNamespace runs f on a locked thread inside ns: what f creates (a Hub,
// a WireGuard interface) keeps working in ns from any goroutine.
func inNamespace(t *testing.T, ns *namespace.NS, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // the thread would stay in ns
		}
	}()
	f()
}

func testKey(t *testing.T) api.Key {
	t.Helper()
	k, err := api.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// groupDevice is a device-like WireGuard end in its own namespace: one
// session per hub, its LAN address on loopback, claims to both hubs
// naming the hub that carries it (via).
type groupDevice struct {
	ns    *namespace.NS
	w     *wgIface
	sn    string
	lan   string // its LAN address, 198.19.N.1
	claim net.PacketConn
	via   atomic.Value // string
	skip  atomic.Value // string: the hub its claims do not reach
	stop  chan struct{}

	mu      sync.Mutex
	replies map[netip.Addr]ClaimReply // the last reply of each hub
}

func (d *groupDevice) reply(hub netip.Addr) ClaimReply {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.replies[hub]
}

type testHub struct {
	name    string
	key     api.Key
	ns      *namespace.NS
	wan     netip.Addr
	overlay netip.Addr
	hub     *Hub
}

func (d *groupDevice) carryVia(t *testing.T, hubs []*testHub, via string, routes []string) {
	t.Helper()
	var b strings.Builder
	for _, h := range hubs {
		fmt.Fprintf(&b, "public_key=%s\nendpoint=%s\npersistent_keepalive_interval=1\nreplace_allowed_ips=true\nallowed_ip=%s/32\n",
			hexKey(h.key.PublicKey()), netip.AddrPortFrom(h.wan, 4500), h.overlay)
		if h.name == via {
			fmt.Fprintf(&b, "allowed_ip=198.18.64.0/18\n")
			for _, r := range routes {
				fmt.Fprintf(&b, "allowed_ip=%s\n", r)
			}
		}
	}
	if err := d.w.ipcSet(b.String()); err != nil {
		t.Fatal(err)
	}
	d.via.Store(via)
}

func (d *groupDevice) claims(hubs []*testHub) {
	seq := uint64(0)
	tk := time.NewTicker(50 * time.Millisecond)
	defer tk.Stop()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := d.claim.ReadFrom(buf)
			if err != nil {
				return
			}
			var r ClaimReply
			ua, ok := from.(*net.UDPAddr)
			if !ok || json.Unmarshal(buf[:n], &r) != nil {
				continue
			}
			a, _ := netip.AddrFromSlice(ua.IP)
			d.mu.Lock()
			if d.replies == nil {
				d.replies = map[netip.Addr]ClaimReply{}
			}
			d.replies[a.Unmap()] = r
			d.mu.Unlock()
		}
	}()
	for {
		select {
		case <-d.stop:
			return
		case <-tk.C:
		}
		seq++
		b, _ := json.Marshal(Claim{SN: d.sn, Healthy: true, LANOK: true, Seq: seq, Via: d.via.Load().(string)})
		for _, h := range hubs {
			if h.name != d.skip.Load().(string) {
				_, _ = d.claim.WriteTo(b, &net.UDPAddr{IP: h.overlay.AsSlice(), Port: DefaultClaimPort})
			}
		}
	}
}

// TestHubGroupSiteToSiteAndGateway runs two hubs of a group (in-process
// Hub instances in their own namespaces, peered hub to hub) and two
// device-like WireGuard ends, each with a session to both hubs: site A
// carried by h1, site B by h2, and a cloud host behind both hubs whose
// gateway is the group's cloud gateway address. It checks site to site
// across the hubs (one hop each), the cloud and its return path through
// the gateway holder and the hub-to-hub tunnel, CCN isolation for a
// device this hub does not peer with (on the hub the traffic enters, and
// on the hub it reaches through the hub-to-hub tunnel), that A's prefixes move to h2 when
// A's claims say Via = h2 (with no UAPI write while nothing changes), a
// gray failure (h2's cloud target stops answering: degraded in its claim
// replies, messages and status), the status text and metrics, that the
// gateway address moves to h2 with gratuitous ARP when h1 stops, and that
// a degraded or cut-off (WAN down) holder gives it up.
func TestHubGroupSiteToSiteAndGateway(t *testing.T) {
	namespace.RequireRoot(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	wan, cloud := namespace.New(t), namespace.New(t)
	wan.Run("ip", "link", "add", "br0", "type", "bridge")
	wan.Run("ip", "link", "set", "br0", "up")
	cloud.Run("ip", "link", "add", "br1", "type", "bridge")
	cloud.Run("ip", "addr", "add", "198.19.100.10/24", "dev", "br1")
	cloud.Run("ip", "link", "set", "br1", "up")
	cloud.Run("ip", "route", "add", "198.18.64.0/18", "via", "198.19.100.1")
	cloud.Run("ip", "route", "add", "198.19.0.0/16", "via", "198.19.100.1")
	port := 0
	attach := func(ns *namespace.NS, sw *namespace.NS, bridge, ifName, addr string) {
		port++
		p := "p" + strconv.Itoa(port)
		namespace.Veth(t, ns, ifName, addr, sw, p, "")
		sw.Run("ip", "link", "set", p, "master", bridge)
	}

	cloudPrefix := netip.MustParsePrefix("198.19.100.0/24")
	hubs := []*testHub{
		{name: "h1", key: testKey(t), ns: namespace.New(t), wan: netip.MustParseAddr("198.18.0.1"), overlay: netip.MustParseAddr("198.18.64.1")},
		{name: "h2", key: testKey(t), ns: namespace.New(t), wan: netip.MustParseAddr("198.18.0.2"), overlay: netip.MustParseAddr("198.18.64.60")},
	}
	for i, h := range hubs {
		attach(h.ns, wan, "br0", "wan", h.wan.String()+"/24")
		attach(h.ns, cloud, "br1", "cloud", "198.19.100."+strconv.Itoa(2+i)+"/24")
	}
	devKeys := []api.Key{testKey(t), testKey(t), testKey(t), testKey(t)}
	dev := func(sn string, k api.Key, last byte, lan, ccn string, hubNames ...string) api.HubPeer {
		own := netip.AddrFrom4([4]byte{198, 18, 64, last})
		return api.HubPeer{SN: sn, InstanceID: "i-" + sn, CCN: ccn, PublicKey: k.PublicKey(), OverlayAddr: own,
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(own, 32), netip.MustParsePrefix(lan)}, Active: true, Hubs: hubNames}
	}
	peers := []api.HubPeer{
		dev("a", devKeys[0], 2, "198.19.1.0/24", "blue", "h1", "h2"),
		dev("b", devKeys[1], 3, "198.19.2.0/24", "blue", "h2", "h1"),
		// A red site on h2 only: h1 has no session with it.
		dev("c", testKey(t), 9, "198.19.3.0/24", "red", "h2"),
		// Site S: two devices (multi-attach), s1 active, both on h1 and h2.
		{SN: "s1", InstanceID: "i-s", CCN: "blue", PublicKey: devKeys[2].PublicKey(), OverlayAddr: netip.MustParseAddr("198.18.64.4"),
			AllowedIPs: pfx("198.18.64.4/32", "198.19.4.0/24"), Active: true, Hubs: []string{"h1", "h2"}},
		{SN: "s2", InstanceID: "i-s", CCN: "blue", PublicKey: devKeys[3].PublicKey(), OverlayAddr: netip.MustParseAddr("198.18.64.5"),
			AllowedIPs: pfx("198.18.64.5/32"), Hubs: []string{"h1", "h2"}},
	}
	for i, h := range hubs {
		other := hubs[1-i]
		cfg := api.HubConfig{Generation: 1, Overlay: netip.MustParsePrefix("198.18.64.0/18"), HubOverlayAddr: h.overlay,
			CloudPrefixes: []netip.Prefix{cloudPrefix}, Name: h.name, Peers: peers,
			Hubs: []api.HubInfo{{Name: other.name, PublicKey: other.key.PublicKey(), Endpoint: netip.AddrPortFrom(other.wan, 4500), OverlayAddr: other.overlay}}}
		inNamespace(t, h.ns, func() {
			hub, err := NewHub(HubOptions{PrivateKey: h.key, UAPIDir: t.TempDir(), Logger: quiet.With("hub", h.name),
				CloudGateway: netip.MustParsePrefix("198.19.100.1/24"), CloudTargets: []netip.Addr{netip.MustParseAddr("198.19.100.10")}})
			if err != nil {
				t.Fatal(err)
			}
			if err := hub.Start(cfg); err != nil {
				t.Fatal(err)
			}
			h.hub = hub
		})
		t.Cleanup(func() { h.hub.Close() })
	}

	devs := []*groupDevice{
		{ns: namespace.New(t), sn: "a", lan: "198.19.1.1", stop: make(chan struct{})},
		{ns: namespace.New(t), sn: "b", lan: "198.19.2.1", stop: make(chan struct{})},
		{ns: namespace.New(t), sn: "s1", lan: "198.19.4.1", stop: make(chan struct{})},
		{ns: namespace.New(t), sn: "s2", lan: "198.19.4.2", stop: make(chan struct{})},
	}
	for i, d := range devs {
		attach(d.ns, wan, "br0", "wan", "198.18.0."+strconv.Itoa(11+i)+"/24")
		d.ns.Run("ip", "addr", "add", d.lan+"/32", "dev", "lo") // its LAN side
		inNamespace(t, d.ns, func() {
			c, err := newCommon(devKeys[i], "", 4500, t.TempDir(), 0, quiet, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d.w, err = openWG(c); err != nil {
				t.Fatal(err)
			}
			if err := d.w.setAddr(netip.MustParsePrefix(fmt.Sprintf("198.18.64.%d/18", 2+i)), netip.Prefix{}); err != nil {
				t.Fatal(err)
			}
			if d.claim, err = net.ListenPacket("udp4", ":0"); err != nil {
				t.Fatal(err)
			}
		})
		t.Cleanup(func() { close(d.stop); d.claim.Close(); d.w.close() })
	}
	// Each device routes the other LANs and the cloud into its tunnel.
	devs[0].ns.Run("ip", "route", "add", "198.19.2.0/24", "dev", devs[0].w.name, "src", "198.19.1.1")
	devs[0].ns.Run("ip", "route", "add", "198.19.3.0/24", "dev", devs[0].w.name, "src", "198.19.1.1")
	devs[0].ns.Run("ip", "route", "add", "198.19.100.0/24", "dev", devs[0].w.name, "src", "198.19.1.1")
	devs[1].ns.Run("ip", "route", "add", "198.19.1.0/24", "dev", devs[1].w.name, "src", "198.19.2.1")
	devs[1].ns.Run("ip", "route", "add", "198.19.100.0/24", "dev", devs[1].w.name, "src", "198.19.2.1")
	devs[0].carryVia(t, hubs, "h1", []string{"198.19.2.0/24", "198.19.3.0/24", "198.19.100.0/24"})
	devs[1].carryVia(t, hubs, "h2", []string{"198.19.1.0/24", "198.19.100.0/24"})
	devs[2].carryVia(t, hubs, "h1", nil)
	devs[3].carryVia(t, hubs, "h1", nil)
	for _, d := range devs {
		d.skip.Store("")
		go d.claims(hubs)
	}
	ping := func(ns *namespace.NS, src, dst string) bool {
		_, err := ns.Try("ping", "-c", "1", "-W", "1", "-I", src, dst)
		return err == nil
	}
	group := func(h *testHub) *HubGroupStatus {
		st := h.hub.Status()
		if st.HubGroup == nil {
			t.Fatalf("%s: status without hub group", h.name)
		}
		return st.HubGroup
	}
	device := func(g *HubGroupStatus, sn string) GroupDevice {
		for _, d := range g.Devices {
			if d.SN == sn {
				return d
			}
		}
		t.Fatalf("no device %s in %+v", sn, g.Devices)
		return GroupDevice{}
	}
	peerIPs := func(h *testHub, name string) []netip.Prefix {
		for _, p := range h.hub.Status().Peers {
			if p.Name == name {
				return p.AllowedIPs
			}
		}
		return nil
	}

	waitUntil(t, 15*time.Second, "the hubs hear each other and both devices' claims", func() bool {
		for _, h := range hubs {
			g := group(h)
			if g.Hubs[0].State != GroupHubUp || device(g, "a").Via != "h1" || device(g, "b").Via != "h2" {
				return false
			}
		}
		return true
	})
	t.Run("site to site across hubs", func(t *testing.T) {
		waitUntil(t, 15*time.Second, "site A reaches site B (A on h1, B on h2)", func() bool { return ping(devs[0].ns, "198.19.1.1", "198.19.2.1") })
		if !ping(devs[1].ns, "198.19.2.1", "198.19.1.1") {
			t.Error("site B does not reach site A")
		}
		// The plan follows news at most every Interval/5: wait for it
		// rather than catch it between two plans.
		var a, b GroupDevice
		settled := func() bool {
			g1 := group(hubs[0])
			a, b = device(g1, "a"), device(g1, "b")
			return a.Route == "here" && a.Carried && b.Route == "h2" && b.RouteWhy == "claims"
		}
		deadline := time.Now().Add(5 * time.Second)
		for !settled() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !settled() {
			t.Errorf("h1 routes a %+v, b %+v; want a here (carried), b through h2 by claims", a, b)
		}
		if ips := peerIPs(hubs[0], "hub h2"); !slices.Contains(ips, netip.MustParsePrefix("198.19.2.0/24")) {
			t.Errorf("h1's peer of h2 has %v; want B's LAN", ips)
		}
	})

	t.Run("the other hub follows the carrying hub's active device", func(t *testing.T) {
		active := func(h *testHub, sn string) bool {
			for _, p := range h.hub.Status().Peers {
				if p.Name == sn {
					return p.Active
				}
			}
			return false
		}
		// Which device is active is the hubs' choice (the first whose
		// claims arrived); h2 takes h1's, since h1 carries site S.
		act, other := devs[2], devs[3]
		waitUntil(t, 10*time.Second, "h1 carries site S and both hubs agree on its active device", func() bool {
			if active(hubs[0], "s2") {
				act, other = devs[3], devs[2]
			} else {
				act, other = devs[2], devs[3]
			}
			return device(group(hubs[0]), "s1").Instance == "i-s" && group(hubs[0]).Devices != nil &&
				slices.ContainsFunc(group(hubs[0]).Devices, func(d GroupDevice) bool { return d.Instance == "i-s" && d.Carried }) &&
				active(hubs[0], act.sn) && active(hubs[1], act.sn)
		})
		// The active device's claims stop reaching h2 (its session to h2
		// broke): on its own h2 would make the other device active; it
		// keeps h1's word.
		act.skip.Store("h2")
		defer act.skip.Store("")
		deadline := time.Now().Add(1500 * time.Millisecond)
		for time.Now().Before(deadline) {
			if !active(hubs[1], act.sn) || active(hubs[1], other.sn) {
				t.Fatalf("h2 made %s active although h1, which carries site S, keeps %s", other.sn, act.sn)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if r := other.reply(hubs[1].overlay); r.Role != api.RoleStandby || r.Active != act.sn {
			t.Errorf("h2 answers %s %+v; want standby, %s active", other.sn, r, act.sn)
		}
	})

	t.Run("cloud and its return path through the gateway holder", func(t *testing.T) {
		waitUntil(t, 10*time.Second, "h1 (the lowest name) holds the cloud gateway", func() bool {
			return group(hubs[0]).GatewayHolder == "h1" && group(hubs[1]).GatewayHolder == "h1"
		})
		if !strings.Contains(hubs[0].ns.Run("ip", "-4", "addr", "show", "dev", "cloud"), "198.19.100.1/24") {
			t.Error("h1 reports the gateway but does not hold 198.19.100.1")
		}
		if strings.Contains(hubs[1].ns.Run("ip", "-4", "addr", "show", "dev", "cloud"), "198.19.100.1/24") {
			t.Error("h2 holds the gateway address too")
		}
		if !ping(devs[0].ns, "198.19.1.1", "198.19.100.10") {
			t.Error("site A (h1) does not reach the cloud host")
		}
		// B's packets leave through h2; the answers come back through h1
		// (the gateway) and the hub-to-hub tunnel.
		if !ping(devs[1].ns, "198.19.2.1", "198.19.100.10") {
			t.Error("site B (h2) does not reach the cloud host through the return path h1 → h2")
		}
	})

	t.Run("CCN isolation across hubs", func(t *testing.T) {
		if tbl := hubs[0].ns.Run("nft", "list", "table", "ip", "vcpe"); !strings.Contains(tbl, "198.19.3.0/24") {
			t.Errorf("h1's isolation sets lack the red site h1 has no session with:\n%s", tbl)
		}
		hubs[1].ns.Run("nft", "add", "table", "ip", "count")
		hubs[1].ns.Run("nft", "add", "chain", "ip", "count", "pre", "{ type filter hook prerouting priority -300 ; }")
		hubs[1].ns.Run("nft", "add", "rule", "ip", "count", "pre", "ip", "daddr", "198.19.3.0/24", "counter")
		drops := func() int { return nftDrops(t, hubs[0].ns) }
		before := drops()
		for range 3 {
			if ping(devs[0].ns, "198.19.1.1", "198.19.3.1") {
				t.Error("blue site A reached the red site")
			}
		}
		if d := drops() - before; d < 3 {
			t.Errorf("h1 dropped %d packets for the red site; want every one dropped at h1", d)
		}
		if out := hubs[1].ns.Run("nft", "list", "chain", "ip", "count", "pre"); !strings.Contains(out, "packets 0 ") {
			t.Errorf("packets for the red site reached h2:\n%s", out)
		}
		// h1 misconfigured (its isolation table gone): the packets reach h2
		// through the hub-to-hub tunnel, and h2 drops them.
		hubs[0].ns.Run("nft", "delete", "table", "ip", "vcpe")
		before2 := nftDrops(t, hubs[1].ns)
		for range 3 {
			if ping(devs[0].ns, "198.19.1.1", "198.19.3.1") {
				t.Error("blue site A reached the red site")
			}
		}
		if out := hubs[1].ns.Run("nft", "list", "chain", "ip", "count", "pre"); strings.Contains(out, "packets 0 ") {
			t.Errorf("with h1's isolation gone no packet reached h2; the test proves nothing:\n%s", out)
		}
		if d := nftDrops(t, hubs[1].ns) - before2; d < 3 {
			t.Errorf("h2 dropped %d packets from the blue site (through h1) to the red site; want every one", d)
		}
		hubs[0].hub.mu.Lock()
		cfg := cloneHubConfig(hubs[0].hub.desired)
		hubs[0].hub.mu.Unlock()
		if err := hubs[0].hub.Apply(cfg); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("prefixes follow the device's Via", func(t *testing.T) {
		devs[0].carryVia(t, hubs, "h2", []string{"198.19.2.0/24", "198.19.3.0/24", "198.19.100.0/24"})
		waitUntil(t, 5*time.Second, "h1 routes A through h2 and h2 carries A", func() bool {
			a1, a2 := device(group(hubs[0]), "a"), device(group(hubs[1]), "a")
			return a1.Route == "h2" && a2.Route == "here" && a2.Carried
		})
		if ips := peerIPs(hubs[0], "hub h2"); !slices.Contains(ips, netip.MustParsePrefix("198.19.1.0/24")) {
			t.Errorf("h1's peer of h2 has %v; want A's LAN", ips)
		}
		if ips := peerIPs(hubs[0], "a"); !slices.Equal(ips, pfx("198.18.64.2/32")) {
			t.Errorf("h1's peer of A has %v; want its /32 only", ips)
		}
		if ips := peerIPs(hubs[1], "a"); !slices.Contains(ips, netip.MustParsePrefix("198.19.1.0/24")) {
			t.Errorf("h2's peer of A has %v; want A's LAN", ips)
		}
		if !ping(devs[0].ns, "198.19.1.1", "198.19.2.1") || !ping(devs[1].ns, "198.19.2.1", "198.19.1.1") {
			t.Error("A and B do not reach each other through h2")
		}
		if !ping(devs[0].ns, "198.19.1.1", "198.19.100.10") {
			t.Error("A (now on h2) does not reach the cloud host")
		}
		// Steady claims and messages write nothing to WireGuard.
		writes := func() (n uint64) {
			for _, h := range hubs {
				h.hub.mu.Lock()
				n += h.hub.uapiWrites
				h.hub.mu.Unlock()
			}
			return n
		}
		before := writes()
		time.Sleep(time.Second)
		if n := writes() - before; n != 0 {
			t.Errorf("%d UAPI writes in a second without changes; want none", n)
		}
	})

	// The cloud host stops answering h2's probes: h2 is degraded (a gray
	// failure), says so in its claim replies and hub messages.
	grayOn := func() {
		cloud.Run("nft", "add", "table", "ip", "gray")
		cloud.Run("nft", "add", "chain", "ip", "gray", "in", "{ type filter hook input priority 0 ; }")
		cloud.Run("nft", "add", "rule", "ip", "gray", "in", "ip", "saddr", "198.19.100.3", "icmp", "type", "echo-request", "drop")
	}
	grayOff := func() { cloud.Run("nft", "delete", "table", "ip", "gray") }
	t.Run("gray failure: degraded", func(t *testing.T) {
		if r := devs[1].reply(hubs[1].overlay); r.Hub != "h2" || r.Degraded {
			t.Errorf("h2's claim reply %+v; want hub h2, not degraded", r)
		}
		grayOn()
		waitUntil(t, 5*time.Second, "h1 hears h2 degraded", func() bool { return group(hubs[0]).Hubs[0].State == GroupHubDegraded })
		waitUntil(t, time.Second, "h2's claim replies say degraded", func() bool {
			r := devs[1].reply(hubs[1].overlay)
			return r.Hub == "h2" && r.Degraded
		})
		if r := devs[1].reply(hubs[0].overlay); r.Hub != "h1" || r.Degraded {
			t.Errorf("h1's claim reply %+v; want hub h1, not degraded", r)
		}
		var b strings.Builder
		WriteText(&b, hubs[1].hub.Status(), time.Now())
		if !strings.Contains(b.String(), "DEGRADED") || !strings.Contains(b.String(), "cloud target 198.19.100.10: no answer") {
			t.Errorf("h2's status text does not say degraded:\n%s", b.String())
		}
		grayOff()
		waitUntil(t, 5*time.Second, "h2 recovers", func() bool { return group(hubs[0]).Hubs[0].State == GroupHubUp })
	})

	t.Run("status and metrics", func(t *testing.T) {
		var b strings.Builder
		WriteText(&b, hubs[0].hub.Status(), time.Now())
		for _, want := range []string{"hub group: h1, ok", "gateway:   198.19.100.1/24 held by h1", "HUB", "h2  ", "DEVICE", "claims"} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("h1's status text lacks %q:\n%s", want, b.String())
			}
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(NewCollector(hubs[0].hub.Status))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "hub" {
						got[mf.GetName()+"/"+l.GetValue()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
					}
				}
			}
		}
		for k, want := range map[string]float64{"vcpe_hub_group_peer_up/h2": 1, "vcpe_hub_group_gateway_held/h1": 1,
			"vcpe_hub_group_peer_carried_instances/h2": 2, "vcpe_hub_group_primary_devices/h1": 3} {
			if got[k] != want {
				t.Errorf("metric %s = %v; want %v (all: %v)", k, got[k], want, got)
			}
		}
	})

	t.Run("gateway moves when its holder stops", func(t *testing.T) {
		mac := strings.Fields(hubs[1].ns.Run("cat", "/sys/class/net/cloud/address"))[0]
		if !ping(cloud, "198.19.100.10", "198.19.100.1") {
			t.Fatal("the cloud host does not reach its gateway")
		}
		if err := hubs[0].hub.Close(); err != nil {
			t.Fatal(err)
		}
		took := waitUntil(t, 5*time.Second, "h2 takes the cloud gateway", func() bool { return group(hubs[1]).GatewayHolder == "h2" })
		t.Logf("h2 took the gateway %v after h1 stopped", took.Round(10*time.Millisecond))
		if st := group(hubs[1]).Hubs[0].State; st != GroupHubDown {
			t.Errorf("h2 sees the stopped h1 %s; want down", st)
		}
		if strings.Contains(hubs[0].ns.Run("ip", "-4", "addr", "show", "dev", "cloud"), "198.19.100.1/24") {
			t.Error("h1 still holds the gateway address after Close")
		}
		waitUntil(t, 3*time.Second, "the cloud host's neighbour entry moves to h2 (gratuitous ARP)", func() bool {
			return strings.Contains(cloud.Run("ip", "neigh", "show", "198.19.100.1"), mac)
		})
		if !ping(devs[1].ns, "198.19.2.1", "198.19.100.10") {
			t.Error("site B does not reach the cloud host through h2 alone")
		}
		// A degraded holder gives the gateway up.
		grayOn()
		defer grayOff()
		waitUntil(t, 5*time.Second, "degraded h2 gives up the gateway", func() bool { return group(hubs[1]).GatewayHolder == "" })
		if strings.Contains(hubs[1].ns.Run("ip", "-4", "addr", "show", "dev", "cloud"), "198.19.100.1/24") {
			t.Error("degraded h2 still holds the gateway address")
		}
	})

	t.Run("a hub without WAN drops the gateway", func(t *testing.T) {
		waitUntil(t, 5*time.Second, "h2, healthy again, takes the gateway back", func() bool { return group(hubs[1]).GatewayHolder == "h2" })
		hubs[1].ns.Run("ip", "link", "set", "wan", "down")
		waitUntil(t, 5*time.Second, "h2 cut off drops the gateway", func() bool {
			g := group(hubs[1])
			return !g.Live && g.GatewayHolder == ""
		})
		if strings.Contains(hubs[1].ns.Run("ip", "-4", "addr", "show", "dev", "cloud"), "198.19.100.1/24") {
			t.Error("cut-off h2 still holds the gateway address")
		}
	})
}

// nftDrops sums the counters of the isolation table's drop rules.
func nftDrops(t *testing.T, ns *namespace.NS) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(ns.Run("nft", "list", "table", "ip", "vcpe"), "\n") {
		if !strings.Contains(line, " drop") {
			continue
		}
		f := strings.Fields(line)
		for i := range f {
			if f[i] == "packets" && i+1 < len(f) {
				v, _ := strconv.Atoi(f[i+1])
				n += v
			}
		}
	}
	return n
}
