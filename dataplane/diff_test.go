package dataplane

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/openvcpe/vcpe/api"
)

func pfx(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, x := range s {
		out[i] = netip.MustParsePrefix(x)
	}
	return out
}

func key(b byte) api.Key {
	var k api.Key
	k[0], k[31] = b, b
	return k
}

func TestDiffPrefixes(t *testing.T) {
	for _, tc := range []struct {
		name             string
		have, want       []netip.Prefix
		wantAdd, wantDel []netip.Prefix
	}{
		{"nothing", nil, nil, nil, nil},
		{"all new", nil, pfx("198.19.2.0/24", "198.19.100.0/24"), pfx("198.19.2.0/24", "198.19.100.0/24"), nil},
		{"all gone", pfx("198.19.2.0/24"), nil, nil, pfx("198.19.2.0/24")},
		{"one swapped", pfx("198.19.2.0/24", "198.19.100.0/24"), pfx("198.19.3.0/24", "198.19.100.0/24"),
			pfx("198.19.3.0/24"), pfx("198.19.2.0/24")},
		{"unmasked and duplicated input", pfx("198.19.2.7/24", "198.19.2.0/24"), pfx("198.19.2.0/24"), nil, nil},
		{"length matters", pfx("198.19.2.0/24"), pfx("198.19.2.0/25"), pfx("198.19.2.0/25"), pfx("198.19.2.0/24")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			add, del := DiffPrefixes(tc.have, tc.want)
			if d := cmp.Diff(tc.wantAdd, add, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
				t.Errorf("add (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantDel, del, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
				t.Errorf("del (-want +got):\n%s", d)
			}
		})
	}
}

func TestRoutedPrefixesSkipsOverlay(t *testing.T) {
	got := routedPrefixes(netip.MustParsePrefix("198.18.64.0/18"), pfx("198.18.64.2/32", "198.19.1.0/24", "198.18.0.0/15", "198.19.1.0/24"))
	want := pfx("198.18.0.0/15", "198.19.1.0/24")
	if !cmp.Equal(got, want, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })) {
		t.Errorf("routedPrefixes = %v; want %v", got, want)
	}
}

func TestHubPeerDiff(t *testing.T) {
	a := api.HubPeer{SN: "a", PublicKey: key(1), CCN: "blue", AllowedIPs: pfx("198.18.64.2/32", "198.19.1.0/24"), Active: true}
	b := api.HubPeer{SN: "b", PublicKey: key(2), CCN: "blue", AllowedIPs: pfx("198.18.64.3/32")}
	c := api.HubPeer{SN: "c", PublicKey: key(3), CCN: "red", AllowedIPs: pfx("198.18.64.4/32")}
	b2 := b
	b2.AllowedIPs = pfx("198.18.64.3/32", "198.19.2.0/24")
	b2.Active = true
	// Same AllowedIPs in another order is no change.
	a2 := a
	a2.AllowedIPs = pfx("198.19.1.0/24", "198.18.64.2/32")

	got := HubPeerDiff([]api.HubPeer{a, b, c}, []api.HubPeer{a2, b2})
	var ops []string
	for _, ch := range got {
		ops = append(ops, ch.Op+" "+ch.Peer.SN)
	}
	if want := []string{"update b", "remove c"}; !cmp.Equal(ops, want) {
		t.Errorf("HubPeerDiff = %v; want %v", ops, want)
	}
	u := hubPeerUAPI(got)
	for _, line := range []string{
		"public_key=" + hexKey(key(2)) + "\nupdate_only=true\nreplace_allowed_ips=true\nallowed_ip=198.18.64.3/32\nallowed_ip=198.19.2.0/24\n",
		"public_key=" + hexKey(key(3)) + "\nremove=true\n",
	} {
		if !strings.Contains(u, line) {
			t.Errorf("UAPI lacks %q:\n%s", line, u)
		}
	}
	if strings.Contains(u, hexKey(key(1))) {
		t.Errorf("unchanged peer a appears in the UAPI set:\n%s", u)
	}
	if got := HubPeerDiff(nil, []api.HubPeer{a}); len(got) != 1 || got[0].Op != "add" {
		t.Errorf("from nothing: %+v", got)
	}
}

func TestEdgePeerUAPI(t *testing.T) {
	cfg := api.DeviceConfig{OverlayAddr: netip.MustParsePrefix("198.18.64.2/18"), HubPublicKey: key(9),
		HubEndpoint: netip.MustParseAddrPort("198.18.0.1:4500"), Routes: pfx("198.19.2.0/24")}
	want := "public_key=" + hexKey(key(9)) + "\nendpoint=198.18.0.1:4500\npersistent_keepalive_interval=15\n" +
		"replace_allowed_ips=true\nallowed_ip=198.18.64.0/18\nallowed_ip=198.19.2.0/24\n"
	if got := edgePeerUAPI(nil, cfg, 0); got != want {
		t.Errorf("edgePeerUAPI:\n%s\nwant:\n%s", got, want)
	}
	old := cfg
	old.HubPublicKey = key(8)
	if got := edgePeerUAPI(&old, cfg, 0); !strings.HasPrefix(got, "public_key="+hexKey(key(8))+"\nremove=true\n") {
		t.Errorf("a new hub key must remove the old peer first:\n%s", got)
	}
}

func TestEdgePeerUAPIHubGroup(t *testing.T) {
	h1 := api.HubInfo{Name: "hub1", PublicKey: key(9), Endpoint: netip.MustParseAddrPort("198.18.0.1:4500"), OverlayAddr: netip.MustParseAddr("198.18.64.1")}
	h2 := api.HubInfo{Name: "hub2", PublicKey: key(10), Endpoint: netip.MustParseAddrPort("198.18.0.2:4500"), OverlayAddr: netip.MustParseAddr("198.18.127.250")}
	cfg := api.DeviceConfig{OverlayAddr: netip.MustParsePrefix("198.18.64.2/18"), HubPublicKey: key(9),
		HubEndpoint: h1.Endpoint, HubOverlayAddr: h1.OverlayAddr, Routes: pfx("198.19.2.0/24"), Hubs: []api.HubInfo{h1, h2}}
	peer := func(h api.HubInfo, ips ...string) string {
		s := "public_key=" + hexKey(h.PublicKey) + "\nendpoint=" + h.Endpoint.String() + "\npersistent_keepalive_interval=15\nreplace_allowed_ips=true\n"
		for _, ip := range ips {
			s += "allowed_ip=" + ip + "\n"
		}
		return s
	}
	want := peer(h1, "198.18.64.0/18", "198.18.64.1/32", "198.19.2.0/24") + peer(h2, "198.18.127.250/32")
	if got := edgePeerUAPI(nil, cfg, 0); got != want {
		t.Errorf("carrying hub1:\n%s\nwant:\n%s", got, want)
	}
	// Carrying the secondary: its peer is written first.
	want = peer(h2, "198.18.64.0/18", "198.18.127.250/32", "198.19.2.0/24") + peer(h1, "198.18.64.1/32")
	if got := edgePeerUAPI(nil, cfg, 1); got != want {
		t.Errorf("carrying hub2:\n%s\nwant:\n%s", got, want)
	}
	// The switch is one write of AllowedIPs only, the new carrier first.
	want = "public_key=" + hexKey(key(10)) + "\nupdate_only=true\nreplace_allowed_ips=true\nallowed_ip=198.18.64.0/18\nallowed_ip=198.18.127.250/32\nallowed_ip=198.19.2.0/24\n" +
		"public_key=" + hexKey(key(9)) + "\nupdate_only=true\nreplace_allowed_ips=true\nallowed_ip=198.18.64.1/32\n"
	if got := hubSwitchUAPI(cfg, cfg.Hubs, 0, 1); got != want {
		t.Errorf("switch to hub2:\n%s\nwant:\n%s", got, want)
	}
	// A hub that leaves the group loses its peer.
	old := cfg
	cfg.Hubs = []api.HubInfo{h1}
	if got := edgePeerUAPI(&old, cfg, 0); !strings.HasPrefix(got, "public_key="+hexKey(key(10))+"\nremove=true\n") {
		t.Errorf("a hub leaving the group must remove its peer:\n%s", got)
	}
}

func TestValidateDeviceConfigHubs(t *testing.T) {
	h1 := api.HubInfo{Name: "hub1", PublicKey: key(9), Endpoint: netip.MustParseAddrPort("198.18.0.1:4500"), OverlayAddr: netip.MustParseAddr("198.18.64.1")}
	base := api.DeviceConfig{OverlayAddr: netip.MustParsePrefix("198.18.64.2/18"), HubPublicKey: key(9), HubEndpoint: h1.Endpoint, HubOverlayAddr: h1.OverlayAddr}
	for _, tc := range []struct {
		name string
		hub2 func(h api.HubInfo) api.HubInfo
		want string
	}{
		{"same name", func(h api.HubInfo) api.HubInfo { h.PublicKey = key(10); return h }, "listed twice"},
		{"same key", func(h api.HubInfo) api.HubInfo { h.Name = "hub2"; return h }, "used by another hub"},
		{"no name", func(h api.HubInfo) api.HubInfo { h.Name = ""; h.PublicKey = key(10); return h }, "name is empty"},
		{"same overlay", func(h api.HubInfo) api.HubInfo { h.Name, h.PublicKey = "hub2", key(10); return h }, "another hub's or the device's own"},
		{"no endpoint", func(h api.HubInfo) api.HubInfo {
			h.Name, h.PublicKey, h.Endpoint = "hub2", key(10), netip.AddrPort{}
			return h
		}, "endpoint is missing"},
	} {
		c := base
		c.Hubs = []api.HubInfo{h1, tc.hub2(h1)}
		if err := ValidateDeviceConfig(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error saying %q", tc.name, err, tc.want)
		}
	}
	c := base
	c.Hubs = []api.HubInfo{h1, {Name: "hub2", PublicKey: key(10), Endpoint: netip.MustParseAddrPort("198.18.0.2:4500"), OverlayAddr: netip.MustParseAddr("198.18.64.250")}}
	if err := ValidateDeviceConfig(c); err != nil {
		t.Errorf("a valid group: %v", err)
	}
}

func TestMergeRanges(t *testing.T) {
	got := mergeRanges(pfx("198.19.1.0/24", "198.18.64.2/32", "198.19.1.128/25", "198.19.2.0/24", "198.18.64.3/32", "198.19.100.0/24"))
	var s []string
	for _, r := range got {
		s = append(s, r.Start.String()+"-"+r.End.String())
	}
	want := []string{"198.18.64.2-198.18.64.3", "198.19.1.0-198.19.2.255", "198.19.100.0-198.19.100.255"}
	if !cmp.Equal(s, want) {
		t.Errorf("mergeRanges = %v; want %v", s, want)
	}
}

func TestValidateDeviceConfig(t *testing.T) {
	good := api.DeviceConfig{OverlayAddr: netip.MustParsePrefix("198.18.64.2/18"), HubOverlayAddr: netip.MustParseAddr("198.18.64.1"),
		HubPublicKey: key(1), HubEndpoint: netip.MustParseAddrPort("198.18.0.1:4500")}
	if err := ValidateDeviceConfig(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for field, mut := range map[string]func(*api.DeviceConfig){
		"overlay_addr":   func(c *api.DeviceConfig) { c.OverlayAddr = netip.Prefix{} },
		"hub_public_key": func(c *api.DeviceConfig) { c.HubPublicKey = api.Key{} },
		"hub_endpoint":   func(c *api.DeviceConfig) { c.HubEndpoint = netip.AddrPortFrom(c.HubEndpoint.Addr(), 0) },
		"routes[0]":      func(c *api.DeviceConfig) { c.Routes = pfx("2001:db8::/32") },
	} {
		c := good
		mut(&c)
		if err := ValidateDeviceConfig(c); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("bad %s: error %v does not name the field", field, err)
		}
	}
}
