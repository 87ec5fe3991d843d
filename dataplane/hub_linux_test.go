package dataplane_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// TestHubStartApplyClose runs the hub in-process inside a namespace: Start
// replaces a table a crashed run left, Apply changes peers and routes, and
// Close removes the table, the routes and the interface (twice is fine).
func TestHubStartApplyClose(t *testing.T) {
	ns := namespace.New(t)
	// A leftover of a crashed hub: the table exists with a stale rule.
	ns.Run("nft", "add table ip vcpe")
	ns.Run("nft", "add chain ip vcpe stale { type filter hook forward priority 0 ; }")
	enter(t, ns)
	pa, pb := mustKey(t).PublicKey(), mustKey(t).PublicKey()
	cfg := api.HubConfig{Generation: 1, Overlay: overlay, HubOverlayAddr: hubOver, CloudPrefixes: []netip.Prefix{cloudNet},
		Peers: []api.HubPeer{
			{SN: "a", CCN: "blue", PublicKey: pa, OverlayAddr: netip.MustParseAddr("198.18.64.2"), AllowedIPs: pfx("198.18.64.2/32", "198.19.1.0/24"), Active: true},
			{SN: "b", CCN: "blue", PublicKey: pb, OverlayAddr: netip.MustParseAddr("198.18.64.3"), AllowedIPs: pfx("198.18.64.3/32", "198.19.2.0/24"), Active: true},
		}}
	h, err := dataplane.NewHub(dataplane.HubOptions{PrivateKey: mustKey(t), UAPIDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(cfg); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	table := ns.Run("nft", "list table ip vcpe")
	if strings.Contains(table, "stale") || !strings.Contains(table, "hook forward") {
		t.Errorf("table after Start:\n%s", table)
	}
	if got := ownRouteDsts(t); !slices.Equal(got, []string{"198.19.1.0/24", "198.19.2.0/24"}) {
		t.Errorf("routes after Start: %v", got)
	}
	st := h.Status()
	if st.Role != "hub" || st.State != dataplane.StateUp || len(st.Peers) != 2 || !st.Peers[0].Active || st.Peers[0].CCN != "blue" {
		t.Errorf("status: %+v", st)
	}

	cfg.Generation = 2
	cfg.Peers = cfg.Peers[:1]
	cfg.Peers[0].AllowedIPs = pfx("198.18.64.2/32", "198.19.1.0/24", "198.19.11.0/24")
	if err := h.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if got := ownRouteDsts(t); !slices.Equal(got, []string{"198.19.1.0/24", "198.19.11.0/24"}) {
		t.Errorf("routes after Apply: %v", got)
	}
	if st := h.Status(); len(st.Peers) != 1 || st.Generation != 2 || len(st.Peers[0].AllowedIPs) != 3 {
		t.Errorf("status after Apply: %+v", st)
	}
	bad := cfg
	bad.Peers = append(bad.Peers, api.HubPeer{SN: "dup", PublicKey: pa})
	if err := h.Apply(bad); err == nil || !strings.Contains(err.Error(), "public_key") {
		t.Errorf("Apply with a duplicate key: %v; want an error naming public_key", err)
	}

	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if out, err := ns.Try("nft", "list", "table", "ip", "vcpe"); err == nil {
		t.Errorf("table left after Close:\n%s", out)
	}
	if got := ownRouteDsts(t); len(got) != 0 {
		t.Errorf("routes left after Close: %v", got)
	}
	if _, err := netlink.LinkByName(dataplane.DefaultTUN); err == nil {
		t.Errorf("interface left after Close")
	}
}
