package controller_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller/controllertest"
	"github.com/openvcpe/vcpe/internal/device"
)

// TestSecondDeviceLearnsTheSharedGateway: the first device of a pair
// registers with its multi-attach gateway; the second is told the
// instance's slots and the first device (active, with that gateway), and
// the first, after a restart, the second. A gateway outside the advertised
// prefixes is refused with its field.
func TestSecondDeviceLearnsTheSharedGateway(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	a, b := inst.Devices[0], inst.Devices[1]
	gw := netip.MustParsePrefix("198.19.1.254/24")
	_, err := h.Client(site1).Register(ctx(t), device.RegisterRequest{SN: a.SN, Key: a.Key, PublicKey: wgKey(t).PublicKey(),
		Advertise: []netip.Prefix{lan1}, LANGateway: netip.MustParsePrefix("198.19.9.254/24")})
	if apiCode(err) != api.CodeInvalidInput {
		t.Fatalf("gateway outside the LAN: %v; want %s", err, api.CodeInvalidInput)
	}
	ra, err := h.Client(site1).Register(ctx(t), device.RegisterRequest{SN: a.SN, Key: a.Key, PublicKey: wgKey(t).PublicKey(),
		Advertise: []netip.Prefix{lan1}, LANGateway: gw})
	if err != nil {
		t.Fatal(err)
	}
	if ra.Config.Slots != 2 || len(ra.Config.Peers) != 0 {
		t.Errorf("first device: slots %d peers %v; want 2 and none", ra.Config.Slots, ra.Config.Peers)
	}
	rb, err := register(t, h, site2, b.SN, b.Key, wgKey(t).PublicKey(), lan1)
	if err != nil {
		t.Fatal(err)
	}
	want := []api.InstancePeer{{SN: a.SN, Active: true, LANGateway: gw}}
	if rb.Config.Role != api.RoleStandby || !slices.Equal(rb.Config.Peers, want) {
		t.Errorf("second device: role %s peers %+v; want standby and %+v", rb.Config.Role, rb.Config.Peers, want)
	}
	h.Restart()
	cfg, err := h.DeviceConfig(ra.Credential)
	if err != nil {
		t.Fatal(err)
	}
	if want := []api.InstancePeer{{SN: b.SN}}; !slices.Equal(cfg.Peers, want) {
		t.Errorf("first device after a restart: peers %+v; want %+v", cfg.Peers, want)
	}
	cfg, err = h.DeviceConfig(rb.Credential)
	if err != nil || len(cfg.Peers) != 1 || cfg.Peers[0].LANGateway != gw {
		t.Errorf("second device after a restart: peers %+v (%v); want the gateway %s kept", cfg.Peers, err, gw)
	}
}

// TestSetActiveFollowsTheHub: the hub's arbiter reports a failover; the
// controller's HubConfig (and so DeviceConfig.Role and the admin views)
// name the new active device, which gets the instance's prefixes.
func TestSetActiveFollowsTheHub(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	attach(t, h, "corp", "shop1") // an instance in no CCN gets nothing routed
	a, b := inst.Devices[0].SN, inst.Devices[1].SN
	if _, err := register(t, h, site1, a, inst.Devices[0].Key, wgKey(t).PublicKey(), lan1); err != nil {
		t.Fatal(err)
	}
	if _, err := register(t, h, site2, b, inst.Devices[1].Key, wgKey(t).PublicKey(), lan1); err != nil {
		t.Fatal(err)
	}
	active := func() (sn string, gen uint64) {
		hc := h.HubConfig()
		for _, p := range hc.Peers {
			if p.Active {
				if !slices.Contains(p.AllowedIPs, lan1) {
					t.Errorf("active peer %s lacks %v: %v", p.SN, lan1, p.AllowedIPs)
				}
				sn = p.SN
			} else if slices.Contains(p.AllowedIPs, lan1) {
				t.Errorf("standby peer %s holds %v", p.SN, lan1)
			}
		}
		return sn, hc.Generation
	}
	sn, gen := active()
	if sn != a {
		t.Fatalf("active %s; want the first registered %s", sn, a)
	}
	h.SetActive(ctx(t), inst.Instance.ID, "nobody", "test")
	h.SetActive(ctx(t), "other-instance", b, "test")
	if sn, g := active(); sn != a || g != gen {
		t.Fatalf("after bogus reports: active %s generation %d; want %s, %d", sn, g, a, gen)
	}
	h.SetActive(ctx(t), inst.Instance.ID, b, "claims stopped")
	sn, gen2 := active()
	if sn != b || gen2 <= gen {
		t.Fatalf("after the hub's report: active %s generation %d; want %s and a new generation", sn, gen2, b)
	}
	h.Restart()
	if sn, _ := active(); sn != b {
		t.Fatalf("after a restart: active %s; want %s still", sn, b)
	}
	devs, err := h.Admin().ListDevices(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if want := map[bool]string{true: "active", false: "standby"}[d.SN == b]; d.Role != want {
			t.Errorf("device list: %s is %q; want %q", d.SN, d.Role, want)
		}
	}
}
