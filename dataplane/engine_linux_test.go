package dataplane_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// enter moves the test's goroutine, locked to its OS thread, into ns for
// the rest of the test. The engine captures the namespace at Start and
// works through handles into it from then on.
func enter(t *testing.T, ns *namespace.NS) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	h, err := netns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	h.Close()
	t.Cleanup(func() {
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	})
}

func staticConfig(hub api.Key) api.DeviceConfig {
	return api.DeviceConfig{Generation: 1, OverlayAddr: netip.MustParsePrefix("198.18.64.2/18"), HubOverlayAddr: hubOver,
		HubPublicKey: hub, HubEndpoint: hubWAN, Routes: pfx("198.19.2.0/24")}
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestEngineStartCloseCycles starts and closes the real engine (TUN,
// wireguard-go, netlink, prober, UAPI socket) 100 times inside a namespace
// and checks that goroutines and file descriptors return to baseline.
func TestEngineStartCloseCycles(t *testing.T) {
	ns := namespace.New(t)
	enter(t, ns)
	key, hub := mustKey(t), mustKey(t)
	uapi := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cycle := func() {
		e, err := dataplane.New(dataplane.EdgeOptions{PrivateKey: key, UAPIDir: uapi, ProbeInterval: 5 * time.Millisecond, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(staticConfig(hub.PublicKey())); err != nil {
			t.Fatal(err)
		}
		if st := e.Status(); st.State != dataplane.StateConnecting || len(st.Peers) != 1 {
			t.Fatalf("status after start: %+v", st)
		}
		if l, err := netlink.LinkByName(dataplane.DefaultTUN); err != nil || l.Attrs().TxQLen != dataplane.TUNTxQueueLen {
			t.Fatalf("TUN after start: %v, txqueuelen %v; want %d", err, l, dataplane.TUNTxQueueLen)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil { // idempotent
			t.Fatal(err)
		}
	}
	// settle waits until the counts stop falling (goroutines of a closed
	// engine take a moment to return) and returns them.
	settle := func(wantG, wantFD int) (g, fd int) {
		deadline := time.Now().Add(5 * time.Second)
		g, fd = runtime.NumGoroutine(), countFDs(t)
		for time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			g2, fd2 := runtime.NumGoroutine(), countFDs(t)
			if g2 == g && fd2 == fd && (wantG == 0 || (g <= wantG && fd <= wantFD)) {
				break
			}
			g, fd = g2, fd2
		}
		return g, fd
	}
	cycle() // let lazily started runtime and library goroutines exist
	baseG, baseFD := settle(0, 0)
	for range 100 {
		cycle()
	}
	g, fd := settle(baseG, baseFD)
	if g > baseG || fd > baseFD {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("after 100 cycles: %d goroutines (baseline %d), %d fds (baseline %d)\n%s", g, baseG, fd, baseFD, buf[:n])
	}
	if _, err := netlink.LinkByName(dataplane.DefaultTUN); err == nil {
		t.Errorf("%s still exists after Close", dataplane.DefaultTUN)
	}
	t.Logf("after 100 cycles: %d goroutines (baseline %d), %d fds (baseline %d)", g, baseG, fd, baseFD)
}

// TestStartFailureUndoes makes Start fail after the TUN exists (UDP 4500
// is taken) and checks nothing is left behind.
func TestStartFailureUndoes(t *testing.T) {
	ns := namespace.New(t)
	enter(t, ns)
	uapi := t.TempDir()
	busy, err := net.ListenPacket("udp4", ":4500")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	e, err := dataplane.New(dataplane.EdgeOptions{PrivateKey: mustKey(t), UAPIDir: uapi, TUN: "vcpb0"})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Start(staticConfig(mustKey(t).PublicKey()))
	if err == nil {
		e.Close()
		t.Fatal("engine started on a UDP port in use; want an error")
	}
	if !strings.Contains(err.Error(), "4500") {
		t.Errorf("error does not name the port: %v", err)
	}
	if _, lerr := netlink.LinkByName("vcpb0"); lerr == nil {
		t.Errorf("failed Start left vcpb0 behind (error was %v)", err)
	}
	if _, serr := os.Stat(filepath.Join(uapi, "vcpb0.sock")); serr == nil {
		t.Errorf("failed Start left its UAPI socket behind")
	}
	if st := e.Status(); st.State != dataplane.StateStopped {
		t.Errorf("state after failed Start = %q; want %q", st.State, dataplane.StateStopped)
	}
}

type fakeSource struct {
	mu  sync.Mutex
	cfg api.DeviceConfig
	err error
}

func (f *fakeSource) DeviceConfig(context.Context) (api.DeviceConfig, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg, f.err
}

// TestSyncAppliesAndRevokes drives a real engine with a Syncer over a fake
// controller: a new generation is applied live (route added, nothing else
// touched), an unreachable controller keeps the tunnel, and a revoked
// credential tears it down with the reason in Status. It uses the default
// UAPI directory (ipc.UAPIListen) with a unique interface name.
func TestSyncAppliesAndRevokes(t *testing.T) {
	ns := namespace.New(t)
	enter(t, ns)
	var b [3]byte
	_, _ = rand.Read(b[:])
	name := "vcpt" + hex.EncodeToString(b[:])
	hub := mustKey(t).PublicKey()
	e, err := dataplane.New(dataplane.EdgeOptions{PrivateKey: mustKey(t), TUN: name})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cfg := staticConfig(hub)
	if err := e.Start(cfg); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dataplane.DefaultUAPIDir, name+".sock")
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("UAPI socket: %v", err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if got := ownRouteDsts(t); !slices.Equal(got, []string{"198.19.2.0/24"}) {
		t.Fatalf("routes after start: %v", got)
	}

	src := &fakeSource{cfg: cfg}
	src.cfg.Generation = 2
	src.cfg.Routes = pfx("198.19.2.0/24", "198.19.100.0/24")
	var saved []uint64
	s := dataplane.NewSyncer(src, e, cfg.Generation)
	s.Save = func(c api.DeviceConfig) error { saved = append(saved, c.Generation); return nil }
	e.SetSyncStatus(s.Status)
	if !s.Once(context.Background()) {
		t.Fatal("sync stopped after a good answer")
	}
	if got := ownRouteDsts(t); !slices.Equal(got, []string{"198.19.100.0/24", "198.19.2.0/24"}) {
		t.Errorf("routes after sync: %v", got)
	}
	if st := e.Status(); st.Generation != 2 || st.Sync == nil || st.Sync.State != "ok" || !slices.Equal(saved, []uint64{2}) {
		t.Errorf("after sync: generation %d, sync %+v, saved %v", st.Generation, st.Sync, saved)
	}
	if ls, _ := netlink.LinkByName(name); ls == nil || ls.Attrs().Index != link.Attrs().Index {
		t.Errorf("the interface was recreated by Apply; want it changed in place")
	}

	src.err = errors.New("dial tcp 198.18.0.1:8443: connection refused")
	if !s.Once(context.Background()) {
		t.Fatal("sync stopped when the controller was unreachable")
	}
	if st := e.Status(); st.Sync.State != "controller unreachable" || len(st.Routes) != 2 {
		t.Errorf("controller down: sync %+v, routes %v; want the last known config kept", st.Sync, st.Routes)
	}

	src.err = &api.Error{Code: api.CodeRevoked, Message: "device revoked by the operator"}
	if s.Once(context.Background()) {
		t.Fatal("sync went on after revocation")
	}
	st := e.Status()
	if st.State != dataplane.StateRevoked || !strings.Contains(st.Reason, "revoked") || !strings.Contains(st.Reason, "operator") {
		t.Errorf("after revocation: state %q reason %q", st.State, st.Reason)
	}
	if _, err := netlink.LinkByName(name); err == nil {
		t.Errorf("tunnel interface still exists after revocation")
	}
	if got := ownRouteDsts(t); len(got) != 0 {
		t.Errorf("routes left after revocation: %v", got)
	}
	if _, err := os.Stat(sock); err == nil {
		t.Errorf("UAPI socket left after revocation")
	}
}
