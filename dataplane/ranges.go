package dataplane

import (
	"net/netip"
)

// addrRange is [Start, End] inclusive.
type addrRange struct{ Start, End netip.Addr }

// lastAddr is the last address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	if p.Bits() == 0 {
		host = ^uint32(0)
	}
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// mergeRanges turns IPv4 prefixes into sorted, non-overlapping,
// non-adjacent ranges: nftables interval sets reject overlapping elements.
func mergeRanges(ps []netip.Prefix) []addrRange {
	var out []addrRange
	for _, p := range normalize(ps) {
		if !p.Addr().Is4() {
			continue
		}
		r := addrRange{p.Addr(), lastAddr(p)}
		if n := len(out); n > 0 {
			last := &out[n-1]
			if next := last.End.Next(); !next.IsValid() || r.Start.Compare(next) <= 0 {
				if r.End.Compare(last.End) > 0 {
					last.End = r.End
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}
