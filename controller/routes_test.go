package controller

import (
	"net/netip"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
)

func pp(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestValidateAdvertise(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    []netip.Prefix
		quota int
		code  string
		field string
	}{
		{"ok", pp("198.19.1.0/24", "198.19.2.0/24"), 5, "", ""},
		{"none", nil, 5, "", ""},
		{"/8 and /32 are the limits", pp("10.0.0.0/8", "198.19.1.1/32"), 5, "", ""},
		{"/7", pp("198.0.0.0/7"), 5, api.CodeInvalidInput, "advertise[0]"},
		{"ipv6", pp("2001:db8::/32"), 5, api.CodeInvalidInput, "advertise[0]"},
		{"host bits", pp("198.19.1.0/24", "198.19.2.5/24"), 5, api.CodeInvalidInput, "advertise[1]"},
		{"loopback", pp("127.0.0.0/8"), 5, api.CodeInvalidInput, "advertise[0]"},
		{"multicast", pp("239.1.0.0/16"), 5, api.CodeInvalidInput, "advertise[0]"},
		{"duplicate", pp("198.19.1.0/24", "198.19.1.0/24"), 5, api.CodeInvalidInput, "advertise[1]"},
		{"nested", pp("198.19.0.0/16", "198.19.1.0/24"), 5, api.CodeInvalidInput, "advertise[1]"},
		{"quota", pp("198.19.1.0/24", "198.19.2.0/24", "198.19.3.0/24"), 2, api.CodeQuota, "advertise"},
		{"invalid", []netip.Prefix{{}}, 5, api.CodeInvalidInput, "advertise[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ValidateAdvertise(tc.in, tc.quota)
			if tc.code == "" {
				if e != nil {
					t.Fatalf("got %v; want ok", e)
				}
				return
			}
			if e == nil || e.Code != tc.code || e.Field != tc.field || e.Message == "" {
				t.Fatalf("got %+v; want %s on %s", e, tc.code, tc.field)
			}
		})
	}
}

func TestBackoffHasNoPermanentLockout(t *testing.T) {
	b := newBackoff(2, time.Second, 30*time.Second, 15*time.Minute)
	now := time.Unix(0, 0)
	for range 2 {
		b.fail("k", now)
	}
	if d := b.blocked("k", now); d != 0 {
		t.Fatalf("blocked %v after the free failures", d)
	}
	var last time.Duration
	for i := range 100 {
		b.fail("k", now)
		d := b.blocked("k", now)
		if d <= 0 || d > 30*time.Second || (i < 4 && d <= last) {
			t.Fatalf("failure %d: blocked %v (before %v); want growing, capped at 30s", i, d, last)
		}
		last = d
	}
	if d := b.blocked("k", now.Add(31*time.Second)); d != 0 {
		t.Errorf("still blocked %v after the cap", d)
	}
	if d := b.blocked("other", now); d != 0 {
		t.Errorf("another key blocked %v", d)
	}
	// A quiet key starts over.
	b.fail("k", now.Add(time.Hour))
	if d := b.blocked("k", now.Add(time.Hour)); d != 0 {
		t.Errorf("blocked %v after an hour of quiet", d)
	}
}

func TestNonces(t *testing.T) {
	n := newNonces(time.Minute, 2, 2)
	now := time.Unix(0, 0)
	n.add("a", "SN1", "h1", now)
	n.add("b", "SN1", "h2", now)
	// A full table evicts its oldest nonce, never refuses a new one.
	n.add("c", "SN1", "h3", now)
	if n.len() != 2 || n.take("a", "SN1", now) {
		t.Errorf("full table: %d nonces, oldest still there; want 2 with the oldest evicted", n.len())
	}
	if n.take("b", "SN2", now) {
		t.Error("nonce for SN1 accepted for SN2")
	}
	if n.take("b", "SN1", now) {
		t.Error("nonce reused after a failed take")
	}
	if n.take("c", "SN1", now.Add(time.Minute)) {
		t.Error("expired nonce accepted")
	}
	n.add("d", "SN1", "h1", now.Add(2*time.Minute))
	if !n.take("d", "SN1", now.Add(2*time.Minute)) {
		t.Error("fresh nonce refused")
	}
	// One network keeps only its newest perNet nonces.
	n = newNonces(time.Minute, 100, 2)
	for _, x := range []string{"x1", "x2", "x3"} {
		n.add(x, "SN1", "flood", now)
	}
	if n.take("x1", "SN1", now) || !n.take("x3", "SN1", now) || !n.take("x2", "SN1", now) {
		t.Error("per-network limit: want the oldest nonce dropped, the newer two kept")
	}
	if len(n.byNet) != 0 || len(n.m) != 0 || n.len() != 0 {
		t.Errorf("left over: %v %v", n.byNet, n.m)
	}
}

func TestNetKeyAndLRU(t *testing.T) {
	a, b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	if netKey(a) != netKey(b) || netKey(a) != "2001:db8:1:2::/64" {
		t.Errorf("IPv6 keys %s %s; want one /64", netKey(a), netKey(b))
	}
	if netKey(netip.MustParseAddr("::ffff:198.18.0.1")) != "198.18.0.1" || netKey(netip.MustParseAddr("198.18.0.1")) == netKey(netip.MustParseAddr("198.18.0.2")) {
		t.Error("IPv4 keys are per address")
	}
	l := newLRU[int](3)
	for i, k := range []string{"a", "b", "c"} {
		l.put(k, i)
	}
	l.get("a") // a is now the most recent: b goes first
	l.put("d", 3)
	if _, ok := l.get("b"); ok || l.len() != 3 {
		t.Errorf("LRU kept b (len %d); want it evicted", l.len())
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := l.get(k); !ok {
			t.Errorf("LRU lost %s", k)
		}
	}
	// A backoff table never exceeds its bound.
	bo := newBackoff(0, time.Second, time.Minute, time.Hour)
	for i := range maxBackoffKeys + 10 {
		bo.fail(netKey(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}))+string(rune(i)), time.Unix(0, 0))
	}
	if bo.m.len() != maxBackoffKeys {
		t.Errorf("backoff table %d keys; want %d", bo.m.len(), maxBackoffKeys)
	}
}

func TestOverlayAllocation(t *testing.T) {
	s := &Server{opts: Options{Overlay: netip.MustParsePrefix("198.18.64.0/29")}, overlayUsed: map[netip.Addr]bool{}}
	s.hubAddr = s.opts.Overlay.Addr().Next()
	var got []string
	for {
		a, err := s.allocOverlayLocked(nil)
		if err != nil {
			break
		}
		s.overlayUsed[a] = true
		got = append(got, a.String())
	}
	want := []string{"198.18.64.2", "198.18.64.3", "198.18.64.4", "198.18.64.5", "198.18.64.6"}
	if len(got) != len(want) {
		t.Fatalf("allocated %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v; want %v", got, want)
		}
	}
	delete(s.overlayUsed, netip.MustParseAddr("198.18.64.3"))
	if a, err := s.allocOverlayLocked(nil); err != nil || a.String() != "198.18.64.3" {
		t.Errorf("after freeing .3: %v %v", a, err)
	}
}
