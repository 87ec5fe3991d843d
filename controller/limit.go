package controller

import (
	"container/list"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/openvcpe/vcpe/controller/store"
)

// netKey is the throttling key of a client address: the address itself
// for IPv4, its /64 for IPv6 (one host owns a whole /64).
func netKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// lru is a map bounded to max entries: adding to a full one evicts the
// least recently used. Lookups and updates are O(1). Not safe for
// concurrent use.
type lru[V any] struct {
	max int
	ll  *list.List
	m   map[string]*list.Element
}

type lruEntry[V any] struct {
	k string
	v V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, ll: list.New(), m: map[string]*list.Element{}}
}

// get returns the value of k and marks it used.
func (l *lru[V]) get(k string) (V, bool) {
	if e, ok := l.m[k]; ok {
		l.ll.MoveToFront(e)
		return e.Value.(*lruEntry[V]).v, true
	}
	var zero V
	return zero, false
}

// put sets k to v, evicting the least recently used entry when full.
func (l *lru[V]) put(k string, v V) {
	if e, ok := l.m[k]; ok {
		e.Value.(*lruEntry[V]).v = v
		l.ll.MoveToFront(e)
		return
	}
	if l.ll.Len() >= l.max {
		if old := l.ll.Back(); old != nil {
			delete(l.m, old.Value.(*lruEntry[V]).k)
			l.ll.Remove(old)
		}
	}
	l.m[k] = l.ll.PushFront(&lruEntry[V]{k, v})
}

func (l *lru[V]) del(k string) {
	if e, ok := l.m[k]; ok {
		delete(l.m, k)
		l.ll.Remove(e)
	}
}

func (l *lru[V]) len() int { return l.ll.Len() }

// Audit limits: every field of a stored row is capped, and repeated
// failures from one source network are sampled.
const (
	maxAuditField = 256
	// auditBurst rows of one kind (source network, action, result) are
	// stored per auditWindow; more are counted and the count is stored
	// with the next row of that kind.
	auditBurst  = 5
	auditWindow = time.Minute
	auditKinds  = 10_000
)

// Defaults for Options.AuditMaxAge and AuditMaxRows.
const (
	DefaultAuditMaxAge  = 90 * 24 * time.Hour
	DefaultAuditMaxRows = 100_000
	auditPruneEvery     = 1000 // appends between two prunes
)

// capField makes untrusted text safe to store and log: invalid UTF-8 and
// control characters escaped, at most maxAuditField bytes.
func capField(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			clean = false
			break
		}
	}
	if !clean {
		var b strings.Builder
		for _, r := range s {
			if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				fmt.Fprintf(&b, "\\x%02x", r&0xff)
				continue
			}
			b.WriteRune(r)
		}
		s = b.String()
	}
	if len(s) > maxAuditField {
		cut := maxAuditField
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// auditSampler decides which repeated failures are stored.
type auditSampler struct {
	mu sync.Mutex
	m  *lru[*auditCount]
}

type auditCount struct {
	start      time.Time
	n          int
	suppressed int
}

// admit reports whether a row of kind key may be stored now, and how many
// rows of that kind were suppressed since the last stored one.
func (a *auditSampler) admit(key string, now time.Time) (ok bool, suppressed int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = newLRU[*auditCount](auditKinds)
	}
	c, found := a.m.get(key)
	if !found || now.Sub(c.start) >= auditWindow {
		s := 0
		if found {
			s = c.suppressed
		}
		a.m.put(key, &auditCount{start: now, n: 1})
		return true, s
	}
	if c.n < auditBurst {
		c.n++
		s := c.suppressed
		c.suppressed = 0
		return true, s
	}
	c.suppressed++
	return false, 0
}

// auditFailure records a failed device request from source network src,
// sampled: a flood of the same failure from one network stores a few rows
// per minute and a count, never one row per request.
func (s *Server) auditFailure(ctx context.Context, src, who, action, target, result, detail string) {
	ok, suppressed := s.sampler.admit(src+"|"+action+"|"+result, s.now())
	if !ok {
		return
	}
	if suppressed > 0 {
		detail = fmt.Sprintf("%s (%d similar from %s not recorded)", detail, suppressed, src)
	}
	s.audit(ctx, who, action, target, result, detail)
}

// auditPruner is the optional store method that keeps the audit log
// bounded (store.SQLite has it).
type auditPruner interface {
	PruneAudit(ctx context.Context, before time.Time, keep int) (int64, error)
}

var _ auditPruner = (*store.SQLite)(nil)

// pruneAudit deletes audit rows older than AuditMaxAge and beyond
// AuditMaxRows.
func (s *Server) pruneAudit(ctx context.Context) {
	p, ok := s.store.(auditPruner)
	if !ok {
		return
	}
	n, err := p.PruneAudit(context.WithoutCancel(ctx), s.now().Add(-s.opts.AuditMaxAge), s.opts.AuditMaxRows)
	if err != nil {
		s.log.Error("prune audit log", "err", err)
		return
	}
	if n > 0 {
		s.log.Info("audit log pruned", "rows", n, "max_age", s.opts.AuditMaxAge, "max_rows", s.opts.AuditMaxRows)
	}
}

// Route changes per device: a burst, then one a second.
const (
	advertiseRate  = 1
	advertiseBurst = 10
)

// advertiseAllowedLocked takes one route change from the device's bucket.
func (s *Server) advertiseAllowedLocked(sn string) bool {
	if s.advLim == nil {
		s.advLim = newLRU[*rate.Limiter](maxBackoffKeys)
	}
	l, ok := s.advLim.get(sn)
	if !ok {
		l = rate.NewLimiter(advertiseRate, advertiseBurst)
		s.advLim.put(sn, l)
	}
	return l.AllowN(s.now(), 1)
}
