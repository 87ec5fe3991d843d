package controller

import (
	"net/netip"
	"testing"
	"time"
)

func TestReachLimiter(t *testing.T) {
	l := (&Server{}).reachLimiter()
	now := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	a, b := netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("198.18.0.12")
	for i := range ReachBurst {
		if _, ok := l.allow(a, now); !ok {
			t.Fatalf("request %d from %s refused within the burst", i+1, a)
		}
	}
	d, ok := l.allow(a, now)
	if ok || d <= 0 || d > ReachEvery {
		t.Fatalf("request past the burst: allowed=%v wait=%v; want refused with a wait up to %v", ok, d, ReachEvery)
	}
	if _, ok := l.allow(b, now); !ok {
		t.Fatalf("another source refused because of %s's flood", a)
	}
	if _, ok := l.allow(a, now.Add(ReachEvery)); !ok {
		t.Fatalf("%s still refused after %v", a, ReachEvery)
	}
	// The global limit holds against many sources at once.
	refused := 0
	for i := range 50 {
		if _, ok := l.allow(netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), now.Add(ReachEvery)); !ok {
			refused++
		}
	}
	if refused < 50-reachGlobalPerSec {
		t.Fatalf("%d of 50 requests from distinct sources in one instant refused; want at least %d", refused, 50-reachGlobalPerSec)
	}
}
