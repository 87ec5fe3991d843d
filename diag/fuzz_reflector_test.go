package diag

import (
	"net/netip"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/internal/clock"
)

// FuzzReflectorHandle: whatever arrives, the reflector answers only a
// well-formed request, with a reply of exactly its size, never more
// replies than the global cap allows.
func FuzzReflectorHandle(f *testing.F) {
	f.Add(request(1, 64), []byte{198, 18, 0, 11})
	f.Add([]byte("VCPR"), []byte{198, 18, 0, 12})
	f.Add(request(7, 1500), []byte{0, 0, 0, 0})
	clk := clock.NewFake(t0)
	r := &Reflector{Now: clk.Now, MaxSources: 64, Total: 100, TotalBurst: 10}
	f.Fuzz(func(t *testing.T, b []byte, src []byte) {
		a, ok := netip.AddrFromSlice(src)
		if !ok {
			a = netip.IPv4Unspecified()
		}
		clk.Advance(time.Millisecond)
		in := append([]byte(nil), b...)
		v := r.Handle(b, a)
		if v != Answer {
			return
		}
		p, err := DecodeProbe(b)
		if err != nil || p.Kind != KindReply || len(b) != len(in) {
			t.Fatalf("answered %q with %q", in, b)
		}
		if len(r.sources) > 64 {
			t.Fatalf("source table %d > 64", len(r.sources))
		}
	})
}
