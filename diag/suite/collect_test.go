package suite

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
)

// TestCollectWithFakes: every part runs (concurrently), each under the
// run's deadline; a probe that never returns on its own is cut at the
// deadline; the controller's TCP outcome comes from the config fetch's
// own connect; a refused connect is told apart.
func TestCollectWithFakes(t *testing.T) {
	dir := t.TempDir()
	e := healthy()
	// The stored config names a default target per learned prefix; the
	// operator's --target in 198.19.2.0/24 replaces that prefix's one.
	e.State.Config.Targets = []api.ProbeTarget{
		{Prefix: lanB, Addr: netip.MustParseAddr("198.19.2.1"), SN: "SN-B"},
		{Prefix: cloud, Addr: netip.MustParseAddr("198.19.100.1")},
	}
	if err := device.SaveState(dir, e.State); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	called := map[string]bool{}
	mark := func(what string, ctx context.Context) {
		mu.Lock()
		defer mu.Unlock()
		called[what] = true
		if ctx != nil {
			if _, ok := ctx.Deadline(); !ok {
				t.Errorf("%s runs without a deadline", what)
			}
		}
	}
	samples := 0
	o := Options{
		StateDir: dir, Timeout: 2 * time.Second, Targets: []netip.Addr{netip.MustParseAddr("198.19.2.10")},
		OnSample: func(string, diag.Sample) { mu.Lock(); samples++; mu.Unlock() },
		Now:      func() time.Time { return t0 },
		Gather: func(ctx context.Context) (*precheck.Snapshot, error) {
			mark("gather", ctx)
			return precheck.NewSnapshot(map[string][]byte{"proc/sys/net/ipv4/ip_forward": []byte("0\n")}), nil
		},
		ReadStatus: func(path string) (dataplane.Status, error) {
			mark("status", nil)
			return *e.Status, nil
		},
		FetchConfig: func(ctx context.Context, st *device.State, dial func(context.Context, string, string) (net.Conn, error)) (api.DeviceConfig, error) {
			mark("config", ctx)
			if st.Credential != "secret" {
				t.Errorf("config fetch without the device credential")
			}
			_, err := dial(ctx, "tcp", "198.18.0.1:8443")
			return api.DeviceConfig{}, err
		},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mark("dial "+addr, ctx)
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		},
		ReadHost: func(HostQuery) (*Host, error) { mark("host", nil); return e.Host, nil },
		PingICMP: func(ctx context.Context, target netip.Addr, op diag.Options) (diag.Result, error) {
			mark("icmp "+target.String(), ctx)
			s := diag.Sample{Seq: 0, Sent: t0, Received: t0.Add(time.Millisecond), RTT: time.Millisecond}
			op.OnSample(s)
			return diag.Result{Protocol: "icmp", Target: target, Samples: []diag.Sample{s}}, nil
		},
		PingUDP: func(ctx context.Context, target netip.AddrPort, op diag.Options) (diag.Result, error) {
			mark("udp "+target.String(), ctx)
			<-ctx.Done() // a probe that hangs: cut by the deadline
			return diag.Result{}, ctx.Err()
		},
		PathMTU: func(ctx context.Context, target netip.Addr, mo diag.MTUOptions) (diag.MTUResult, error) {
			mark("mtu "+target.String(), ctx)
			return diag.MTUResult{}, errors.New("no route")
		},
	}
	ev := Collect(context.Background(), o)
	for _, what := range []string{"gather", "status", "config", "dial 198.18.0.1:8443", "host", "icmp 198.18.0.1", "icmp 198.19.2.10",
		"udp 198.18.0.1:12345", "udp 198.18.64.1:12345", "mtu 198.18.64.1", "udp 198.19.100.1:12345"} {
		if !called[what] {
			t.Errorf("Collect did not run %s", what)
		}
	}
	if called["udp 198.19.2.1:12345"] {
		t.Error("Collect probed the default target of 198.19.2.0/24 although --target 198.19.2.10 lies in it")
	}
	if want := e.State.Config.Targets[1:]; !slices.Equal(ev.Targets, want) {
		t.Errorf("evidence targets %v; want %v", ev.Targets, want)
	}
	if ev.Controller == nil || ev.Controller.OK || !ev.Controller.Refused {
		t.Errorf("controller dial %+v; want refused", ev.Controller)
	}
	if ev.ControllerError == "" || ev.Config != nil {
		t.Errorf("config %v, controller error %q; want the fetch's error", ev.Config, ev.ControllerError)
	}
	if _, ok := ev.Probes[ProbeWANICMP]; !ok || samples != 2 {
		t.Errorf("probes %v, %d samples seen; want the ICMP series and 2 samples", ev.Probes, samples)
	}
	if ev.ProbeErrors[ProbeWANReflector] == "" || ev.MTUError == "" {
		t.Errorf("probe errors %v, mtu error %q; want both recorded", ev.ProbeErrors, ev.MTUError)
	}
	if ev.Precheck == nil || ev.Snapshot == nil || ev.Status == nil || ev.Host == nil || ev.State == nil {
		t.Fatalf("evidence incomplete: %+v", ev)
	}
	fs := Diagnose(*ev)
	if fs[0].ID != "ip.forward" {
		t.Errorf("top finding %s; want ip.forward (the snapshot has forwarding off): %s", fs[0].ID, ids(fs))
	}
}

func TestCollectWithoutState(t *testing.T) {
	ev := Collect(context.Background(), Options{StateDir: t.TempDir(), Timeout: time.Second,
		Gather:     func(context.Context) (*precheck.Snapshot, error) { return precheck.NewSnapshot(nil), nil },
		ReadStatus: func(string) (dataplane.Status, error) { return dataplane.Status{}, errors.New("no socket") },
		ReadHost:   func(HostQuery) (*Host, error) { return &Host{TUN: "vcpe0"}, nil },
	})
	if ev.StateError == "" || len(ev.Probes) != 0 || ev.Controller != nil {
		t.Errorf("without state: %+v; want a state error and no probes", ev)
	}
	if fs := Diagnose(*ev); fs[0].ID != "device.state" {
		t.Errorf("top %s; want device.state", fs[0].ID)
	}
}
