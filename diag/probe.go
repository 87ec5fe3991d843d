package diag

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"time"
)

// Sample is what happened to one probe: a reply (Received set), an ICMP error
// (ICMP set), a local send error (SendError set) or nothing (lost). A reply
// to a sequence number that was already answered is a separate Sample with
// Duplicate set.
type Sample struct {
	Seq       int           `json:"seq"`
	Sent      time.Time     `json:"sent"`
	Received  time.Time     `json:"received,omitzero"`
	RTT       time.Duration `json:"rtt_ns,omitempty"`
	Size      int           `json:"size"`
	From      netip.Addr    `json:"from,omitzero"`
	Duplicate bool          `json:"duplicate,omitempty"`
	ICMP      *ICMPError    `json:"icmp_error,omitempty"`
	SendError string        `json:"send_error,omitempty"`
}

// Replied reports whether the sample is an echo reply (not an ICMP error).
func (s Sample) Replied() bool { return !s.Received.IsZero() && s.ICMP == nil }

// Status names the outcome: "reply", "duplicate", "icmp-error",
// "send-error" or "lost".
func (s Sample) Status() string {
	switch {
	case s.Duplicate:
		return "duplicate"
	case s.ICMP != nil:
		return "icmp-error"
	case s.SendError != "":
		return "send-error"
	case s.Replied():
		return "reply"
	}
	return "lost"
}

// Stats summarises a probe run. Loss counts every probe without an echo
// reply (ICMP errors and send errors included). RTT percentiles use the
// nearest-rank method. Jitter is the RFC 3550 interarrival jitter estimate
// (J += (|D| - J)/16) over the replies in arrival order, where D is the
// difference of consecutive RTTs.
type Stats struct {
	Sent       int           `json:"sent"`
	Received   int           `json:"received"`
	LossPct    float64       `json:"loss_pct"`
	Errors     int           `json:"errors"`
	Duplicates int           `json:"duplicates"`
	Reordered  int           `json:"reordered"`
	Min        time.Duration `json:"min_rtt_ns"`
	Avg        time.Duration `json:"avg_rtt_ns"`
	Max        time.Duration `json:"max_rtt_ns"`
	P50        time.Duration `json:"p50_rtt_ns"`
	P95        time.Duration `json:"p95_rtt_ns"`
	Jitter     time.Duration `json:"jitter_ns"`
}

// Summarize computes Stats from the samples of one run. It is pure: the
// order of samples does not matter (arrival order is taken from Received).
func Summarize(samples []Sample) Stats {
	var st Stats
	var replies []Sample
	for _, s := range samples {
		if s.Duplicate {
			st.Duplicates++
			continue
		}
		st.Sent++
		switch {
		case s.ICMP != nil || s.SendError != "":
			st.Errors++
		case s.Replied():
			replies = append(replies, s)
		}
	}
	st.Received = len(replies)
	if st.Sent > 0 {
		st.LossPct = float64(st.Sent-st.Received) * 100 / float64(st.Sent)
	}
	if len(replies) == 0 {
		return st
	}
	// Arrival order, for reordering and jitter.
	slices.SortStableFunc(replies, func(a, b Sample) int {
		if c := a.Received.Compare(b.Received); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	maxSeq := math.MinInt
	var jitter, sum float64
	for i, s := range replies {
		if s.Seq < maxSeq {
			st.Reordered++
		}
		maxSeq = max(maxSeq, s.Seq)
		if i > 0 {
			d := math.Abs(float64(s.RTT - replies[i-1].RTT))
			jitter += (d - jitter) / 16
		}
		sum += float64(s.RTT)
	}
	st.Jitter = time.Duration(math.Round(jitter))
	st.Avg = time.Duration(math.Round(sum / float64(len(replies))))
	rtts := make([]time.Duration, len(replies))
	for i, s := range replies {
		rtts[i] = s.RTT
	}
	slices.Sort(rtts)
	st.Min, st.Max = rtts[0], rtts[len(rtts)-1]
	st.P50, st.P95 = percentile(rtts, 50), percentile(rtts, 95)
	return st
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
