// Package controllertest runs a real controller (real store, real TLS, the
// real device API) inside a test process, for tests of anything that talks
// to the controller. Connections are in-memory pipes: no port is opened,
// so tests never collide and never touch the host's network. Each client
// can claim its own source address, so per-address throttling is testable.
//
// It must not be imported outside tests.
package controllertest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/internal/clock"
	"github.com/openvcpe/vcpe/internal/device"
)

// URL is the controller URL clients of a Harness use; the host part is
// never resolved.
const URL = "https://controller.test:8443"

// Harness is a running controller.
type Harness struct {
	*controller.Server
	StateDir    string
	Fingerprint string
	Clock       *clock.Fake
	Options     controller.Options

	tb     testing.TB
	ln     *pipeListener
	ctx    context.Context
	cancel context.CancelFunc
	done   chan error
}

// Option changes the controller options before start.
type Option func(*controller.Options)

// Serve starts a controller with a fresh state directory, hub endpoint
// 198.18.0.1:4500, cloud prefix 198.19.100.0/24 and a fake clock. It is
// stopped when the test ends.
func Serve(tb testing.TB, opts ...Option) *Harness {
	tb.Helper()
	o := controller.Options{
		StateDir:      tb.TempDir(),
		HubEndpoint:   netip.MustParseAddrPort("198.18.0.1:4500"),
		CloudPrefixes: []netip.Prefix{netip.MustParsePrefix("198.19.100.0/24")},
	}
	o.Logger = slog.New(slog.NewTextHandler(logWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, f := range opts {
		f(&o)
	}
	h := &Harness{StateDir: o.StateDir, Options: o, tb: tb, Clock: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	h.start()
	tb.Cleanup(h.Stop)
	return h
}

func (h *Harness) start() {
	h.tb.Helper()
	o := h.Options
	o.Now = h.Clock.Now
	srv, err := controller.New(context.Background(), o)
	if err != nil {
		h.tb.Fatalf("controllertest: start controller: %v", err)
	}
	admin, err := controller.ListenAdmin(o.StateDir)
	if err != nil {
		srv.Close()
		h.tb.Fatalf("controllertest: %v", err)
	}
	h.Server, h.Fingerprint = srv, srv.Fingerprint()
	h.ln = newPipeListener()
	ctx, cancel := context.WithCancel(context.Background())
	h.ctx, h.cancel, h.done = ctx, cancel, make(chan error, 1)
	go func() { h.done <- srv.Serve(ctx, h.ln, admin) }()
}

// Stop shuts the controller down; it is safe to call twice.
func (h *Harness) Stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.tb.Errorf("controllertest: serve: %v", err)
	}
	h.ln.Close()
	if err := h.Server.Close(); err != nil {
		h.tb.Errorf("controllertest: close: %v", err)
	}
	h.cancel = nil
}

// Restart stops the controller and starts it again on the same state
// directory.
func (h *Harness) Restart() {
	h.tb.Helper()
	h.Stop()
	h.start()
}

// ServeOn serves the device API on ln too (for example a TCP listener made
// inside a test's network namespace, so that real binaries can register)
// until the controller stops, and returns the URL to give devices. It
// does not survive Restart; call it again after.
func (h *Harness) ServeOn(ln net.Listener) string {
	h.tb.Helper()
	srv, ctx := h.Server, h.ctx
	go func() {
		if err := srv.ServeDevice(ctx, ln); err != nil {
			h.tb.Logf("controllertest: %v", err)
		}
	}()
	return "https://" + ln.Addr().String()
}

// Admin returns a client of the admin socket.
func (h *Harness) Admin() *controller.AdminClient { return controller.NewAdminClient(h.StateDir) }

// ClientOptions returns options for provision clients whose connections
// come from the address from.
func (h *Harness) ClientOptions(from netip.Addr) device.ClientOptions {
	ln := h.ln
	return device.ClientOptions{Dial: func(ctx context.Context, _, _ string) (net.Conn, error) { return ln.dial(ctx, from) }}
}

// Client returns a registration client pinned to the controller's CA,
// connecting from the address from.
func (h *Harness) Client(from netip.Addr) *device.Client {
	h.tb.Helper()
	c, err := device.NewClient(URL, h.Fingerprint, h.ClientOptions(from))
	if err != nil {
		h.tb.Fatalf("controllertest: %v", err)
	}
	return c
}

type logWriter struct{ tb testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.tb.Logf("controller: %s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// pipeListener hands out in-memory connections.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

var errClosed = errors.New("controllertest: listener closed")

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, errClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 8443}
}

func (l *pipeListener) dial(ctx context.Context, from netip.Addr) (net.Conn, error) {
	server, client := net.Pipe()
	src := net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 40000))
	select {
	case l.conns <- &addrConn{Conn: server, local: l.Addr(), remote: src}:
		return &addrConn{Conn: client, local: src, remote: l.Addr()}, nil
	case <-l.done:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *addrConn) LocalAddr() net.Addr  { return c.local }
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }
