package dataplane

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// pmtuProber sends echo requests of a given size with DF set through the
// tunnel to the hub's overlay address and waits for the answers.
type pmtuProber struct {
	e    *Engine
	w    *wgIface
	conn net.PacketConn
	id   int

	mu      sync.Mutex
	seq     int
	waiting map[int]chan struct{}
}

// startPathMTU watches the path MTU: every interval (the first check once
// the hub answers through the tunnel) it sends probes of the tunnel's MTU;
// when none comes back while small ones do, it searches the largest size
// that does and lowers the tunnel's MTU to it, with an event. TCP
// connections follow through the MSS clamp (rt mtu) and, for those
// already open, the kernel's "fragmentation needed" to the LAN host.
func (e *Engine) startPathMTU(ctx context.Context, w *wgIface) error {
	if e.pmtuInterval < 0 {
		return nil
	}
	p := &pmtuProber{e: e, w: w, id: (os.Getpid() + 2) & 0xffff, waiting: map[int]chan struct{}{}}
	err := w.inNS(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				// DF on every probe, sized past what the kernel believes the
				// path MTU is: the probe itself finds out.
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
			}); err != nil {
				return err
			}
			return serr
		}}
		var e2 error
		p.conn, e2 = lc.ListenPacket(ctx, "ip4:icmp", "0.0.0.0")
		return e2
	})
	if err != nil {
		return fmt.Errorf("path-MTU probe socket: %w", err)
	}
	e.bg.Add(3)
	go func() { defer e.bg.Done(); <-ctx.Done(); p.conn.Close() }()
	go func() { defer e.bg.Done(); p.read() }()
	go func() { defer e.bg.Done(); p.loop(ctx) }()
	return nil
}

func (p *pmtuProber) loop(ctx context.Context) {
	e := p.e
	wait := time.Second // until the hub first answers
	for {
		restore := false
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-e.pmtuKick:
			restore = true
		}
		if h := e.linkHealth(); h == nil || h.LastAnswer.IsZero() {
			continue
		}
		wait = e.pmtuInterval
		p.check(ctx, restore)
	}
}

// check runs one search and applies its result. With restore (the host's
// network changed, so the path may have too), a lowered tunnel first gets
// its configured MTU back and the search starts from there.
func (p *pmtuProber) check(ctx context.Context, restore bool) {
	e := p.e
	cur := int(e.mtu.Load())
	if restore && cur < e.c.mtu {
		if err := p.w.nl.LinkSetMTU(p.w.link, e.c.mtu); err != nil {
			e.c.log.Error("restore the tunnel MTU after a network change", "interface", p.w.name, "mtu", e.c.mtu, "err", err)
		} else {
			e.c.log.Info("network changed: tunnel MTU back to its configured value, measuring the path again", "from", cur, "to", e.c.mtu)
			e.mtu.Store(int64(e.c.mtu))
			e.linkMu.Lock()
			e.pmtu.Current = e.c.mtu
			e.events = appendEvent(e.events, Event{Time: e.c.now(), Kind: "mtu", Message: "network changed: tunnel MTU restored, path measured again",
				Detail: fmt.Sprintf("tunnel MTU %d → %d", cur, e.c.mtu)})
			e.linkMu.Unlock()
			cur = e.c.mtu
		}
	}
	got, verdict := searchPathMTU(cur, minTunnelMTU, func(size int) bool { return p.round(ctx, size) })
	if ctx.Err() != nil {
		return
	}
	e.linkMu.Lock()
	e.pmtu.Verdict, e.pmtu.LastCheck = verdict, e.c.now()
	e.linkMu.Unlock()
	if verdict != PMTUBlackHole || got >= cur {
		return
	}
	if err := p.w.nl.LinkSetMTU(p.w.link, got); err != nil {
		e.c.log.Error("lower the tunnel MTU after a path-MTU black hole", "interface", p.w.name, "mtu", got, "err", err)
		return
	}
	e.mtu.Store(int64(got))
	detail := fmt.Sprintf("packets of %d bytes and more through the tunnel get no answer from the hub, %d bytes do: tunnel MTU %d → %d", got+pmtuPrecision, got, cur, got)
	e.c.log.Warn("path-MTU black hole: tunnel MTU lowered", "interface", p.w.name, "from", cur, "to", got)
	e.linkMu.Lock()
	e.pmtu.Current = got
	e.events = appendEvent(e.events, Event{Time: e.c.now(), Kind: "mtu", Message: "path-MTU black hole: tunnel MTU lowered", Detail: detail})
	e.linkMu.Unlock()
}

// round sends pmtuTries probes of size bytes (IP header included) and
// reports whether any was answered.
func (p *pmtuProber) round(ctx context.Context, size int) bool {
	done := make(chan struct{}, pmtuTries)
	var seqs []int
	defer func() {
		p.mu.Lock()
		for _, s := range seqs {
			delete(p.waiting, s)
		}
		p.mu.Unlock()
	}()
	dst := &net.IPAddr{IP: p.e.target.Load().hubOverlay.AsSlice()}
	payload := make([]byte, max(size-ipv4.HeaderLen-8, 0))
	for i := range pmtuTries {
		p.mu.Lock()
		p.seq = (p.seq + 1) & 0xffff
		s := p.seq
		p.waiting[s] = done
		p.mu.Unlock()
		seqs = append(seqs, s)
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: s, Data: payload}}
		if b, err := msg.Marshal(nil); err == nil {
			_, _ = p.conn.WriteTo(b, dst) // EMSGSIZE above the interface's MTU: no answer
		}
		wait := pmtuSpacing
		if i == pmtuTries-1 {
			wait = pmtuWait
		}
		select {
		case <-done:
			return true
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
	return false
}

func (p *pmtuProber) read() {
	// The replies are as large as the probes: up to the largest MTU.
	readEchoReplies(p.conn, p.id, 65536, func(_ netip.Addr, seq int) {
		p.mu.Lock()
		if c, ok := p.waiting[seq]; ok {
			select {
			case c <- struct{}{}:
			default:
			}
		}
		p.mu.Unlock()
	})
}
