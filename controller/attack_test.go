package controller_test

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/controllertest"
	"github.com/openvcpe/vcpe/internal/device"
)

// The attack suite of the controller: each test is what an attacker
// holding one registered device (its key and credential, nothing more)
// tries, and checks that the write does not happen, not only the status.

// peerOf returns the hub peer of sn in the controller's HubConfig.
func peerOf(t *testing.T, h *controllertest.Harness, sn string) api.HubPeer {
	t.Helper()
	for _, p := range h.HubConfig().Peers {
		if p.SN == sn {
			return p
		}
	}
	t.Fatalf("no hub peer %s", sn)
	return api.HubPeer{}
}

// TestAttackCrossTenantHijack: a device of another CCN, or of no CCN,
// advertises the victim's LAN (at registration and later by route sync).
// It is refused without naming the victim, the hub keeps routing the
// prefix to the victim only, and an instance in no CCN has nothing routed
// at all.
func TestAttackCrossTenantHijack(t *testing.T) {
	h := controllertest.Serve(t)
	victim := newInstance(t, h, "bank-branch")
	attach(t, h, "bankccn", "bank-branch")
	if _, err := register(t, h, site1, victim.Devices[0].SN, victim.Devices[0].Key, wgKey(t).PublicKey(), lan1); err != nil {
		t.Fatal(err)
	}
	other := newInstance(t, h, "evil-shop")
	attach(t, h, "evilccn", "evil-shop")
	loner := newInstance(t, h, "loner")

	secret := []string{"bank-branch", "bankccn", victim.Devices[0].SN}
	refused := func(what string, err error) {
		t.Helper()
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodePrefixConflict || ae.Field != "advertise[0]" || ae.Fix == "" {
			t.Fatalf("%s: %v; want prefix_conflict on advertise[0] with a fix", what, err)
		}
		for _, s := range secret {
			if strings.Contains(ae.Message+ae.Fix, s) {
				t.Errorf("%s: the refusal reveals %q: %s / %s", what, s, ae.Message, ae.Fix)
			}
		}
	}
	for _, inst := range []*controller.CreatedInstance{other, loner} {
		_, err := register(t, h, evil, inst.Devices[0].SN, inst.Devices[0].Key, wgKey(t).PublicKey(), netip.MustParsePrefix("198.19.1.128/25"))
		refused("register "+inst.Instance.Name+" with part of the victim's LAN", err)
	}
	// Registered with its own LAN, the attacker tries route sync.
	res, err := register(t, h, evil, other.Devices[0].SN, other.Devices[0].Key, wgKey(t).PublicKey(), lan2)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := device.NewClientFromState(&device.State{Controller: controllertest.URL, ControllerFingerprint: h.Fingerprint, Credential: res.Credential}, h.ClientOptions(evil))
	_, err = c.AdvertiseRoutes(ctx(t), []netip.Prefix{lan1})
	refused("route sync to the victim's LAN", err)
	if got := peerOf(t, h, other.Devices[0].SN).AllowedIPs; slices.Contains(got, lan1) || !slices.Contains(got, lan2) {
		t.Errorf("attacker's hub peer after the refused sync: %v", got)
	}
	if got := peerOf(t, h, victim.Devices[0].SN).AllowedIPs; !slices.Contains(got, lan1) {
		t.Errorf("victim's hub peer: %v; want %v", got, lan1)
	}
	// An instance in no CCN: its device registers, but nothing it
	// advertises is routed, and it learns nothing.
	lres, err := register(t, h, evil, loner.Devices[0].SN, loner.Devices[0].Key, wgKey(t).PublicKey(), lan3)
	if err != nil {
		t.Fatal(err)
	}
	p := peerOf(t, h, loner.Devices[0].SN)
	if len(p.AllowedIPs) != 1 || p.AllowedIPs[0] != netip.PrefixFrom(p.OverlayAddr, 32) {
		t.Errorf("hub peer of an instance in no CCN: %v; want only its overlay address", p.AllowedIPs)
	}
	if len(lres.Config.Routes) != 0 {
		t.Errorf("instance in no CCN learns %v; want nothing", lres.Config.Routes)
	}
	// Peer SNs are not handed to other instances: TestProbeTargets
	// (targets_test.go) checks a CCN member's targets carry none.
}

// TestAttackHubSteering: prefixes that would capture the hub's own
// addresses, connected networks, gateway, endpoint, controller address,
// a deny-listed prefix or anything outside the allowed LAN pools are
// refused with the field, the reason and the fix, and not routed.
func TestAttackHubSteering(t *testing.T) {
	h := controllertest.Serve(t, func(o *controller.Options) {
		o.HostNetworks = []controller.HostNetwork{
			{Prefix: netip.MustParsePrefix("198.18.200.0/24"), What: "the connected network 198.18.200.0/24 on eth1"},
			{Prefix: netip.MustParsePrefix("198.18.201.1/32"), What: "the default gateway 198.18.201.1"},
		}
		o.ControllerAddr = netip.MustParseAddr("198.18.202.5")
		o.DenyPrefixes = []netip.Prefix{netip.MustParsePrefix("198.19.250.0/24")}
	})
	inst := newInstance(t, h, "shop1")
	attach(t, h, "corp", "shop1")
	d := inst.Devices[0]
	for _, tc := range []struct{ prefix, code, why string }{
		{"198.18.0.0/24", api.CodePrefixConflict, "hub endpoint"},
		{"198.18.200.128/25", api.CodePrefixConflict, "connected network"},
		{"198.18.201.0/24", api.CodePrefixConflict, "default gateway"},
		{"198.18.202.0/24", api.CodePrefixConflict, "controller address"},
		{"198.19.250.0/25", api.CodePrefixConflict, "deny-listed"},
		{"8.0.0.0/8", api.CodeInvalidInput, "LAN pools"},
		{"203.0.113.0/24", api.CodeInvalidInput, "LAN pools"},
	} {
		_, err := register(t, h, site1, d.SN, d.Key, wgKey(t).PublicKey(), netip.MustParsePrefix(tc.prefix))
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != tc.code || ae.Field != "advertise[0]" || !strings.Contains(ae.Message, tc.why) || ae.Fix == "" {
			t.Errorf("advertise %s: %v; want %s on advertise[0] naming %q, with a fix", tc.prefix, err, tc.code, tc.why)
		}
	}
	if p := h.HubConfig().Peers; len(p) != 0 {
		t.Errorf("hub peers after refused registrations: %+v", p)
	}

	// --lan-pool narrows what is accepted.
	h2 := controllertest.Serve(t, func(o *controller.Options) { o.LANPools = []netip.Prefix{netip.MustParsePrefix("198.19.0.0/20")} })
	inst2 := newInstance(t, h2, "shop1")
	if _, err := register(t, h2, site1, inst2.Devices[0].SN, inst2.Devices[0].Key, wgKey(t).PublicKey(), netip.MustParsePrefix("198.19.16.0/24")); apiCode(err) != api.CodeInvalidInput {
		t.Errorf("advertise outside --lan-pool: %v; want invalid_input", err)
	}
	if _, err := register(t, h2, site1, inst2.Devices[0].SN, inst2.Devices[0].Key, wgKey(t).PublicKey(), lan1); err != nil {
		t.Errorf("advertise inside --lan-pool: %v", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
