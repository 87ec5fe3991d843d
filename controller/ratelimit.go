package controller

import (
	"sync"
	"time"
)

// backoff throttles failed attempts per key (a source address or an SN):
// after free failures, each further failure blocks the key for base·2ⁿ,
// capped at max. A key that has not failed for forget starts over. There is
// no permanent lockout.
type backoff struct {
	free   int
	base   time.Duration
	max    time.Duration
	forget time.Duration

	mu sync.Mutex
	m  map[string]*backoffState
}

type backoffState struct {
	fails int
	last  time.Time
	until time.Time
}

// maxBackoffKeys bounds the limiter's memory; beyond it, forgotten keys are
// swept.
const maxBackoffKeys = 100_000

func newBackoff(free int, base, max, forget time.Duration) *backoff {
	return &backoff{free: free, base: base, max: max, forget: forget, m: map[string]*backoffState{}}
}

// blocked returns how long key must still wait.
func (b *backoff) blocked(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.m[key]
	if st == nil || !now.Before(st.until) {
		return 0
	}
	return st.until.Sub(now)
}

// fail records a failure of key.
func (b *backoff) fail(key string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.m[key]
	if st == nil {
		if len(b.m) >= maxBackoffKeys {
			b.sweepLocked(now)
		}
		st = &backoffState{}
		b.m[key] = st
	}
	if now.Sub(st.last) > b.forget {
		st.fails = 0
	}
	st.fails++
	st.last = now
	if n := st.fails - b.free; n > 0 {
		d := b.max
		if n < 32 {
			if e := b.base << (n - 1); e > 0 && e < b.max {
				d = e
			}
		}
		st.until = now.Add(d)
	}
}

// reset forgets key's failures.
func (b *backoff) reset(key string) {
	b.mu.Lock()
	delete(b.m, key)
	b.mu.Unlock()
}

func (b *backoff) sweepLocked(now time.Time) {
	for k, st := range b.m {
		if now.Sub(st.last) > b.forget && !now.Before(st.until) {
			delete(b.m, k)
		}
	}
}

// nonces holds issued registration challenges until used or expired. One
// source address holds at most perAddr live nonces (its oldest is dropped
// for a new one), so a single host cannot fill the table and starve real
// devices of challenges.
type nonces struct {
	ttl     time.Duration
	max     int
	perAddr int

	mu     sync.Mutex
	m      map[string]nonceEntry
	byAddr map[string][]string // address → its nonces, oldest first
}

type nonceEntry struct {
	sn      string
	addr    string
	expires time.Time
}

func newNonces(ttl time.Duration, max, perAddr int) *nonces {
	return &nonces{ttl: ttl, max: max, perAddr: perAddr, m: map[string]nonceEntry{}, byAddr: map[string][]string{}}
}

// add stores a nonce for sn requested from addr; false when the table is
// full of live nonces.
func (n *nonces) add(nonce, sn, addr string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if l := n.byAddr[addr]; len(l) >= n.perAddr {
		delete(n.m, l[0])
		n.byAddr[addr] = l[1:]
	}
	if len(n.m) >= n.max {
		for k, e := range n.m {
			if !now.Before(e.expires) {
				n.removeLocked(k, e)
			}
		}
		if len(n.m) >= n.max {
			return false
		}
	}
	n.m[nonce] = nonceEntry{sn: sn, addr: addr, expires: now.Add(n.ttl)}
	n.byAddr[addr] = append(n.byAddr[addr], nonce)
	return true
}

func (n *nonces) removeLocked(nonce string, e nonceEntry) {
	delete(n.m, nonce)
	l := n.byAddr[e.addr]
	for i, x := range l {
		if x == nonce {
			l = append(l[:i:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(n.byAddr, e.addr)
	} else {
		n.byAddr[e.addr] = l
	}
}

// take consumes a nonce: true only the first time, before it expires, for
// the SN it was issued to.
func (n *nonces) take(nonce, sn string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.m[nonce]
	if !ok {
		return false
	}
	n.removeLocked(nonce, e)
	return e.sn == sn && now.Before(e.expires)
}
