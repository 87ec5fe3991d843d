package controller

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller/store"
)

// TestHubConfigNeverSharesAPrefix: state stored before prefixes were
// unique hub-wide may hold the same prefix for two instances (in two
// CCNs); the hub is still given each prefix on one peer only, the
// first-registered device's, and an instance in no CCN nothing.
func TestHubConfigNeverSharesAPrefix(t *testing.T) {
	lan := netip.MustParsePrefix("198.19.1.0/24")
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil)), opts: Options{Overlay: DefaultOverlay},
		instances: map[string]*store.Instance{}, devices: map[string]*store.Device{}, instDevices: map[string][]string{}}
	add := func(id, ccn, sn string, seq uint64, key byte, adv ...netip.Prefix) {
		s.instances[id] = &store.Instance{ID: id, Name: id, CCN: ccn, Advertised: adv}
		s.devices[sn] = &store.Device{SN: sn, InstanceID: id, Status: store.StatusRegistered, RegisteredSeq: seq,
			PublicKey: api.Key{key}, Overlay: netip.AddrFrom4([4]byte{198, 18, 64, key})}
		s.instDevices[id] = []string{sn}
	}
	add("late", "red", "SN-LATE", 2, 3, lan, netip.MustParsePrefix("198.19.9.0/24"))
	add("early", "blue", "SN-EARLY", 1, 2, netip.MustParsePrefix("198.19.1.0/25"))
	add("loner", "", "SN-LONER", 3, 4, netip.MustParsePrefix("198.19.20.0/24"))
	for range 20 { // map order varies: the answer must not
		got := map[string][]netip.Prefix{}
		for _, p := range s.hubConfigUnsorted().Peers {
			got[p.SN] = p.AllowedIPs[1:]
		}
		if !slices.Equal(got["SN-EARLY"], []netip.Prefix{netip.MustParsePrefix("198.19.1.0/25")}) ||
			!slices.Equal(got["SN-LATE"], []netip.Prefix{netip.MustParsePrefix("198.19.9.0/24")}) || len(got["SN-LONER"]) != 0 {
			t.Fatalf("hub peers' prefixes %v; want the overlap only on the first-registered device, nothing for no CCN", got)
		}
	}
}

// TestPrefixSetMatchesOverlaps: the linear overlap check answers as
// netip.Prefix.Overlaps against every prefix added, on random prefixes.
func TestPrefixSetMatchesOverlaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func() netip.Prefix {
		// A small space, so overlaps are common.
		a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(8) * 32), byte(rng.IntN(4) * 64)})
		return netip.PrefixFrom(a, 14+rng.IntN(19)).Masked()
	}
	for round := range 200 {
		var set prefixSet
		var all []netip.Prefix
		for range 30 {
			q := random()
			want := slices.ContainsFunc(all, q.Overlaps)
			if got := set.overlaps(q); got != want {
				t.Fatalf("round %d: %v overlaps %v: %v; want %v", round, q, all, got, want)
			}
			if !want {
				set.add(q)
				all = append(all, q)
			}
		}
	}
}
