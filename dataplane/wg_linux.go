package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
)

// wgIface is one running wireguard-go device on a TUN, with the netlink
// handle of the namespace it was created in. Everything the engine later
// does to the host goes through that handle (or runs on a thread inside
// that namespace), so goroutines on other threads cannot touch the wrong
// namespace.
type wgIface struct {
	c    common
	ns   netns.NsHandle
	nl   *netlink.Handle
	dev  *device.Device
	name string
	link netlink.Link
	att  *attempts
	// table is the routing table of vcpe's routes (0: main); rules says
	// useTable added policy rules.
	table int
	rules bool
	// closing quiets wireguard-go's complaints about the TUN vanishing
	// while the device is being closed.
	closing atomic.Bool

	errMu   sync.Mutex
	errLast map[string]time.Time // per wireguard-go error format: last logged

	uapi     net.Listener
	uapiPath string
	uapiDone chan struct{}
}

// openWG creates the TUN (with the kernel's offloads), the device, the
// UAPI socket, sets the key and port and brings the link up. On error it
// undoes everything it did.
func openWG(c common) (w *wgIface, err error) {
	w = &wgIface{c: c, att: newAttempts(c.now)}
	if w.ns, err = netns.Get(); err != nil {
		return nil, fmt.Errorf("get network namespace: %w", err)
	}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	if w.nl, err = netlink.NewHandleAt(w.ns); err != nil {
		return w, fmt.Errorf("netlink handle: %w", err)
	}
	var tdev tun.Device
	err = w.inNS(func() error {
		var e error
		tdev, e = tun.CreateTUN(c.tun, c.mtu)
		return e
	})
	if err != nil {
		return w, fmt.Errorf("create tun %s: %w", c.tun, err)
	}
	if w.name, err = tdev.Name(); err != nil {
		tdev.Close()
		return w, fmt.Errorf("tun %s name: %w", c.tun, err)
	}
	// The TUN is read in bursts, and each direction holds at most
	// inflightLimit packets inside wireguard-go (see drainTUN, inflight).
	tx, rx := newInflight(inflightLimit), newInflight(inflightLimit)
	tdev = newDrainTUN(tdev, tx, rx)
	bind := &flowBind{Bind: conn.NewDefaultBind(), tx: tx, rx: rx}
	w.dev = device.NewDevice(newEngineTUN(tdev, w.inNS), bind, w.logger())
	if err = w.ipcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\n", hexKey(c.key), c.listenPort)); err != nil {
		return w, fmt.Errorf("configure %s: %w", w.name, err)
	}
	if err = w.listenUAPI(); err != nil {
		return w, err
	}
	if w.link, err = w.nl.LinkByName(w.name); err != nil {
		return w, fmt.Errorf("find link %s: %w", w.name, err)
	}
	if err = w.nl.LinkSetTxQLen(w.link, TUNTxQueueLen); err != nil {
		return w, fmt.Errorf("set %s txqueuelen %d: %w", w.name, TUNTxQueueLen, err)
	}
	if err = w.nl.LinkSetUp(w.link); err != nil {
		return w, fmt.Errorf("set %s up: %w", w.name, err)
	}
	if err = w.inNS(w.dev.Up); err != nil {
		return w, fmt.Errorf("bring up %s on UDP %d: %w", w.name, c.listenPort, err)
	}
	return w, nil
}

// TUNTxQueueLen is the length of the TUN's transmit queue: the packets
// the kernel keeps for vcped to read, where a burst waits (and past which
// it is dropped) while the daemon is busy with the last one. The kernel's
// default for a TUN is 500. With burst reads and the in-flight bound this
// queue is where the tunnel's backlog stays, and in make bench (same run)
// 2,000 raised lossless 1,024-byte UDP from 1,793/1,670 to 2,115/2,244
// Mbit/s (1/4 streams) with TCP unchanged within its noise. It holds at
// most a few milliseconds of the daemon's rate, since the queue only fills
// when the daemon's CPU, not the WAN, is the bottleneck.
const TUNTxQueueLen = 2000

// close tears down everything openWG made; safe on a partial w.
func (w *wgIface) close() {
	if w.uapi != nil {
		w.uapi.Close()
		<-w.uapiDone
		if w.uapiPath != "" {
			os.Remove(w.uapiPath)
		}
		w.uapi = nil
	}
	if w.dev != nil {
		w.closing.Store(true)
		w.dev.Close() // closes the TUN: the kernel removes the link and its routes
		w.dev = nil
	}
	if w.nl != nil {
		w.nl.Close()
		w.nl = nil
	}
	if w.ns.IsOpen() {
		w.ns.Close()
	}
}

func (w *wgIface) ipcSet(s string) error {
	return w.inNS(func() error { return w.dev.IpcSet(s) })
}

// inNS runs f on a thread inside the engine's namespace: wireguard-go opens
// its UDP sockets (and the kernel resolves /proc/sys/net) in the namespace
// of the calling thread.
func (w *wgIface) inNS(f func() error) error {
	runtime.LockOSThread()
	cur, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get network namespace: %w", err)
	}
	defer cur.Close()
	if cur.Equal(w.ns) {
		runtime.UnlockOSThread()
		return f()
	}
	if err := netns.Set(w.ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace: %w", err)
	}
	ferr := f()
	if err := netns.Set(cur); err == nil {
		runtime.UnlockOSThread()
	} // else: leave the thread locked; it exits with the goroutine
	return ferr
}

// logger feeds wireguard-go's log into slog and records handshake
// initiations, which wireguard-go reports nowhere else.
func (w *wgIface) logger() *device.Logger {
	log := w.c.log.With("interface", w.c.tun)
	return &device.Logger{
		Verbosef: func(format string, args ...any) {
			if format == "%v - Sending handshake initiation" && len(args) == 1 {
				if p, ok := args[0].(fmt.Stringer); ok {
					w.att.record(p.String())
				}
			}
			if log.Enabled(context.Background(), slog.LevelDebug) {
				log.Debug(fmt.Sprintf(format, args...), "source", "wireguard")
			}
		},
		Errorf: func(format string, args ...any) {
			// While the path is down wireguard-go reports every failed send;
			// journald gets each kind of error once per errorEvery.
			if w.closing.Load() || !w.errorDue(format) {
				log.Debug(fmt.Sprintf(format, args...), "source", "wireguard")
				return
			}
			log.Warn(fmt.Sprintf(format, args...), "source", "wireguard")
		},
	}
}

const errorEvery = 30 * time.Second

func (w *wgIface) errorDue(format string) bool {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	now := w.c.now()
	if t, ok := w.errLast[format]; ok && now.Sub(t) < errorEvery {
		return false
	}
	if w.errLast == nil {
		w.errLast = map[string]time.Time{}
	}
	w.errLast[format] = now
	return true
}

// listenUAPI opens the standard WireGuard UAPI socket DIR/NAME.sock so wg(8)
// works. In the default directory it is ipc.UAPIOpen/UAPIListen itself; a
// custom directory (tests, labs with many namespaces and one filesystem)
// gets the same protocol on a socket of our own.
func (w *wgIface) listenUAPI() error {
	w.uapiDone = make(chan struct{})
	if w.c.uapiDir == DefaultUAPIDir {
		f, err := ipc.UAPIOpen(w.name)
		if err != nil {
			return fmt.Errorf("open uapi socket for %s: %w", w.name, err)
		}
		w.uapi, err = ipc.UAPIListen(w.name, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("listen on uapi socket for %s: %w", w.name, err)
		}
	} else {
		if err := os.MkdirAll(w.c.uapiDir, 0o755); err != nil {
			return fmt.Errorf("uapi dir %s: %w", w.c.uapiDir, err)
		}
		path := filepath.Join(w.c.uapiDir, w.name+".sock")
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return fmt.Errorf("uapi socket %s is in use by another process: pick another --uapi-dir or --tun", path)
		}
		_ = os.Remove(path)
		// The socket is made in a private directory, restricted to 0600
		// there and only then moved into place: it is never reachable
		// with the looser mode the process umask gives it.
		tmp, err := os.MkdirTemp(w.c.uapiDir, ".uapi-")
		if err != nil {
			return fmt.Errorf("uapi dir %s: %w", w.c.uapiDir, err)
		}
		defer os.RemoveAll(tmp)
		ln, err := net.Listen("unix", filepath.Join(tmp, "s"))
		if err != nil {
			return fmt.Errorf("listen on uapi socket %s: %w", path, err)
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		if err := os.Chmod(filepath.Join(tmp, "s"), 0o600); err != nil {
			ln.Close()
			return fmt.Errorf("uapi socket %s: %w", path, err)
		}
		if err := os.Rename(filepath.Join(tmp, "s"), path); err != nil {
			ln.Close()
			return fmt.Errorf("uapi socket %s: %w", path, err)
		}
		w.uapi, w.uapiPath = ln, path
	}
	ln, dev := w.uapi, w.dev
	var conns sync.WaitGroup
	go func() {
		defer close(w.uapiDone)
		defer conns.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { defer conns.Done(); dev.IpcHandle(c) }()
		}
	}()
	return nil
}

// peers reads the device's peers through UAPI.
func (w *wgIface) peers() ([]uapiPeer, error) {
	s, err := w.dev.IpcGet()
	if err != nil {
		return nil, fmt.Errorf("read %s state: %w", w.name, err)
	}
	return parseUAPI(s)
}

// setAddr makes p the only vcpe address of the TUN.
func (w *wgIface) setAddr(p, old netip.Prefix) error {
	if old.IsValid() && old != p {
		_ = w.nl.AddrDel(w.link, &netlink.Addr{IPNet: ipNet(old)})
	}
	if err := w.nl.AddrReplace(w.link, &netlink.Addr{IPNet: ipNet(p)}); err != nil {
		return fmt.Errorf("set address %s on %s: %w", p, w.name, err)
	}
	return nil
}

// enableForwarding turns on IPv4 forwarding in the engine's namespace. It
// is left on at Close: installation owns that setting.
func (w *wgIface) enableForwarding() error {
	return w.inNS(func() error {
		const path = "/proc/sys/net/ipv4/ip_forward"
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 && b[0] == '1' {
			return nil
		}
		if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("enable IPv4 forwarding: %w", err)
		}
		return nil
	})
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

var errClosed = errors.New("engine is closed")

// engineTUN hides the TUN's link up/down events from wireguard-go. On those
// events wireguard-go brings the device up or down from its own goroutine,
// which opens the UDP sockets in whatever namespace that goroutine's thread
// is in; the engine instead keeps the device up from Start to Close, in its
// own namespace. MTU updates pass through, and the MTU is read inside the
// engine's namespace (wireguard-go asks by interface name).
type engineTUN struct {
	tun.Device
	events chan tun.Event
	inNS   func(func() error) error
}

func newEngineTUN(d tun.Device, inNS func(func() error) error) *engineTUN {
	t := &engineTUN{Device: d, events: make(chan tun.Event, 4), inNS: inNS}
	go func() {
		defer close(t.events)
		for ev := range d.Events() {
			if ev &^= tun.EventUp | tun.EventDown; ev != 0 {
				t.events <- ev
			}
		}
	}()
	return t
}

// Events returns the TUN's events without EventUp and EventDown.
func (t *engineTUN) Events() <-chan tun.Event { return t.events }

// MTU reads the TUN's MTU from inside the engine's namespace.
func (t *engineTUN) MTU() (int, error) {
	var mtu int
	err := t.inNS(func() error {
		var err error
		mtu, err = t.Device.MTU()
		return err
	})
	return mtu, err
}
