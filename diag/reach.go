package diag

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// ReachClient asks the controller for an outside-in reach check
// (device.Client implements it).
type ReachClient interface {
	Reach(ctx context.Context, req api.ReachRequest) (api.ReachResponse, error)
}

// ReachOptions tune OutsideIn.
type ReachOptions struct {
	// WANInterface is where ports this host already uses (vcped holds UDP
	// 4500 and 12345) are watched with an AF_PACKET capture. Empty: those
	// ports are reported "not checked".
	WANInterface string
	// Wait is how long to wait for the packets after the controller
	// answered; default 2 s.
	Wait time.Duration
}

// Reach statuses of a port.
const (
	ReachArrived    = "arrived"
	ReachNotArrived = "not_arrived"
	ReachNotChecked = "not_checked"
)

// PortReach is the verdict for one port.
type PortReach struct {
	api.ReachPort
	Status string `json:"status"` // ReachArrived, ReachNotArrived or ReachNotChecked
	// Via is how arrival was watched: "listener" (a socket of this check)
	// or "capture" (the port is in use; packets were seen on the WAN
	// interface, before this host's own firewall).
	Via    string     `json:"via,omitempty"`
	From   netip.Addr `json:"from,omitzero"`
	Detail string     `json:"detail"`
	Fix    string     `json:"fix,omitempty"`
}

// ReachReport is the outcome of an outside-in reach check.
type ReachReport struct {
	// Target is this host's address as the controller sees it (its public
	// address), the only address it probed.
	Target netip.Addr `json:"target"`
	// NAT is true when Target is not an address of this host.
	NAT   bool        `json:"nat"`
	Ports []PortReach `json:"ports"`
	// OK is true when every checked port arrived.
	OK      bool   `json:"ok"`
	Summary string `json:"summary"`
}

// Port returns the verdict for proto/port.
func (r ReachReport) Port(proto string, port uint16) (PortReach, bool) {
	for _, p := range r.Ports {
		if p.Proto == proto && p.Port == port {
			return p, true
		}
	}
	return PortReach{}, false
}

type arrival struct {
	from netip.Addr
	via  string
}

type reachWatch struct {
	nonce   string
	mu      sync.Mutex
	arrived map[api.ReachPort]arrival
	changed chan struct{}
}

func (w *reachWatch) mark(p api.ReachPort, from netip.Addr, via string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.arrived[p]; ok {
		return
	}
	w.arrived[p] = arrival{from.Unmap(), via}
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// OutsideIn asks the controller to probe this host's public address on
// api.ReachPorts and reports which probes arrived. It listens on the ports
// that are free (UDP and TCP) and watches the ones already held with a
// capture on o.WANInterface. It changes nothing on the host.
func OutsideIn(ctx context.Context, client ReachClient, o ReachOptions) (ReachReport, error) {
	if o.Wait <= 0 {
		o.Wait = 2 * time.Second
	}
	var nb [api.ReachNonceLen / 2]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return ReachReport{}, fmt.Errorf("reach check: nonce: %w", err)
	}
	w := &reachWatch{nonce: hex.EncodeToString(nb[:]), arrived: map[api.ReachPort]arrival{}, changed: make(chan struct{}, 1)}

	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var closers []io.Closer
	var capture *Capture
	defer func() {
		stop()
		for _, c := range closers {
			c.Close() // unblocks the listeners' reads
		}
		wg.Wait() // the capture's Run returns within its poll timeout
		if capture != nil {
			capture.Close() // only once Run has returned: it unmaps the ring
		}
	}()

	held := map[api.ReachPort]string{} // port → why it is not listened on
	for _, p := range api.ReachPorts {
		c, err := listenReach(wctx, &wg, w, p)
		if err != nil {
			held[p] = err.Error()
			continue
		}
		closers = append(closers, c)
	}
	var capErr error
	if len(held) > 0 {
		if o.WANInterface == "" {
			capErr = errors.New("no WAN interface to capture on")
		} else if c, err := OpenCapture(o.WANInterface); err != nil {
			capErr = err
		} else {
			capture = c
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.Run(wctx, func(pk Packet) bool {
					if pk.Outgoing {
						return true
					}
					p := api.ReachPort{Proto: pk.Proto, Port: pk.Dst.Port()}
					if _, ok := held[p]; !ok {
						return true
					}
					if (pk.Proto == "udp" && api.IsReachPayload(pk.Payload, w.nonce)) || (pk.Proto == "tcp" && pk.SYN) {
						w.mark(p, pk.Src.Addr(), "capture")
					}
					return true
				})
			}()
		}
	}

	res, err := client.Reach(ctx, api.ReachRequest{Nonce: w.nonce})
	if err != nil {
		return ReachReport{}, fmt.Errorf("reach check: %w", err)
	}
	want := 0
	for _, p := range res.Probes {
		if p.Sent {
			want++
		}
	}
	deadline := time.NewTimer(o.Wait)
	defer deadline.Stop()
wait:
	for {
		w.mu.Lock()
		n := len(w.arrived)
		w.mu.Unlock()
		if n >= want {
			break
		}
		select {
		case <-w.changed:
		case <-deadline.C:
			break wait
		case <-ctx.Done():
			return ReachReport{}, ctx.Err()
		}
	}
	w.mu.Lock()
	arrived := make(map[api.ReachPort]arrival, len(w.arrived))
	for k, v := range w.arrived {
		arrived[k] = v
	}
	w.mu.Unlock()
	return judgeReach(res, arrived, held, capErr, o.WANInterface, localAddrs()), nil
}

// listenReach listens on p and marks arrivals of the nonce.
func listenReach(ctx context.Context, wg *sync.WaitGroup, w *reachWatch, p api.ReachPort) (io.Closer, error) {
	addr := fmt.Sprintf(":%d", p.Port)
	var lc net.ListenConfig
	switch p.Proto {
	case "udp":
		pc, err := lc.ListenPacket(ctx, "udp4", addr)
		if err != nil {
			return nil, heldReason(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				if api.IsReachPayload(buf[:n], w.nonce) {
					w.mark(p, addrOf(from), "listener")
				}
			}
		}()
		return pc, nil
	case "tcp":
		l, err := lc.Listen(ctx, "tcp4", addr)
		if err != nil {
			return nil, heldReason(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				buf := make([]byte, 64)
				n, _ := io.ReadAtLeast(c, buf, len(api.ReachPayload(w.nonce)))
				if api.IsReachPayload(buf[:n], w.nonce) {
					w.mark(p, addrOf(c.RemoteAddr()), "listener")
				}
				c.Close()
			}
		}()
		return l, nil
	}
	return nil, fmt.Errorf("unknown protocol %q", p.Proto)
}

func heldReason(err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return errors.New("in use on this host")
	}
	return err
}

func localAddrs() map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	as, _ := net.InterfaceAddrs()
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			m[p.Addr().Unmap()] = true
		}
	}
	return m
}

// judgeReach turns what the controller sent and what arrived into the
// report. It is pure.
func judgeReach(res api.ReachResponse, arrived map[api.ReachPort]arrival, held map[api.ReachPort]string, capErr error, wanIf string, local map[netip.Addr]bool) ReachReport {
	r := ReachReport{Target: res.Target, NAT: res.Target.IsValid() && !local[res.Target.Unmap()], Ports: []PortReach{}, OK: true}
	blocker := "a cloud security group, an upstream firewall or this host's own input rules"
	if r.NAT {
		blocker = fmt.Sprintf("the NAT in front of this host (the controller sees it as %s; forward the port to this host), a cloud security group or an upstream firewall", res.Target)
	}
	var bad, unchecked []string
	for _, pr := range res.Probes {
		p := PortReach{ReachPort: pr.ReachPort}
		a, ok := arrived[pr.ReachPort]
		_, isHeld := held[pr.ReachPort]
		switch {
		case ok:
			p.Status, p.Via, p.From = ReachArrived, a.via, a.from
			p.Detail = fmt.Sprintf("the controller's probe from %s arrived", a.from)
			if a.via == "capture" {
				p.Detail += fmt.Sprintf(" on %s (seen by capture: the port is in use, so this host's own firewall is not part of this check; precheck checks it)", wanIf)
			}
		case isHeld && capErr != nil:
			p.Status = ReachNotChecked
			p.Detail = fmt.Sprintf("the port is %s and cannot be watched: %v", held[pr.ReachPort], capErr)
			p.Fix = "run as root with --wan-if naming the WAN interface"
			unchecked = append(unchecked, pr.String())
		case pr.Proto == "tcp" && !pr.Sent && strings.Contains(pr.Error, "refused"):
			p.Status = ReachNotArrived
			p.Detail = fmt.Sprintf("the controller's connection was refused (%s): something on the way or this host rejects TCP %d", pr.Error, pr.Port)
			p.Fix = fmt.Sprintf("allow inbound TCP %d to this host in %s", pr.Port, blocker)
		default:
			p.Status = ReachNotArrived
			p.Detail = fmt.Sprintf("the controller sent a probe to %s %s and it never arrived", res.Target, pr)
			if pr.Error != "" {
				p.Detail += fmt.Sprintf(" (controller: %s)", pr.Error)
			}
			p.Fix = fmt.Sprintf("allow inbound %s %d from the hub in %s", strings.ToUpper(pr.Proto), pr.Port, blocker)
			if pr.Proto == "udp" && pr.Port == 4500 {
				p.Fix += "; without it the hub cannot reach this device when its NAT mapping expires"
			}
		}
		if p.Status == ReachNotArrived {
			r.OK = false
			bad = append(bad, pr.String())
		}
		r.Ports = append(r.Ports, p)
	}
	switch {
	case len(bad) > 0:
		r.Summary = fmt.Sprintf("not arriving from outside at %s: %s; blocked by %s", res.Target, strings.Join(bad, ", "), blocker)
	case len(unchecked) > 0:
		r.Summary = fmt.Sprintf("every checked port arrives at %s; not checked: %s", res.Target, strings.Join(unchecked, ", "))
	default:
		r.Summary = fmt.Sprintf("every probed port arrives from outside at %s", res.Target)
	}
	return r
}
