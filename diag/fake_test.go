package diag

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"
)

// fakeConn is an echoConn whose answers come from respond: for each probe
// sent it returns the events to deliver (with their delays).
type fakeConn struct {
	respond func(seq, size int) ([]fakeAnswer, error)
	events  chan event
	mu      sync.Mutex
	sent    []int // sizes, in order
	closed  bool
}

type fakeAnswer struct {
	delay time.Duration
	ev    event
}

func newFakeConn(respond func(seq, size int) ([]fakeAnswer, error)) *fakeConn {
	return &fakeConn{respond: respond, events: make(chan event, 1024)}
}

func (f *fakeConn) send(seq, size int) error {
	f.mu.Lock()
	f.sent = append(f.sent, size)
	f.mu.Unlock()
	answers, err := f.respond(seq, size)
	if err != nil {
		return err
	}
	for _, a := range answers {
		ev := a.ev
		ev.seq = seq & 0xffff
		if a.delay == 0 {
			ev.at = time.Now()
			f.events <- ev
			continue
		}
		go func() {
			time.Sleep(a.delay)
			ev.at = time.Now()
			f.events <- ev
		}()
	}
	return nil
}

func (f *fakeConn) recv(deadline time.Time) (event, error) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case ev := <-f.events:
		return ev, nil
	case <-t.C:
		return event{}, fmt.Errorf("fake read: %w", os.ErrDeadlineExceeded)
	}
}

func (f *fakeConn) close() error { f.closed = true; return nil }

func (f *fakeConn) sizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.sent...)
}

var errFakeMsgSize = errors.New("fake: message too long")

// fakePath answers echo probes like a path whose links carry mtu bytes:
// a larger probe gets "fragmentation needed" from the router when
// fragNeeded is set, and vanishes otherwise (a black hole).
func fakePath(mtu int, fragNeeded bool, router, target netip.Addr) func(seq, size int) ([]fakeAnswer, error) {
	return func(seq, size int) ([]fakeAnswer, error) {
		if size > mtu {
			if !fragNeeded {
				return nil, nil
			}
			return []fakeAnswer{{ev: event{from: router, icmp: newICMPError(3, 4, router, mtu)}}}, nil
		}
		return []fakeAnswer{{ev: event{from: target, size: size}}}, nil
	}
}
