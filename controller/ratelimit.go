package controller

import (
	"container/list"
	"sync"
	"time"
)

// backoff throttles failed attempts per key (a source network, or an SN
// and source network): after free failures, each further failure blocks
// the key for base·2ⁿ, capped at max. A key that has not failed for
// forget starts over. There is no permanent lockout. The table is a
// bounded LRU: a flood of new keys evicts the least recently failed ones,
// it never grows without bound nor is scanned.
type backoff struct {
	free   int
	base   time.Duration
	max    time.Duration
	forget time.Duration

	mu sync.Mutex
	m  *lru[*backoffState]
}

type backoffState struct {
	fails int
	last  time.Time
	until time.Time
}

// maxBackoffKeys bounds each limiter's memory.
const maxBackoffKeys = 100_000

func newBackoff(free int, base, max, forget time.Duration) *backoff {
	return &backoff{free: free, base: base, max: max, forget: forget, m: newLRU[*backoffState](maxBackoffKeys)}
}

// blocked returns how long key must still wait.
func (b *backoff) blocked(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.m.get(key)
	if !ok || !now.Before(st.until) {
		return 0
	}
	return st.until.Sub(now)
}

// fail records a failure of key.
func (b *backoff) fail(key string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.m.get(key)
	if !ok {
		st = &backoffState{}
		b.m.put(key, st)
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
	b.m.del(key)
	b.mu.Unlock()
}

// nonces holds issued registration challenges until used or expired. One
// source network holds at most perNet live nonces (its oldest is dropped
// for a new one), and the whole table at most max: a new nonce then
// replaces the oldest one, so the table is bounded and a flood never
// stops real devices from getting challenges (a device answers within
// seconds; a flooder's old nonces go first).
type nonces struct {
	ttl    time.Duration
	max    int
	perNet int

	mu    sync.Mutex
	order *list.List               // of *nonceEntry, oldest at the back
	m     map[string]*list.Element // nonce → its element
	byNet map[string][]string      // source network → its nonces, oldest first
}

type nonceEntry struct {
	nonce   string
	sn      string
	net     string
	expires time.Time
}

func newNonces(ttl time.Duration, max, perNet int) *nonces {
	return &nonces{ttl: ttl, max: max, perNet: perNet, order: list.New(), m: map[string]*list.Element{}, byNet: map[string][]string{}}
}

// add stores a nonce for sn requested from source network src.
func (n *nonces) add(nonce, sn, src string, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if l := n.byNet[src]; len(l) >= n.perNet {
		n.removeLocked(l[0])
	}
	for n.order.Len() > 0 {
		old := n.order.Back().Value.(*nonceEntry)
		if n.order.Len() < n.max && now.Before(old.expires) {
			break
		}
		n.removeLocked(old.nonce)
	}
	n.m[nonce] = n.order.PushFront(&nonceEntry{nonce: nonce, sn: sn, net: src, expires: now.Add(n.ttl)})
	n.byNet[src] = append(n.byNet[src], nonce)
}

func (n *nonces) removeLocked(nonce string) {
	el, ok := n.m[nonce]
	if !ok {
		return
	}
	e := el.Value.(*nonceEntry)
	delete(n.m, nonce)
	n.order.Remove(el)
	l := n.byNet[e.net]
	for i, x := range l {
		if x == nonce {
			l = append(l[:i:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(n.byNet, e.net)
	} else {
		n.byNet[e.net] = l
	}
}

// take consumes a nonce: true only the first time, before it expires, for
// the SN it was issued to.
func (n *nonces) take(nonce, sn string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	el, ok := n.m[nonce]
	if !ok {
		return false
	}
	e := el.Value.(*nonceEntry)
	n.removeLocked(nonce)
	return e.sn == sn && now.Before(e.expires)
}

// len is the number of nonces held.
func (n *nonces) len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.order.Len()
}
