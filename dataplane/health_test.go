package dataplane

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/clock"
)

// runLink drives a linkJudge for n probes one interval apart, each
// answered after rtt unless lose says it is lost, and returns every
// verdict.
func runLink(j *linkJudge, clk *clock.Fake, n int, rtt time.Duration, lose func(i int) bool) []linkVerdict {
	var out []linkVerdict
	for i := range n {
		seq := uint64(clk.Now().UnixNano())
		j.sent(seq, clk.Now())
		out = append(out, j.eval(clk.Now()))
		if !lose(i) {
			clk.Advance(rtt)
			j.answered(seq, clk.Now())
			clk.Advance(time.Second - rtt)
		} else {
			clk.Advance(time.Second)
		}
	}
	return out
}

func TestLinkJudgeRandomLossKeepsSessionAndDoesNotFlap(t *testing.T) {
	for _, loss := range []float64{0.1, 0.3, 0.51} { // 0.51: 30 % each way
		clk := clock.NewFake(time.Unix(1000, 0))
		j := newLinkJudge(clk.Now(), time.Second, DefaultDeadAfter)
		rng := rand.New(rand.NewPCG(1, uint64(loss*100)))
		vs := runLink(j, clk, 600, 5*time.Millisecond, func(int) bool { return rng.Float64() < loss })
		changes, downs := 0, 0
		for _, v := range vs {
			if v.Changed {
				changes++
			}
			if v.State == LinkDown {
				downs++
			}
		}
		// Ten minutes of random loss: the state may go lossy (and back, at
		// the thresholds' gap), never down, and never flap.
		if downs > 0 || changes > 4 {
			t.Errorf("loss %.0f%%: %d state changes, %d probes judged down; want ≤ 4 and none", loss*100, changes, downs)
		}
		h := j.health()
		if h.Probes != livenessWindow || h.RTT != 5*time.Millisecond {
			t.Errorf("loss %.0f%%: window %d probes, median RTT %v; want %d, 5ms", loss*100, h.Probes, h.RTT, livenessWindow)
		}
		if loss >= lossyEnter+0.05 && j.state != LinkLossy {
			t.Errorf("loss %.0f%%: state %s; want lossy", loss*100, j.state)
		}
		if loss < lossyLeave+0.01 && j.state != LinkUp {
			t.Errorf("loss %.0f%%: state %s; want up", loss*100, j.state)
		}
	}
}

func TestLinkJudgeHandshakeBesideWhenQuietAndDownWhenSilent(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	j := newLinkJudge(clk.Now(), time.Second, 3*time.Second)
	runLink(j, clk, 30, time.Millisecond, func(int) bool { return false })
	if j.state != LinkUp || j.kicks != 0 {
		t.Fatalf("healthy link: state %s, %d handshakes; want up, none", j.state, j.kicks)
	}
	// The hub goes silent.
	vs := runLink(j, clk, 40, 0, func(int) bool { return true })
	var kicks []int
	down := -1
	for i, v := range vs {
		if v.Handshake {
			kicks = append(kicks, i)
		}
		if v.Changed && v.State == LinkDown && down < 0 {
			down = i
		}
	}
	// The first new handshake after deadAfter (probe 3: its eval sees
	// almost 4s of silence), then one every deadAfter, never more often.
	if len(kicks) == 0 || kicks[0] != 3 {
		t.Fatalf("handshakes at probes %v; want the first at 3", kicks)
	}
	for i := 1; i < len(kicks); i++ {
		if kicks[i]-kicks[i-1] < 3 {
			t.Errorf("handshakes at probes %v: closer than deadAfter", kicks)
		}
	}
	// Down only once downProbes went unanswered.
	if down < downProbes-1 || down > downProbes+1 {
		t.Errorf("down at probe %d; want about %d", down, downProbes)
	}
	// One answer: not down any more.
	vs = runLink(j, clk, 1, time.Millisecond, func(int) bool { return false })
	if v := j.eval(clk.Now()); v.State == LinkDown {
		t.Errorf("still down after an answer: %+v %+v", vs, v)
	}
}

func TestLinkJudgeSlowAnswersAreLossyWithLimit(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	j := newLinkJudge(clk.Now(), time.Second, 3*time.Second)
	j.rttLimit = 100 * time.Millisecond
	runLink(j, clk, livenessWindow+1, 300*time.Millisecond, func(int) bool { return false })
	if j.state != LinkLossy {
		t.Errorf("median RTT 300ms over a 100ms limit: state %s; want lossy", j.state)
	}
	runLink(j, clk, livenessWindow+1, 10*time.Millisecond, func(int) bool { return false })
	if j.state != LinkUp {
		t.Errorf("fast again: state %s; want up", j.state)
	}
	// Answers later than the probe timeout count as lost, then ignored.
	j.sent(1, clk.Now())
	clk.Advance(2 * time.Second)
	j.eval(clk.Now())
	j.answered(1, clk.Now())
	if h := j.health(); h.Lost != 1 {
		t.Errorf("late answer: %d lost; want 1", h.Lost)
	}
}

func TestLinkJudgeBoundedWithoutAnswers(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	j := newLinkJudge(clk.Now(), time.Second, 3*time.Second)
	for i := range uint64(1000) {
		j.sent(i, clk.Now()) // never evaluated, never answered
	}
	if len(j.pending) > j.maxTrack || len(j.window) > livenessWindow {
		t.Errorf("pending %d, window %d; want ≤ %d, ≤ %d", len(j.pending), len(j.window), j.maxTrack, livenessWindow)
	}
}

func TestDeviceRoleOnlyDeviceNeverWithdraws(t *testing.T) {
	chk := HealthCheck{}.WithDefaults()
	clk := clock.NewFake(time.Unix(1000, 0))
	last := clk.Now()
	clk.Advance(time.Hour)
	if r, _ := deviceRole(clk.Now(), api.RoleActive, last, 1, chk); r != api.RoleActive {
		t.Errorf("only device, no reply for an hour: %s; want active", r)
	}
	for _, members := range []int{0, 2} {
		clk := clock.NewFake(time.Unix(1000, 0))
		last := clk.Now()
		clk.Advance(chk.withdrawAfter())
		if r, _ := deviceRole(clk.Now(), api.RoleActive, last, members, chk); r != api.RoleActive {
			t.Errorf("%d members, reply withdrawAfter ago: %s; want active", members, r)
		}
		clk.Advance(time.Millisecond)
		if r, why := deviceRole(clk.Now(), api.RoleActive, last, members, chk); r != api.RoleStandby || why != reasonWithdraw {
			t.Errorf("%d members, no reply past withdrawAfter: %s (%s); want standby, withdrawn", members, r, why)
		}
	}
}

func TestEventsFold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var evs []RoleEvent
	// A device flapping between two roles 100 times: two entries.
	for i := range 200 {
		role, why := api.RoleStandby, reasonWithdraw
		if i%2 == 1 {
			role, why = api.RoleActive, reasonHub
		}
		evs = appendEvents(evs, RoleEvent{Time: t0.Add(time.Duration(i) * time.Second), SN: "A", Role: role, Reason: why})
	}
	if len(evs) != 2 || evs[0].Times() != 100 || evs[1].Times() != 100 {
		t.Fatalf("flap history: %+v; want two entries of 100", evs)
	}
	if !evs[0].Time.Equal(t0) || !evs[1].Last.Equal(t0.Add(199*time.Second)) || evs[1].Role != api.RoleActive {
		t.Errorf("first/last times: %+v", evs)
	}
	// Distinct events are kept in order, the last maxEvents of them.
	evs = nil
	for i := range maxEvents + 5 {
		evs = appendEvents(evs, RoleEvent{Time: t0, SN: string(rune('a' + i)), Role: api.RoleActive})
	}
	if len(evs) != maxEvents || evs[0].SN != "f" || evs[0].Times() != 1 {
		t.Errorf("distinct events: %d kept, first %q; want %d, f", len(evs), evs[0].SN, maxEvents)
	}
	// The same with tunnel events; the detail is the latest one's.
	var tev []Event
	for i := range 3 {
		tev = appendEvent(tev, Event{Time: t0.Add(time.Duration(i)), Kind: "link", Message: "lossy", Detail: string(rune('0' + i))})
	}
	if len(tev) != 1 || tev[0].Times() != 3 || tev[0].Detail != "2" {
		t.Errorf("tunnel events: %+v; want one, 3 times, detail 2", tev)
	}
}

func TestSearchPathMTU(t *testing.T) {
	tests := []struct {
		name        string
		limit       int // largest size that gets through; 0: nothing does
		want        int
		wantVerdict string
	}{
		{"full", 1420, 1420, PMTUFull},
		{"black hole at 1300 outside (1240 inside)", 1240, 1240, PMTUBlackHole},
		{"black hole just under", 1419, 1412, PMTUBlackHole},
		{"path down", 0, 1420, PMTUInconclusive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tried []int
			got, v := searchPathMTU(1420, minTunnelMTU, func(size int) bool {
				tried = append(tried, size)
				return size <= tt.limit
			})
			if v != tt.wantVerdict || got > tt.limit && tt.limit > 0 || got < tt.want-pmtuPrecision || (tt.limit == 0 && got != 1420) {
				t.Errorf("search = %d, %s; want about %d, %s (tried %v)", got, v, tt.want, tt.wantVerdict, tried)
			}
			if len(tried) > 14 {
				t.Errorf("%d rounds; want a binary search", len(tried))
			}
		})
	}
}

func TestSearchPathMTULossyPathIsNotABlackHole(t *testing.T) {
	// 30 % loss each way: a probe comes back 49 % of the time; a round of
	// pmtuTries probes is silent 1.8 % of the time.
	rng := rand.New(rand.NewPCG(7, 7))
	round := func(size int) bool {
		for range pmtuTries {
			if rng.Float64() < 0.49 {
				return true
			}
		}
		return false
	}
	lowered := 0
	for range 1000 {
		if got, _ := searchPathMTU(1420, minTunnelMTU, round); got < 1420 {
			lowered++
		}
	}
	if lowered > 3 {
		t.Errorf("a lossy path without a black hole lowered the MTU in %d of 1000 checks; want at most 3", lowered)
	}
}
