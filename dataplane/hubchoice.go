package dataplane

import (
	"fmt"
	"time"
)

// Hub session states (HubSession.State).
const (
	HubConnecting = "connecting" // no claim reply yet, still within the start grace
	HubUp         = "up"         // claims answered
	HubLossy      = "lossy"      // claims answered, but the liveness window loses many probes
	HubDown       = "down"       // no claim reply for hubDownAfter
	HubDegraded   = "degraded"   // the hub says its cloud side does not answer (gray failure)
)

// The hub-choice model, in HA intervals (HealthCheck.Interval, 100 ms by
// default). Claims go claimCopies times per interval: with 30 % random
// loss each way a whole round is lost ~13 % of the time, six in a row
// ~5e-6, so random loss does not pass for a dead hub.
const (
	// hubDownAfter: a hub without any claim reply for this many intervals
	// (and a half, so that a round late by scheduling does not count) is
	// down.
	hubDownAfter = 6
	// hubFreshWithin: a hub is a switch target only when it answered
	// within this many intervals and is not degraded.
	hubFreshWithin = 3
	// hubStartGrace is how long a hub that never answered is not judged:
	// the first handshakes of a starting device take their time, and a
	// primary a little slower than the secondary must not lose the
	// traffic for good.
	hubStartGrace = 3 * time.Second
	// FailbackHold is how long a recovered primary must stay up before
	// the traffic goes back to it (DeviceConfig.Failback).
	FailbackHold = 10 * time.Second
)

// hubHealth is one hub of the group as its claim replies show it.
type hubHealth struct {
	name      string
	lastReply time.Time
	degraded  bool      // as its last reply said
	upSince   time.Time // answering and not degraded without a break since; zero otherwise
	state     string
	since     time.Time // when state began
}

// hubSwitch is a decision of hubChooser: carry through hub To instead of
// From, for Reason.
type hubSwitch struct {
	From, To int
	Reason   string
}

// hubChooser decides which hub of the device's group carries its traffic.
// Hubs are in the controller's order (primary first). It is pure: time
// comes in as arguments, so tests drive it with a fake clock.
type hubChooser struct {
	interval time.Duration
	failback bool
	start    time.Time
	hubs     []hubHealth
	carrying int
}

func newHubChooser(now time.Time, interval time.Duration, names []string, failback bool) *hubChooser {
	c := &hubChooser{interval: interval, failback: failback, start: now}
	for _, n := range names {
		c.hubs = append(c.hubs, hubHealth{name: n, state: HubConnecting, since: now})
	}
	return c
}

func (c *hubChooser) downAfter() time.Duration   { return hubDownAfter*c.interval + c.interval/2 }
func (c *hubChooser) freshWithin() time.Duration { return hubFreshWithin*c.interval + c.interval/2 }

// replied records a claim reply from hub i.
func (c *hubChooser) replied(i int, now time.Time, degraded bool) {
	if i < 0 || i >= len(c.hubs) {
		return
	}
	h := &c.hubs[i]
	h.lastReply, h.degraded = now, degraded
	if degraded {
		h.upSince = time.Time{}
	} else if h.upSince.IsZero() {
		h.upSince = now
	}
}

// fresh reports whether hub i is a switch target: answered lately, not
// degraded.
func (c *hubChooser) fresh(i int, now time.Time) bool {
	h := c.hubs[i]
	return !h.lastReply.IsZero() && now.Sub(h.lastReply) <= c.freshWithin() && !h.degraded
}

// judge updates the state of every hub.
func (c *hubChooser) judge(now time.Time) {
	for i := range c.hubs {
		h := &c.hubs[i]
		last := h.lastReply
		state := HubUp
		switch {
		case last.IsZero() && now.Sub(c.start) <= hubStartGrace:
			state = HubConnecting
		case last.IsZero() || now.Sub(last) > c.downAfter():
			state, h.upSince = HubDown, time.Time{}
		case h.degraded:
			state = HubDegraded
		}
		if state != h.state {
			h.state, h.since = state, now
		}
	}
}

// eval judges the hubs and says whether the traffic moves. It moves away
// from the carrying hub only when that one is down or degraded, and only
// to a fresh hub (the first in the group's order); it goes back to the
// primary only with failback, once the primary has been up for
// FailbackHold. Nothing else moves it, so random loss cannot make it flap.
func (c *hubChooser) eval(now time.Time) (hubSwitch, bool) {
	c.judge(now)
	if len(c.hubs) < 2 {
		return hubSwitch{}, false
	}
	cur := &c.hubs[c.carrying]
	if cur.state == HubDown || cur.state == HubDegraded {
		for i := range c.hubs {
			if i == c.carrying || !c.fresh(i, now) {
				continue
			}
			var why string
			if cur.state == HubDegraded {
				why = fmt.Sprintf("hub %s is degraded (its cloud side does not answer)", cur.name)
			} else if cur.lastReply.IsZero() {
				why = fmt.Sprintf("hub %s never answered a claim", cur.name)
			} else {
				why = fmt.Sprintf("hub %s: no claim reply for %v", cur.name, now.Sub(cur.lastReply).Round(10*time.Millisecond))
			}
			return c.move(i, why), true
		}
		return hubSwitch{}, false
	}
	if c.failback && c.carrying != 0 && c.hubs[0].state == HubUp && c.fresh(0, now) &&
		!c.hubs[0].upSince.IsZero() && now.Sub(c.hubs[0].upSince) >= FailbackHold {
		return c.move(0, fmt.Sprintf("failback: primary hub %s up again for %v", c.hubs[0].name, now.Sub(c.hubs[0].upSince).Round(time.Second))), true
	}
	return hubSwitch{}, false
}

func (c *hubChooser) move(to int, why string) hubSwitch {
	s := hubSwitch{From: c.carrying, To: to, Reason: why}
	c.carrying = to
	return s
}
