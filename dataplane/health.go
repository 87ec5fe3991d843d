package dataplane

import (
	"slices"
	"time"
)

// healthTracker applies the HealthCheck model to one target: probes are
// sent with a sequence number, answers come back with it. It is pure.
type healthTracker struct {
	check   HealthCheck
	pending map[uint64]time.Time // seq → sent
	fails   int
	up      bool
}

func newHealthTracker(c HealthCheck) *healthTracker {
	return &healthTracker{check: c.WithDefaults(), pending: map[uint64]time.Time{}, up: true}
}

func (t *healthTracker) sent(seq uint64, now time.Time) { t.pending[seq] = now }

// answered records an answer; an answer slower than the RTT threshold is a
// failure.
func (t *healthTracker) answered(seq uint64, now time.Time) {
	at, ok := t.pending[seq]
	if !ok {
		return
	}
	delete(t.pending, seq)
	rtt := now.Sub(at)
	if rtt > t.check.Timeout || (t.check.RTTThreshold > 0 && rtt > t.check.RTTThreshold) {
		t.fail()
		return
	}
	t.fails, t.up = 0, true
}

// expire counts probes unanswered after Timeout as failures and reports
// whether the target is up.
func (t *healthTracker) expire(now time.Time) bool {
	for seq, at := range t.pending {
		if now.Sub(at) > t.check.Timeout {
			delete(t.pending, seq)
			t.fail()
		}
	}
	return t.up
}

func (t *healthTracker) fail() {
	t.fails++
	if t.fails >= t.check.Failures {
		t.up = false
	}
}

// Link states in LinkHealth.State.
const (
	LinkUp    = "up"    // probes are answered
	LinkLossy = "lossy" // the window loses many probes or answers slowly; the session is kept
	LinkDown  = "down"  // no answer to any probe of the window
)

// Liveness judgement of the tunnel (window of probes through it).
const (
	// livenessWindow is how many probes the loss and RTT judgement covers
	// (a minute at the default interval): long enough that random loss
	// does not wander across both thresholds.
	livenessWindow = 60
	// lossyEnter and lossyLeave are the loss shares (of a full window)
	// that make the link lossy and make it up again: the gap between them
	// keeps random loss near one threshold from flapping the state.
	lossyEnter = 0.25
	lossyLeave = 0.1
	// downProbes is how many probes in a row without an answer make the
	// link down (at 30 % loss each way, 15 in a row happen once in hours).
	downProbes = 15
)

// LinkHealth is the tunnel's liveness as its probes through it see it.
type LinkHealth struct {
	State  string    `json:"state"` // LinkUp, LinkLossy, LinkDown
	Since  time.Time `json:"since,omitzero"`
	Probes int       `json:"probes"` // judged (answered or timed out) in the window
	Lost   int       `json:"lost"`
	// Loss is Lost/Probes (0 with no probes).
	Loss float64 `json:"loss"`
	// RTT is the median round-trip time of the answered probes of the
	// window, RTTMax the slowest.
	RTT        time.Duration `json:"rtt,omitempty"`
	RTTMax     time.Duration `json:"rtt_max,omitempty"`
	LastAnswer time.Time     `json:"last_answer,omitzero"`
	// Handshakes counts the handshakes liveness started beside the
	// current session because the hub went quiet.
	Handshakes int `json:"handshakes"`
}

// probeOutcome is one judged probe.
type probeOutcome struct {
	lost bool
	rtt  time.Duration
}

// linkJudge is the windowed liveness of the tunnel: probes go out every
// interval, a probe counts once answered or after timeout, and the last
// livenessWindow outcomes decide the state with hysteresis. It never asks
// to tear a session down: when the hub has been silent for quietAfter it
// asks for a new handshake to be started beside the current session (at
// most once per quietAfter), which heals a hub that lost its state or a
// NAT mapping that changed, and costs nothing while the session works.
// It is pure: time comes in as arguments.
type linkJudge struct {
	timeout    time.Duration
	quietAfter time.Duration
	// rttLimit, when set, makes a window whose median RTT is above it
	// lossy (slow) as well.
	rttLimit time.Duration

	pending  map[uint64]time.Time
	window   []probeOutcome // oldest first, at most livenessWindow
	state    string
	since    time.Time
	start    time.Time // the judge's creation: silence counts from here before any answer
	lastAns  time.Time
	lastKick time.Time
	kicks    int
	lossy    bool // hysteresis state of the loss judgement
	maxTrack int
}

func newLinkJudge(now time.Time, interval, quietAfter time.Duration) *linkJudge {
	return &linkJudge{timeout: max(interval, time.Second), quietAfter: quietAfter, pending: map[uint64]time.Time{},
		state: LinkUp, since: now, start: now, lastKick: now, maxTrack: 4 * livenessWindow}
}

func (j *linkJudge) sent(seq uint64, now time.Time) {
	if len(j.pending) >= j.maxTrack { // answers never come: do not grow
		j.expire(now.Add(j.timeout + 1))
	}
	j.pending[seq] = now
}

// answered records an answer; unknown or duplicate sequence numbers are
// ignored.
func (j *linkJudge) answered(seq uint64, now time.Time) {
	at, ok := j.pending[seq]
	if !ok {
		return
	}
	delete(j.pending, seq)
	j.lastAns = now
	j.push(probeOutcome{rtt: now.Sub(at)})
}

// expire counts the probes unanswered after the timeout as lost.
func (j *linkJudge) expire(now time.Time) {
	var late []uint64
	for seq, at := range j.pending {
		if now.Sub(at) > j.timeout {
			late = append(late, seq)
		}
	}
	for _, seq := range late {
		delete(j.pending, seq)
		j.push(probeOutcome{lost: true})
	}
}

func (j *linkJudge) push(o probeOutcome) {
	j.window = append(j.window, o)
	if len(j.window) > livenessWindow {
		j.window = j.window[len(j.window)-livenessWindow:]
	}
}

func (j *linkJudge) lostInRow() int {
	n := 0
	for i := len(j.window) - 1; i >= 0 && j.window[i].lost; i-- {
		n++
	}
	return n
}

// linkVerdict is what eval decides.
type linkVerdict struct {
	State     string // the state now
	Changed   bool   // State differs from the previous eval
	Handshake bool   // start a new handshake beside the current session
	Quiet     time.Duration
}

// eval expires late probes and judges the window.
func (j *linkJudge) eval(now time.Time) linkVerdict {
	j.expire(now)
	h := j.health()
	last := j.lastAns
	if last.IsZero() {
		last = j.start
	}
	quiet := now.Sub(last)
	v := linkVerdict{Quiet: quiet}
	if quiet > j.quietAfter && now.Sub(j.lastKick) >= j.quietAfter {
		j.lastKick, v.Handshake = now, true
		j.kicks++
	}
	full := h.Probes >= livenessWindow
	switch {
	case j.lossy && h.Loss <= lossyLeave && (j.rttLimit == 0 || h.RTT <= j.rttLimit):
		j.lossy = false
	case !j.lossy && full && (h.Loss >= lossyEnter || (j.rttLimit > 0 && h.Probes > h.Lost && h.RTT > j.rttLimit)):
		j.lossy = true
	}
	state := LinkUp
	switch {
	// Down: the last downProbes probes lost. A lossy link that still
	// answers now and then is not down.
	case j.lostInRow() >= downProbes:
		state = LinkDown
	case j.lossy:
		state = LinkLossy
	}
	if state != j.state {
		j.state, j.since, v.Changed = state, now, true
	}
	v.State = j.state
	return v
}

// health reports the window.
func (j *linkJudge) health() LinkHealth {
	h := LinkHealth{State: j.state, Since: j.since, Probes: len(j.window), LastAnswer: j.lastAns, Handshakes: j.kicks}
	var rtts []time.Duration
	for _, o := range j.window {
		if o.lost {
			h.Lost++
			continue
		}
		rtts = append(rtts, o.rtt)
	}
	if h.Probes > 0 {
		h.Loss = float64(h.Lost) / float64(h.Probes)
	}
	if len(rtts) > 0 {
		slices.Sort(rtts)
		h.RTT, h.RTTMax = rtts[len(rtts)/2], rtts[len(rtts)-1]
	}
	return h
}
