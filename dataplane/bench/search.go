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
// at most 7 probes.
var DefaultSearch = Search{MaxProbes: 7, MaxLoss: 1, Tolerance: 0.05}

// Step is one probe of a search.
type Step struct {
	Rate float64     `json:"offered_bits_per_second"` // 0: unlimited
	Got  Measurement `json:"got"`
	Pass bool        `json:"pass"`
}

// SearchResult is the outcome of a search.
type SearchResult struct {
	// Rate is the highest offered rate that passed, in bit/s. It is 0 when
	// SenderBound: sending as fast as iperf3 could stayed under the loss
	// limit, so the sender, not the path, is the bottleneck.
	Rate        float64 `json:"offered_bits_per_second"`
	SenderBound bool    `json:"sender_bound"`
	Steps       []Step  `json:"steps"`
}

// ErrNoLosslessRate means no probe stayed under the loss limit.
var ErrNoLosslessRate = errors.New("no offered rate stayed under the loss limit")

// Run finds the highest offered rate with loss under s.MaxLoss. It first
// sends as fast as it can; if that loses too much, it starts just under
// the rate the receiver got, steps down by 20% until a probe passes, then
// bisects between the best pass and the lowest failure.
func (s Search) Run(ctx context.Context, probe Probe) (SearchResult, error) {
	var res SearchResult
	if s.MaxProbes < 1 {
		return res, fmt.Errorf("udp search: MaxProbes is %d; want at least 1", s.MaxProbes)
	}
	try := func(rate float64) (bool, Measurement, error) {
		m, err := probe(ctx, rate)
		if err != nil {
			return false, m, fmt.Errorf("udp search: probe at %.0f Mbit/s: %w", rate/1e6, err)
		}
		pass := m.LostPercent < s.MaxLoss
		res.Steps = append(res.Steps, Step{Rate: rate, Got: m, Pass: pass})
		return pass, m, nil
	}
	pass, first, err := try(0)
	if err != nil {
		return res, err
	}
	if pass {
		res.SenderBound = true
		return res, nil
	}
	lo, hi := 0.0, first.SentBitsPerSecond
	guess := 0.98 * first.BitsPerSecond
	for len(res.Steps) < s.MaxProbes && guess > 0 {
		pass, _, err := try(guess)
		if err != nil {
			return res, err
		}
		if pass {
			lo = guess
		} else {
			hi = guess
		}
		if lo > 0 && (hi-lo) <= s.Tolerance*hi {
			break
		}
		if lo == 0 {
			guess *= 0.8
		} else {
			guess = (lo + hi) / 2
		}
	}
	if lo == 0 {
		return res, ErrNoLosslessRate
	}
	res.Rate = lo
	return res, nil
}
