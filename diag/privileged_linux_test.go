package diag

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/openvcpe/vcpe/internal/namespace"
)

func TestMain(m *testing.M) { namespace.Main(m) }

// inNS runs fn on a thread inside ns: sockets fn opens belong to ns for
// their whole life, whichever goroutine uses them later.
func inNS(t testing.TB, ns *namespace.NS, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current netns: %v", err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(ns.Name)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open netns %s: %v", ns.Name, err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("enter netns %s: %v", ns.Name, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it dies with this goroutine rather
			// than run other code in the test namespace.
			t.Errorf("return to the original netns: %v", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

// Address plan of the privileged tests (all inside 198.18.0.0/15).
var (
	wanClient = netip.MustParseAddr("198.18.0.11")
	wanHub    = netip.MustParseAddr("198.18.0.1")
	cloudSrv  = netip.MustParseAddr("198.19.100.10")
	cloudGW   = netip.MustParseAddr("198.19.100.1")
)

// pair is client 198.18.0.11 — server 198.18.0.1 on one veth.
func pair(t *testing.T) (cl, srv *namespace.NS) {
	cl, srv = namespace.New(t), namespace.New(t)
	namespace.Veth(t, cl, "wan0", wanClient.String()+"/24", srv, "wan0", wanHub.String()+"/24")
	return cl, srv
}

// routed is client 198.18.0.11 — router (198.18.0.1 | 198.19.100.1) —
// server 198.19.100.10, with the router forwarding and the router–server
// link at linkMTU.
func routed(t *testing.T, linkMTU int) (cl, rt, srv *namespace.NS) {
	cl, rt, srv = namespace.New(t), namespace.New(t), namespace.New(t)
	namespace.Veth(t, cl, "wan0", wanClient.String()+"/24", rt, "wan0", wanHub.String()+"/24")
	namespace.Veth(t, rt, "lan0", cloudGW.String()+"/24", srv, "lan0", cloudSrv.String()+"/24")
	rt.Run("sysctl", "-qw", "net.ipv4.ip_forward=1")
	rt.Run("ip", "link", "set", "lan0", "mtu", fmt.Sprint(linkMTU))
	srv.Run("ip", "link", "set", "lan0", "mtu", fmt.Sprint(linkMTU))
	cl.Run("ip", "route", "add", "198.19.100.0/24", "via", wanHub.String())
	srv.Run("ip", "route", "add", "198.18.0.0/24", "via", cloudGW.String())
	return cl, rt, srv
}

func pingICMP(t *testing.T, ns *namespace.NS, target netip.Addr, o Options) Result {
	t.Helper()
	var res Result
	var err error
	inNS(t, ns, func() { res, err = PingICMP(context.Background(), target, o) })
	if err != nil {
		t.Fatalf("PingICMP %s: %v", target, err)
	}
	return res
}

func pingUDP(t *testing.T, ns *namespace.NS, target netip.AddrPort, o Options) Result {
	t.Helper()
	var res Result
	var err error
	inNS(t, ns, func() { res, err = PingUDP(context.Background(), target, o) })
	if err != nil {
		t.Fatalf("PingUDP %s: %v", target, err)
	}
	return res
}

// startReflector runs the real `vcpe probe reflect` in ns and waits until
// it answers.
func startReflector(t *testing.T, ns *namespace.NS, addr netip.Addr, extra ...string) {
	t.Helper()
	bin := namespace.Binary(t, "cmd/vcpe")
	ns.Start(bin, append([]string{"probe", "reflect", "--listen", netip.AddrPortFrom(addr, ReflectorPort).String()}, extra...)...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := ns.Try("ss", "-Hlun", "sport", "=", fmt.Sprint(ReflectorPort))
		if strings.Contains(out, fmt.Sprint(ReflectorPort)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reflector in %s did not start listening", ns.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func within(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// TestICMPLossNetem: 10% of the replies are dropped; the reported loss is
// within ±3 points. 1000 probes keep the binomial spread (±0.95 points,
// one sigma) well inside the tolerance.
func TestICMPLossNetem(t *testing.T) {
	cl, rt, _ := routed(t, 1500)
	impairLoss(t, rt, 10)
	res := pingICMP(t, cl, cloudSrv, Options{Count: 1000, Interval: 2 * time.Millisecond, Timeout: 500 * time.Millisecond})
	st := res.Stats
	t.Logf("sent %d received %d loss %.1f%%", st.Sent, st.Received, st.LossPct)
	if st.Sent != 1000 || !within(st.LossPct, 10, 3) {
		t.Errorf("loss %.1f%% of %d; want 10%% ± 3 points", st.LossPct, st.Sent)
	}
	if st.Duplicates != 0 || st.Errors != 0 {
		t.Errorf("duplicates %d errors %d; want none", st.Duplicates, st.Errors)
	}
}

// TestDelayJitterNetem: the replies are delayed 50ms ± 10ms (uniform).
// The median RTT is within 2ms of 50ms; the RFC 3550 jitter is within 2ms
// of what that setting gives: for delays drawn uniformly from 50±J,
// consecutive transit times differ by |X-Y| with mean 2J/3, so J = 10ms
// gives 6.67ms. Probes go every 25ms, more than the 20ms spread, so the
// replies are not reordered. ICMP echo is used so that the echo is
// answered by the kernel: a busy machine cannot delay it.
//
// With the userspace delay line (no netem), a busy machine makes the line
// itself late now and then; the reference is then the delays it really
// applied (its log), which the setting must match only loosely.
func TestDelayJitterNetem(t *testing.T) {
	cl, rt, _ := routed(t, 1500)
	line := impairDelay(t, rt, 50*time.Millisecond, 10*time.Millisecond)
	res := pingICMP(t, cl, cloudSrv, Options{Count: 400, Interval: 25 * time.Millisecond, Timeout: time.Second, Size: 200})
	st := res.Stats
	wantP50, wantJitter := 50.0, 2.0/3*10
	t.Logf("measured: received %d/%d p50 %v jitter %v min %v max %v reordered %d", st.Received, st.Sent, st.P50, st.Jitter, st.Min, st.Max, st.Reordered)
	if line != nil {
		truth := line.truth()
		t.Logf("delay line applied: p50 %v jitter %v min %v max %v (setting: p50 50ms, jitter %.2fms)", truth.P50, truth.Jitter, truth.Min, truth.Max, wantJitter)
		if !within(msf(truth.P50), wantP50, 5) {
			t.Fatalf("the delay line could not keep to its setting on this machine (median %v): no measurement to check", truth.P50)
		}
		if !within(msf(truth.Jitter), wantJitter, 2) {
			t.Logf("the delay line was late on this busy machine (jitter %v, not %.2fms): checking against what it did", truth.Jitter, wantJitter)
		}
		wantP50, wantJitter = msf(truth.P50), msf(truth.Jitter)
	}
	if st.Received < 390 {
		t.Fatalf("received %d of %d", st.Received, st.Sent)
	}
	if !within(msf(st.P50), wantP50, 2) {
		t.Errorf("median RTT %v; want %.2fms ± 2ms", st.P50, wantP50)
	}
	if !within(msf(st.Jitter), wantJitter, 2) {
		t.Errorf("jitter %v; want %.2fms ± 2ms", st.Jitter, wantJitter)
	}
	if st.Min < 39*time.Millisecond {
		t.Errorf("min RTT %v; below the 40ms the path delays every reply", st.Min)
	}
}

// TestReorderDuplicateNetem: a quarter of the replies go at once and the
// rest are held 10ms, and 10% are duplicated: with probes every 2ms both
// are detected, and neither is counted as loss.
func TestReorderDuplicateNetem(t *testing.T) {
	cl, rt, _ := routed(t, 1500)
	impairReorder(t, rt, 10*time.Millisecond, 25)
	impairDuplicate(t, rt, 10)
	res := pingICMP(t, cl, cloudSrv, Options{Count: 300, Interval: 2 * time.Millisecond, Timeout: 500 * time.Millisecond})
	st := res.Stats
	t.Logf("received %d/%d reordered %d duplicates %d", st.Received, st.Sent, st.Reordered, st.Duplicates)
	if st.Reordered < 10 {
		t.Errorf("reordered %d; want reordering detected (about a quarter of %d)", st.Reordered, st.Sent)
	}
	if st.Duplicates < 10 || st.Duplicates > 60 {
		t.Errorf("duplicates %d; want about 10%% of %d", st.Duplicates, st.Sent)
	}
	if st.Received != st.Sent {
		t.Errorf("received %d of %d: duplicates or reordering counted as loss", st.Received, st.Sent)
	}
}

func pathMTU(t *testing.T, ns *namespace.NS, target netip.Addr, o MTUOptions) MTUResult {
	t.Helper()
	var res MTUResult
	var err error
	inNS(t, ns, func() { res, err = PathMTU(context.Background(), target, o) })
	if err != nil {
		t.Fatalf("PathMTU %s: %v", target, err)
	}
	t.Logf("%s: %s", res.Verdict, res.Detail)
	for _, s := range res.Steps {
		t.Logf("  %+v", s)
	}
	return res
}

// TestPathMTUFragNeeded: a 1,300-byte link behind a router; the router's
// "fragmentation needed" gives the path MTU exactly.
func TestPathMTUFragNeeded(t *testing.T) {
	cl, _, _ := routed(t, 1300)
	res := pathMTU(t, cl, cloudSrv, MTUOptions{Timeout: 500 * time.Millisecond})
	if res.MTU != 1300 || res.Verdict != MTUFragNeeded || res.Reporter != wanHub || res.RouteMTU != 1500 {
		t.Errorf("got MTU %d verdict %s reporter %v route MTU %d; want 1300 frag-needed from %v, route 1500", res.MTU, res.Verdict, res.Reporter, res.RouteMTU, wanHub)
	}
	// The same path without the limit: the route's full MTU.
	res = pathMTU(t, cl, wanHub, MTUOptions{Timeout: 500 * time.Millisecond})
	if res.MTU != 1500 || res.Verdict != MTUFull {
		t.Errorf("to the router: MTU %d verdict %s; want 1500 full", res.MTU, res.Verdict)
	}
}

// TestPathMTUBlackHole: two ways a path black-holes large packets, both
// found by the search and reported as such: the router drops its own
// "fragmentation needed" (nftables in the router namespace), or a link
// drops big packets silently.
func TestPathMTUBlackHole(t *testing.T) {
	for name, setup := range map[string]func(t *testing.T) *namespace.NS{
		"frag-needed filtered": func(t *testing.T) *namespace.NS {
			cl, rt, _ := routed(t, 1300)
			rt.Run("nft", "add table ip bh; add chain ip bh out { type filter hook output priority 0; }; add rule ip bh out icmp type destination-unreachable icmp code frag-needed drop")
			return cl
		},
		"big packets dropped": func(t *testing.T) *namespace.NS {
			cl, rt, _ := routed(t, 1500)
			rt.Run("nft", "add table ip bh; add chain ip bh forward_bh { type filter hook forward priority 0; }; add rule ip bh forward_bh ip length > 1300 drop")
			return cl
		},
	} {
		t.Run(name, func(t *testing.T) {
			cl := setup(t)
			res := pathMTU(t, cl, cloudSrv, MTUOptions{Timeout: 250 * time.Millisecond})
			if res.MTU != 1300 || res.Verdict != MTUBlackHole {
				t.Errorf("got MTU %d verdict %s; want 1300 black-hole", res.MTU, res.Verdict)
			}
			if !strings.Contains(res.Detail, "black-holes") || !strings.Contains(res.Detail, "1300") {
				t.Errorf("detail %q does not explain the black hole and the fix", res.Detail)
			}
		})
	}
}

// TestUDPPortUnreachable: UDP probes to a closed port come back as "port
// unreachable" from the server (not the router in between).
func TestUDPPortUnreachable(t *testing.T) {
	cl, _, _ := routed(t, 1500)
	res := pingUDP(t, cl, netip.AddrPortFrom(cloudSrv, 9), Options{Count: 3, Interval: 50 * time.Millisecond, Timeout: 500 * time.Millisecond})
	if res.Stats.Received != 0 || res.Stats.Errors != 3 {
		t.Fatalf("stats %+v; want 3 ICMP errors", res.Stats)
	}
	for _, s := range res.Samples {
		if s.ICMP == nil || s.ICMP.Name != "port unreachable" || s.ICMP.From != cloudSrv {
			t.Errorf("seq %d: %v; want port unreachable from %v", s.Seq, s.ICMP, cloudSrv)
		}
	}
}

// TestTTLExceeded: with TTL 1 the router answers "TTL exceeded", for ICMP
// (raw socket, decoded with gopacket) and UDP (IP_RECVERR) probes alike.
func TestTTLExceeded(t *testing.T) {
	cl, _, srv := routed(t, 1500)
	startReflector(t, srv, cloudSrv)
	for _, res := range []Result{
		pingICMP(t, cl, cloudSrv, Options{Count: 2, Interval: 50 * time.Millisecond, Timeout: 500 * time.Millisecond, TTL: 1}),
		pingUDP(t, cl, netip.AddrPortFrom(cloudSrv, 0), Options{Count: 2, Interval: 50 * time.Millisecond, Timeout: 500 * time.Millisecond, TTL: 1}),
	} {
		for _, s := range res.Samples {
			if s.ICMP == nil || s.ICMP.Name != "TTL exceeded" || s.ICMP.From != wanHub {
				t.Errorf("%s seq %d: %v; want TTL exceeded from %v", res.Protocol, s.Seq, s.ICMP, wanHub)
			}
		}
	}
	// With the default TTL the same probes get through.
	res := pingUDP(t, cl, netip.AddrPortFrom(cloudSrv, 0), Options{Count: 3, Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond})
	if res.Stats.Received != 3 {
		t.Errorf("udp through the router: %+v", res.Stats)
	}
}

// TestDFFragNeeded: a --df probe larger than the path MTU is reported as
// "fragmentation needed" with the next-hop MTU and the router, over ICMP
// (raw socket) and UDP (IP_RECVERR). Once the host has learned the path
// MTU, further DF probes that big fail locally, saying so.
func TestDFFragNeeded(t *testing.T) {
	o := Options{Count: 1, Size: 1400, DF: true, Timeout: 500 * time.Millisecond}
	for _, proto := range []string{"icmp", "udp"} {
		cl, _, srv := routed(t, 1300)
		var res Result
		if proto == "icmp" {
			res = pingICMP(t, cl, cloudSrv, o)
		} else {
			startReflector(t, srv, cloudSrv)
			res = pingUDP(t, cl, netip.AddrPortFrom(cloudSrv, 0), o)
		}
		s := res.Samples[0]
		if s.ICMP == nil || !s.ICMP.FragNeeded() || s.ICMP.MTU != 1300 || s.ICMP.From != wanHub {
			t.Errorf("%s: %+v (%v); want fragmentation needed (MTU 1300) from %v", proto, s, s.ICMP, wanHub)
		}
		// The kernel now knows the path MTU: the next DF probe fails locally.
		if proto == "udp" {
			res = pingUDP(t, cl, netip.AddrPortFrom(cloudSrv, 0), o)
		} else {
			res = pingICMP(t, cl, cloudSrv, o)
		}
		if s := res.Samples[0]; !strings.Contains(s.SendError, "path MTU 1300") {
			t.Errorf("%s, second DF probe: %+v; want a send error naming path MTU 1300", proto, s)
		}
		// Without DF the same size is fragmented and answered.
		if proto == "udp" {
			res = pingUDP(t, cl, netip.AddrPortFrom(cloudSrv, 0), Options{Count: 1, Size: 1400, Timeout: time.Second})
			if res.Stats.Received != 1 || res.Samples[0].Size != 1400 {
				t.Errorf("without DF: %+v", res.Samples)
			}
		}
	}
}

// TestUnprivilegedICMP: the unprivileged ICMP socket works when
// ping_group_range allows it (errors then come through IP_RECVERR), and
// when it does not the error names the sysctl to set.
func TestUnprivilegedICMP(t *testing.T) {
	cl, _, _ := routed(t, 1300)
	var err error
	inNS(t, cl, func() {
		_, err = PingICMP(context.Background(), cloudSrv, Options{Count: 1, ICMPMode: ICMPUnprivileged})
	})
	if !errors.Is(err, ErrICMPNotPermitted) || !strings.Contains(err.Error(), "sysctl -w net.ipv4.ping_group_range=") {
		t.Fatalf("with ping_group_range '1 0': %v; want ErrICMPNotPermitted naming the sysctl", err)
	}
	cl.Run("sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
	o := Options{Count: 3, Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond, ICMPMode: ICMPUnprivileged}
	if res := pingICMP(t, cl, cloudSrv, o); res.Stats.Received != 3 {
		t.Errorf("unprivileged ICMP: %+v", res.Stats)
	}
	o.Count, o.Size, o.DF = 1, 1400, true
	res := pingICMP(t, cl, cloudSrv, o)
	if s := res.Samples[0]; s.ICMP == nil || !s.ICMP.FragNeeded() || s.ICMP.MTU != 1300 || s.ICMP.From != wanHub {
		t.Errorf("unprivileged ICMP with DF: %+v (%v); want fragmentation needed (MTU 1300) from %v", s, s.ICMP, wanHub)
	}
}

// TestReflectorServe runs the reflector on a real socket: well-formed
// probes are answered with the same size, malformed and oversized ones get
// nothing, and one source gets no more than the burst plus the rate.
func TestReflectorServe(t *testing.T) {
	cl, srv := pair(t)
	r := &Reflector{PerSource: 50, PerSourceBurst: 10, MaxPayload: 1000}
	var pc net.PacketConn
	var err error
	inNS(t, srv, func() { pc, err = net.ListenPacket("udp4", netip.AddrPortFrom(wanHub, ReflectorPort).String()) })
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, pc) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	var c *net.UDPConn
	inNS(t, cl, func() {
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(wanHub, ReflectorPort)))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2000)
	readAll := func(wait time.Duration) (n int, sizes []int) {
		for {
			_ = c.SetReadDeadline(time.Now().Add(wait))
			m, err := c.Read(buf)
			if err != nil {
				return n, sizes
			}
			n++
			sizes = append(sizes, m)
		}
	}
	// Malformed and oversized: no answer at all.
	bad := [][]byte{[]byte("hello"), AppendProbe(nil, Probe{Kind: KindReply, Seq: 1, Len: 64}), request(1, 1001), append([]byte("VCPR"), request(1, 64)[4:]...)}
	for _, b := range bad {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := readAll(300 * time.Millisecond); n != 0 {
		t.Errorf("%d answers to malformed/oversized probes; want none", n)
	}
	// One well-formed probe of each size: same size back.
	for _, size := range []int{20, 500, 1000} {
		if _, err := c.Write(request(7, size)); err != nil {
			t.Fatal(err)
		}
		n, sizes := readAll(300 * time.Millisecond)
		if n != 1 || sizes[0] != size {
			t.Errorf("%d-byte probe: answers %v; want one of %d bytes", size, sizes, size)
		}
	}
	// A flood of 200 probes: at most the burst plus the rate over the time.
	time.Sleep(300 * time.Millisecond) // refill to the burst
	start := time.Now()
	for i := range 200 {
		if _, err := c.Write(request(uint32(i), 64)); err != nil {
			t.Fatal(err)
		}
	}
	n, _ := readAll(200 * time.Millisecond)
	elapsed := time.Since(start)
	limit := 10 + int(50*elapsed.Seconds()) + 1
	t.Logf("flood: %d of 200 answered in %v (limit %d)", n, elapsed, limit)
	if n > limit || n < 10 {
		t.Errorf("flood: %d answered; want between the burst (10) and %d", n, limit)
	}
	st := r.Stats()
	if st.Malformed != 3 || st.Oversized != 1 || st.RateLimited == 0 {
		t.Errorf("stats %+v; want 3 malformed, 1 oversized, some rate-limited", st)
	}
}

// TestReflectorRepliesFromProbedAddress: a reflector on the wildcard
// address of a host with two addresses answers a probe to the secondary
// one from that address, not from the primary one routing would pick.
func TestReflectorRepliesFromProbedAddress(t *testing.T) {
	cl, srv := pair(t)
	second := netip.MustParseAddr("198.18.0.2")
	srv.Run("ip", "addr", "add", second.String()+"/24", "dev", "wan0")
	startReflector(t, srv, netip.IPv4Unspecified())
	for _, a := range []netip.Addr{wanHub, second} {
		res := pingUDP(t, cl, netip.AddrPortFrom(a, 0), Options{Count: 3, Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond})
		if res.Stats.Received != 3 {
			t.Errorf("probe to %v: %+v", a, res.Stats)
		}
		for _, s := range res.Samples {
			if s.Replied() && s.From != a {
				t.Errorf("probe to %v answered from %v", a, s.From)
			}
		}
	}
}

// TestPathMTUOverUDP: where the path filters ICMP echo, the search over
// UDP to the reflector still finds the 1,300-byte hop (its "fragmentation
// needed" comes back through IP_RECVERR), while ICMP says it got no reply.
func TestPathMTUOverUDP(t *testing.T) {
	cl, rt, srv := routed(t, 1300)
	startReflector(t, srv, cloudSrv)
	rt.Run("nft", "add table ip noecho; add chain ip noecho forward_ne { type filter hook forward priority 0; }; add rule ip noecho forward_ne icmp type echo-request drop")
	var err error
	inNS(t, cl, func() {
		_, err = PathMTU(context.Background(), cloudSrv, MTUOptions{Timeout: 200 * time.Millisecond, Tries: 1})
	})
	if err == nil || !strings.Contains(err.Error(), "--udp") {
		t.Errorf("ICMP search through an echo filter: %v; want no reply, pointing at --udp", err)
	}
	res := pathMTU(t, cl, cloudSrv, MTUOptions{UDP: true, Timeout: 500 * time.Millisecond})
	if res.MTU != 1300 || res.Verdict != MTUFragNeeded || res.Reporter != wanHub || res.Protocol != "udp" || res.Port != ReflectorPort {
		t.Errorf("UDP search: %+v; want 1300 frag-needed from %v over udp/%d", res, wanHub, ReflectorPort)
	}
}

// TestReflectorScope: a reflector on the wildcard address with AllowDst
// answers probes to its tunnel-side address and none to its WAN address.
func TestReflectorScope(t *testing.T) {
	cl, srv := pair(t)
	overlayAddr := netip.MustParseAddr("198.18.64.1")
	srv.Run("ip", "addr", "add", overlayAddr.String()+"/32", "dev", "wan0")
	cl.Run("ip", "route", "add", overlayAddr.String()+"/32", "via", wanHub.String())
	r := &Reflector{AllowDst: func(a netip.Addr) bool { return a == overlayAddr }}
	var pc net.PacketConn
	var err error
	inNS(t, srv, func() { pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", ReflectorPort)) })
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, pc) }()
	defer func() { cancel(); <-done }()
	answered := func(dst netip.Addr) bool {
		var c *net.UDPConn
		inNS(t, cl, func() {
			c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, ReflectorPort)))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 3 {
			_, _ = c.Write(request(uint32(i), 64))
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, err := c.Read(make([]byte, 100)); err == nil {
				return true
			}
		}
		return false
	}
	if !answered(overlayAddr) {
		t.Error("probe to the tunnel-side address: no answer")
	}
	if answered(wanHub) {
		t.Error("probe to the WAN address: answered; want silence")
	}
	if st := r.Stats(); st.OutOfScope == 0 {
		t.Errorf("stats %+v: no out-of-scope probes counted", st)
	}
}
