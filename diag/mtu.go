package diag

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
)

// MTUOptions control a path-MTU search. Zero values take the defaults.
type MTUOptions struct {
	Source  netip.Addr
	Timeout time.Duration // wait for each probe's answer (default 1s)
	Tries   int           // probes per size before it counts as silently dropped (default 2)
	// Confirm is how many more probes a silent size gets, spaced over
	// one Timeout, before the search reports it: as the boundary of a
	// black hole, or the smallest size as an unreachable target (default
	// 8). Under random loss a size's Tries are all lost often (at 35 %
	// one way, one time in eight, and a search takes a dozen steps); the
	// Confirm more are not (one time in 4,400). A confirmation that gets
	// an answer sends the search on above that size. It costs one
	// Timeout more than a silent step, whatever the count.
	Confirm int
	// Max is where the search starts (default: the MTU of the interface
	// of the route to the target); Min the smallest size tried (68).
	Max, Min int
	ICMPMode ICMPMode
	// UDP probes a reflector on Port (default ReflectorPort) instead of
	// ICMP echo: for paths that filter ICMP echo. The reflector answers
	// packets up to 1,500 bytes, so the search starts there at most.
	UDP    bool
	Port   uint16
	OnStep func(MTUStep)
	Now    func() time.Time
}

// MTUStep is one size tried during the search.
type MTUStep struct {
	Size    int        `json:"size"`
	Outcome string     `json:"outcome"` // "reply", "frag-needed", "silent", "local-too-big", "icmp-error"
	From    netip.Addr `json:"from,omitzero"`
	MTU     int        `json:"mtu,omitempty"`    // next-hop MTU a router reported
	Probes  int        `json:"probes,omitempty"` // probes sent at this size (more than Tries: it was confirmed)
}

// Path-MTU verdicts.
const (
	MTUFull       = "full"        // the route's own MTU gets through
	MTUFragNeeded = "frag-needed" // a router said where the limit is
	MTUBlackHole  = "black-hole"  // larger packets vanish without "fragmentation needed"
	MTULocal      = "local"       // this host's own path-MTU knowledge limited the search
	MTUICMPError  = "icmp-error"  // larger probes got another ICMP error
)

// MTUResult is the outcome of a path-MTU search.
type MTUResult struct {
	Protocol string     `json:"protocol"` // "icmp" or "udp"
	Target   netip.Addr `json:"target"`
	Port     uint16     `json:"port,omitempty"`
	// MTU is the largest packet (IP header included) that got a reply.
	MTU int `json:"mtu"`
	// RouteMTU is the MTU the search started from (the route's interface,
	// or MTUOptions.Max).
	RouteMTU int    `json:"route_mtu"`
	Verdict  string `json:"verdict"`
	// Reporter is the router that sent "fragmentation needed", if any.
	Reporter netip.Addr `json:"reporter,omitzero"`
	Detail   string     `json:"detail"`
	Steps    []MTUStep  `json:"steps"`
}

// PathMTU finds the largest packet that reaches target and comes back,
// with DF set, by ICMP echo (or UDP to a reflector, MTUOptions.UDP). It honours "fragmentation needed" (jumping to
// the next-hop MTU a router reports) and otherwise binary-searches. When
// large probes vanish without any "fragmentation needed", the result says
// the path black-holes them. The target can be across the WAN or through
// the tunnel: it is just an address.
func PathMTU(ctx context.Context, target netip.Addr, o MTUOptions) (MTUResult, error) {
	if !target.Unmap().Is4() {
		return MTUResult{}, fmt.Errorf("target %s: only IPv4 is supported", target)
	}
	target = target.Unmap()
	if o.Max == 0 {
		m, err := ifaceMTU(target, o.Source)
		if err != nil {
			return MTUResult{}, err
		}
		o.Max = m
		if o.UDP {
			o.Max = min(m, udpIPHeaders+defaultMaxPayload)
		}
	}
	// IP_PMTUDISC_PROBE: DF set, but the kernel's cached path MTU is
	// ignored, so every size really goes on the wire.
	po := Options{Source: o.Source, ICMPMode: o.ICMPMode, Now: o.Now}.nowDefault()
	var c echoConn
	if o.UDP {
		if o.Port == 0 {
			o.Port = ReflectorPort
		}
		if o.Min == 0 {
			o.Min = 68
		}
		if o.Min < MinUDPProbeSize {
			return MTUResult{}, fmt.Errorf("path MTU search over UDP from %d bytes: a UDP probe is at least %d", o.Min, MinUDPProbeSize)
		}
		uc, err := openUDP(ctx, netip.AddrPortFrom(target, o.Port), po, pmtuProbe)
		if err != nil {
			return MTUResult{}, err
		}
		c = uc
	} else {
		ic, err := openICMP(ctx, target, po, pmtuProbe)
		if err != nil {
			return MTUResult{}, err
		}
		c = ic
	}
	defer c.close()
	res, err := searchMTU(ctx, c, target, o)
	res.Protocol = "icmp"
	if o.UDP {
		res.Protocol, res.Port = "udp", o.Port
	}
	return res, err
}

func (o Options) nowDefault() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func searchMTU(ctx context.Context, c echoConn, target netip.Addr, o MTUOptions) (MTUResult, error) {
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	if o.Tries == 0 {
		o.Tries = 2
	}
	if o.Confirm == 0 {
		o.Confirm = 8
	}
	if o.Min == 0 {
		o.Min = 68
	}
	if o.Max < o.Min || o.Min < icmpIPHeaders {
		return MTUResult{}, fmt.Errorf("path MTU search between %d and %d bytes: max must be at least min, min at least %d", o.Min, o.Max, icmpIPHeaders)
	}
	res := MTUResult{Target: target, RouteMTU: o.Max}
	seq := 0
	answered := func(st *MTUStep, ev event, outcome string) {
		st.Outcome, st.From = outcome, ev.from
		if ev.icmp != nil {
			st.MTU = ev.icmp.MTU
		}
	}
	report := func(st MTUStep) {
		res.Steps = append(res.Steps, st)
		if o.OnStep != nil {
			o.OnStep(st)
		}
	}
	try := func(size int) (MTUStep, error) {
		st := MTUStep{Size: size, Outcome: "silent"}
		for range o.Tries {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			ev, outcome, err := exchange(c, seq, size, o.Timeout)
			seq++
			st.Probes++
			if err != nil {
				return st, err
			}
			if outcome != "silent" {
				answered(&st, ev, outcome)
				break
			}
		}
		report(st)
		return st, nil
	}
	// confirm gives a silent size o.Confirm more probes, spaced over one
	// Timeout, and reports the size again with what they got.
	confirm := func(st MTUStep) (MTUStep, error) {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		ev, outcome, err := exchangeMany(c, seq, o.Confirm, st.Size, o.Timeout)
		seq += o.Confirm
		st.Probes += o.Confirm
		if err != nil {
			return st, err
		}
		if outcome != "silent" {
			answered(&st, ev, outcome)
		}
		report(st)
		return st, nil
	}

	st, err := try(o.Min)
	if err == nil && st.Outcome == "silent" {
		st, err = confirm(st)
	}
	if err != nil {
		return res, err
	}
	if st.Outcome != "reply" {
		return res, fmt.Errorf("path MTU to %s: %d %d-byte probes got no reply (%s): the target is unreachable or does not answer %s", target, st.Probes, o.Min, st.Outcome, answerer(o))
	}
	good, bad := o.Min, o.Max+1 // good answered; bad and above do not
	var limit MTUStep           // the step that set bad
	hint := o.Max
	rounds := 0
search:
	for bad-good > 1 {
		size := (good + bad) / 2
		if hint > good && hint < bad {
			size = hint
		}
		hint = 0
		st, err := try(size)
		if err != nil {
			return res, err
		}
		switch st.Outcome {
		case "reply":
			good = size
			continue
		case "frag-needed", "local-too-big":
			if st.MTU > 0 && st.MTU < size {
				// Sizes above the reported MTU cannot pass that hop.
				hint = st.MTU
				if st.MTU+1 < bad {
					bad, limit = st.MTU+1, st
				}
				continue
			}
		}
		if size < bad {
			bad, limit = size, st
		}
	}
	// A black hole is claimed only on a confirmed boundary. A boundary
	// that answers was loss: the search goes on above it, the sizes above
	// tried afresh, for at most maxMTURounds rounds (on a path that loses
	// that much, diag does not judge the MTU).
	if limit.Outcome == "silent" && rounds < maxMTURounds {
		rounds++
		st, err := confirm(limit)
		if err != nil {
			return res, err
		}
		switch st.Outcome {
		case "silent":
			limit = st
		case "reply":
			good, bad, limit, hint = st.Size, o.Max+1, MTUStep{}, o.Max
			goto search
		default:
			limit = st // an ICMP answer: judged below like one in the search
		}
	}
	res.MTU = good
	switch {
	case good == o.Max:
		res.Verdict = MTUFull
		res.Detail = fmt.Sprintf("path MTU %d: packets of the route's full MTU reach %s", good, target)
	case limit.Outcome == "frag-needed":
		res.Verdict, res.Reporter = MTUFragNeeded, limit.From
		res.Detail = fmt.Sprintf("path MTU %d: router %s reports fragmentation needed above %d bytes", good, limit.From, limit.MTU)
		if limit.MTU == 0 {
			res.Detail = fmt.Sprintf("path MTU %d: router %s reports fragmentation needed for %d bytes (without a next-hop MTU)", good, limit.From, limit.Size)
		}
	case limit.Outcome == "icmp-error":
		res.Verdict, res.Reporter = MTUICMPError, limit.From
		res.Detail = fmt.Sprintf("path MTU %d: %d-byte probes got an ICMP error from %s instead of a reply", good, limit.Size, limit.From)
	case limit.Outcome == "local-too-big":
		res.Verdict = MTULocal
		res.Detail = fmt.Sprintf("path MTU %d: this host refuses larger packets with DF set", good)
	default:
		res.Verdict = MTUBlackHole
		res.Detail = fmt.Sprintf("path MTU %d, and the path black-holes larger packets: %d-byte probes vanish without an ICMP \"fragmentation needed\" "+
			"(a firewall drops that ICMP, or a link drops big packets silently); large TCP segments and tunnel packets will stall. "+
			"Fix: allow ICMP type 3 code 4 along the path, or set the MTU (and TCP MSS) to %d", good, limit.Size, good)
	}
	return res, nil
}

// maxMTURounds bounds how often a path-MTU search goes on above a
// boundary that answered its confirmation.
const maxMTURounds = 5

// exchange sends one probe and waits for its answer. outcome is "reply",
// "frag-needed", "icmp-error", "local-too-big" (the send itself failed with
// EMSGSIZE) or "silent".
func exchange(c echoConn, seq, size int, timeout time.Duration) (event, string, error) {
	return exchangeMany(c, seq, 1, size, timeout)
}

// exchangeMany sends n probes of size, seq upward, spaced over timeout,
// and waits up to timeout after the last for an answer to any of them:
// the first answer decides, as in exchange.
func exchangeMany(c echoConn, seq, n, size int, timeout time.Duration) (event, string, error) {
	gap := timeout / time.Duration(n)
	var deadline time.Time
	for sent := 0; ; {
		if sent < n {
			if err := c.send(seq+sent, size); err != nil {
				if isMsgSize(err) || (isMsgSizeHook != nil && isMsgSizeHook(err)) {
					return event{icmp: &ICMPError{Name: "message too long", MTU: localMTUOf(err)}}, "local-too-big", nil
				}
				return event{}, "", fmt.Errorf("send %d-byte probe: %w", size, err)
			}
			sent++
			deadline = time.Now().Add(gap)
			if sent == n {
				deadline = time.Now().Add(timeout)
			}
		}
		ev, err := c.recv(deadline)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if sent == n {
				return event{}, "silent", nil
			}
			continue
		}
		if err != nil {
			return event{}, "", fmt.Errorf("receive: %w", err)
		}
		if (ev.seq-seq)&0xffff >= sent {
			continue // a late answer to an earlier probe
		}
		switch {
		case ev.icmp == nil:
			return ev, "reply", nil
		case ev.icmp.FragNeeded():
			return ev, "frag-needed", nil
		default:
			return ev, "icmp-error", nil
		}
	}
}

// isMsgSizeHook lets tests' fake sockets report EMSGSIZE.
var isMsgSizeHook func(error) bool

func answerer(o MTUOptions) string {
	if o.UDP {
		return fmt.Sprintf("probes (is a reflector running on UDP %d?)", o.Port)
	}
	return "ICMP echo (try a reflector: --udp)"
}
