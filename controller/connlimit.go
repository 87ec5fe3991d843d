package controller

import (
	"net"
	"net/netip"
	"sync"
)

// Connection caps of the device API listener: per source network (an
// IPv4 address, an IPv6 /64) and in all. A connection beyond either is
// closed at once, before TLS, so one host cannot hold every slot. The
// per-source cap leaves room for many devices behind one NAT address
// (each keeps one connection).
const (
	MaxConnsPerSource = 64
	MaxConns          = 4096
)

// limitListener caps concurrent connections per source network and in
// all.
type limitListener struct {
	net.Listener
	perSource, total int

	mu    sync.Mutex
	n     int
	bySrc map[string]int
}

func newLimitListener(ln net.Listener, perSource, total int) *limitListener {
	return &limitListener{Listener: ln, perSource: perSource, total: total, bySrc: map[string]int{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := "unknown"
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			src = netKey(ap.Addr())
		}
		l.mu.Lock()
		if l.n >= l.total || l.bySrc[src] >= l.perSource {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.n++
		l.bySrc[src]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, release: func() { l.release(src) }}, nil
	}
}

func (l *limitListener) release(src string) {
	l.mu.Lock()
	l.n--
	if l.bySrc[src]--; l.bySrc[src] <= 0 {
		delete(l.bySrc, src)
	}
	l.mu.Unlock()
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
