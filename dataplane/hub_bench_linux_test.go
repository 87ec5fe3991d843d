package dataplane_test

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// hubConfigN is a hub configuration of n peers in one CCN, each active
// with its own /29 of 198.19.0.0/16; shift moves peer 0's prefix (one
// change).
func hubConfigN(tb testing.TB, n, gen int, shift bool) api.HubConfig {
	cfg := api.HubConfig{Generation: uint64(gen), Overlay: overlay, HubOverlayAddr: hubOver, CloudPrefixes: []netip.Prefix{cloudNet}}
	for i := range n {
		ov := netip.AddrFrom4([4]byte{198, 18, byte(64 + (i+2)>>8), byte(i + 2)})
		k := uint32(i) * 8
		lan := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(k >> 8), byte(k)}), 29)
		if i == 0 && shift {
			lan = netip.MustParsePrefix("198.18.128.0/29")
		}
		cfg.Peers = append(cfg.Peers, api.HubPeer{SN: "sn" + ov.String(), CCN: "blue", PublicKey: benchKeys[i],
			OverlayAddr: ov, AllowedIPs: []netip.Prefix{netip.PrefixFrom(ov, 32), lan}, Active: true})
	}
	return cfg
}

var benchKeys []api.Key

// BenchmarkHubApply measures the hub dataplane applying a configuration
// of 1,000 peers (WireGuard peers, routes, nftables CCN isolation) in a
// fresh namespace: full-apply-ms is the first apply of all of them, and
// each iteration one prefix change (one peer's allowed IPs and route).
func BenchmarkHubApply(b *testing.B) {
	ns := namespace.New(b)
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		b.Fatal(err)
	}
	h0, err := netns.GetFromName(ns.Name)
	if err != nil {
		b.Fatal(err)
	}
	if err := netns.Set(h0); err != nil {
		b.Fatal(err)
	}
	h0.Close()
	defer func() {
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	}()
	const n = 1000
	for len(benchKeys) < n {
		benchKeys = append(benchKeys, mustKey(b).PublicKey())
	}
	h, err := dataplane.NewHub(dataplane.HubOptions{PrivateKey: mustKey(b), UAPIDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	if err := h.Start(api.HubConfig{Generation: 1, Overlay: overlay, HubOverlayAddr: hubOver, CloudPrefixes: []netip.Prefix{cloudNet}}); err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	t0 := time.Now()
	if err := h.Apply(hubConfigN(b, n, 2, false)); err != nil {
		b.Fatal(err)
	}
	full := time.Since(t0)
	if st := h.Status(); len(st.Peers) != n {
		b.Fatalf("%d peers after apply; want %d", len(st.Peers), n)
	}
	gen := 3
	for b.Loop() {
		if err := h.Apply(hubConfigN(b, n, gen, gen%2 == 1)); err != nil {
			b.Fatal(err)
		}
		gen++
	}
	b.ReportMetric(float64(full.Microseconds())/1000, "full-apply-ms")
}
