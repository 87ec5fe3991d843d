package dataplane

import (
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// HA defaults: the health-check model of multi-attach failover.
const (
	// DefaultHAInterval is how often a device probes its LAN targets and
	// sends a claim to the hub.
	DefaultHAInterval = 100 * time.Millisecond
	// DefaultHAFailures is how many intervals without an answer (or with a
	// failed probe) make a target, a device or the hub count as down.
	DefaultHAFailures = 3
	// DefaultClaimPort is the UDP port on the hub's overlay address that
	// takes claims, reached only through the tunnel.
	DefaultClaimPort = 12346
	// maxEvents is how many role changes Status keeps.
	maxEvents = 20
)

// HealthCheck is the health-check model: a probe every Interval, answered
// within Timeout and, when RTTThreshold is set, faster than it; Failures
// failed probes in a row make the target down, one success makes it up.
type HealthCheck struct {
	Interval     time.Duration `json:"interval"`
	Timeout      time.Duration `json:"timeout"`
	Failures     int           `json:"failures"`
	RTTThreshold time.Duration `json:"rtt_threshold,omitempty"`
}

// WithDefaults fills unset fields.
func (h HealthCheck) WithDefaults() HealthCheck {
	if h.Interval <= 0 {
		h.Interval = DefaultHAInterval
	}
	if h.Timeout <= 0 {
		h.Timeout = h.Interval
	}
	if h.Failures <= 0 {
		h.Failures = DefaultHAFailures
	}
	return h
}

// deadAfter is how long the hub waits without a claim before it counts a
// device as down: Failures intervals and half an interval of slack.
func (h HealthCheck) deadAfter() time.Duration {
	return time.Duration(h.Failures)*h.Interval + h.Interval/2
}

// withdrawAfter is how long a device waits without a claim reply before it
// withdraws its claim: ten intervals, sustained evidence that random loss
// (which the claim copies make rare) does not give. A device that lost the
// hub learns sooner that the role moved on: the new active device
// announces the gateway address on the LAN before it takes it, and the old
// one yields on hearing that.
func (h HealthCheck) withdrawAfter() time.Duration {
	return max(10*h.Interval, h.deadAfter()+h.Interval)
}

// Claim is what a device sends the hub through the tunnel every interval.
type Claim struct {
	SN      string `json:"sn"`
	Healthy bool   `json:"healthy"`
	LANOK   bool   `json:"lan_ok"`
	Seq     uint64 `json:"seq"`
	// Via names the hub of the device's hub group that carries its
	// traffic now (empty: a device without hub groups, whose one hub
	// carries it). A device sends claims to every hub of its group; the
	// hub named here routes the instance's prefixes to the device, the
	// others to that hub over their hub-to-hub session.
	Via string `json:"via,omitempty"`
	// Copies is how many copies of this claim the device sends (0: one,
	// a device that does not say). The hub measures the loss on the
	// device's path from the copies it misses.
	Copies int `json:"copies,omitempty"`
}

// ClaimReply is the hub's answer: the device's role now.
type ClaimReply struct {
	Seq    uint64 `json:"seq"`
	Role   string `json:"role"` // api.RoleActive or api.RoleStandby
	Active string `json:"active,omitempty"`
	// Members is how many devices the instance has (0 from hubs that do
	// not say). A site's only device never withdraws its claim: no other
	// device could take over, so withdrawing would only cut the site off.
	Members int `json:"members,omitempty"`
	// Hub is the answering hub's name (empty: no hub groups).
	Hub string `json:"hub,omitempty"`
	// Degraded says the hub's tunnel end works but it cannot carry
	// traffic onward (its cloud-side health targets do not answer: a gray
	// failure): a device carries through another healthy hub of its group.
	Degraded bool `json:"degraded,omitempty"`
}

// claimCopies is how many copies of each claim a device sends (the hub
// answers each): with 30 % random loss each way the hub misses a whole
// round 2.7 % of the time instead of 30 %, so loss does not pass for a
// dead device; and the copies the hub misses tell it the loss, for which
// it gives the device's silence more time (pathMeter).
const claimCopies = 3

// copyGap is the gap between a claim's copies: a tenth of the interval
// keeps the copies within the interval and apart (see sendCopies).
func copyGap(interval time.Duration) time.Duration { return interval / 10 }

// sendCopies calls send claimCopies times, gap apart (the first at once).
// Copies sent back to back do not stand independent chances: the TUN is
// read in bursts and wireguard-go sends a burst to one endpoint as one
// UDP GSO train, so a drop on the host's way out (a firewall rule, a
// policer, a full queue) takes every copy together, and a burst of loss on
// the path takes them all as well. A gap of a tenth of the interval keeps
// the copies within the interval and apart.
func sendCopies(gap time.Duration, send func()) {
	send()
	for k := 1; k < claimCopies; k++ {
		time.AfterFunc(time.Duration(k)*gap, send)
	}
}

// Reasons of a device's own role changes.
const (
	reasonHub      = "hub's decision"
	reasonWithdraw = "no claim reply from the hub: claim withdrawn"
)

// deviceRole is the role a device holds: the hub's last answer while it
// is fresh, standby (claim withdrawn) after withdrawAfter without one. A
// site's only device (members == 1, as the hub
// last said) never withdraws: nobody could take over, and dropping the
// gateway address would only cut the LAN off while answers are late or
// lost.
func deviceRole(now time.Time, hubRole string, lastReply time.Time, members int, chk HealthCheck) (role, reason string) {
	if members != 1 && now.Sub(lastReply) > chk.withdrawAfter() {
		return api.RoleStandby, reasonWithdraw
	}
	return hubRole, reasonHub
}

// RoleEvent is one role switch: which device became what, why and when.
type RoleEvent struct {
	Time     time.Time `json:"time"`
	Instance string    `json:"instance,omitempty"`
	SN       string    `json:"sn"`
	Role     string    `json:"role"`
	Previous string    `json:"previous,omitempty"` // the SN that held the role before (hub side)
	Reason   string    `json:"reason"`
	// Count and Last fold repeated identical events (same instance, SN,
	// role, previous and reason) into one: Count is how many (0 or 1: one),
	// Time the first and Last the latest.
	Count int       `json:"count,omitempty"`
	Last  time.Time `json:"last,omitzero"`
}

// Times is how many times the event happened (at least 1).
func (e RoleEvent) Times() int { return max(e.Count, 1) }

// HAStatus is the multi-attach part of Status.
type HAStatus struct {
	Check      HealthCheck  `json:"check"`
	LANOK      *bool        `json:"lan_ok,omitempty"`
	LANGateway netip.Prefix `json:"lan_gateway,omitzero"`
	LastReply  time.Time    `json:"last_reply,omitzero"`
	Events     []RoleEvent  `json:"events"`
}

// ClaimsAnswered reports whether the hub answered this device's claims
// within three detection times: a device the hub does not answer has
// withdrawn its claim and stays standby.
func (h *HAStatus) ClaimsAnswered(now time.Time) bool {
	return !h.LastReply.IsZero() && now.Sub(h.LastReply) <= 3*h.Check.Interval*time.Duration(max(h.Check.Failures, 1))
}

// Arbiter decides, per instance, which device is active from the claims
// the devices send through their tunnels. It is pure: time comes in as
// arguments, so every transition is testable with a fake clock.
//
// Rules: the active device keeps the role while its claims are fresh
// and healthy. When they stop (deadAfter) or say unhealthy, the role goes
// to a member whose claims are fresh and healthy; with none, the active
// keeps it (nothing better exists). A recovered device comes back as
// standby unless Preempt is set and it is the preferred device (the
// controller's choice). A member the arbiter has just learned counts as
// fresh for deadAfter, so a hub restart switches nothing.
//
// Silence is evidence only while the hub was listening: with PauseAfter
// set, when the arbiter was not run at all (no Claim, no Tick) for longer
// than that (the hub's process starved of CPU or stopped), the members'
// freshness is extended by the pause, so a stalled hub does not take its
// own pause for dead devices.
type Arbiter struct {
	DeadAfter  time.Duration
	Preempt    bool
	PauseAfter time.Duration // 0: off
	// Interval is the devices' claim interval. Set, the dead time is
	// loss-aware: a member whose claims show loss gets an interval more
	// of dead time for each round the loss makes necessary (pathMeter),
	// up to maxDeadRounds; 0: DeadAfter for every member.
	Interval time.Duration
	// Failures is how many rounds DeadAfter covers (with Interval).
	Failures int

	mu      sync.Mutex
	insts   map[string]*arbInstance
	lastRun time.Time
}

// creditPauseLocked extends every member's freshness by a pause of the
// arbiter itself (see Arbiter).
func (a *Arbiter) creditPauseLocked(now time.Time) {
	if pause := now.Sub(a.lastRun); a.PauseAfter > 0 && !a.lastRun.IsZero() && pause > a.PauseAfter {
		for _, in := range a.insts {
			for _, m := range in.members {
				m.last = m.last.Add(pause)
				if m.last.After(now) {
					m.last = now
				}
			}
		}
	}
	a.lastRun = now
}

type arbInstance struct {
	active    string
	preferred string
	members   map[string]*arbMember
	// followUntil: the role is another hub's decision until then (Follow).
	followUntil time.Time
}

type arbMember struct {
	last    time.Time
	healthy bool
	lanOK   bool
	path    pathMeter
}

// Loss-aware dead time: a member whose claims come over a lossy path
// gets more claim rounds before its silence counts as stopped, so that
// random loss alone does not pass for a stopped device (and hand the role
// over again and again), while a device on a clean path that stops is
// still found out after Failures rounds.
const (
	// lossTarget is the chance per claim round that the arbiter accepts
	// of loss alone missing every round of a member's dead time.
	lossTarget = 1e-7
	// lossFast is the weight of a claim round in the fast loss averages
	// (exponential: they follow a rise within about 16 rounds, 1.6 s at
	// the default interval); lossSlow the weight in the slow ones, and
	// how fast the held peak of the copies' loss fades, per round (over
	// about 128). The estimate of the copies' loss is that peak, so it
	// errs high: the random dips of a short average do not shorten the
	// dead time.
	lossFast = 1.0 / 16
	lossSlow = 1.0 / 128
	// maxDeadRounds caps the dead time at ten rounds, the device's own
	// withdrawAfter: beyond that the device gives up its claim anyway.
	maxDeadRounds = 10
	// seqRestart is how many rounds back a claim's Seq may jump before it
	// counts as a restarted device (whose sequence began again), not a
	// late copy.
	seqRestart = 16
)

// pathMeter measures the loss on a member's claim path from the claims'
// sequence numbers and copies.
type pathMeter struct {
	seq    uint64
	copies int // copies of round seq heard
	sent   int // copies the device sends of each round
	// copyLoss is the share of copies lost (a fast average) and
	// copyPeak its held peak; roundLoss the share of rounds of which no
	// copy came (a fast and a slow average).
	copyLoss, copyPeak float64
	roundLoss          [2]float64
}

// observe counts a claim. failures is the health check's: a silence of
// that many rounds or more is an outage (the member counted as stopped,
// a restart, a cut), not evidence of random loss, and is left out.
func (l *pathMeter) observe(c Claim, failures int) {
	switch {
	case l.seq == 0 || c.Seq+seqRestart < l.seq:
		l.seq, l.copies = c.Seq, 1
	case c.Seq == l.seq:
		l.copies++
	case c.Seq > l.seq:
		sent := max(l.sent, 1)
		l.round(1-float64(min(l.copies, sent))/float64(sent), 0)
		if missed := c.Seq - l.seq - 1; missed < uint64(max(failures, 1)) {
			for range missed {
				l.round(1, 1)
			}
		}
		l.seq, l.copies = c.Seq, 1
	}
	// c.Seq < l.seq: a late copy of a round already counted.
	l.sent = max(c.Copies, 1)
}

func (l *pathMeter) round(copyLoss, roundLoss float64) {
	l.copyLoss += lossFast * (copyLoss - l.copyLoss)
	l.copyPeak = max(l.copyLoss, l.copyPeak-lossSlow*l.copyPeak)
	for i, w := range [2]float64{lossFast, lossSlow} {
		l.roundLoss[i] += w * (roundLoss - l.roundLoss[i])
	}
}

// loss is the estimated share of claim copies lost: the held peak of the
// fast average.
func (l *pathMeter) loss() float64 { return l.copyPeak }

// rounds is how many claim rounds must go unheard before the member
// counts as stopped: base on a clean path; on a lossy one enough that
// loss alone misses them all with at most lossTarget chance, taking the
// worse of the copies' loss (as if independent) and the rounds' own.
func (l *pathMeter) rounds(base int) int {
	q := max(math.Pow(l.loss(), float64(max(l.sent, 1))), l.roundLoss[0], l.roundLoss[1])
	switch {
	case q <= 0:
		return base
	case q >= 1:
		return max(base, maxDeadRounds)
	}
	k := int(math.Ceil(math.Log(lossTarget) / math.Log(q)))
	return min(max(base, k), max(base, maxDeadRounds))
}

// deadAfter is the dead time for a path: base (Failures rounds and
// slack) with a round more for each the loss needs (rounds caps them at
// maxDeadRounds).
func (l *pathMeter) deadAfter(base time.Duration, failures int, interval time.Duration) time.Duration {
	return base + time.Duration(l.rounds(failures)-failures)*interval
}

// SetMembers tells the arbiter an instance's devices (from the controller)
// and the controller's active one. The arbiter's own choice stands while
// it is still a member.
func (a *Arbiter) SetMembers(now time.Time, inst string, sns []string, controllerActive string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.insts == nil {
		a.insts = map[string]*arbInstance{}
	}
	in := a.insts[inst]
	if in == nil {
		in = &arbInstance{members: map[string]*arbMember{}}
		a.insts[inst] = in
	}
	keep := map[string]bool{}
	for _, sn := range sns {
		keep[sn] = true
		if in.members[sn] == nil {
			in.members[sn] = &arbMember{last: now, healthy: true, lanOK: true}
		}
	}
	for sn := range in.members {
		if !keep[sn] {
			delete(in.members, sn)
		}
	}
	// The preferred device (for Preempt) is the controller's first choice
	// this hub saw; later configs carry the arbiter's own switches back.
	if in.members[in.preferred] == nil {
		in.preferred = ""
		if in.members[controllerActive] != nil {
			in.preferred = controllerActive
		}
	}
	if in.members[in.active] == nil {
		in.active = ""
		if in.members[controllerActive] != nil {
			in.active = controllerActive
		}
	}
}

// Forget drops instances not in keep.
func (a *Arbiter) Forget(keep map[string]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id := range a.insts {
		if !keep[id] {
			delete(a.insts, id)
		}
	}
}

// Claim records a device's claim and returns its role after deciding.
func (a *Arbiter) Claim(now time.Time, inst, sn string, c Claim) (role string, events []RoleEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.creditPauseLocked(now)
	in := a.insts[inst]
	if in == nil || in.members[sn] == nil {
		return api.RoleStandby, nil
	}
	m := in.members[sn]
	m.last, m.healthy, m.lanOK = now, c.Healthy, c.LANOK
	m.path.observe(c, a.Failures)
	events = a.decideLocked(now, inst, in)
	if in.active == sn {
		return api.RoleActive, events
	}
	return api.RoleStandby, events
}

// Tick re-decides every instance; call it every interval.
func (a *Arbiter) Tick(now time.Time) []RoleEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.creditPauseLocked(now)
	var out []RoleEvent
	ids := make([]string, 0, len(a.insts))
	for id := range a.insts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		out = append(out, a.decideLocked(now, id, a.insts[id])...)
	}
	return out
}

// Follow makes sn the instance's active device because another hub of a
// hub group decided so (the hub that carries the instance, whose word the
// devices take), and keeps the arbiter's own decisions for the instance
// off until until: a hub that does not hear a device the carrying hub
// hears must not pick another, or the role would change when the
// devices move to it. It returns the switch, if any.
func (a *Arbiter) Follow(now time.Time, inst, sn string, until time.Time) []RoleEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	in := a.insts[inst]
	if in == nil || in.members[sn] == nil {
		return nil
	}
	in.followUntil = until
	if in.active == sn {
		return nil
	}
	prev := in.active
	in.active = sn
	const reason = "the carrying hub's decision"
	var ev []RoleEvent
	if prev != "" {
		ev = append(ev, RoleEvent{Time: now, Instance: inst, SN: prev, Role: api.RoleStandby, Reason: reason})
	}
	return append(ev, RoleEvent{Time: now, Instance: inst, SN: sn, Role: api.RoleActive, Previous: prev, Reason: reason})
}

// Members returns how many devices the instance has.
func (a *Arbiter) Members(inst string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if in := a.insts[inst]; in != nil {
		return len(in.members)
	}
	return 0
}

// Active returns the instance's active SN ("" when none).
func (a *Arbiter) Active(inst string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if in := a.insts[inst]; in != nil {
		return in.active
	}
	return ""
}

func (a *Arbiter) fresh(now time.Time, m *arbMember) bool {
	return m != nil && now.Sub(m.last) <= a.deadAfter(m)
}

// deadAfter is m's dead time: DeadAfter, longer while m's claims show
// loss (see Interval).
func (a *Arbiter) deadAfter(m *arbMember) time.Duration {
	if a.Interval <= 0 || a.Failures <= 0 {
		return a.DeadAfter
	}
	return m.path.deadAfter(a.DeadAfter, a.Failures, a.Interval)
}

// ClaimPath is what the arbiter makes of a member's claim path.
type ClaimPath struct {
	// Loss is the estimated share of the claim copies lost (0 to 1; the
	// estimate errs high).
	Loss float64 `json:"loss"`
	// DeadAfter is how long without a claim before the member counts as
	// stopped: the health check's, longer on a lossy path.
	DeadAfter time.Duration `json:"dead_after"`
}

// Path returns the arbiter's view of sn's claim path in instance inst
// (false: not a member, or no claim from it yet).
func (a *Arbiter) Path(inst, sn string) (ClaimPath, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	in := a.insts[inst]
	if in == nil || in.members[sn] == nil || in.members[sn].path.seq == 0 {
		return ClaimPath{}, false
	}
	m := in.members[sn]
	return ClaimPath{Loss: m.path.loss(), DeadAfter: a.deadAfter(m)}, true
}

func (a *Arbiter) ok(now time.Time, m *arbMember) bool {
	return a.fresh(now, m) && m.healthy
}

func (a *Arbiter) decideLocked(now time.Time, inst string, in *arbInstance) []RoleEvent {
	if now.Before(in.followUntil) {
		return nil // another hub decides (Follow)
	}
	cur := in.members[in.active]
	var reason string
	switch {
	case in.active == "":
		return nil // the controller named none: nothing to take over
	case !a.fresh(now, cur):
		reason = "claims stopped"
	case !cur.healthy && !cur.lanOK:
		reason = "LAN targets unreachable"
	case !cur.healthy:
		reason = "reported unhealthy"
	case a.Preempt && in.preferred != "" && in.preferred != in.active && a.ok(now, in.members[in.preferred]):
		reason = "preemption"
	default:
		return nil
	}
	next := ""
	if reason == "preemption" {
		next = in.preferred
	} else {
		sns := make([]string, 0, len(in.members))
		for sn := range in.members {
			sns = append(sns, sn)
		}
		slices.Sort(sns)
		for _, sn := range sns {
			if sn != in.active && a.ok(now, in.members[sn]) {
				next = sn
				break
			}
		}
	}
	if next == "" {
		return nil // nobody better: the active keeps the role
	}
	prev := in.active
	in.active = next
	var ev []RoleEvent
	if prev != "" {
		ev = append(ev, RoleEvent{Time: now, Instance: inst, SN: prev, Role: api.RoleStandby, Reason: reason})
	}
	ev = append(ev, RoleEvent{Time: now, Instance: inst, SN: next, Role: api.RoleActive, Previous: prev, Reason: reason})
	return ev
}

// appendEvents adds events to the history (the last maxEvents), folding
// each into an identical one among the last two entries: a device flapping
// between two roles leaves two entries with counts, not a full history.
func appendEvents(have []RoleEvent, add ...RoleEvent) []RoleEvent {
	for _, ev := range add {
		same := func(a RoleEvent) bool {
			return a.Instance == ev.Instance && a.SN == ev.SN && a.Role == ev.Role && a.Previous == ev.Previous && a.Reason == ev.Reason
		}
		have = foldAppend(have, ev, same, func(old *RoleEvent) { old.Count, old.Last = old.Times()+1, ev.Time })
	}
	return have
}
