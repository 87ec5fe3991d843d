package device

import (
	"net/netip"
	"slices"
	"testing"
)

func TestProbeAddrsIn(t *testing.T) {
	ifaddrs := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("198.18.0.11/24"),
		netip.MustParsePrefix("198.19.1.254/24"), netip.MustParsePrefix("198.19.1.1/24"),
		netip.MustParsePrefix("198.19.1.1/24"), netip.MustParsePrefix("fe80::1/64"),
	}
	got := ProbeAddrsIn(ifaddrs, []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24"), netip.MustParsePrefix("198.19.3.0/24")}, netip.MustParseAddr("198.19.1.254"))
	if !slices.Equal(got, []netip.Addr{netip.MustParseAddr("198.19.1.1")}) {
		t.Errorf("ProbeAddrsIn = %v; want [198.19.1.1] (the LAN address, not the gateway, no duplicate)", got)
	}
	if got := ProbeAddrsIn(ifaddrs, nil, netip.Addr{}); got != nil {
		t.Errorf("ProbeAddrsIn without prefixes = %v; want none", got)
	}
}
