package dataplane

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/clock"
)

// groupCfg is hub h1's config of a three-hub group: device a (site A,
// primary h1), b (site B, primary h2) and c (site C on h2 and h3 only: h1
// does not peer with it).
func groupCfg() api.HubConfig {
	ov := netip.MustParsePrefix("198.18.64.0/18")
	dev := func(sn string, last byte, lan string, hubs ...string) api.HubPeer {
		own := netip.AddrFrom4([4]byte{198, 18, 64, last})
		return api.HubPeer{SN: sn, InstanceID: "i-" + sn, CCN: "blue", PublicKey: key(last), OverlayAddr: own,
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(own, 32), netip.MustParsePrefix(lan)}, Active: true, Hubs: hubs}
	}
	hub := func(name string, last byte) api.HubInfo {
		return api.HubInfo{Name: name, PublicKey: key(100 + last), OverlayAddr: netip.AddrFrom4([4]byte{198, 18, 64, last}),
			Endpoint: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, last}), 4500)}
	}
	return api.HubConfig{Generation: 1, Overlay: ov, HubOverlayAddr: netip.MustParseAddr("198.18.64.1"), Name: "h1",
		CloudPrefixes: pfx("198.19.100.0/24"),
		Hubs:          []api.HubInfo{hub("h2", 60), hub("h3", 61)},
		Peers: []api.HubPeer{
			dev("a", 2, "198.19.1.0/24", "h1", "h2"),
			dev("b", 3, "198.19.2.0/24", "h2", "h1"),
			dev("c", 4, "198.19.3.0/24", "h2", "h3"),
		}}
}

func peerIPs(t *testing.T, pl groupPlan, sn string) []string {
	t.Helper()
	i := slices.IndexFunc(pl.Peers, func(p api.HubPeer) bool { return p.SN == sn })
	if i < 0 {
		return nil
	}
	var out []string
	for _, p := range pl.Peers[i].AllowedIPs {
		out = append(out, p.String())
	}
	return out
}

func wantIPs(t *testing.T, pl groupPlan, sn string, want ...string) {
	t.Helper()
	if got := peerIPs(t, pl, sn); !slices.Equal(got, want) {
		t.Errorf("peer %s allowed IPs %v; want %v", sn, got, want)
	}
}

func newTestGroup() (*hubGroup, *clock.Fake) {
	clk := clock.NewFake(time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC))
	return newHubGroup("h1", HealthCheck{}), clk
}

func TestGroupPlanByAssignmentWithoutNews(t *testing.T) {
	g, clk := newTestGroup()
	pl := g.plan(clk.Now(), groupCfg())
	// Peers: a and b (assigned here), not c; then the hubs by name.
	var sns []string
	for _, p := range pl.Peers {
		sns = append(sns, p.SN)
	}
	if !slices.Equal(sns, []string{"a", "b", "hub:h2", "hub:h3"}) {
		t.Fatalf("peers %v", sns)
	}
	wantIPs(t, pl, "a", "198.18.64.2/32", "198.19.1.0/24")
	wantIPs(t, pl, "b", "198.18.64.3/32")
	// b's prefixes go to its primary h2; c (not peered here) to its first hub.
	wantIPs(t, pl, "hub:h2", "198.18.64.4/32", "198.18.64.60/32", "198.19.2.0/24", "198.19.3.0/24")
	wantIPs(t, pl, "hub:h3", "198.18.64.61/32")
	if pl.Via["i-a"] != viaHere || pl.Via["i-b"] != "h2" || pl.Why["i-b"] != "primary" || len(pl.Carry) != 0 {
		t.Errorf("via %v why %v carry %v", pl.Via, pl.Why, pl.Carry)
	}
}

func TestGroupPlanFollowsClaimsThenMessagesThenPrimary(t *testing.T) {
	g, clk := newTestGroup()
	cfg := groupCfg()
	// a's claims say h2 carries it: its prefixes go to h2.
	if !g.claim(clk.Now(), "a", "h2") {
		t.Error("a first claim: want a change")
	}
	if g.claim(clk.Now(), "a", "h2") {
		t.Error("the same claim again: want no change")
	}
	pl := g.plan(clk.Now(), cfg)
	wantIPs(t, pl, "a", "198.18.64.2/32")
	if ips := peerIPs(t, pl, "hub:h2"); !slices.Contains(ips, "198.19.1.0/24") {
		t.Errorf("h2 peer %v; want a's LAN", ips)
	}
	if pl.Why["i-a"] != "claims" {
		t.Errorf("why %q", pl.Why["i-a"])
	}
	// b's claims name this hub: its prefixes come here, and h1 carries it.
	g.claim(clk.Now(), "b", "h1")
	pl = g.plan(clk.Now(), cfg)
	wantIPs(t, pl, "b", "198.18.64.3/32", "198.19.2.0/24")
	if !slices.Equal(pl.Carry, []string{"i-b"}) {
		t.Errorf("carry %v; want [i-b]", pl.Carry)
	}

	// a's claims stop (its tunnel to h1 broke); h3 says it carries a.
	clk.Advance(g.claimFresh + time.Millisecond)
	if !g.message(clk.Now(), hubMessage{Hub: "h3", Seq: 1, Carry: []string{"i-a"}}) {
		t.Error("first message of h3: want a change")
	}
	pl = g.plan(clk.Now(), cfg)
	if pl.Via["i-a"] != "h3" || pl.Why["i-a"] != "hub message" {
		t.Errorf("a via %q (%s); want h3 by hub message", pl.Via["i-a"], pl.Why["i-a"])
	}
	if ips := peerIPs(t, pl, "hub:h3"); !slices.Contains(ips, "198.19.1.0/24") {
		t.Errorf("h3 peer %v; want a's LAN", ips)
	}
	// h3 falls silent: back to the assignment (a's primary is h1).
	clk.Advance(g.check.hubDeadAfter() + time.Millisecond)
	pl = g.plan(clk.Now(), cfg)
	if pl.Via["i-a"] != viaHere || pl.Why["i-a"] != "primary" {
		t.Errorf("a via %q (%s); want here by primary", pl.Via["i-a"], pl.Why["i-a"])
	}
	wantIPs(t, pl, "a", "198.18.64.2/32", "198.19.1.0/24")
}

func TestGroupPlanCloudPrefixesOnGatewayHolder(t *testing.T) {
	g, clk := newTestGroup()
	cfg := groupCfg()
	g.message(clk.Now(), hubMessage{Hub: "h3", Seq: 1, Gateway: true})
	pl := g.plan(clk.Now(), cfg)
	wantIPs(t, pl, "hub:h3", "198.18.64.61/32", "198.19.100.0/24")
	eff := cfg
	eff.Peers = pl.Peers
	// The cloud prefixes get no route into the TUN on this hub.
	for _, r := range hubRoutes(eff) {
		if r.String() == "198.19.100.0/24" {
			t.Errorf("routes %v hold the cloud prefix", hubRoutes(eff))
		}
	}
	if !slices.Contains(hubRoutes(eff), netip.MustParsePrefix("198.19.2.0/24")) {
		t.Errorf("routes %v; want b's LAN (carried by h2) routed into the TUN", hubRoutes(eff))
	}
	// A message without the gateway takes them off.
	g.message(clk.Now(), hubMessage{Hub: "h3", Seq: 2})
	wantIPs(t, g.plan(clk.Now(), cfg), "hub:h3", "198.18.64.61/32")
}

func TestGroupLiveness(t *testing.T) {
	g, clk := newTestGroup()
	if g.live(clk.Now()) {
		t.Error("live before hearing anything")
	}
	g.claim(clk.Now(), "a", "h1")
	clk.Advance(g.check.hubDeadAfter())
	if !g.live(clk.Now()) {
		t.Error("not live within the window after a claim")
	}
	clk.Advance(time.Millisecond)
	if g.live(clk.Now()) {
		t.Error("live after the window without a claim or message")
	}
	g.message(clk.Now(), hubMessage{Hub: "h2"})
	if !g.live(clk.Now()) || !g.hubUp(clk.Now(), "h2") || g.hubUp(clk.Now(), "h3") {
		t.Error("a hub message: want live, h2 up, h3 not")
	}
	// Four intervals of lost messages do not make h2 down.
	clk.Advance(4 * g.check.Interval)
	if !g.hubUp(clk.Now(), "h2") {
		t.Error("h2 down after 4 intervals")
	}
	clk.Advance(2 * g.check.Interval)
	if g.hubUp(clk.Now(), "h2") {
		t.Error("h2 up after 6 intervals")
	}
}

func TestWantGateway(t *testing.T) {
	up := func(name string, gw bool) gatewayView { return gatewayView{Name: name, Up: true, Gateway: gw} }
	tests := []struct {
		name                              string
		self                              string
		live, degraded, holding, failback bool
		others                            []gatewayView
		want                              bool
	}{
		{"alone and live", "h1", true, false, false, false, nil, true},
		{"cut off", "h1", false, false, true, false, nil, false},
		{"degraded", "h1", true, true, true, false, nil, false},
		{"lowest takes", "h1", true, false, false, false, []gatewayView{up("h2", false)}, true},
		{"higher waits", "h2", true, false, false, false, []gatewayView{up("h1", false)}, false},
		{"lower is down", "h2", true, false, false, false, []gatewayView{{Name: "h1"}}, true},
		{"lower is degraded", "h2", true, false, false, false, []gatewayView{{Name: "h1", Up: true, Degraded: true}}, true},
		{"no failback: the holder keeps it", "h2", true, false, true, false, []gatewayView{up("h1", false)}, true},
		{"no failback: the lower back does not take it", "h1", true, false, false, false, []gatewayView{up("h2", true)}, false},
		{"failback: the lower takes it", "h1", true, false, false, true, []gatewayView{up("h2", true)}, true},
		{"failback: the higher gives it up", "h2", true, false, true, true, []gatewayView{up("h1", false)}, false},
		{"two holders: the lower keeps it", "h1", true, false, true, false, []gatewayView{up("h2", true)}, true},
		{"two holders: the higher yields", "h2", true, false, true, false, []gatewayView{up("h1", true)}, false},
	}
	for _, tt := range tests {
		if got := wantGateway(tt.self, tt.live, tt.degraded, tt.holding, tt.failback, tt.others); got != tt.want {
			t.Errorf("%s: %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestValidateHubConfigHubs(t *testing.T) {
	if err := ValidateHubConfig(groupCfg()); err != nil {
		t.Fatalf("valid group config: %v", err)
	}
	for name, mut := range map[string]func(*api.HubConfig){
		"name":                     func(c *api.HubConfig) { c.Hubs[1].Name = "h2" },
		"self":                     func(c *api.HubConfig) { c.Hubs[0].Name = "h1" },
		"public_key":               func(c *api.HubConfig) { c.Hubs[0].PublicKey = c.Peers[0].PublicKey },
		"overlay_addr":             func(c *api.HubConfig) { c.Hubs[0].OverlayAddr = c.HubOverlayAddr },
		"overlay_addr of a device": func(c *api.HubConfig) { c.Hubs[1].OverlayAddr = c.Peers[0].OverlayAddr },
	} {
		c := groupCfg()
		mut(&c)
		err := ValidateHubConfig(c)
		want, _, _ := strings.Cut(name, " ")
		if name == "self" {
			want = "name"
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error naming %s", name, err, want)
		}
	}
}

func TestGroupPeerUAPIGivesHubsEndpoints(t *testing.T) {
	cfg := groupCfg()
	g, clk := newTestGroup()
	pl := g.plan(clk.Now(), cfg)
	u := groupPeerUAPI(HubPeerDiff(nil, pl.Peers), cfg.Hubs)
	if !strings.Contains(u, "endpoint=198.18.0.60:4500\npersistent_keepalive_interval=15\n") {
		t.Errorf("uapi lacks h2's endpoint:\n%s", u)
	}
	if strings.Count(u, "endpoint=") != 2 {
		t.Errorf("uapi gives %d endpoints; want the two hubs only:\n%s", strings.Count(u, "endpoint="), u)
	}
}

func TestGroupSettlesBeforeGateway(t *testing.T) {
	g, clk := newTestGroup()
	g.claim(clk.Now(), "a", "h1")
	if g.settled(clk.Now()) {
		t.Error("settled at the first claim")
	}
	clk.Advance(g.check.hubDeadAfter() - g.check.Interval)
	g.claim(clk.Now(), "a", "h1")
	clk.Advance(g.check.Interval)
	if !g.settled(clk.Now()) {
		t.Error("not settled after a whole window of claims")
	}
	// Cut off, then back: a new window.
	clk.Advance(g.check.hubDeadAfter() + time.Millisecond)
	g.claim(clk.Now(), "a", "h1")
	if g.settled(clk.Now()) {
		t.Error("settled right after coming back")
	}
}

func TestWriteHubGroup(t *testing.T) {
	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	var b strings.Builder
	writeHubGroup(&b, &HubGroupStatus{Name: "h1", Live: true, Gateway: netip.MustParsePrefix("198.19.100.1/24"), GatewayHolder: "h2",
		CloudTargets: []TargetStatus{{Addr: netip.MustParseAddr("198.19.100.10"), Up: true}},
		Hubs:         []GroupHub{{Name: "h2", State: GroupHubUp, LastMessage: now.Add(-80 * time.Millisecond), Gateway: true, Carries: 3}},
		Devices:      []GroupDevice{{SN: "evil\x1b[2J", Instance: "i-a", Peered: true, Primary: true, Active: true, Via: "h2", Route: "h2", RouteWhy: "claims"}},
		Events:       []Event{{Time: now, Kind: "route", Message: "instance i-a: traffic through hub h2", Detail: "decided by claims"}}}, now)
	out := b.String()
	for _, want := range []string{"hub group: h1, ok", "cloud target 198.19.100.10: answers", "gateway:   198.19.100.1/24 held by h2",
		"h2   up     -", "100ms ago", `"evil\x1b[2J"`, "h2 (claims)", "traffic through hub h2: decided by claims"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("output holds a raw escape:\n%q", out)
	}
	b.Reset()
	writeHubGroup(&b, nil, now)
	if b.Len() != 0 {
		t.Errorf("nil group wrote %q", b.String())
	}
}

// BenchmarkHubGroupPlan measures the routing decision of a hub of a
// two-hub group with n devices (half primary on each hub, every claim
// fresh) against the baseline every hub already pays on a change: the
// peer diff of the same n peers. Compare the ns/op of the two in one run.
func BenchmarkHubGroupPlan(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		cfg := api.HubConfig{Overlay: netip.MustParsePrefix("198.18.64.0/18"), HubOverlayAddr: netip.MustParseAddr("198.18.64.1"), Name: "h1",
			CloudPrefixes: pfx("198.19.100.0/24"),
			Hubs:          []api.HubInfo{{Name: "h2", PublicKey: key(1), OverlayAddr: netip.MustParseAddr("198.18.127.254")}}}
		g := newHubGroup("h1", HealthCheck{})
		now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
		for i := range n {
			own := netip.AddrFrom4([4]byte{198, 18, byte(65 + i/250), byte(1 + i%250)})
			lan := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i / 256), byte(i % 256)}), 30)
			var k api.Key
			k[0], k[1], k[2] = byte(i), byte(i>>8), 7
			hubs := []string{"h1", "h2"}
			if i%2 == 1 {
				hubs = []string{"h2", "h1"}
			}
			sn := fmt.Sprintf("d%d", i)
			cfg.Peers = append(cfg.Peers, api.HubPeer{SN: sn, InstanceID: "i" + sn, CCN: "blue", PublicKey: k, OverlayAddr: own,
				AllowedIPs: []netip.Prefix{netip.PrefixFrom(own, 32), lan}, Active: true, Hubs: hubs})
			g.claim(now, sn, hubs[0])
		}
		g.message(now, hubMessage{Hub: "h2", Seq: 1, Gateway: true})
		b.Run(fmt.Sprintf("baseline-diff/peers=%d", n), func(b *testing.B) {
			for b.Loop() {
				_ = HubPeerDiff(cfg.Peers, cfg.Peers)
			}
		})
		b.Run(fmt.Sprintf("tick-check/peers=%d", n), func(b *testing.B) {
			for b.Loop() {
				_ = g.expiredSince(now, now.Add(10*time.Millisecond))
			}
		})
		b.Run(fmt.Sprintf("plan/peers=%d", n), func(b *testing.B) {
			for b.Loop() {
				_ = g.plan(now, cfg)
			}
		})
	}
}

func TestGroupExpiredSince(t *testing.T) {
	g, clk := newTestGroup()
	g.claim(clk.Now(), "a", "h2")
	g.message(clk.Now(), hubMessage{Hub: "h2"})
	planned := clk.Now()
	clk.Advance(g.claimFresh)
	if g.expiredSince(planned, clk.Now()) {
		t.Error("expired while the claim is still fresh")
	}
	clk.Advance(time.Millisecond)
	if !g.expiredSince(planned, clk.Now()) {
		t.Error("the claim went stale: want expired")
	}
	planned = clk.Now()
	clk.Advance(g.check.hubDeadAfter() - g.claimFresh - time.Millisecond)
	if g.expiredSince(planned, clk.Now()) {
		t.Error("expired while h2's messages are fresh")
	}
	clk.Advance(2 * time.Millisecond)
	if !g.expiredSince(planned, clk.Now()) {
		t.Error("h2's messages went stale: want expired")
	}
}

// TestHubMessageSplitIntoParts: a hub carrying many instances sends its
// message in parts that each fit one tunnel packet; the receiver takes the
// carry list when every part of a Seq is in (copies and order do not
// matter) and keeps the previous one while a part is missing.
func TestHubMessageSplitIntoParts(t *testing.T) {
	m := hubMessage{Hub: "h2", Seq: 7, Gateway: true, Active: map[string]string{}}
	for i := range 1000 {
		id := fmt.Sprintf("0b7e5d2a-6c1f-4e55-9d1e-%012d", i)
		m.Carry = append(m.Carry, id)
		if i%3 == 0 {
			m.Active[id] = fmt.Sprintf("SN-%d", i)
		}
	}
	raw := splitMessage(m)
	if len(raw) < 2 {
		t.Fatalf("%d parts; want several", len(raw))
	}
	var parts []hubMessage
	seen, active := map[string]bool{}, 0
	for i, b := range raw {
		if len(b) > hubMessagePart {
			t.Errorf("part %d is %d bytes; want at most %d", i, len(b), hubMessagePart)
		}
		var p hubMessage
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if p.Part != i || p.Parts != len(raw) || p.Seq != 7 || !p.Gateway {
			t.Errorf("part %d header %+v", i, p)
		}
		for _, id := range p.Carry {
			seen[id] = true
		}
		active += len(p.Active)
		parts = append(parts, p)
	}
	if len(seen) != 1000 || active != len(m.Active) {
		t.Errorf("parts hold %d instances and %d actives; want 1000 and %d", len(seen), active, len(m.Active))
	}

	g, clk := newTestGroup()
	g.message(clk.Now(), hubMessage{Hub: "h2", Seq: 6, Carry: []string{"old"}})
	// Every part but the last, one twice: the old list stays, h2 is up.
	for i := range len(parts) - 1 {
		g.message(clk.Now(), parts[i])
	}
	g.message(clk.Now(), parts[0])
	if !g.hubs["h2"].carry["old"] || len(g.hubs["h2"].carry) != 1 || !g.hubUp(clk.Now(), "h2") || !g.hubs["h2"].gateway {
		t.Errorf("with a part missing: carry %d entries (old %v), up %v", len(g.hubs["h2"].carry), g.hubs["h2"].carry["old"], g.hubUp(clk.Now(), "h2"))
	}
	if !g.message(clk.Now(), parts[len(parts)-1]) {
		t.Error("the last part: want a change")
	}
	if len(g.hubs["h2"].carry) != 1000 || g.hubs["h2"].carry["old"] {
		t.Errorf("after every part: %d carried; want the 1000", len(g.hubs["h2"].carry))
	}
	// A short message is one part, as before.
	if got := splitMessage(hubMessage{Hub: "h2", Carry: []string{"i-a"}}); len(got) != 1 || strings.Contains(string(got[0]), "parts") {
		t.Errorf("short message: %q", got)
	}
}

// TestArbiterFollowsTheCarryingHub: a hub that does not hear the active
// device (its claims stopped here) takes the carrying hub's word instead of
// picking the device it hears, while that word is fresh; then it decides
// again itself.
func TestArbiterFollowsTheCarryingHub(t *testing.T) {
	a, clk := newTestArbiter(false)
	until := clk.Now().Add(HealthCheck{}.WithDefaults().hubDeadAfter())
	if ev := a.Follow(clk.Now(), "i1", "A", until); len(ev) != 0 {
		t.Errorf("following the active it has: events %+v", ev)
	}
	// Only B's claims reach this hub: on its own it would switch to B.
	for range 4 {
		clk.Advance(100 * time.Millisecond)
		if _, ev := claim(t, a, clk, "B", healthy); len(ev) != 0 {
			t.Fatalf("switched while following: %+v", ev)
		}
	}
	if ev := a.Tick(clk.Now()); len(ev) != 0 || a.Active("i1") != "A" {
		t.Fatalf("tick while following: %+v, active %s", ev, a.Active("i1"))
	}
	// The carrying hub moves the role to B: followed, with the reason.
	ev := a.Follow(clk.Now(), "i1", "B", clk.Now().Add(time.Second))
	wantSwitch(t, ev, "B", "the carrying hub's decision")
	if a.Follow(clk.Now(), "i1", "nobody", clk.Now()) != nil || a.Active("i1") != "B" {
		t.Error("followed a device that is not a member")
	}
	// Its word goes stale: the arbiter decides again (A is down here, B is
	// fresh: B stays).
	clk.Advance(time.Second + time.Millisecond)
	claim(t, a, clk, "B", healthy)
	if a.Active("i1") != "B" {
		t.Errorf("active %s after the follow ended; want B", a.Active("i1"))
	}
}
