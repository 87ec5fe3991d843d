package diag

import (
	"container/list"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/time/rate"
)

// Reflector answers UDP probes (see AppendProbe for the payload) so that
// `vcpe probe udp` can measure loss, RTT and jitter to hub and device. It
// answers only well-formed version-1 requests no longer than MaxPayload,
// with a reply of exactly the request's size, and rate-limits every
// source and the total, so it cannot amplify or be used to flood anyone.
// The zero value is ready to use with the defaults below.
type Reflector struct {
	// MaxPayload is the largest UDP payload answered (default 1472: a full
	// 1500-byte packet). Larger probes are refused.
	MaxPayload int
	// PerSource is the sustained rate of replies to one source address
	// (default 100/s) with a burst of PerSourceBurst (default 20).
	PerSource      rate.Limit
	PerSourceBurst int
	// Total caps replies over all sources (default 2000/s, burst 200).
	Total      rate.Limit
	TotalBurst int
	// MaxSources bounds the per-source table (default 4096); when full, a
	// new source evicts the least recently seen one, so spoofed sources
	// cannot lock real probers out.
	MaxSources int
	// AllowDst, when set, restricts the reflector to datagrams sent to
	// the addresses it accepts (for example the overlay and cloud-side
	// addresses, not the WAN); others are dropped unanswered. It needs
	// the destination address (IP_PKTINFO on an IPv4 UDP socket); a
	// datagram whose destination is unknown is dropped.
	AllowDst func(netip.Addr) bool
	// Now is the clock (default time.Now); Logger defaults to slog.Default.
	Now    func() time.Time
	Logger *slog.Logger

	once    sync.Once
	mu      sync.Mutex
	total   *rate.Limiter
	sources map[netip.Addr]*list.Element // of *sourceState, most recent first in lru
	lru     *list.List
	stats   reflectorCounters
}

type sourceState struct {
	addr netip.Addr
	lim  *rate.Limiter
	seen time.Time
}

type reflectorCounters struct {
	answered, malformed, oversized, limited, scope atomic.Uint64
}

// ReflectorStats counts what the reflector did with the datagrams it read.
type ReflectorStats struct {
	Answered    uint64 `json:"answered"`
	Malformed   uint64 `json:"malformed"`
	Oversized   uint64 `json:"oversized"`
	RateLimited uint64 `json:"rate_limited"`
	// OutOfScope counts datagrams to an address AllowDst refuses.
	OutOfScope uint64 `json:"out_of_scope,omitempty"`
}

// Verdict is what the reflector does with one datagram.
type Verdict int

const (
	Answer Verdict = iota
	RefuseMalformed
	RefuseOversized
	RefuseRateLimited
)

func (v Verdict) String() string {
	return [...]string{"answer", "malformed", "oversized", "rate-limited"}[v]
}

// defaultMaxPayload is the largest probe payload a reflector answers by
// default: a full 1,500-byte packet.
const defaultMaxPayload = 1500 - udpIPHeaders

func (r *Reflector) init() {
	r.once.Do(func() {
		if r.MaxPayload == 0 {
			r.MaxPayload = defaultMaxPayload
		}
		if r.PerSource == 0 {
			r.PerSource, r.PerSourceBurst = 100, max(r.PerSourceBurst, 20)
		}
		if r.PerSourceBurst == 0 {
			r.PerSourceBurst = 1
		}
		if r.Total == 0 {
			r.Total, r.TotalBurst = 2000, max(r.TotalBurst, 200)
		}
		if r.TotalBurst == 0 {
			r.TotalBurst = 1
		}
		if r.MaxSources == 0 {
			r.MaxSources = 4096
		}
		if r.Now == nil {
			r.Now = time.Now
		}
		if r.Logger == nil {
			r.Logger = slog.Default()
		}
		r.sources = make(map[netip.Addr]*list.Element)
		r.lru = list.New()
		r.total = rate.NewLimiter(r.Total, r.TotalBurst)
	})
}

// Stats returns the counters so far.
func (r *Reflector) Stats() ReflectorStats {
	return ReflectorStats{
		Answered: r.stats.answered.Load(), Malformed: r.stats.malformed.Load(),
		Oversized: r.stats.oversized.Load(), RateLimited: r.stats.limited.Load(), OutOfScope: r.stats.scope.Load(),
	}
}

// Handle decides what to do with datagram b from src and, for Answer,
// turns b into the reply in place (same length: the reply is never larger
// than the request). It is safe for concurrent use.
func (r *Reflector) Handle(b []byte, src netip.Addr) Verdict {
	r.init()
	if len(b) > r.MaxPayload {
		r.stats.oversized.Add(1)
		return RefuseOversized
	}
	p, err := DecodeProbe(b)
	if err != nil || p.Kind != KindRequest {
		r.stats.malformed.Add(1)
		return RefuseMalformed
	}
	if !r.allow(src.Unmap()) {
		r.stats.limited.Add(1)
		return RefuseRateLimited
	}
	b[5] = byte(KindReply)
	r.stats.answered.Add(1)
	return Answer
}

func (r *Reflector) allow(src netip.Addr) bool {
	now := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var s *sourceState
	if e, ok := r.sources[src]; ok {
		s = e.Value.(*sourceState)
		r.lru.MoveToFront(e)
	} else {
		// A full table gives the least recently seen source's slot to the
		// new one: spoofed floods churn the table, they cannot fill it.
		if r.lru.Len() >= r.MaxSources {
			old := r.lru.Back()
			delete(r.sources, old.Value.(*sourceState).addr)
			r.lru.Remove(old)
		}
		s = &sourceState{addr: src, lim: rate.NewLimiter(r.PerSource, r.PerSourceBurst)}
		r.sources[src] = r.lru.PushFront(s)
	}
	s.seen = now
	// Take from the source's bucket first so one busy source cannot drain
	// the shared one; the total caps replies over every source (spoofed
	// ones included).
	return s.lim.AllowN(now, 1) && r.total.AllowN(now, 1)
}

// Serve answers probes read from pc until ctx ends or pc fails. It closes
// nothing: the caller owns pc. On an IPv4 UDP socket bound to the wildcard
// address each reply leaves from the address its request was sent to
// (IP_PKTINFO), so NAT, stateful firewalls and the prober accept it on a
// host with several addresses.
func (r *Reflector) Serve(ctx context.Context, pc net.PacketConn) error {
	r.init()
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	read := func(b []byte) (int, net.Addr, *ipv4.ControlMessage, error) {
		n, a, err := pc.ReadFrom(b)
		return n, a, nil, err
	}
	write := func(b []byte, to net.Addr, _ *ipv4.ControlMessage) error {
		_, err := pc.WriteTo(b, to)
		return err
	}
	if uc, ok := pc.(*net.UDPConn); ok && uc.LocalAddr().(*net.UDPAddr).IP.To4() != nil {
		p4 := ipv4.NewPacketConn(uc)
		if err := p4.SetControlMessage(ipv4.FlagDst, true); err == nil {
			read = func(b []byte) (int, net.Addr, *ipv4.ControlMessage, error) {
				n, cm, a, err := p4.ReadFrom(b)
				return n, a, cm, err
			}
			write = func(b []byte, to net.Addr, cm *ipv4.ControlMessage) error {
				var out *ipv4.ControlMessage
				if cm != nil && cm.Dst != nil && !cm.Dst.IsMulticast() {
					out = &ipv4.ControlMessage{Src: cm.Dst}
				}
				_, err := p4.WriteTo(b, out, to)
				return err
			}
		}
	}
	// One byte more than MaxPayload, so an oversized probe is seen as such
	// and not truncated into a well-formed one.
	buf := make([]byte, r.MaxPayload+1)
	for {
		n, addr, cm, err := read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		src := addrOf(addr)
		if r.AllowDst != nil && (cm == nil || cm.Dst == nil || !r.allowDst(cm.Dst)) {
			r.stats.scope.Add(1)
			continue
		}
		if v := r.Handle(buf[:n], src); v != Answer {
			r.Logger.Debug("reflector refused probe", "from", addr, "bytes", n, "reason", v)
			continue
		}
		if err := write(buf[:n], addr, cm); err != nil {
			r.Logger.Debug("reflector reply", "to", addr, "err", err)
		}
	}
}

func (r *Reflector) allowDst(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	return ok && r.AllowDst(a.Unmap())
}

func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case interface{ AddrPort() netip.AddrPort }:
		return a.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap()
}
