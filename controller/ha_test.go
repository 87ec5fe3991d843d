package controller_test

import (
	"slices"
	"testing"

	"github.com/openvcpe/vcpe/controller/controllertest"
)

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
