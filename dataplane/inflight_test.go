package dataplane

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

func TestInflightBound(t *testing.T) {
	if newInflight(0) != nil {
		t.Fatal("newInflight(0) bounds; want no bound")
	}
	var none *inflight // no bound: every call is a no-op
	none.in(5)
	none.out(5)
	none.wait()

	f := newInflight(4)
	f.staleAfter = time.Minute // no reset while this test hands packets on
	f.in(3)
	f.wait() // under the bound: at once
	if f.room() != 1 {
		t.Fatalf("room = %d; want 1", f.room())
	}

	// Over the bound, two waiters (the IPv4 and IPv6 receivers) are both
	// released by packets handed on, without the count going stale.
	f.in(3)
	var wg sync.WaitGroup
	released := make(chan struct{}, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.wait()
			released <- struct{}{}
		}()
	}
	select {
	case <-released:
		t.Fatal("a waiter went on with 6 packets inside a bound of 4")
	case <-time.After(time.Millisecond):
	}
	// Keep handing on one packet at a time, each well within staleAfter,
	// until both waiters are through.
	for done := 0; done < 2; {
		select {
		case <-released:
			done++
		case <-time.After(time.Millisecond):
			f.out(1)
		}
	}
	wg.Wait()
	if s := f.stale.Load(); s != 0 {
		t.Errorf("count reset %d times while packets were handed on; want 0", s)
	}
	if n := f.n.Load(); n >= 4 {
		t.Errorf("count %d after the waiters went on; want under the bound 4", n)
	}

	// Packets dropped inside wireguard-go are never handed on: a wait with
	// nothing moving takes the count as stale instead of blocking forever.
	f.staleAfter = 10 * time.Millisecond
	f.in(10)
	f.wait()
	if s, n := f.stale.Load(), f.n.Load(); s != 1 || n != 0 {
		t.Errorf("after a wait with nothing handed on: resets %d, count %d; want 1, 0", s, n)
	}
	// Handing on what the reset forgot does not go below zero.
	f.out(3)
	if n := f.n.Load(); n != 0 {
		t.Errorf("count %d after handing on more than counted; want 0", n)
	}
}

func TestIsData(t *testing.T) {
	msg := func(typ byte, size int) []byte {
		b := make([]byte, size)
		b[0] = typ
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"transport with a packet", msg(4, 32+60), true},
		{"keepalive", msg(4, 32), false},
		{"handshake initiation", msg(1, 148), false},
		{"handshake response", msg(2, 92), false},
		{"cookie reply", msg(3, 64), false},
		{"type with high bytes set", append([]byte{4, 0, 0, 1}, make([]byte, 60)...), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		if got := isData(tt.b); got != tt.want {
			t.Errorf("%s: isData = %v; want %v", tt.name, got, tt.want)
		}
	}
}

// fakeBind receives the scripted messages once and records sends.
type fakeBind struct {
	conn.Bind
	recv [][]byte
	sent int
}

func (b *fakeBind) Open(uint16) ([]conn.ReceiveFunc, uint16, error) {
	return []conn.ReceiveFunc{func(packets [][]byte, sizes []int, _ []conn.Endpoint) (int, error) {
		if len(b.recv) == 0 {
			return 0, errors.New("closed")
		}
		n := copy(packets, b.recv)
		for i := range n {
			sizes[i] = len(b.recv[i])
		}
		b.recv = b.recv[n:]
		return n, nil
	}}, 51820, nil
}

func (b *fakeBind) Send(bufs [][]byte, _ conn.Endpoint) error {
	b.sent += len(bufs)
	return nil
}

// TestFlowBind: received transport packets count into rx, sent ones out
// of tx; handshakes and keepalives count in neither.
func TestFlowBind(t *testing.T) {
	data := make([]byte, 100)
	data[0] = 4
	keepalive := make([]byte, 32)
	keepalive[0] = 4
	hs := make([]byte, 148)
	hs[0] = 1
	fb := &fakeBind{recv: [][]byte{data, keepalive, hs, data}}
	tx, rx := newInflight(100), newInflight(100)
	b := &flowBind{Bind: fb, tx: tx, rx: rx}
	fns, _, err := b.Open(0)
	if err != nil || len(fns) != 1 {
		t.Fatalf("Open = %d functions, %v", len(fns), err)
	}
	packets := make([][]byte, 8)
	for i := range packets {
		packets[i] = make([]byte, 200)
	}
	n, err := fns[0](packets, make([]int, 8), make([]conn.Endpoint, 8))
	if err != nil || n != 4 {
		t.Fatalf("receive = %d, %v; want 4", n, err)
	}
	if got := rx.n.Load(); got != 2 {
		t.Errorf("rx count after receiving 2 packets, a keepalive and a handshake = %d; want 2", got)
	}
	tx.in(5)
	ep, _ := conn.NewStdNetBind().ParseEndpoint(netip.MustParseAddrPort("198.18.0.1:4500").String())
	if err := b.Send([][]byte{data, data, keepalive}, ep); err != nil {
		t.Fatal(err)
	}
	if got := tx.n.Load(); got != 3 || fb.sent != 3 {
		t.Errorf("tx count after sending 2 packets and a keepalive = %d (bind got %d); want 3 (3)", got, fb.sent)
	}
}
