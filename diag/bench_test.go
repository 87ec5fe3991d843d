package diag

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkDecodeProbe is the baseline for BenchmarkReflectorHandle: what
// the reflector costs beyond decoding (rate limiting, counters).
func BenchmarkDecodeProbe(b *testing.B) {
	p := request(1, 64)
	for b.Loop() {
		if _, err := DecodeProbe(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReflectorHandle(b *testing.B) {
	r := &Reflector{PerSource: 1e9, PerSourceBurst: 1e9, Total: 1e9, TotalBurst: 1e9}
	src := netip.MustParseAddr("198.18.0.11")
	p := request(1, 64)
	for b.Loop() {
		p[5] = byte(KindRequest)
		if r.Handle(p, src) != Answer {
			b.Fatal("refused")
		}
	}
}

func BenchmarkSummarize1000(b *testing.B) {
	s := make([]Sample, 1000)
	for i := range s {
		s[i] = reply(i, time.Duration(1000+i%37)*time.Microsecond)
	}
	for b.Loop() {
		Summarize(s)
	}
}
