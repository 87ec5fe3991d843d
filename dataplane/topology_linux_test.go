package dataplane_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
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
	"github.com/openvcpe/vcpe/internal/namespace"
)

// TestSitesThroughHub runs a real hub process, real vcped daemons and a
// cloud host in namespaces and checks, in order: reachability within a CCN
// and to the cloud (ICMP and UDP), CCN isolation (not a single packet),
// handshake diagnostics for a wrong hub key and a blocked UDP 4500, UAPI
// and metrics, route reconciliation after kill -9, recovery from a 10 s
// WAN outage, and recovery from a hub restart.
func TestSitesThroughHub(t *testing.T) {
	l := newLab(t)
	a := l.addSite("site-a", "198.18.0.11", "198.19.1", netip.MustParseAddr("198.18.64.2"))
	b := l.addSite("site-b", "198.18.0.12", "198.19.2", netip.MustParseAddr("198.18.64.3"))
	c := l.addSite("site-c", "198.18.0.13", "198.19.3", netip.MustParseAddr("198.18.64.4"))
	d := l.addSite("site-d", "198.18.0.14", "", netip.MustParseAddr("198.18.64.5")) // wrong hub key
	e := l.addSite("site-e", "198.18.0.15", "", netip.MustParseAddr("198.18.64.6")) // UDP 4500 blocked

	peer := func(s *site, ccn, lan string) api.HubPeer {
		ips := []netip.Prefix{netip.PrefixFrom(s.overlay, 32)}
		if lan != "" {
			ips = append(ips, netip.MustParsePrefix(lan))
		}
		return api.HubPeer{SN: s.name, InstanceID: "i-" + s.name, CCN: ccn, PublicKey: s.key.PublicKey(),
			OverlayAddr: s.overlay, AllowedIPs: ips, Active: true}
	}
	l.writeHub(api.HubConfig{Generation: 1, Overlay: overlay, HubOverlayAddr: hubOver, CloudPrefixes: []netip.Prefix{cloudNet},
		Peers: []api.HubPeer{peer(a, "blue", "198.19.1.0/24"), peer(b, "blue", "198.19.2.0/24"), peer(c, "red", "198.19.3.0/24"),
			peer(e, "red", "")}})
	l.startHub()

	a.writeState(t, l.deviceConfig(a, "198.19.2.0/24", "198.19.100.0/24"))
	b.writeState(t, l.deviceConfig(b, "198.19.1.0/24", "198.19.100.0/24"))
	// site C is in another CCN and misconfigured (or hostile): it routes the
	// blue LANs into its tunnel, so only the hub stands in the way.
	c.writeState(t, l.deviceConfig(c, "198.19.1.0/24", "198.19.2.0/24", "198.19.100.0/24"))
	wrong := l.deviceConfig(d)
	wrong.HubPublicKey = mustKey(t).PublicKey()
	d.writeState(t, wrong)
	e.writeState(t, l.deviceConfig(e))
	e.ns.Run("nft", "add table ip block")
	e.ns.Run("nft", "add chain ip block o { type filter hook output priority 0 ; }")
	e.ns.Run("nft", "add rule ip block o udp dport 4500 drop")

	a.extraArg = []string{"--metrics-listen", "127.0.0.1:9586"}
	notify := listenNotify(t)
	b.env = []string{"NOTIFY_SOCKET=" + notify.path, "WATCHDOG_USEC=2000000"}
	for _, s := range []*site{a, b, c, d, e} {
		l.startVcped(s)
	}
	for _, s := range []*site{a, b, c} {
		waitFor(t, 15*time.Second, s.name+" tunnel up", func() bool { return s.status(t).State == dataplane.StateUp })
	}
	for _, ns := range []*namespace.NS{a.lan, b.lan, l.cloud} {
		ns.Start("env", helperEnv+"=udpecho", l.self, "0.0.0.0:7")
		waitFor(t, 5*time.Second, "UDP echo server", func() bool { return l.udp(ns, "127.0.0.1:7") })
	}

	t.Run("same CCN and cloud reachable", func(t *testing.T) {
		for _, tc := range []struct {
			from *site
			dst  string
		}{{a, "198.19.2.10"}, {a, "198.19.100.10"}, {b, "198.19.1.10"}, {b, "198.19.100.10"}} {
			if !ping(tc.from.lan, tc.dst) {
				t.Errorf("ICMP from %s LAN to %s: no answer", tc.from.name, tc.dst)
			}
			if !l.udp(tc.from.lan, tc.dst+":7") {
				t.Errorf("UDP from %s LAN to %s: no echo", tc.from.name, tc.dst)
			}
		}
		// The other CCN reaches the cloud: isolation is per CCN, not a blanket drop.
		if !ping(c.lan, "198.19.100.10") {
			t.Errorf("ICMP from %s LAN to the cloud host: no answer", c.name)
		}
	})

	t.Run("other CCN isolated", func(t *testing.T) {
		addCounter(a.ns, "ip saddr { 198.19.3.0/24, 198.18.64.4 }")
		addCounter(b.ns, "ip saddr { 198.19.3.0/24, 198.18.64.4 }")
		drops := hubDrops(t, l.hub)
		// Probes run concurrently: each unanswered one costs its timeout.
		var wg sync.WaitGroup
		var mu sync.Mutex
		var leaks []string
		try := func(what string, ok func() bool) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok() {
					mu.Lock()
					leaks = append(leaks, what)
					mu.Unlock()
				}
			}()
		}
		for _, dst := range []string{"198.19.1.10", "198.19.2.10", "198.18.64.2", "198.18.64.3"} {
			try("ICMP from the red CCN LAN to "+dst, func() bool { return ping(c.lan, dst) })
			try("ICMP from the red CCN device to "+dst, func() bool { return ping(c.ns, dst) })
		}
		try("UDP from the red CCN LAN to site A", func() bool { return l.udp(c.lan, "198.19.1.10:7") })
		try("UDP from the red CCN LAN to site B", func() bool { return l.udp(c.lan, "198.19.2.10:7") })
		wg.Wait()
		for _, w := range leaks {
			t.Errorf("%s: answered; want no packet across CCNs", w)
		}
		if n := counter(t, a.ns) + counter(t, b.ns); n != 0 {
			t.Errorf("%d packets from the red CCN arrived at blue sites; want 0", n)
		}
		if got := hubDrops(t, l.hub) - drops; got < 8 {
			t.Errorf("hub dropped %d packets from the red CCN; want every probe to reach the hub and be dropped there", got)
		}
	})

	t.Run("handshake not completing", func(t *testing.T) {
		for _, s := range []*site{d, e} {
			var st dataplane.Status
			waitFor(t, 15*time.Second, s.name+" reports handshake not completing", func() bool {
				st = s.status(t)
				return st.State == dataplane.StateHandshakeNotCompleting
			})
			out, err := s.ns.Try(l.vcpe, "status", "--json", "--state-dir", s.dir)
			if err == nil {
				t.Errorf("%s: vcpe status exited 0 with the tunnel %s", s.name, st.State)
			}
			var js dataplane.Status
			if err := json.Unmarshal([]byte(out), &js); err != nil {
				t.Fatalf("vcpe status --json: %v\n%s", err, out)
			}
			hubKey := s.hubKey
			if len(js.Peers) != 1 || js.Peers[0].PublicKey != hubKey || js.Peers[0].LastAttempt.IsZero() ||
				!strings.Contains(js.Reason, "handshake not completing with peer "+hubKey.String()) ||
				!strings.Contains(js.Reason, "last attempt") {
				t.Errorf("%s: status does not name the peer and the last attempt:\n%s", s.name, out)
			}
			text, _ := s.ns.Try(l.vcpe, "status", "--state-dir", s.dir)
			if !strings.Contains(text, "handshake not completing with peer "+hubKey.String()) {
				t.Errorf("%s: vcpe status text:\n%s", s.name, text)
			}
		}
	})

	t.Run("observability", func(t *testing.T) {
		out, err := a.ns.Try(l.vcpe, "status", "--state-dir", a.dir)
		if err != nil || !strings.Contains(out, "state:     up") || !strings.Contains(out, "198.19.2.0/24") {
			t.Errorf("vcpe status: %v\n%s", err, out)
		}
		hk := l.hubKey.PublicKey()
		u := uapiGet(t, filepath.Join(a.uapiDir, "vcpe0.sock"))
		if !strings.Contains(u, "public_key="+hex.EncodeToString(hk[:])) || strings.Contains(u, "last_handshake_time_sec=0\n") {
			t.Errorf("UAPI get does not show a live hub peer:\n%s", u)
		}
		m, err := a.ns.Try("env", helperEnv+"=httpget", l.self, "http://127.0.0.1:9586/metrics")
		if err != nil || !strings.Contains(m, `vcpe_tunnel_up{interface="vcpe0",role="edge",state="up"} 1`) ||
			!strings.Contains(m, "vcpe_peer_receive_bytes_total") {
			t.Errorf("metrics: %v\n%s", err, m)
		}
		hs, err := dataplane.ReadStatus(l.hubCtl)
		if err != nil || len(hs.Peers) != 4 {
			t.Fatalf("hub status: %v %+v", err, hs)
		}
	})

	t.Run("sd_notify", func(t *testing.T) {
		for _, want := range []string{"READY=1", "STATUS=tunnel up", "WATCHDOG=1"} {
			notify.wait(t, want)
		}
	})

	t.Run("hub applies a new config live", func(t *testing.T) {
		hubBytes := func() map[string]uint64 {
			hs, err := dataplane.ReadStatus(l.hubCtl)
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]uint64{}
			for _, p := range hs.Peers {
				m[p.Name] = p.RxBytes
			}
			return m
		}
		before := hubBytes()
		// A continuous ping from LAN A to LAN B across the reload: not a
		// single loss allowed.
		var pingOut []byte
		pingDone := make(chan error, 1)
		go func() {
			var err error
			pingOut, err = a.lan.Command(context.Background(), "ping", "-q", "-c", "15", "-i", "0.2", "-W", "1", "198.19.2.10").CombinedOutput()
			pingDone <- err
		}()
		time.Sleep(time.Second)
		cfg := api.HubConfig{Generation: 2, Overlay: overlay, HubOverlayAddr: hubOver, CloudPrefixes: []netip.Prefix{cloudNet},
			Peers: []api.HubPeer{peer(a, "blue", "198.19.1.0/24"), peer(b, "blue", "198.19.2.0/24"), peer(e, "red", "")}}
		cfg.Peers[1].Active = false // b becomes the standby of its instance: visible in the hub status
		l.writeHub(cfg)
		if err := l.hubCmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		var hs dataplane.Status
		waitFor(t, 5*time.Second, "hub generation 2", func() bool {
			hs, _ = dataplane.ReadStatus(l.hubCtl)
			return hs.Generation == 2
		})
		names := map[string]bool{}
		for _, p := range hs.Peers {
			names[p.Name] = p.Active
		}
		if _, ok := names["site-c"]; ok || len(names) != 3 || names["site-b"] || !names["site-a"] {
			t.Errorf("hub peers after reload = %v; want site-a active, site-b standby, no site-c", names)
		}
		if ping(c.lan, "198.19.100.10") {
			t.Errorf("removed peer site-c still reaches the cloud")
		}
		if err := <-pingDone; err != nil || !strings.Contains(string(pingOut), " 0% packet loss") {
			t.Errorf("ping from LAN A to LAN B across the reload: %v\n%s", err, pingOut)
		}
		// A peer that was removed and re-added would start again from 0.
		after := hubBytes()
		for _, s := range []string{a.name, b.name} {
			if after[s] < before[s] {
				t.Errorf("hub peer %s counters went back from %d to %d: the peer was recreated", s, before[s], after[s])
			}
		}
	})

	t.Run("kill -9 and restart reconciles routes", func(t *testing.T) {
		kill(t, a.cmd)
		out, err := a.ns.Try(l.vcpe, "status", "--state-dir", a.dir)
		if err == nil || !strings.Contains(out, "vcped is not running") {
			t.Errorf("vcpe status with vcped down: %v\n%s", err, out)
		}
		// Leftovers a crash could leave: a marked route to a prefix no
		// longer learned, a marked route for a learned prefix pointing
		// elsewhere; and a route that is not ours, which must survive.
		a.ns.Run("ip", "route", "add", "198.19.77.0/24", "dev", "lan", "proto", "118")
		a.ns.Run("ip", "route", "add", "198.19.2.0/24", "dev", "lan", "proto", "118")
		a.ns.Run("ip", "route", "add", "198.19.78.0/24", "dev", "lan")
		l.startVcped(a)
		waitFor(t, 15*time.Second, "site-a up again", func() bool { return a.status(t).State == dataplane.StateUp })
		got := vcpeRoutes(t, a.ns)
		slices.Sort(got)
		want := []string{"198.19.100.0/24 dev vcpe0", "198.19.2.0/24 dev vcpe0"}
		if !slices.Equal(got, want) {
			t.Errorf("vcpe routes after restart = %v; want %v", got, want)
		}
		if out := a.ns.Run("ip", "route", "show", "198.19.78.0/24"); !strings.Contains(out, "dev lan") {
			t.Errorf("a route vcpe does not own was removed")
		}
		if !ping(a.lan, "198.19.2.10") {
			t.Errorf("no traffic after restart")
		}
	})

	t.Run("WAN down 10s then up", func(t *testing.T) {
		a.ns.Run("ip", "link", "set", "wan", "down")
		time.Sleep(10 * time.Second)
		a.ns.Run("ip", "link", "set", "wan", "up")
		took := waitFor(t, 5*time.Second, "traffic after the WAN link is back", func() bool { return ping(a.lan, "198.19.2.10") })
		t.Logf("traffic back %v after the WAN link came up", took.Round(100*time.Millisecond))
	})

	t.Run("WAN address change (roaming)", func(t *testing.T) {
		// As a DHCP renewal with a new lease does it: the old address goes,
		// the new one comes.
		a.ns.Run("ip", "addr", "del", "198.18.0.11/24", "dev", "wan")
		a.ns.Run("ip", "addr", "add", "198.18.0.31/24", "dev", "wan")
		took := waitFor(t, 5*time.Second, "traffic from the new WAN address", func() bool { return ping(a.lan, "198.19.2.10") })
		hs, err := dataplane.ReadStatus(l.hubCtl)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range hs.Peers {
			if p.Name == a.name && p.Endpoint != "198.18.0.31:4500" {
				t.Errorf("hub sees site-a at %s; want 198.18.0.31:4500", p.Endpoint)
			}
		}
		t.Logf("traffic back %v after the address change", took.Round(100*time.Millisecond))
	})

	t.Run("hub restart", func(t *testing.T) {
		kill(t, l.hubCmd)
		start := time.Now()
		l.startHub()
		waitFor(t, 10*time.Second-time.Since(start), "traffic through the restarted hub", func() bool {
			return ping(a.lan, "198.19.2.10") && ping(b.lan, "198.19.1.10")
		})
		t.Logf("traffic back %v after the hub was killed", time.Since(start).Round(100*time.Millisecond))
	})

	t.Run("clean shutdown removes what vcped created", func(t *testing.T) {
		if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "vcped exit", func() bool {
			return syscall.Kill(b.cmd.Process.Pid, 0) != nil || isDead(b.cmd.Process.Pid)
		})
		if out, err := b.ns.Try("ip", "link", "show", "vcpe0"); err == nil {
			t.Errorf("vcpe0 still exists after SIGTERM:\n%s", out)
		}
		if got := vcpeRoutes(t, b.ns); len(got) != 0 {
			t.Errorf("vcpe routes left after SIGTERM: %v", got)
		}
		if out := b.ns.Run("ip", "route", "show", "198.19.2.0/24"); !strings.Contains(out, "dev lan") {
			t.Errorf("the LAN route was touched:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(b.dir, dataplane.ControlSocket)); err == nil {
			t.Errorf("control socket left after SIGTERM")
		}
	})
}
