package dataplane

import "time"

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
