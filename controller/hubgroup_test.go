package controller_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/controllertest"
	"github.com/openvcpe/vcpe/internal/device"
)

// embedded makes the harness stand for a controller that runs its own hub
// (vcpe-hub serve --role all).
func embedded(o *controller.Options) { o.EmbeddedHub = true }

// hubProc is a hub process: its credential's client and its own key.
type hubProc struct {
	name string
	c    *device.Client
	key  api.Key
	ep   netip.AddrPort
}

func newHubProc(t *testing.T, h *controllertest.Harness, name, ep string) *hubProc {
	t.Helper()
	cred, err := h.Admin().CreateHubCredential(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := device.NewHubClient([]string{controllertest.URL}, h.Fingerprint, cred.Credential, h.ClientOptions(site1))
	if err != nil {
		t.Fatal(err)
	}
	return &hubProc{name: name, c: c, key: wgKey(t), ep: netip.MustParseAddrPort(ep)}
}

func (p *hubProc) register(t *testing.T) api.HubInfo {
	t.Helper()
	info, err := p.c.RegisterHub(ctx(t), api.HubRegister{PublicKey: p.key.PublicKey(), Endpoint: p.ep})
	if err != nil {
		t.Fatalf("register hub %s: %v", p.name, err)
	}
	return info
}

func (p *hubProc) config(t *testing.T) api.HubConfig {
	t.Helper()
	hc, err := p.c.HubConfig(ctx(t), 0, 0)
	if err != nil {
		t.Fatalf("hub %s config: %v", p.name, err)
	}
	return hc
}

func deviceConfig(t *testing.T, h *controllertest.Harness, cred string) api.DeviceConfig {
	t.Helper()
	cfg, err := h.DeviceConfig(cred)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func hubNames(hs []api.HubInfo) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out
}

// TestHubRegistration: with no hub registered everything is as before hub
// groups; a hub process registers its own key and endpoint and gets an
// overlay address no device has; devices then learn both hubs (the legacy
// fields repeat the primary), each hub gets its own view, a changed key
// wakes long-polls, an unchanged registration changes nothing, and the
// registry survives a restart.
func TestHubRegistration(t *testing.T) {
	h := controllertest.Serve(t, embedded)
	in := newInstance(t, h, "shop1")
	r1, err := register(t, h, site1, in.Devices[0].SN, in.Devices[0].Key, wgKey(t).PublicKey(), lan1)
	if err != nil {
		t.Fatal(err)
	}
	before := deviceConfig(t, h, r1.Credential)
	if len(before.Hubs) != 0 || before.HubPublicKey != h.HubPublicKey() || before.HubOverlayAddr.String() != "198.18.64.1" {
		t.Fatalf("device config before any hub registered: hubs %v key %v overlay %v; want no hub group, the controller's hub", before.Hubs, before.HubPublicKey, before.HubOverlayAddr)
	}
	if hc := h.HubConfig(); hc.Name != "" || len(hc.Hubs) != 0 || len(hc.Peers) != 1 || len(hc.Peers[0].Hubs) != 0 {
		t.Fatalf("hub config before any hub registered: %+v; want no hub group", hc)
	}

	b := newHubProc(t, h, "hub-b", "198.18.0.2:4500")
	info := b.register(t)
	if info.Name != "hub-b" || info.PublicKey != b.key.PublicKey() || info.Endpoint != b.ep {
		t.Fatalf("registration answer %+v", info)
	}
	if !controller.DefaultOverlay.Contains(info.OverlayAddr) || info.OverlayAddr.String() == "198.18.64.1" || info.OverlayAddr == before.OverlayAddr.Addr() {
		t.Fatalf("hub overlay address %v: want one of the overlay pool that is neither the controller's hub's nor a device's", info.OverlayAddr)
	}
	// A device address allocated later never takes it.
	for i := range 3 {
		for _, d := range newInstance(t, h, "more"+string(rune('a'+i))).Instance.Devices {
			if d.OverlayAddr == info.OverlayAddr {
				t.Fatalf("device %s got the hub's overlay address %v", d.SN, d.OverlayAddr)
			}
		}
	}

	after := deviceConfig(t, h, r1.Credential)
	if after.Generation <= before.Generation {
		t.Errorf("generation %d after a hub joined; want more than %d", after.Generation, before.Generation)
	}
	if got := hubNames(after.Hubs); len(got) != 2 || got[0] == got[1] || !slices.Contains(got, "hub") || !slices.Contains(got, "hub-b") {
		t.Fatalf("device hubs %v; want hub and hub-b, in some order", got)
	}
	p := after.Hubs[0]
	if after.HubPublicKey != p.PublicKey || after.HubEndpoint != p.Endpoint || after.HubOverlayAddr != p.OverlayAddr {
		t.Errorf("legacy hub fields %v %v %v; want the primary %+v", after.HubPublicKey, after.HubEndpoint, after.HubOverlayAddr, p)
	}
	for _, hi := range after.Hubs {
		want := map[string]api.HubInfo{
			"hub":   {Name: "hub", PublicKey: h.HubPublicKey(), Endpoint: netip.MustParseAddrPort("198.18.0.1:4500"), OverlayAddr: netip.MustParseAddr("198.18.64.1")},
			"hub-b": info,
		}[hi.Name]
		if hi != want {
			t.Errorf("device's hub %+v; want %+v", hi, want)
		}
	}

	// Each hub's own view: its name and address, the other hub, every
	// device with its hubs.
	hb := b.config(t)
	if hb.Name != "hub-b" || hb.HubOverlayAddr != info.OverlayAddr || len(hb.Hubs) != 1 || hb.Hubs[0].Name != "hub" || hb.Hubs[0].PublicKey != h.HubPublicKey() {
		t.Errorf("hub-b's view: name %q overlay %v hubs %+v", hb.Name, hb.HubOverlayAddr, hb.Hubs)
	}
	ha := h.HubConfig()
	if ha.Name != "hub" || ha.HubOverlayAddr.String() != "198.18.64.1" || len(ha.Hubs) != 1 || ha.Hubs[0] != info {
		t.Errorf("the controller's hub's view: name %q overlay %v hubs %+v", ha.Name, ha.HubOverlayAddr, ha.Hubs)
	}
	for _, hc := range []api.HubConfig{ha, hb} {
		if len(hc.Peers) != 1 || !slices.Equal(hc.Peers[0].Hubs, hubNames(after.Hubs)) || hc.Generation != after.Generation {
			t.Errorf("view %q peers %+v at generation %d; want the device naming %v at %d", hc.Name, hc.Peers, hc.Generation, hubNames(after.Hubs), after.Generation)
		}
	}

	// The same registration again changes nothing.
	if again := b.register(t); again != info {
		t.Errorf("registering again: %+v; want %+v", again, info)
	}
	if g := deviceConfig(t, h, r1.Credential).Generation; g != after.Generation {
		t.Errorf("generation %d after an unchanged registration; want %d", g, after.Generation)
	}

	// A new key wakes a device's long-poll; the address stays.
	polled := make(chan api.DeviceConfig, 1)
	go func() {
		c, err := h.WaitDeviceConfig(ctx(t), r1.Credential, after.Generation)
		if err != nil {
			t.Error(err)
		}
		polled <- c
	}()
	time.Sleep(50 * time.Millisecond)
	b.key = wgKey(t)
	rekeyed := b.register(t)
	if rekeyed.OverlayAddr != info.OverlayAddr || rekeyed.PublicKey != b.key.PublicKey() {
		t.Errorf("re-keyed registration %+v; want the new key at the same address %v", rekeyed, info.OverlayAddr)
	}
	select {
	case c := <-polled:
		i := slices.IndexFunc(c.Hubs, func(x api.HubInfo) bool { return x.Name == "hub-b" })
		if c.Generation <= after.Generation || i < 0 || c.Hubs[i].PublicKey != b.key.PublicKey() {
			t.Errorf("long-poll answer after a hub's new key: generation %d hubs %+v", c.Generation, c.Hubs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a hub's new key did not wake the device's long-poll within 10 s")
	}

	// Its polls are its last-seen time; the store keeps it across a
	// restart.
	h.Clock.Advance(2 * time.Hour)
	polledAt := h.Clock.Now()
	b.config(t)
	if l, _ := h.Admin().ListHubs(ctx(t)); len(l) != 2 || l[1].LastSeen == nil || !l[1].LastSeen.Equal(polledAt) {
		t.Errorf("hub-b last seen after a poll: %+v; want %v", l, polledAt)
	}

	// The registry survives a restart.
	h.Restart()
	hubs, err := h.Admin().ListHubs(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(hubs) != 2 || hubs[1].Name != "hub-b" || hubs[1].PublicKey != b.key.PublicKey() || hubs[1].OverlayAddr != info.OverlayAddr || !hubs[1].Registered ||
		hubs[1].LastSeen == nil || !hubs[1].LastSeen.Equal(polledAt) || !hubs[0].Controller || hubs[0].Primary+hubs[1].Primary != 1 || hubs[0].Secondary+hubs[1].Secondary != 1 {
		t.Errorf("hub list after restart: %+v", hubs)
	}
}

// TestHubAssignmentSpreadsAndStays: the default assignment spreads
// primaries and secondaries evenly over the hubs, never names one hub
// twice, and does not move when another hub joins (new instances fill the
// new hub first). hub list counts registered devices.
func TestHubAssignmentSpreadsAndStays(t *testing.T) {
	h := controllertest.Serve(t) // --role controller: only registered hubs
	h1 := newHubProc(t, h, "h1", "198.18.0.2:4500")
	h2 := newHubProc(t, h, "h2", "198.18.0.3:4500")
	h1.register(t)
	h2.register(t)
	assigned := map[string][]string{}
	created := map[string]*controller.CreatedInstance{}
	for i := range 4 {
		in := newInstance(t, h, "shop"+string(rune('1'+i)))
		assigned[in.Instance.Name] = in.Instance.Hubs
		created[in.Instance.Name] = in
	}
	prim, sec := map[string]int{}, map[string]int{}
	for name, a := range assigned {
		if len(a) != 2 || a[0] == a[1] {
			t.Fatalf("instance %s hubs %v; want two different hubs", name, a)
		}
		prim[a[0]]++
		sec[a[1]]++
	}
	if prim["h1"] != 2 || prim["h2"] != 2 || sec["h1"] != 2 || sec["h2"] != 2 {
		t.Fatalf("primaries %v secondaries %v over 4 instances; want 2 each", prim, sec)
	}
	// Both devices of shop1 register: hub list counts them where they
	// are primary and secondary.
	for i, from := range []netip.Addr{site1, site2} {
		d := created["shop1"].Devices[i]
		if _, err := register(t, h, from, d.SN, d.Key, wgKey(t).PublicKey(), lan1); err != nil {
			t.Fatal(err)
		}
	}
	hubs, err := h.Admin().ListHubs(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range hubs {
		wantP, wantS := 0, 0
		if e.Name == assigned["shop1"][0] {
			wantP = 2
		}
		if e.Name == assigned["shop1"][1] {
			wantS = 2
		}
		if e.Primary != wantP || e.Secondary != wantS || !e.Registered || e.Controller {
			t.Errorf("hub list entry %+v; want %d primary and %d secondary devices, registered", e, wantP, wantS)
		}
	}

	h3 := newHubProc(t, h, "h3", "198.18.0.4:4500")
	h3.register(t)
	for name, a := range assigned {
		got, err := h.Admin().ShowInstance(ctx(t), name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Hubs, a) {
			t.Errorf("instance %s hubs %v after h3 joined; want them unchanged %v", name, got.Hubs, a)
		}
	}
	for i := range 2 {
		in := newInstance(t, h, "new"+string(rune('1'+i)))
		if in.Instance.Hubs[0] != "h3" {
			t.Errorf("instance %s made after h3 joined has primary %s; want h3 (fewest primaries)", in.Instance.Name, in.Instance.Hubs[0])
		}
	}
	// The assignment is stored: a restart keeps it.
	h.Restart()
	for name, a := range assigned {
		if got, _ := h.Admin().ShowInstance(ctx(t), name); !slices.Equal(got.Hubs, a) {
			t.Errorf("instance %s hubs %v after restart; want %v", name, got.Hubs, a)
		}
	}
}

// TestInstanceHubsOverride: an admin assigns an instance's hubs; its
// devices are told at once (the long-poll wakes, the legacy fields follow
// the new primary), a missing secondary takes the default, and wrong
// input is refused naming the field and the fix, changing nothing.
func TestInstanceHubsOverride(t *testing.T) {
	h := controllertest.Serve(t, embedded)
	a := h.Admin()
	in := newInstance(t, h, "shop1")
	if _, err := a.SetInstanceHubs(ctx(t), "shop1", "hub", ""); apiCode(err) != api.CodeInvalidInput || !strings.Contains(err.Error(), "vcpe-hub serve --role hub") {
		t.Errorf("assigning with no hub group: %v; want invalid_input telling to start hubs", err)
	}
	b := newHubProc(t, h, "hub-b", "198.18.0.2:4500")
	c := newHubProc(t, h, "hub-c", "198.18.0.3:4500")
	b.register(t)
	infoC := c.register(t)
	r1, err := register(t, h, site1, in.Devices[0].SN, in.Devices[0].Key, wgKey(t).PublicKey(), lan1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := deviceConfig(t, h, r1.Credential)

	polled := make(chan api.DeviceConfig, 1)
	go func() {
		c, err := h.WaitDeviceConfig(ctx(t), r1.Credential, cfg.Generation)
		if err != nil {
			t.Error(err)
		}
		polled <- c
	}()
	time.Sleep(50 * time.Millisecond)
	info, err := a.SetInstanceHubs(ctx(t), in.Instance.ID, "hub-c", "hub-b")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Hubs, []string{"hub-c", "hub-b"}) {
		t.Errorf("instance hubs %v; want [hub-c hub-b]", info.Hubs)
	}
	select {
	case got := <-polled:
		if got.Generation <= cfg.Generation || !slices.Equal(hubNames(got.Hubs), []string{"hub-c", "hub-b"}) ||
			got.HubPublicKey != infoC.PublicKey || got.HubEndpoint != infoC.Endpoint || got.HubOverlayAddr != infoC.OverlayAddr {
			t.Errorf("device config after the assignment: generation %d hubs %v primary key %v; want hub-c then hub-b", got.Generation, hubNames(got.Hubs), got.HubPublicKey)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the assignment did not wake the device's long-poll within 10 s")
	}
	if hc := b.config(t); len(hc.Peers) != 1 || !slices.Equal(hc.Peers[0].Hubs, []string{"hub-c", "hub-b"}) {
		t.Errorf("hub-b's peers %+v; want the device naming hub-c, hub-b", hc.Peers)
	}

	// Without --secondary: another hub by default.
	info, err = a.SetInstanceHubs(ctx(t), "shop1", "hub-b", "")
	if err != nil || len(info.Hubs) != 2 || info.Hubs[0] != "hub-b" || info.Hubs[1] == "hub-b" {
		t.Errorf("primary only: hubs %v, %v; want hub-b and another hub", info.Hubs, err)
	}
	want := info.Hubs
	gen := deviceConfig(t, h, r1.Credential).Generation
	for _, tc := range []struct {
		name, ref, primary, secondary string
		code, field                   string
	}{
		{"unknown primary", "shop1", "nope", "", api.CodeInvalidInput, "primary"},
		{"unknown secondary", "shop1", "hub-b", "nope", api.CodeInvalidInput, "secondary"},
		{"secondary is the primary", "shop1", "hub-b", "hub-b", api.CodeInvalidInput, "secondary"},
		{"unknown instance", "nope", "hub-b", "", api.CodeNotFound, ""},
	} {
		_, err := a.SetInstanceHubs(ctx(t), tc.ref, tc.primary, tc.secondary)
		var ae *api.Error
		if apiCode(err) != tc.code || !asAPIError(err, &ae) || ae.Field != tc.field || ae.Fix == "" {
			t.Errorf("%s: %v; want %s on field %q with a fix", tc.name, err, tc.code, tc.field)
		}
	}
	if got, _ := a.ShowInstance(ctx(t), "shop1"); !slices.Equal(got.Hubs, want) {
		t.Errorf("hubs after refused assignments %v; want %v", got.Hubs, want)
	}
	if g := deviceConfig(t, h, r1.Credential).Generation; g != gen {
		t.Errorf("generation %d after refused assignments; want %d", g, gen)
	}
}

func asAPIError(err error, ae **api.Error) bool { return errors.As(err, ae) }

// TestHubRegisterRefusals: a registration with a missing key, an endpoint
// devices cannot dial, the controller's own hub's name or key, another
// hub's key, or an endpoint inside a site's LAN is refused naming the
// field and the fix, and nothing is recorded; a device credential is not a
// hub credential.
func TestHubRegisterRefusals(t *testing.T) {
	h := controllertest.Serve(t, embedded)
	in := newInstance(t, h, "shop1")
	r1, err := register(t, h, site1, in.Devices[0].SN, in.Devices[0].Key, wgKey(t).PublicKey(), lan1)
	if err != nil {
		t.Fatal(err)
	}
	b := newHubProc(t, h, "hub-b", "198.18.0.2:4500")
	b.register(t)
	own := newHubProc(t, h, "hub", "198.18.0.5:4500")
	c := newHubProc(t, h, "hub-c", "198.18.0.3:4500")
	gen := deviceConfig(t, h, r1.Credential).Generation
	k := wgKey(t).PublicKey()
	for _, tc := range []struct {
		name  string
		p     *hubProc
		req   api.HubRegister
		code  string
		field string
	}{
		{"no key", c, api.HubRegister{Endpoint: c.ep}, api.CodeInvalidInput, "public_key"},
		{"no endpoint", c, api.HubRegister{PublicKey: k}, api.CodeInvalidInput, "endpoint"},
		{"no port", c, api.HubRegister{PublicKey: k, Endpoint: netip.MustParseAddrPort("198.18.0.3:0")}, api.CodeInvalidInput, "endpoint"},
		{"unspecified", c, api.HubRegister{PublicKey: k, Endpoint: netip.MustParseAddrPort("0.0.0.0:4500")}, api.CodeInvalidInput, "endpoint"},
		{"loopback", c, api.HubRegister{PublicKey: k, Endpoint: netip.MustParseAddrPort("127.0.0.1:4500")}, api.CodeInvalidInput, "endpoint"},
		{"IPv6", c, api.HubRegister{PublicKey: k, Endpoint: netip.MustParseAddrPort("[2001:db8::1]:4500")}, api.CodeInvalidInput, "endpoint"},
		{"inside the overlay", c, api.HubRegister{PublicKey: k, Endpoint: netip.MustParseAddrPort("198.18.64.9:4500")}, api.CodeInvalidInput, "endpoint"},
		{"inside a site's LAN", c, api.HubRegister{PublicKey: k, Endpoint: netip.MustParseAddrPort("198.19.1.7:4500")}, api.CodePrefixConflict, "endpoint"},
		{"the controller's hub's name", own, api.HubRegister{PublicKey: k, Endpoint: own.ep}, api.CodeInvalidInput, "name"},
		{"the controller's hub's key", c, api.HubRegister{PublicKey: h.HubPublicKey(), Endpoint: c.ep}, api.CodeSlotTaken, "public_key"},
		{"another hub's key", c, api.HubRegister{PublicKey: b.key.PublicKey(), Endpoint: c.ep}, api.CodeSlotTaken, "public_key"},
		{"another hub's endpoint", c, api.HubRegister{PublicKey: k, Endpoint: b.ep}, api.CodeSlotTaken, "endpoint"},
		{"the controller's hub's endpoint", c, api.HubRegister{PublicKey: k, Endpoint: netip.MustParseAddrPort("198.18.0.1:4500")}, api.CodeSlotTaken, "endpoint"},
	} {
		_, err := tc.p.c.RegisterHub(ctx(t), tc.req)
		var ae *api.Error
		if apiCode(err) != tc.code || !asAPIError(err, &ae) || ae.Field != tc.field || ae.Fix == "" {
			t.Errorf("%s: %v; want %s on field %q with a fix", tc.name, err, tc.code, tc.field)
		}
	}
	dev, _ := device.NewHubClient([]string{controllertest.URL}, h.Fingerprint, r1.Credential, h.ClientOptions(site1))
	if _, err := dev.RegisterHub(ctx(t), api.HubRegister{PublicKey: k, Endpoint: c.ep}); apiCode(err) != api.CodeUnauthorized {
		t.Errorf("registering with a device credential: %v; want %s", err, api.CodeUnauthorized)
	}
	hubs, _ := h.Admin().ListHubs(ctx(t))
	if len(hubs) != 2 {
		t.Errorf("hub list after refusals: %+v; want hub and hub-b only", hubs)
	}
	if g := deviceConfig(t, h, r1.Credential).Generation; g != gen {
		t.Errorf("generation %d after refused registrations; want %d", g, gen)
	}
}

// TestPrefixGuardCoversEveryHub: no device may advertise a prefix
// covering a registered hub's endpoint.
func TestPrefixGuardCoversEveryHub(t *testing.T) {
	h := controllertest.Serve(t)
	newHubProc(t, h, "hub-b", "198.19.50.1:4500").register(t)
	in := newInstance(t, h, "shop1")
	_, err := register(t, h, site1, in.Devices[0].SN, in.Devices[0].Key, wgKey(t).PublicKey(), netip.MustParsePrefix("198.19.50.0/24"))
	if apiCode(err) != api.CodePrefixConflict || !strings.Contains(err.Error(), "hub hub-b") {
		t.Fatalf("advertising over hub-b's endpoint: %v; want %s naming hub hub-b", err, api.CodePrefixConflict)
	}
	if _, err := register(t, h, site1, in.Devices[0].SN, in.Devices[0].Key, wgKey(t).PublicKey(), lan1); err != nil {
		t.Fatalf("a prefix clear of every hub: %v", err)
	}
}

// TestHubRemovedAndForgotten: a removed hub leaves the group, its
// instances move to the remaining hubs, and its process, polling, gets a
// configuration without its name (so it registers again); registering
// again brings it back.
func TestHubRemovedAndForgotten(t *testing.T) {
	h := controllertest.Serve(t)
	h1 := newHubProc(t, h, "h1", "198.18.0.2:4500")
	h2 := newHubProc(t, h, "h2", "198.18.0.3:4500")
	h1.register(t)
	h2.register(t)
	in := newInstance(t, h, "shop1")
	if _, err := h.Admin().SetInstanceHubs(ctx(t), "shop1", "h2", "h1"); err != nil {
		t.Fatal(err)
	}
	if err := h.Admin().RemoveHub(ctx(t), "h2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.Admin().ShowInstance(ctx(t), in.Instance.ID); !slices.Equal(got.Hubs, []string{"h1"}) {
		t.Errorf("hubs after h2 left %v; want [h1]", got.Hubs)
	}
	if hc := h2.config(t); hc.Name != "" {
		t.Errorf("the removed hub's view is named %q; want none, so it registers again", hc.Name)
	}
	if hc := h1.config(t); hc.Name != "h1" || len(hc.Hubs) != 0 {
		t.Errorf("h1's view after h2 left: name %q hubs %+v", hc.Name, hc.Hubs)
	}
	if err := h.Admin().RemoveHub(ctx(t), "h2"); apiCode(err) != api.CodeNotFound {
		t.Errorf("removing it twice: %v; want %s", err, api.CodeNotFound)
	}
	back := h2.register(t)
	if back.Name != "h2" || !back.OverlayAddr.IsValid() {
		t.Errorf("registering again: %+v", back)
	}
	if hc := h2.config(t); hc.Name != "h2" || len(hc.Hubs) != 1 {
		t.Errorf("h2's view after registering again: name %q hubs %+v", hc.Name, hc.Hubs)
	}
	// The instance keeps h1 as primary and gets h2 back as secondary.
	if got, _ := h.Admin().ShowInstance(ctx(t), "shop1"); !slices.Equal(got.Hubs, []string{"h1", "h2"}) {
		t.Errorf("hubs after h2 came back %v; want [h1 h2]", got.Hubs)
	}
}

// TestHubNameOption: a --hub-name that is no name is refused at start,
// naming the flag and the rule.
func TestHubNameOption(t *testing.T) {
	_, err := controller.New(ctx(t), controller.Options{StateDir: t.TempDir(), HubEndpoint: netip.MustParseAddrPort("198.18.0.1:4500"), HubName: "no spaces"})
	var oe *controller.OptionError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "--hub-name") || !strings.Contains(err.Error(), "letters") {
		t.Errorf("start with --hub-name %q: %v; want an option error naming --hub-name and the rule", "no spaces", err)
	}
}

// TestHubGroupAcrossReplicas: a hub registered through one replica, an
// assignment made on another and a hub removed through a third reach
// every replica's devices and hubs (PostgreSQL, real server).
func TestHubGroupAcrossReplicas(t *testing.T) {
	hs := replicas(t, 2)
	a, b := hs[0], hs[1]
	in := newInstance(t, a, "shop1")
	r1, err := registerVia(ctx(t), a, a, site1, in.Devices[0].SN, in.Devices[0].Key, wgKey(t).PublicKey(), lan1)
	if err != nil {
		t.Fatal(err)
	}
	h1 := newHubProc(t, a, "h1", "198.18.0.2:4500")
	h2 := newHubProc(t, a, "h2", "198.18.0.3:4500")
	i1 := h1.register(t)
	h2.register(t)
	within(t, 10*time.Second, "replica b tells the device both hubs", func() bool {
		cfg, err := b.DeviceConfig(r1.Credential)
		return err == nil && len(cfg.Hubs) == 2 && cfg.HubPublicKey == cfg.Hubs[0].PublicKey
	})
	if hc := b.HubConfigFor("h1"); hc.Name != "h1" || hc.HubOverlayAddr != i1.OverlayAddr || len(hc.Hubs) != 1 || hc.Hubs[0].Name != "h2" {
		t.Errorf("h1's view on replica b: name %q overlay %v hubs %+v", hc.Name, hc.HubOverlayAddr, hc.Hubs)
	}
	if _, err := b.Admin().SetInstanceHubs(ctx(t), "shop1", "h2", "h1"); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "replica a follows the assignment made on b", func() bool {
		cfg, err := a.DeviceConfig(r1.Credential)
		return err == nil && len(cfg.Hubs) == 2 && cfg.Hubs[0].Name == "h2"
	})
	if err := b.Admin().RemoveHub(ctx(t), "h2"); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "replica a drops the hub removed on b", func() bool {
		cfg, err := a.DeviceConfig(r1.Credential)
		return err == nil && len(cfg.Hubs) == 1 && cfg.Hubs[0].Name == "h1" && a.HubConfigFor("h2").Name == ""
	})
	// A new hub's address is unique across replicas: one registered
	// through b never takes one a handed out.
	i3 := newHubProc(t, b, "h3", "198.18.0.4:4500").register(t)
	if i3.OverlayAddr == i1.OverlayAddr {
		t.Errorf("h3 got h1's overlay address %v", i3.OverlayAddr)
	}
}

// TestFailbackIsTheGroupsSetting: --hub-failback reaches devices and
// hubs once a hub group exists, and nothing without one.
func TestFailbackIsTheGroupsSetting(t *testing.T) {
	h := controllertest.Serve(t, embedded, func(o *controller.Options) { o.Failback = true })
	in := newInstance(t, h, "shop1")
	r1, err := register(t, h, site1, in.Devices[0].SN, in.Devices[0].Key, wgKey(t).PublicKey(), lan1)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := deviceConfig(t, h, r1.Credential); cfg.Failback || h.HubConfig().Failback {
		t.Errorf("failback without a hub group: device %v hub %v; want false", cfg.Failback, h.HubConfig().Failback)
	}
	b := newHubProc(t, h, "hub-b", "198.18.0.2:4500")
	b.register(t)
	if cfg := deviceConfig(t, h, r1.Credential); !cfg.Failback || !h.HubConfig().Failback || !b.config(t).Failback {
		t.Errorf("failback with a hub group: device %v, hub %v, hub-b %v; want true everywhere", cfg.Failback, h.HubConfig().Failback, b.config(t).Failback)
	}
}

// TestHubAndDeviceAddressesNeverCollide: in a small overlay pool, hubs
// take addresses from the top and devices from the bottom; when the pool
// is full neither takes the other's, and the refusal says what to do.
func TestHubAndDeviceAddressesNeverCollide(t *testing.T) {
	pool := netip.MustParsePrefix("198.18.64.0/28") // .1 the controller's hub, .15 never used
	h := controllertest.Serve(t, embedded, func(o *controller.Options) { o.Overlay = pool })
	b := newHubProc(t, h, "hub-b", "198.18.0.2:4500").register(t)
	if b.OverlayAddr.String() != "198.18.64.14" {
		t.Errorf("first hub's overlay address %v; want the top of the pool, 198.18.64.14", b.OverlayAddr)
	}
	used := map[netip.Addr]string{b.OverlayAddr: "hub-b", netip.MustParseAddr("198.18.64.1"): "hub"}
	var err error
	for i := 0; err == nil; i++ {
		var res *controller.CreatedInstance
		res, err = h.Admin().CreateInstance(ctx(t), controller.CreateInstanceRequest{Name: fmt.Sprintf("shop%d", i), Slots: 2})
		if err != nil {
			break
		}
		for _, d := range res.Instance.Devices {
			if o, ok := used[d.OverlayAddr]; ok {
				t.Fatalf("device %s got %v, %s's", d.SN, d.OverlayAddr, o)
			}
			used[d.OverlayAddr] = d.SN
		}
	}
	if apiCode(err) != api.CodeQuota || !strings.Contains(err.Error(), "--overlay") {
		t.Errorf("instance create with the pool full: %v; want %s naming --overlay", err, api.CodeQuota)
	}
	if len(used) != 14 {
		t.Errorf("%d addresses handed out in a /28; want 14 (all but the network, .15 and the broadcast)", len(used))
	}
	if _, err := newHubProc(t, h, "hub-c", "198.18.0.3:4500").c.RegisterHub(ctx(t), api.HubRegister{PublicKey: wgKey(t).PublicKey(), Endpoint: netip.MustParseAddrPort("198.18.0.3:4500")}); apiCode(err) != api.CodeQuota {
		t.Errorf("hub registration with the pool full: %v; want %s", err, api.CodeQuota)
	}
}

// TestHubEndpoints: GET /v1/hubs needs no credential and names the UDP
// endpoints devices dial: the one hub, then every hub of the group.
func TestHubEndpoints(t *testing.T) {
	h := controllertest.Serve(t, embedded)
	c := h.Client(site1)
	one, err := c.HubEndpoints(ctx(t))
	if err != nil || len(one) != 1 || !one[0].IsValid() {
		t.Fatalf("before any hub registered: %v, %v; want the controller's one hub", one, err)
	}
	b := newHubProc(t, h, "hub-b", "198.18.0.2:4500")
	b.register(t)
	two, err := c.HubEndpoints(ctx(t))
	if err != nil || len(two) != 2 || !slices.Contains(two, one[0]) || !slices.Contains(two, b.ep) {
		t.Fatalf("with hub-b registered: %v, %v; want %v and %v", two, err, one[0], b.ep)
	}
}
