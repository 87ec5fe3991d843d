package bench

import (
	"context"
	"errors"
	"fmt"
)

// Probe runs one UDP measurement at an offered rate in bit/s (0: as fast as
// the sender can).
type Probe func(ctx context.Context, rate float64) (Measurement, error)

// Search bounds the search for the highest lossless UDP rate.
type Search struct {
	MaxProbes int     // probes in all, including the first unlimited one
	MaxLoss   float64 // a probe passes when its loss is below this, in percent
	Tolerance float64 // stop when the bracket is this narrow, relative to its top
}

// DefaultSearch is the search make bench runs: under 1% loss, within 5%,
// at most 8 probes.
var DefaultSearch = Search{MaxProbes: 8, MaxLoss: 1, Tolerance: 0.05}

// Step is one probe of a search.
type Step struct {
	Rate float64     `json:"offered_bits_per_second"` // 0: unlimited
	Got  Measurement `json:"got"`
	Pass bool        `json:"pass"`
	// Drops are the kernel drop counters that grew during the probe.
	Drops Counters `json:"drops,omitempty"`
}

// SearchResult is the outcome of a search.
type SearchResult struct {
	// Rate is the highest offered rate that passed, in bit/s. It is 0 when
	// SenderBound: sending as fast as iperf3 could stayed under the loss
	// limit, so the sender, not the path, is the bottleneck.
	Rate        float64 `json:"offered_bits_per_second"`
	SenderBound bool    `json:"sender_bound"`
	// Best is the index in Steps of the probe that found Rate (or that
	// was sender-bound); -1 when none passed.
	Best  int    `json:"best_step"`
	Steps []Step `json:"steps"`
}

// ErrNoLosslessRate means no probe stayed under the loss limit.
var ErrNoLosslessRate = errors.New("no offered rate stayed under the loss limit")

// Run finds the highest offered rate with loss under s.MaxLoss, probing
// one rate after another (see Searcher).
func (s Search) Run(ctx context.Context, probe Probe) (SearchResult, error) {
	sr := s.Start()
	for {
		rate, more := sr.Next()
		if !more {
			return sr.Result()
		}
		m, err := probe(ctx, rate)
		if err != nil {
			return sr.res, fmt.Errorf("udp search: probe at %.0f Mbit/s: %w", rate/1e6, err)
		}
		sr.Observe(rate, m)
	}
}

// Searcher is one search in progress, driven step by step so that the
// searches of several variants can take turns probing.
//
// It first sends as fast as it can; if that loses too much, it starts just
// under the rate the receiver got, steps down by 25% until a probe passes,
// then bisects between the best pass and the lowest failure. A rate the
// sender did not reach counts as the rate it did reach.
//
// What the receiver got under overload is not a ceiling: the sender
// flooding the machine takes CPU from the tunnel, so a tunnel can carry
// more without loss than it delivered while flooded. When the first
// bounded probe passes near that figure, the search steps up by 25% until
// a probe fails, and bisects from there.
type Searcher struct {
	s      Search
	res    SearchResult
	lo, hi float64
	// soft: hi is only what got through under overload, not a rate that
	// failed.
	soft bool
	next float64
	done bool
}

// Start begins a search.
func (s Search) Start() *Searcher { return &Searcher{s: s, res: SearchResult{Best: -1}} }

// Next returns the rate to probe next, or false when the search is over.
func (sr *Searcher) Next() (float64, bool) {
	if sr.done || sr.s.MaxProbes < 1 || len(sr.res.Steps) >= sr.s.MaxProbes || (len(sr.res.Steps) > 0 && sr.next <= 0) {
		return 0, false
	}
	return sr.next, true
}

// Observe records the measurement of a probe at rate.
func (sr *Searcher) Observe(rate float64, m Measurement) {
	pass := m.LostPercent < sr.s.MaxLoss
	sr.res.Steps = append(sr.res.Steps, Step{Rate: rate, Got: m, Pass: pass})
	tried := rate
	if rate == 0 || (m.SentBitsPerSecond > 0 && m.SentBitsPerSecond < rate) {
		tried = m.SentBitsPerSecond
	}
	if rate == 0 && len(sr.res.Steps) == 1 {
		if pass {
			sr.res.SenderBound, sr.done, sr.res.Best = true, true, 0
			return
		}
		// Start just under what got through under overload.
		sr.hi, sr.next = min(tried, m.BitsPerSecond), 0.98*m.BitsPerSecond
		sr.soft = true
		return
	}
	switch {
	case pass:
		if tried > sr.lo {
			sr.lo, sr.res.Best = tried, len(sr.res.Steps)-1
		}
		if sr.soft && tried >= (1-sr.s.Tolerance)*sr.hi {
			if rate > 0 && tried < (1-sr.s.Tolerance)*rate {
				// The sender could not reach the rate: it, not the
				// path, bounds the search from here.
				sr.done = true
				return
			}
			sr.hi = max(sr.hi, tried)
			sr.next = 1.25 * tried
			return
		}
	case tried <= sr.lo:
		// Lost more below a rate that passed: noise; the bracket is gone.
		sr.done = true
		return
	case sr.soft:
		sr.hi, sr.soft = tried, false
	default:
		sr.hi = min(sr.hi, tried)
	}
	if sr.lo > 0 && sr.hi-sr.lo <= sr.s.Tolerance*sr.hi {
		sr.done = true
		return
	}
	if sr.lo == 0 {
		sr.next = 0.75 * tried
	} else {
		sr.next = (sr.lo + sr.hi) / 2
	}
}

// AnnotateDrops attaches drop counters to the last observed probe.
func (sr *Searcher) AnnotateDrops(d Counters) {
	if n := len(sr.res.Steps); n > 0 {
		sr.res.Steps[n-1].Drops = d
	}
}

// Result is the outcome once Next has returned false.
func (sr *Searcher) Result() (SearchResult, error) {
	if sr.s.MaxProbes < 1 {
		return sr.res, fmt.Errorf("udp search: MaxProbes is %d; want at least 1", sr.s.MaxProbes)
	}
	if sr.res.SenderBound {
		return sr.res, nil
	}
	if sr.lo == 0 {
		return sr.res, ErrNoLosslessRate
	}
	sr.res.Rate = sr.lo
	return sr.res, nil
}
