package dataplane

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// hubSim drives a hubChooser the way the engine does: a claim round to
// every hub each interval (claimCopies copies, each lost on the way out
// and its reply lost on the way back with the hub's loss), replies after
// rtt, a judgement every interval/5. Loss comes from a seeded generator,
// so a run is the same every time.
type hubSim struct {
	t        *testing.T
	c        *hubChooser
	now      time.Time
	interval time.Duration
	rtt      time.Duration
	rng      *rand.Rand
	loss     []float64 // per hub, each way
	dead     []bool
	degraded []bool
	pending  []simReply
	switches []hubSwitch
	switchAt []time.Time
}

type simReply struct {
	at  time.Time
	hub int
}

func newHubSim(t *testing.T, n int, failback bool, seed uint64) *hubSim {
	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	names := []string{"hub1", "hub2", "hub3"}[:n]
	return &hubSim{t: t, c: newHubChooser(now, 100*time.Millisecond, names, failback), now: now, interval: 100 * time.Millisecond,
		rtt: 5 * time.Millisecond, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), loss: make([]float64, n), dead: make([]bool, n), degraded: make([]bool, n)}
}

// run advances the simulation by d in steps of interval/5.
func (s *hubSim) run(d time.Duration) {
	step := s.interval / 5
	for end := s.now.Add(d); s.now.Before(end); {
		s.now = s.now.Add(step)
		if s.now.Sub(s.c.start)%s.interval == 0 {
			for h := range s.c.hubs {
				for range claimCopies {
					if s.dead[h] || s.rng.Float64() < s.loss[h] || s.rng.Float64() < s.loss[h] {
						continue
					}
					s.pending = append(s.pending, simReply{at: s.now.Add(s.rtt), hub: h})
				}
			}
		}
		kept := s.pending[:0]
		for _, r := range s.pending {
			if r.at.After(s.now) {
				kept = append(kept, r)
				continue
			}
			if !s.dead[r.hub] {
				s.c.replied(r.hub, r.at, s.degraded[r.hub])
			}
		}
		s.pending = kept
		if sw, ok := s.c.eval(s.now); ok {
			s.switches = append(s.switches, sw)
			s.switchAt = append(s.switchAt, s.now)
		}
	}
}

func TestHubChoiceNoSwitchUnderRandomLoss(t *testing.T) {
	for seed := range uint64(5) {
		s := newHubSim(t, 2, true, seed)
		s.loss[0], s.loss[1] = 0.3, 0.3
		s.run(60 * time.Second)
		if len(s.switches) != 0 {
			t.Errorf("seed %d: 30%% loss each way for 60 s switched %d times (first: %+v); want none", seed, len(s.switches), s.switches[0])
		}
		if s.c.carrying != 0 {
			t.Errorf("seed %d: carrying %d; want the primary", seed, s.c.carrying)
		}
	}
}

func TestHubChoiceDeadPrimarySwitchesFast(t *testing.T) {
	s := newHubSim(t, 2, false, 1)
	s.run(5 * time.Second)
	if s.c.carrying != 0 || len(s.switches) != 0 {
		t.Fatalf("before the fault: carrying %d, switches %+v; want the primary, none", s.c.carrying, s.switches)
	}
	killed := s.now
	s.dead[0] = true
	s.run(2 * time.Second)
	if len(s.switches) != 1 || s.switches[0].To != 1 {
		t.Fatalf("after killing the primary: switches %+v; want one to hub2", s.switches)
	}
	if d := s.switchAt[0].Sub(killed); d > 700*time.Millisecond {
		t.Errorf("switched %v after the primary died; want within 700ms", d)
	}
	if !strings.Contains(s.switches[0].Reason, "hub1: no claim reply for") {
		t.Errorf("reason %q does not say why", s.switches[0].Reason)
	}
	// The primary comes back: without failback the traffic stays.
	s.dead[0] = false
	s.run(30 * time.Second)
	if len(s.switches) != 1 || s.c.carrying != 1 {
		t.Errorf("primary back without failback: switches %+v, carrying %d; want the traffic to stay on hub2", s.switches, s.c.carrying)
	}
	if s.c.hubs[0].state != HubUp {
		t.Errorf("primary back: state %s; want up", s.c.hubs[0].state)
	}
}

func TestHubChoiceDeadPrimaryUnderLoss(t *testing.T) {
	s := newHubSim(t, 2, false, 7)
	s.loss[0], s.loss[1] = 0.3, 0.3
	s.run(5 * time.Second)
	killed := s.now
	s.dead[0] = true
	s.run(3 * time.Second)
	if len(s.switches) != 1 || s.switches[0].To != 1 {
		t.Fatalf("switches %+v; want one to hub2", s.switches)
	}
	if d := s.switchAt[0].Sub(killed); d > time.Second {
		t.Errorf("switched %v after the primary died under 30%% loss; want within 1s", d)
	}
}

func TestHubChoiceFailbackHoldDown(t *testing.T) {
	s := newHubSim(t, 2, true, 2)
	s.run(2 * time.Second)
	s.dead[0] = true
	s.run(2 * time.Second)
	if s.c.carrying != 1 {
		t.Fatalf("carrying %d after the primary died; want hub2", s.c.carrying)
	}
	s.dead[0] = false
	// A primary that flaps within the hold-down does not get the traffic.
	s.run(5 * time.Second)
	s.dead[0] = true
	s.run(time.Second)
	back := s.now
	s.dead[0] = false
	s.run(9 * time.Second)
	if len(s.switches) != 1 {
		t.Fatalf("flapping primary: switches %+v; want only the first", s.switches)
	}
	s.run(3 * time.Second)
	if len(s.switches) != 2 || s.switches[1].To != 0 || !strings.Contains(s.switches[1].Reason, "failback") {
		t.Fatalf("switches %+v; want a failback to hub1", s.switches)
	}
	if d := s.switchAt[1].Sub(back); d < FailbackHold || d > FailbackHold+time.Second {
		t.Errorf("failback %v after the primary came back the last time; want the hold-down after its last break", d)
	}
}

func TestHubChoiceDegraded(t *testing.T) {
	s := newHubSim(t, 2, false, 3)
	s.run(time.Second)
	s.degraded[0] = true
	s.run(500 * time.Millisecond)
	if len(s.switches) != 1 || s.switches[0].To != 1 || !strings.Contains(s.switches[0].Reason, "degraded") {
		t.Fatalf("switches %+v; want one to hub2 because hub1 is degraded", s.switches)
	}
	// Both degraded: stay where it is (no better hub).
	s.degraded[1] = true
	s.run(2 * time.Second)
	if len(s.switches) != 1 {
		t.Errorf("both degraded: switches %+v; want no further switch", s.switches)
	}
}

func TestHubChoiceOnlyToUpHub(t *testing.T) {
	s := newHubSim(t, 2, false, 4)
	s.run(time.Second)
	s.dead[0], s.dead[1] = true, true
	s.run(3 * time.Second)
	if len(s.switches) != 0 {
		t.Errorf("both dead: switches %+v; want none (no hub to switch to)", s.switches)
	}
	if s.c.hubs[0].state != HubDown || s.c.hubs[1].state != HubDown {
		t.Errorf("states %s %s; want down down", s.c.hubs[0].state, s.c.hubs[1].state)
	}
	s.dead[1] = false
	s.run(time.Second)
	if len(s.switches) != 1 || s.switches[0].To != 1 {
		t.Errorf("secondary back: switches %+v; want one to hub2", s.switches)
	}
}

func TestHubChoiceSingleHubNeverSwitches(t *testing.T) {
	s := newHubSim(t, 1, true, 5)
	s.dead[0] = true
	s.run(10 * time.Second)
	if len(s.switches) != 0 || s.c.carrying != 0 {
		t.Errorf("one hub: switches %+v; want none", s.switches)
	}
}
