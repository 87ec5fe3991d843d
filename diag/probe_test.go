package diag

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// reply makes the sample of a reply to probe seq sent at seq*10ms that
// took rtt.
func reply(seq int, rtt time.Duration) Sample {
	sent := t0.Add(time.Duration(seq) * 10 * time.Millisecond)
	return Sample{Seq: seq, Sent: sent, Received: sent.Add(rtt), RTT: rtt, Size: 84, From: netip.MustParseAddr("198.18.0.1")}
}

func lost(seq int) Sample {
	return Sample{Seq: seq, Sent: t0.Add(time.Duration(seq) * 10 * time.Millisecond), Size: 84}
}

func ms_(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestSummarize(t *testing.T) {
	dup := reply(1, ms_(3))
	dup.Duplicate = true
	icmpErr := lost(2)
	icmpErr.ICMP = newICMPError(3, 3, netip.MustParseAddr("198.18.0.1"), 0)
	icmpErr.Received = icmpErr.Sent.Add(ms_(1))
	sendErr := lost(3)
	sendErr.SendError = "message too long"

	tests := []struct {
		name    string
		samples []Sample
		want    Stats
	}{
		{name: "no samples", samples: nil, want: Stats{}},
		{name: "all lost", samples: []Sample{lost(0), lost(1)}, want: Stats{Sent: 2, LossPct: 100}},
		{
			name:    "one reply",
			samples: []Sample{reply(0, ms_(5))},
			want:    Stats{Sent: 1, Received: 1, Min: ms_(5), Avg: ms_(5), Max: ms_(5), P50: ms_(5), P95: ms_(5)},
		},
		{
			name:    "loss, duplicate, icmp and send errors",
			samples: []Sample{reply(0, ms_(2)), reply(1, ms_(4)), dup, icmpErr, sendErr, lost(4)},
			want: Stats{Sent: 5, Received: 2, LossPct: 60, Errors: 2, Duplicates: 1,
				Min: ms_(2), Avg: ms_(3), Max: ms_(4), P50: ms_(2), P95: ms_(4), Jitter: ms_(2.0 / 16)},
		},
		{
			// Probe 1 takes 25ms and arrives after probes 2 and 3 (sent 10
			// and 20ms after it): one probe arrived out of order.
			name:    "reordering",
			samples: []Sample{reply(0, ms_(1)), reply(1, ms_(25)), reply(2, ms_(1)), reply(3, ms_(1))},
			want: Stats{Sent: 4, Received: 4, Reordered: 1, Min: ms_(1), Avg: ms_(7), Max: ms_(25), P50: ms_(1), P95: ms_(25),
				// arrival order: 0 (1), 2 (1), 3 (1), 1 (25): D = 0, 0, 24
				Jitter: ms_(24.0 / 16)},
		},
		{
			name: "percentiles by nearest rank",
			samples: func() []Sample {
				var s []Sample
				for i := range 20 {
					s = append(s, reply(i, ms_(float64(20-i)))) // RTTs 20..1 ms
				}
				return s
			}(),
			want: Stats{Sent: 20, Received: 20, Min: ms_(1), Avg: ms_(10.5), Max: ms_(20), P50: ms_(10), P95: ms_(19), Reordered: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summarize(tt.samples)
			if tt.name == "percentiles by nearest rank" {
				got.Jitter, got.Reordered = 0, 0 // covered elsewhere
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Summarize() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJitterRFC3550 checks the estimator against a hand-computed example:
// transit times 10, 12, 11, 15 ms give |D| = 2, 1, 4 ms and
//
//	J1 = 0     + (2 - 0)/16     = 0.125
//	J2 = 0.125 + (1 - 0.125)/16 = 0.1796875
//	J3 = J2    + (4 - J2)/16    = 0.41845703125 ms
//
// Samples are given out of sequence order; arrival order is what counts.
func TestJitterRFC3550(t *testing.T) {
	rtts := []float64{10, 12, 11, 15}
	var s []Sample
	for i := len(rtts) - 1; i >= 0; i-- {
		// Sent 100ms apart so arrival order equals sequence order.
		sent := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		s = append(s, Sample{Seq: i, Sent: sent, RTT: ms_(rtts[i]), Received: sent.Add(ms_(rtts[i]))})
	}
	got := Summarize(s).Jitter
	if want := time.Duration(418457); got != want {
		t.Errorf("jitter = %v; want %v", got, want)
	}
}

func TestSampleStatus(t *testing.T) {
	dup := reply(0, 1)
	dup.Duplicate = true
	se := lost(0)
	se.SendError = "x"
	ie := lost(0)
	ie.ICMP = &ICMPError{}
	for s, want := range map[*Sample]string{ptr(reply(0, 1)): "reply", ptr(lost(0)): "lost", &dup: "duplicate", &se: "send-error", &ie: "icmp-error"} {
		if got := s.Status(); got != want {
			t.Errorf("Status() = %q; want %q", got, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
