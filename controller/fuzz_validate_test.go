package controller

import (
	"net/netip"
	"testing"
)

// FuzzValidateAdvertise: whatever prefixes a device sends, an accepted
// list is IPv4, masked, /8–/32, outside the reserved ranges, without
// overlaps and within the quota; probe addresses accepted lie inside it.
func FuzzValidateAdvertise(f *testing.F) {
	f.Add([]byte{198, 19, 1, 0, 24, 198, 19, 2, 0, 24}, []byte{198, 19, 1, 1}, uint8(5))
	f.Add([]byte{10, 0, 0, 0, 8, 10, 1, 0, 0, 16}, []byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, raw []byte, probe []byte, quota uint8) {
		var ps []netip.Prefix
		for i := 0; i+5 <= len(raw); i += 5 {
			ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte(raw[i:i+4])), int(raw[i+4])%40-4))
		}
		var addrs []netip.Addr
		for i := 0; i+4 <= len(probe); i += 4 {
			addrs = append(addrs, netip.AddrFrom4([4]byte(probe[i:i+4])))
		}
		if ValidateAdvertise(ps, int(quota)) != nil {
			return
		}
		if len(ps) > int(quota) {
			t.Fatalf("accepted %d prefixes over quota %d", len(ps), quota)
		}
		for i, p := range ps {
			if !p.IsValid() || p.Bits() < 8 || p.Masked() != p {
				t.Fatalf("accepted %v", p)
			}
			for _, r := range reserved {
				if r.p.Overlaps(p) {
					t.Fatalf("accepted reserved %v", p)
				}
			}
			for _, q := range ps[:i] {
				if q.Overlaps(p) {
					t.Fatalf("accepted overlapping %v %v", p, q)
				}
			}
		}
		got, e := ValidateProbeAddrs(addrs, ps)
		if e != nil {
			return
		}
		for _, a := range got {
			inside := false
			for _, p := range ps {
				inside = inside || p.Contains(a)
			}
			if !inside {
				t.Fatalf("probe address %v outside %v", a, ps)
			}
		}
	})
}
