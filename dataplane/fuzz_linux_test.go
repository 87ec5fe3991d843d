package dataplane

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// FuzzClaim feeds claim datagrams, as the hub reads them from a tunnel,
// to the arbiter of a two-device instance with a clock that advances:
// the active device is always a member or none, and the role answered is
// one of the two.
func FuzzClaim(f *testing.F) {
	f.Add([]byte(`{"sn":"a","healthy":true,"lan_ok":true,"seq":1}`), uint8(0), uint16(100))
	f.Add([]byte(`{"sn":"b","healthy":false,"lan_ok":true,"seq":18446744073709551615}`), uint8(1), uint16(5000))
	f.Add([]byte(`{"sn":"\u0000","healthy":1}`), uint8(2), uint16(0))
	a := &Arbiter{DeadAfter: 3 * time.Second}
	now := time.Unix(1_000_000, 0)
	a.SetMembers(now, "i1", []string{"a", "b"}, "a")
	f.Fuzz(func(t *testing.T, b []byte, who uint8, advanceMS uint16) {
		var c Claim
		if json.Unmarshal(b, &c) != nil {
			return
		}
		now = now.Add(time.Duration(advanceMS) * time.Millisecond)
		// The hub names the sender by its tunnel address, never by c.SN.
		sn := []string{"a", "b", "stranger"}[int(who)%3]
		role, _ := a.Claim(now, "i1", sn, c)
		a.Tick(now)
		if role != api.RoleActive && role != api.RoleStandby {
			t.Fatalf("role %q", role)
		}
		if act := a.Active("i1"); act != "" && act != "a" && act != "b" {
			t.Fatalf("active %q is not a member", act)
		}
	})
}

// FuzzValidateConfigs runs both ends' config validators on arbitrary
// JSON, and what follows a valid config (route guard, peer diff, UAPI
// text) must not fail.
func FuzzValidateConfigs(f *testing.F) {
	f.Add([]byte(`{"overlay_addr":"198.18.64.2/18","hub_overlay_addr":"198.18.64.1","hub_public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","hub_endpoint":"198.18.0.1:4500","routes":["198.19.2.0/24","0.0.0.0/0"]}`))
	f.Add([]byte(`{"overlay":"198.18.64.0/18","hub_overlay_addr":"198.18.64.1","peers":[{"sn":"a","public_key":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","overlay_addr":"198.18.64.2","allowed_ips":["198.18.64.2/32","198.19.1.0/24"]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var dc api.DeviceConfig
		if json.Unmarshal(b, &dc) == nil && ValidateDeviceConfig(dc) == nil {
			kept, dropped := guardRoutes(dc.Routes, []Protected{{Addr: dc.HubEndpoint.Addr(), What: "hub"}})
			if len(kept)+len(dropped) != len(dc.Routes) {
				t.Fatalf("guard lost routes: %d + %d of %d", len(kept), len(dropped), len(dc.Routes))
			}
			for _, r := range kept {
				if r.Contains(dc.HubEndpoint.Addr().Unmap()) {
					t.Fatalf("kept %s covers the hub endpoint", r)
				}
			}
			_ = edgePeerUAPI(nil, dc, 0)
			_ = routedPrefixes(dc.OverlayAddr.Masked(), dc.Routes)
		}
		var hc api.HubConfig
		if json.Unmarshal(b, &hc) == nil && ValidateHubConfig(hc) == nil {
			changes := HubPeerDiff(nil, hc.Peers)
			if len(changes) != len(hc.Peers) {
				t.Fatalf("diff from nothing: %d changes for %d peers", len(changes), len(hc.Peers))
			}
			again := HubPeerDiff(hc.Peers, hc.Peers)
			if len(again) != 0 {
				t.Fatalf("diff of a config with itself: %v", again)
			}
			_ = hubPeerUAPI(changes)
			_ = mergeRanges(hubRoutes(hc))
			if rs := hubRoutes(hc); !slices.IsSortedFunc(rs, comparePrefix) {
				t.Fatalf("hub routes not sorted: %v", rs)
			}
		}
	})
}

// FuzzGuardProcNet parses /proc/net/tcp text as vcped reads it for SSH
// sessions.
func FuzzGuardProcNet(f *testing.F) {
	f.Add("  sl  local_address rem_address   st\n   0: 010513C6:0016 020513C6:D431 01 00000000:00000000\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, a := range parseProcNetTCP(strings.NewReader(s), map[uint16]bool{22: true}) {
			if !a.Is4() {
				t.Fatalf("parsed %v", a)
			}
		}
		_, _, _ = hexAddrPort(s)
	})
}
