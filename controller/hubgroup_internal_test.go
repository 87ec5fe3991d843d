package controller

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller/store"
)

// groupFixture is a controller's memory with n registered devices (one
// per instance, all in one CCN) and hubs registered hubs besides its own.
func groupFixture(tb testing.TB, n, hubs int) *Server {
	tb.Helper()
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		opts:      Options{Overlay: DefaultOverlay, EmbeddedHub: true, HubName: "hub", HubEndpoint: netip.MustParseAddrPort("198.18.0.1:4500")},
		instances: map[string]*store.Instance{}, devices: map[string]*store.Device{}, instDevices: map[string][]string{},
		hubs: map[string]*store.Hub{}, hubAddr: netip.MustParseAddr("198.18.64.1")}
	s.hubKey[0] = 9
	for i := range hubs {
		name := fmt.Sprintf("h%d", i+1)
		s.hubs[name] = &store.Hub{Name: name, PublicKey: api.Key{byte(i + 1), 1}, Endpoint: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(2 + i)}), 4500),
			Overlay: netip.AddrFrom4([4]byte{198, 18, 127, byte(254 - i)})}
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id, sn := fmt.Sprintf("i-%05d", i), fmt.Sprintf("SN%05d", i)
		s.instances[id] = &store.Instance{ID: id, Name: id, CCN: "ccn-1", CreatedAt: at.Add(time.Duration(i) * time.Second),
			Advertised: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)}}
		s.devices[sn] = &store.Device{SN: sn, InstanceID: id, Status: store.StatusRegistered, RegisteredSeq: uint64(i + 1),
			PublicKey: api.Key{byte(i), byte(i >> 8), 7}, Overlay: netip.AddrFrom4([4]byte{198, 18, byte(64 + (i+2)>>8), byte(i + 2)})}
		s.instDevices[id] = []string{sn}
	}
	return s
}

// TestDefaultAssignmentIsDeterministic: the default assignment (read
// before it is stored) spreads evenly and does not depend on map order.
func TestDefaultAssignmentIsDeterministic(t *testing.T) {
	s := groupFixture(t, 30, 2) // hub, h1, h2
	first := s.computeGroupLocked().assign
	prim := map[string]int{}
	for _, a := range first {
		if len(a) != 2 || a[0] == a[1] {
			t.Fatalf("assignment %v; want two different hubs", a)
		}
		prim[a[0]]++
	}
	if prim["hub"] != 10 || prim["h1"] != 10 || prim["h2"] != 10 {
		t.Errorf("primaries %v over 30 instances and 3 hubs; want 10 each", prim)
	}
	for range 20 {
		again := s.computeGroupLocked().assign
		for id, a := range first {
			if !slices.Equal(again[id], a) {
				t.Fatalf("instance %s: %v then %v; want the same default every time", id, a, again[id])
			}
		}
	}
}

// BenchmarkHubConfigViews: what a hub's long-poll answer costs when the
// group's configuration is computed for it (compute) and when it is a view
// of the configuration computed once per generation (view), 2,000
// devices, 3 hubs. Compare the two in one run.
func BenchmarkHubConfigViews(b *testing.B) {
	s := groupFixture(b, 2000, 2)
	b.Run("compute", func(b *testing.B) {
		for b.Loop() {
			s.group, s.base = nil, nil
			if hc := s.HubConfigFor("h1"); len(hc.Peers) != 2000 {
				b.Fatal(len(hc.Peers))
			}
		}
	})
	b.Run("view", func(b *testing.B) {
		for b.Loop() {
			if hc := s.HubConfigFor("h1"); len(hc.Peers) != 2000 || hc.Name != "h1" {
				b.Fatal(len(hc.Peers))
			}
		}
	})
}

// BenchmarkDeviceConfigAfterAChange: what a device's configuration costs
// after a change that leaves hubs and assignments alone (a registration,
// a route change: the group is kept) and after one that changes them (the
// group is computed again), 10,000 instances, 3 hubs.
func BenchmarkDeviceConfigAfterAChange(b *testing.B) {
	s := groupFixture(b, 10000, 2)
	d := s.devices["SN00042"]
	for _, bc := range []struct {
		name  string
		reset func()
	}{{"group-kept", s.invalidateHubConfigLocked}, {"group-recomputed", s.invalidateGroupLocked}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				bc.reset()
				s.gen++
				if cfg := s.deviceConfigLocked(d); len(cfg.Hubs) != 2 {
					b.Fatalf("hubs %v", cfg.Hubs)
				}
			}
		})
	}
}
