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

// nonces holds issued registration challenges until used or expired.
type nonces struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[string]nonceEntry
}

type nonceEntry struct {
	sn      string
	expires time.Time
}

func newNonces(ttl time.Duration, max int) *nonces {
	return &nonces{ttl: ttl, max: max, m: map[string]nonceEntry{}}
}

// add stores a nonce for sn; false when the table is full of live nonces.
func (n *nonces) add(nonce, sn string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.m) >= n.max {
		for k, e := range n.m {
			if !now.Before(e.expires) {
				delete(n.m, k)
			}
		}
		if len(n.m) >= n.max {
			return false
		}
	}
	n.m[nonce] = nonceEntry{sn: sn, expires: now.Add(n.ttl)}
	return true
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
	delete(n.m, nonce)
	return e.sn == sn && now.Before(e.expires)
}
