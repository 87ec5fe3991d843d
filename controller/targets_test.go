package controller_test

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/controllertest"
	"github.com/openvcpe/vcpe/internal/device"
)

var addr = netip.MustParseAddr

func registerProbe(t *testing.T, h *controllertest.Harness, from netip.Addr, d controller.IssuedDevice, probe []netip.Addr, adv ...netip.Prefix) (api.RegisterResponse, error) {
	t.Helper()
	return h.Client(from).Register(ctx(t), device.RegisterRequest{SN: d.SN, Key: d.Key, PublicKey: wgKey(t).PublicKey(), Advertise: adv, ProbeAddrs: probe})
}

// TestDeviceConfigTargets: every learned prefix gets as probe target the
// probe address of the active device of the instance advertising it (and
// it follows a failover, with a new generation); the cloud prefix gets the
// hub's own address in it; a device that sent no probe address gives no
// target.
func TestDeviceConfigTargets(t *testing.T) {
	h := controllertest.Serve(t, func(o *controller.Options) {
		o.HubAddrs = []netip.Addr{addr("198.18.0.1"), addr("198.19.100.1")}
	})
	a, b, c := newInstance(t, h, "site-a"), newInstance(t, h, "site-b"), newInstance(t, h, "site-c")
	admin := h.Admin()
	if _, err := admin.CreateCCN(ctx(t), "corp"); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"site-a", "site-b", "site-c"} {
		if _, err := admin.Attach(ctx(t), "corp", in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := registerProbe(t, h, site1, a.Devices[0], []netip.Addr{addr("198.19.1.1")}, lan1); err != nil {
		t.Fatal(err)
	}
	resA2, err := registerProbe(t, h, addr("198.18.0.21"), a.Devices[1], []netip.Addr{addr("198.19.1.2")}, lan1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := registerProbe(t, h, addr("198.18.0.13"), c.Devices[0], nil, lan3); err != nil {
		t.Fatal(err)
	}
	res, err := registerProbe(t, h, site2, b.Devices[0], []netip.Addr{addr("198.19.2.1")}, lan2)
	if err != nil {
		t.Fatal(err)
	}
	cred := res.Credential
	cfg := res.Config
	want := []api.ProbeTarget{
		{Prefix: lan1, Addr: addr("198.19.1.1"), Remote: true},
		{Prefix: cloud, Addr: addr("198.19.100.1")},
	}
	if diff := cmp.Diff(want, cfg.Targets, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
		t.Errorf("site-b targets (-want +got):\n%s\nroutes %v", diff, cfg.Routes)
	}

	// Failover: the target moves to the standby's address.
	h.SetActive(ctx(t), a.Instance.ID, a.Devices[1].SN, "test")
	cfg2, err := h.DeviceConfig(cred)
	if err != nil {
		t.Fatal(err)
	}
	want[0] = api.ProbeTarget{Prefix: lan1, Addr: addr("198.19.1.2"), Remote: true}
	if diff := cmp.Diff(want, cfg2.Targets, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
		t.Errorf("after failover (-want +got):\n%s", diff)
	}
	if cfg2.Generation <= cfg.Generation {
		t.Errorf("generation %d after failover; want more than %d", cfg2.Generation, cfg.Generation)
	}

	// A new probe address with the same routes is a change too; site-a
	// (the new active device) sees it, also after a restart.
	cb, _ := device.NewClientFromState(&device.State{Controller: controllertest.URL, ControllerFingerprint: h.Fingerprint, Credential: cred}, h.ClientOptions(site2))
	cfg3, err := cb.AdvertiseRoutes(ctx(t), []netip.Prefix{lan2}, addr("198.19.2.9"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg3.Generation <= cfg2.Generation {
		t.Errorf("generation %d after a new probe address; want more than %d", cfg3.Generation, cfg2.Generation)
	}
	if again, err := cb.AdvertiseRoutes(ctx(t), []netip.Prefix{lan2}, addr("198.19.2.9")); err != nil || again.Generation != cfg3.Generation {
		t.Errorf("the same routes and address again: generation %d, %v; want %d unchanged", again.Generation, err, cfg3.Generation)
	}
	h.Restart()
	ca, _ := device.NewClientFromState(&device.State{Controller: controllertest.URL, ControllerFingerprint: h.Fingerprint, Credential: resA2.Credential}, h.ClientOptions(addr("198.18.0.21")))
	cfgA, err := ca.DeviceConfig(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	wantA := []api.ProbeTarget{
		{Prefix: lan2, Addr: addr("198.19.2.9"), Remote: true},
		{Prefix: cloud, Addr: addr("198.19.100.1")},
	}
	if diff := cmp.Diff(wantA, cfgA.Targets, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
		t.Errorf("site-a targets after a restart (-want +got):\n%s\nroutes %v", diff, cfgA.Routes)
	}
}

// TestProbeAddrsValidated: a probe address outside the advertised prefixes
// is refused with the field named, at registration and with the routes;
// nothing is half-applied.
func TestProbeAddrsValidated(t *testing.T) {
	h := controllertest.Serve(t)
	in := newInstance(t, h, "shop1")
	d := in.Devices[0]
	for _, tc := range []struct {
		name  string
		probe []netip.Addr
		field string
	}{
		{"outside the prefixes", []netip.Addr{addr("198.19.1.1"), addr("198.19.2.1")}, "probe_addrs[1]"},
		{"IPv6", []netip.Addr{addr("2001:db8::1")}, "probe_addrs[0]"},
		{"the zero address", []netip.Addr{{}}, "probe_addrs[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := registerProbe(t, h, site1, d, tc.probe, lan1)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != api.CodeInvalidInput || ae.Field != tc.field || ae.Fix == "" {
				t.Fatalf("register with %v: %v; want invalid_input on %s with a fix", tc.probe, err, tc.field)
			}
		})
	}
	res, err := registerProbe(t, h, site1, d, []netip.Addr{addr("198.19.1.1")}, lan1)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := device.NewClientFromState(&device.State{Controller: controllertest.URL, ControllerFingerprint: h.Fingerprint, Credential: res.Credential}, h.ClientOptions(site1))
	_, err = c.AdvertiseRoutes(ctx(t), []netip.Prefix{lan2}, addr("198.19.1.1"))
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Field != "probe_addrs[0]" {
		t.Fatalf("advertise %v with probe 198.19.1.1: %v; want invalid_input on probe_addrs[0]", lan2, err)
	}
	cfg, err := c.DeviceConfig(ctx(t))
	if err != nil || !slices.Equal(cfg.Advertised, []netip.Prefix{lan1}) {
		t.Errorf("after a refused change: advertised %v, %v; want [%v] unchanged", cfg.Advertised, err, lan1)
	}
}
