package dataplane

import (
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/clock"
)

var healthy = Claim{Healthy: true, LANOK: true}

func newTestArbiter(preempt bool) (*Arbiter, *clock.Fake) {
	clk := clock.NewFake(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	a := &Arbiter{DeadAfter: HealthCheck{}.WithDefaults().deadAfter(), Preempt: preempt}
	a.SetMembers(clk.Now(), "i1", []string{"A", "B"}, "A")
	return a, clk
}

// claim has sn claim c now and returns its role and the switches.
func claim(t *testing.T, a *Arbiter, clk *clock.Fake, sn string, c Claim) (string, []RoleEvent) {
	t.Helper()
	return a.Claim(clk.Now(), "i1", sn, c)
}

func wantSwitch(t *testing.T, ev []RoleEvent, to, reason string) {
	t.Helper()
	if len(ev) == 0 || ev[len(ev)-1].SN != to || ev[len(ev)-1].Role != api.RoleActive || ev[len(ev)-1].Reason != reason {
		t.Fatalf("events %+v; want a switch to %s (%s)", ev, to, reason)
	}
}

func TestArbiterKeepsControllerChoiceAtStart(t *testing.T) {
	a, clk := newTestArbiter(false)
	// Only B has claimed yet (a hub restart): A is still within its grace.
	clk.Advance(50 * time.Millisecond)
	if r, ev := claim(t, a, clk, "B", healthy); r != api.RoleStandby || len(ev) != 0 {
		t.Fatalf("B: role %s, events %+v; want standby and no switch", r, ev)
	}
	if r, _ := claim(t, a, clk, "A", healthy); r != api.RoleActive {
		t.Fatalf("A: role %s; want active", r)
	}
}

func TestArbiterClaimsStop(t *testing.T) {
	a, clk := newTestArbiter(false)
	claim(t, a, clk, "A", healthy)
	claim(t, a, clk, "B", healthy)
	// B keeps claiming every 100 ms; A stops.
	for i := 0; i < 3; i++ {
		clk.Advance(100 * time.Millisecond)
		claim(t, a, clk, "B", healthy)
		if ev := a.Tick(clk.Now()); len(ev) != 0 {
			t.Fatalf("switched after %d missed claims (< %v): %+v", i+1, a.DeadAfter, ev)
		}
	}
	clk.Advance(60 * time.Millisecond) // 360 ms since A's last claim > 350 ms
	ev := a.Tick(clk.Now())
	wantSwitch(t, ev, "B", "claims stopped")
	if ev[0].SN != "A" || ev[0].Role != api.RoleStandby {
		t.Errorf("first event %+v; want A → standby", ev[0])
	}
	if got := a.Active("i1"); got != "B" {
		t.Errorf("active %q; want B", got)
	}
	if r, _ := claim(t, a, clk, "B", healthy); r != api.RoleActive {
		t.Errorf("B told %s; want active", r)
	}
}

func TestArbiterGrayFailure(t *testing.T) {
	a, clk := newTestArbiter(false)
	claim(t, a, clk, "B", healthy)
	r, ev := claim(t, a, clk, "A", Claim{Healthy: false, LANOK: false})
	if r != api.RoleStandby {
		t.Errorf("A with a broken LAN told %s; want standby", r)
	}
	wantSwitch(t, ev, "B", "LAN targets unreachable")
}

func TestArbiterNoBetterCandidateKeepsActive(t *testing.T) {
	a, clk := newTestArbiter(false)
	claim(t, a, clk, "B", Claim{})
	if r, ev := claim(t, a, clk, "A", Claim{}); r != api.RoleActive || len(ev) != 0 {
		t.Fatalf("both unhealthy: A %s, events %+v; want A to keep the role", r, ev)
	}
	// A single device whose claims stop keeps the role: nobody is better.
	clk.Advance(time.Second)
	if ev := a.Tick(clk.Now()); len(ev) != 0 || a.Active("i1") != "A" {
		t.Fatalf("both silent: events %+v, active %s; want A kept", ev, a.Active("i1"))
	}
}

func TestArbiterRecoveredComesBackStandby(t *testing.T) {
	a, clk := newTestArbiter(false)
	claim(t, a, clk, "A", healthy)
	clk.Advance(time.Second)
	claim(t, a, clk, "B", healthy)
	a.Tick(clk.Now())
	if a.Active("i1") != "B" {
		t.Fatalf("active %s; want B", a.Active("i1"))
	}
	for i := 0; i < 10; i++ {
		clk.Advance(100 * time.Millisecond)
		if r, ev := claim(t, a, clk, "A", healthy); r != api.RoleStandby || len(ev) != 0 {
			t.Fatalf("recovered A: role %s, events %+v; want standby, no switch", r, ev)
		}
		claim(t, a, clk, "B", healthy)
		if ev := a.Tick(clk.Now()); len(ev) != 0 {
			t.Fatalf("flap: %+v", ev)
		}
	}
}

func TestArbiterBothDownFirstBackWins(t *testing.T) {
	a, clk := newTestArbiter(false)
	claim(t, a, clk, "A", healthy)
	claim(t, a, clk, "B", healthy)
	clk.Advance(2 * time.Second)
	if ev := a.Tick(clk.Now()); len(ev) != 0 {
		t.Fatalf("both down: %+v; want no switch (nobody to switch to)", ev)
	}
	r, ev := claim(t, a, clk, "B", healthy)
	if r != api.RoleActive {
		t.Fatalf("B back first: %s; want active", r)
	}
	wantSwitch(t, ev, "B", "claims stopped")
	// A is still down: nothing moves back to it.
	clk.Advance(100 * time.Millisecond)
	claim(t, a, clk, "B", healthy)
	if ev := a.Tick(clk.Now()); len(ev) != 0 || a.Active("i1") != "B" {
		t.Fatalf("events %+v, active %s; want B kept", ev, a.Active("i1"))
	}
}

func TestArbiterBothDownNeverPicksOneStillDown(t *testing.T) {
	a, clk := newTestArbiter(false)
	claim(t, a, clk, "A", healthy)
	claim(t, a, clk, "B", healthy)
	clk.Advance(2 * time.Second)
	// B is back but unhealthy: it does not get the role.
	if r, ev := claim(t, a, clk, "B", Claim{}); r != api.RoleStandby || len(ev) != 0 {
		t.Fatalf("unhealthy B: %s %+v; want standby, no switch", r, ev)
	}
}

func TestArbiterPreemption(t *testing.T) {
	for _, preempt := range []bool{false, true} {
		a, clk := newTestArbiter(preempt)
		clk.Advance(time.Second)
		claim(t, a, clk, "B", healthy)
		a.Tick(clk.Now())
		clk.Advance(100 * time.Millisecond)
		claim(t, a, clk, "B", healthy)
		r, ev := claim(t, a, clk, "A", healthy)
		if preempt {
			if r != api.RoleActive {
				t.Errorf("preempt: A told %s; want active", r)
			}
			wantSwitch(t, ev, "A", "preemption")
		} else if r != api.RoleStandby || len(ev) != 0 {
			t.Errorf("no preempt: A %s, events %+v; want standby", r, ev)
		}
	}
}

func TestArbiterMembership(t *testing.T) {
	a, clk := newTestArbiter(false)
	if r, ev := a.Claim(clk.Now(), "i1", "X", healthy); r != api.RoleStandby || len(ev) != 0 {
		t.Errorf("non-member: %s %+v", r, ev)
	}
	if r, _ := a.Claim(clk.Now(), "nope", "A", healthy); r != api.RoleStandby {
		t.Errorf("unknown instance: %s", r)
	}
	// The active device leaves (revoked): the controller's new choice.
	a.SetMembers(clk.Now(), "i1", []string{"B"}, "B")
	if a.Active("i1") != "B" {
		t.Errorf("active %s after A left; want B", a.Active("i1"))
	}
	a.Forget(map[string]bool{})
	if a.Active("i1") != "" {
		t.Errorf("forgotten instance still has an active device")
	}
}

func TestHealthTracker(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	tr := newHealthTracker(HealthCheck{RTTThreshold: 50 * time.Millisecond})
	for seq := uint64(1); seq <= 2; seq++ {
		tr.sent(seq, clk.Now())
		clk.Advance(200 * time.Millisecond)
		if !tr.expire(clk.Now()) {
			t.Fatalf("down after %d failures; want %d", seq, DefaultHAFailures)
		}
	}
	tr.sent(3, clk.Now())
	clk.Advance(80 * time.Millisecond)
	tr.answered(3, clk.Now()) // over the RTT threshold: a failure
	if tr.expire(clk.Now()) {
		t.Fatal("up after 3 failures (the last over the RTT threshold)")
	}
	tr.sent(4, clk.Now())
	clk.Advance(10 * time.Millisecond)
	tr.answered(4, clk.Now())
	if !tr.expire(clk.Now()) {
		t.Fatal("still down after a good answer")
	}
	tr.answered(99, clk.Now()) // unknown sequence: ignored
}

func TestArbiterPreferredSurvivesReportedSwitch(t *testing.T) {
	a, clk := newTestArbiter(true)
	clk.Advance(time.Second)
	claim(t, a, clk, "B", healthy)
	a.Tick(clk.Now())
	// The controller learns the switch and now names B active.
	a.SetMembers(clk.Now(), "i1", []string{"A", "B"}, "B")
	clk.Advance(100 * time.Millisecond)
	claim(t, a, clk, "B", healthy)
	if _, ev := claim(t, a, clk, "A", healthy); len(ev) == 0 {
		t.Errorf("preempt: A (the first choice) did not get the role back")
	}
}

func TestArbiterNoControllerChoiceNoTakeover(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	a := &Arbiter{DeadAfter: time.Second}
	a.SetMembers(clk.Now(), "i1", []string{"A"}, "")
	if r, ev := a.Claim(clk.Now(), "i1", "A", healthy); r != api.RoleStandby || len(ev) != 0 {
		t.Errorf("controller named no active: A %s %+v; want standby", r, ev)
	}
}

func TestArbiterOwnPauseIsNotSilence(t *testing.T) {
	a, clk := newTestArbiter(false)
	a.PauseAfter = 200 * time.Millisecond
	claim(t, a, clk, "A", healthy)
	claim(t, a, clk, "B", healthy)
	// The hub's process stalls for 600 ms (no Tick, no claim read); then
	// B's claim happens to be read before A's.
	clk.Advance(600 * time.Millisecond)
	if r, ev := claim(t, a, clk, "B", healthy); r != api.RoleStandby || len(ev) != 0 {
		t.Fatalf("after the hub's own pause: B %s, events %+v; want standby, no switch", r, ev)
	}
	// A really stopped: ticking along, the switch comes after DeadAfter.
	var ev []RoleEvent
	for i := 0; i < 10 && len(ev) == 0; i++ {
		clk.Advance(50 * time.Millisecond)
		_, ev = claim(t, a, clk, "B", healthy)
		ev = append(ev, a.Tick(clk.Now())...)
	}
	wantSwitch(t, ev, "B", "claims stopped")
}

// TestSendCopiesSpaced: the first copy goes at once, the others later and
// apart, claimCopies in all.
func TestSendCopiesSpaced(t *testing.T) {
	const gap = 20 * time.Millisecond
	at := make(chan time.Time, claimCopies+1)
	start := time.Now()
	sendCopies(gap, func() { at <- time.Now() })
	if len(at) != 1 {
		t.Fatalf("%d copies sent before sendCopies returned; want only the first", len(at))
	}
	var times []time.Time
	for range claimCopies {
		select {
		case ts := <-at:
			times = append(times, ts)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d copies sent", len(times), claimCopies)
		}
	}
	for k := 1; k < claimCopies; k++ {
		if d := times[k].Sub(start); d < time.Duration(k)*gap {
			t.Errorf("copy %d sent %v after the first call; want at least %v", k+1, d, time.Duration(k)*gap)
		}
	}
	select {
	case <-at:
		t.Errorf("more than %d copies", claimCopies)
	case <-time.After(3 * gap):
	}
}
