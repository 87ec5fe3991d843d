package diag

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/internal/clock"
)

func request(seq uint32, n int) []byte {
	return AppendProbe(nil, Probe{Kind: KindRequest, Seq: seq, Sent: t0, Len: n})
}

func TestReflectorHandle(t *testing.T) {
	clk := clock.NewFake(t0)
	r := &Reflector{Now: clk.Now, MaxPayload: 100}
	src := netip.MustParseAddr("198.18.0.11")

	b := request(5, 100)
	in := bytes.Clone(b)
	if v := r.Handle(b, src); v != Answer {
		t.Fatalf("well-formed probe: %v; want answer", v)
	}
	p, err := DecodeProbe(b)
	if err != nil || p.Kind != KindReply || p.Seq != 5 || !p.Sent.Equal(t0) || len(b) != len(in) {
		t.Errorf("reply %+v (%v), %d bytes; want a reply to seq 5 of %d bytes", p, err, len(b), len(in))
	}
	if !bytes.Equal(b[6:], in[6:]) {
		t.Errorf("reply changed more than the kind byte")
	}

	reply := AppendProbe(nil, Probe{Kind: KindReply, Seq: 1, Len: 40})
	for name, tc := range map[string]struct {
		b    []byte
		want Verdict
	}{
		"garbage":    {[]byte("GET / HTTP/1.1\r\n\r\n"), RefuseMalformed},
		"empty":      {nil, RefuseMalformed},
		"a reply":    {reply, RefuseMalformed}, // never answer answers: no reflector loops
		"oversized":  {request(1, 101), RefuseOversized},
		"bad magic":  {append([]byte("xxxx"), request(1, 40)[4:]...), RefuseMalformed},
		"at the max": {request(1, 100), Answer},
	} {
		if v := r.Handle(tc.b, src); v != tc.want {
			t.Errorf("%s: %v; want %v", name, v, tc.want)
		}
	}
	st := r.Stats()
	if st.Answered != 2 || st.Malformed != 4 || st.Oversized != 1 || st.RateLimited != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestReflectorRateLimit(t *testing.T) {
	clk := clock.NewFake(t0)
	r := &Reflector{Now: clk.Now, PerSource: 10, PerSourceBurst: 5, Total: 1000, TotalBurst: 1000}
	a, b := netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("198.18.0.12")
	count := func(src netip.Addr, n int) (answered int) {
		for i := range n {
			if r.Handle(request(uint32(i), 64), src) == Answer {
				answered++
			}
		}
		return answered
	}
	if got := count(a, 50); got != 5 {
		t.Errorf("burst of 50 at once: %d answered; want the burst of 5", got)
	}
	if got := count(b, 50); got != 5 {
		t.Errorf("another source has its own bucket: %d answered; want 5", got)
	}
	clk.Advance(100 * time.Millisecond) // one token at 10/s
	if got := count(a, 50); got != 1 {
		t.Errorf("after 100ms: %d answered; want 1", got)
	}
	clk.Advance(10 * time.Second) // bucket refills to the burst, not beyond
	if got := count(a, 50); got != 5 {
		t.Errorf("after 10s: %d answered; want 5", got)
	}
	// A steady 10/s stream is answered in full.
	answered := 0
	for i := range 100 {
		clk.Advance(100 * time.Millisecond)
		if r.Handle(request(uint32(i), 64), a) == Answer {
			answered++
		}
	}
	if answered != 100 {
		t.Errorf("steady 10/s: %d of 100 answered", answered)
	}
	if st := r.Stats(); st.RateLimited == 0 {
		t.Errorf("stats %+v: no rate-limited probes counted", st)
	}
}

func TestReflectorTotalAndSourceTable(t *testing.T) {
	clk := clock.NewFake(t0)
	r := &Reflector{Now: clk.Now, PerSource: 100, PerSourceBurst: 100, Total: 1, TotalBurst: 3, MaxSources: 2}
	srcs := []netip.Addr{netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("198.18.0.12"), netip.MustParseAddr("198.18.0.13")}
	answered := 0
	for i := range 10 {
		if r.Handle(request(1, 64), srcs[i%2]) == Answer {
			answered++
		}
	}
	if answered != 3 {
		t.Errorf("total burst 3: %d answered", answered)
	}
	clk.Advance(time.Hour)
	if v := r.Handle(request(1, 64), srcs[2]); v != Answer {
		t.Errorf("a third source after the table expired: %v; want answer", v)
	}
}

// TestReflectorSpoofedFloodCannotLockOutProbers: thousands of spoofed
// sources fill the source table; a new real prober is still answered at
// once (the least recently seen source is evicted), the table never grows
// past its bound, and the global cap still bounds the replies.
func TestReflectorSpoofedFloodCannotLockOutProbers(t *testing.T) {
	clk := clock.NewFake(t0)
	r := &Reflector{Now: clk.Now, MaxSources: 4096, Total: 1000, TotalBurst: 1000}
	answered := 0
	for i := range 4200 {
		spoofed := netip.AddrFrom4([4]byte{198, 18, byte(100 + i/256), byte(i)})
		if r.Handle(request(uint32(i), 64), spoofed) == Answer {
			answered++
		}
	}
	if answered > 1000 {
		t.Errorf("%d replies to 4,200 spoofed sources in an instant; want at most the global burst 1000", answered)
	}
	if n := len(r.sources); n != 4096 || r.lru.Len() != 4096 {
		t.Errorf("source table %d entries; want the bound 4096", n)
	}
	clk.Advance(time.Second) // the global bucket refills
	if v := r.Handle(request(1, 64), netip.MustParseAddr("198.19.0.7")); v != Answer {
		t.Errorf("a real prober after the flood: %v; want answer", v)
	}
}
