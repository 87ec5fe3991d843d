package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
)

// Dial opens a connection from inside node's namespace. The socket is
// created on a thread that has entered the namespace and keeps it after
// the thread returns to the root namespace.
func (l *Lab) Dial(ctx context.Context, node, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := l.inNS(node, func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		conn = c
		return err
	})
	return conn, err
}

// WaitTCP waits until something accepts TCP connections at addr inside
// node, or the context ends.
func (l *Lab) WaitTCP(ctx context.Context, node, addr string) error {
	for {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := l.Dial(dctx, node, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s on %s: %w", addr, node, errors.Join(ctx.Err(), err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// inNS runs fn on a locked OS thread inside node's namespace. Goroutines
// fn starts do not inherit the namespace.
func (l *Lab) inNS(node string, fn func() error) error {
	target, err := netns.GetFromName(l.NS(node))
	if err != nil {
		return fmt.Errorf("open namespace of %s: %w", node, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter namespace of %s: %w", node, err)
			return
		}
		ferr := fn()
		// Only a thread back in the root namespace returns to the pool;
		// otherwise it stays locked and dies with this goroutine.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}
