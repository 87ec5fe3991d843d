package dataplane

import "time"

// Path-MTU watch of the edge: the tunnel interface's MTU follows what the
// path to the hub carries.
const (
	// DefaultPathMTUInterval is how often the edge checks that packets of
	// the tunnel's MTU still reach the hub through the tunnel.
	DefaultPathMTUInterval = 15 * time.Second
	// minTunnelMTU is the smallest MTU a black hole lowers the tunnel to.
	minTunnelMTU = 576
	// pmtuPrecision is where the binary search stops.
	pmtuPrecision = 8
	// pmtuTries is how many probes of one size a round sends (pmtuSpacing
	// apart), pmtuWait how long it waits after the last: a size counts as
	// dropped only when none is answered, so random loss on the path does
	// not pass for a black hole.
	pmtuTries   = 6
	pmtuSpacing = 100 * time.Millisecond
	pmtuWait    = time.Second
)

// Path-MTU verdicts.
const (
	PMTUFull         = "full"         // packets of the tunnel's MTU get through
	PMTUBlackHole    = "black-hole"   // larger packets vanish: the MTU was lowered
	PMTUInconclusive = "inconclusive" // even small probes got no answer: nothing changed
)

// PathMTUStatus is the edge's path-MTU watch in Status.
type PathMTUStatus struct {
	Configured int       `json:"configured"` // the MTU the tunnel was started with
	Current    int       `json:"current"`    // the tunnel's MTU now
	Verdict    string    `json:"verdict,omitempty"`
	LastCheck  time.Time `json:"last_check,omitzero"`
}

// searchPathMTU finds the largest packet size in [floor, top] that gets
// through, given ok (one round of probes of a size: true when any was
// answered). top answering ends it at once; it counts as dropped only
// after two silent rounds, so a lossy path is not taken for a black hole.
// When floor does not answer either, the path is down or too lossy to
// judge and nothing changes.
// Otherwise it binary-searches to pmtuPrecision bytes and returns the
// largest size that answered.
func searchPathMTU(top, floor int, ok func(size int) bool) (int, string) {
	if ok(top) || ok(top) {
		return top, PMTUFull
	}
	if !ok(floor) {
		return top, PMTUInconclusive
	}
	lo, hi := floor, top
	for hi-lo > pmtuPrecision {
		mid := (lo + hi) / 2
		if ok(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, PMTUBlackHole
}
