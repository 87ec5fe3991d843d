package dataplane

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// wireguard-go queues packets between the TUN and the UDP socket without a
// bound it exposes: up to 1,024 batches of up to 128 packets in each
// direction, each packet in its own 64 KiB buffer. When one side of the
// pipeline is slower than the other (the TUN writes and the kernel's TCP
// on the receiving end; the crypto on a flooded sending end) the queue
// grows until the Go heap is hundreds of MiB, and every queued packet adds
// latency the inner TCP cannot see, so it never backs off.
//
// inflight bounds one direction: the packets taken in (read from the TUN,
// or received from the socket) and not yet handed on (sent on the socket,
// or written to the TUN). Over the bound, the side taking packets in
// waits, so the excess waits in (and, past its size, is dropped from) the
// kernel's queue in front of it instead: the TUN's transmit queue, or the
// UDP socket's receive buffer. Losing there is what tells the inner TCP to
// slow down.
//
// Packets wireguard-go drops inside (no peer for the destination, failed
// authentication, a peer going away) are never handed on, so the count
// can only overestimate. A wait that sees no packet handed on for
// staleAfter takes the count as stale and starts it again from zero.
type inflight struct {
	limit int64
	n     atomic.Int64

	mu      sync.Mutex
	waiters int
	moved   chan struct{} // closed, and replaced, when packets are handed on

	stale      atomic.Uint64 // times the count was started again
	staleAfter time.Duration
}

// inflightLimit is the bound of each direction, in packets, chosen with
// make bench. Against no bound (same run), 256 gained 6–78% in the TCP
// cells and 66% in the hub case, with the tunnel ends at 138–147 MiB RSS
// under load instead of 206–460 MiB, and lossless UDP kept its rate.
// Against 256 (another run), 128 gained up to 9% more TCP and held the
// ends at 114–118 MiB. A batch is up to 128 packets, so one batch can be
// encrypted while the next is read.
const inflightLimit = 128

// staleAfter is how long a wait goes without any packet handed on before
// the count is taken as stale. Far above the time a busy pipeline takes to
// hand on a batch (well under a millisecond), far below what a person or a
// health check notices.
const staleAfter = 10 * time.Millisecond

// newInflight bounds a direction to limit packets; 0 or less: no bound.
func newInflight(limit int) *inflight {
	if limit <= 0 {
		return nil
	}
	return &inflight{limit: int64(limit), moved: make(chan struct{}), staleAfter: staleAfter}
}

// room reports how many more packets may come in now.
func (f *inflight) room() int64 {
	if f == nil {
		return 1 << 62
	}
	return f.limit - f.n.Load()
}

// in counts k packets taken in.
func (f *inflight) in(k int) {
	if f != nil && k > 0 {
		f.n.Add(int64(k))
	}
}

// out counts k packets handed on and wakes the waiting side.
func (f *inflight) out(k int) {
	if f == nil || k <= 0 {
		return
	}
	if v := f.n.Add(-int64(k)); v < 0 {
		f.n.CompareAndSwap(v, 0) // handed on what a reset forgot
	}
	f.mu.Lock()
	if f.waiters > 0 {
		close(f.moved)
		f.moved = make(chan struct{})
	}
	f.mu.Unlock()
}

// wait returns once the direction is under its bound, or the count was
// found stale.
func (f *inflight) wait() {
	if f == nil || f.n.Load() < f.limit {
		return
	}
	var timer *time.Timer
	for {
		f.mu.Lock()
		if f.n.Load() < f.limit {
			f.mu.Unlock()
			break
		}
		f.waiters++
		moved := f.moved
		f.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(f.staleAfter)
		} else {
			timer.Reset(f.staleAfter)
		}
		stale := false
		select {
		case <-moved:
		case <-timer.C:
			stale = true
		}
		f.mu.Lock()
		f.waiters--
		f.mu.Unlock()
		if stale {
			f.n.Store(0)
			f.stale.Add(1)
			break
		}
	}
	if timer != nil {
		timer.Stop()
	}
}

// isData says whether b is a WireGuard transport message carrying a packet
// (not a handshake message, cookie or keepalive): the only messages that
// stand for a packet read from, or to be written to, the TUN.
func isData(b []byte) bool {
	const transportType, keepaliveSize = 4, 32
	return len(b) > keepaliveSize && b[0] == transportType && b[1] == 0 && b[2] == 0 && b[3] == 0
}

func countData(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		if isData(b) {
			n++
		}
	}
	return n
}

// flowBind is the UDP side of the two bounds: a send hands packets on
// (tx), a receive takes them in (rx) once rx has room.
type flowBind struct {
	conn.Bind
	tx, rx *inflight
}

func (b *flowBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	if err != nil || b.rx == nil {
		return fns, actual, err
	}
	wrapped := make([]conn.ReceiveFunc, len(fns))
	for i, fn := range fns {
		wrapped[i] = func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
			b.rx.wait()
			n, err := fn(packets, sizes, eps)
			k := 0
			for j := range n {
				if isData(packets[j][:sizes[j]]) {
					k++
				}
			}
			b.rx.in(k)
			return n, err
		}
	}
	return wrapped, actual, nil
}

func (b *flowBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	err := b.Bind.Send(bufs, ep)
	b.tx.out(countData(bufs))
	return err
}
