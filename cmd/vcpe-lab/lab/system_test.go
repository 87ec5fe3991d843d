package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/namespace"
)

func TestMain(m *testing.M) { namespace.Main(m) }

func testBinaries(t testing.TB) Binaries {
	return Binaries{
		Vcpe:  namespace.Binary(t, "cmd/vcpe"),
		Vcped: namespace.Binary(t, "cmd/vcped"),
		Hub:   namespace.Binary(t, "cmd/vcpe-hub"),
	}
}

// twoSites is the plan most lab tests use: site-a and site-b, one device
// each, in the CCN corp.
func twoSites() Plan {
	return Plan{Instances: []Instance{
		{Name: "site-a", CCN: "corp", Devices: []string{"site-a"}, Advertise: []netip.Prefix{LANA}},
		{Name: "site-b", CCN: "corp", Devices: []string{"site-b"}, Advertise: []netip.Prefix{LANB}},
	}}
}

// reach pings to from node until it answers or the deadline passes.
func reach(ctx context.Context, l *Lab, node, to string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		_, err := l.Run(ctx, node, "ping", "-c", "1", "-W", "1", to)
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

// TestSystemEndToEnd runs the real vcpe-hub serve, vcpe register and vcped
// binaries on the lab's network: two sites of one CCN reach each other's
// LAN and the cloud over ICMP and UDP; a site in another CCN reaches
// neither LAN; a revoked device loses its tunnel and says why; the hub
// comes back after a kill -9.
func TestSystemEndToEnd(t *testing.T) {
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	guestLAN := netip.MustParsePrefix("198.19.3.0/24")
	plan := Plan{Instances: []Instance{
		{Name: "site-a", CCN: "corp", Devices: []string{"site-a"}, Advertise: []netip.Prefix{LANA}},
		{Name: "site-b", CCN: "corp", Devices: []string{"site-b"}, Advertise: []netip.Prefix{LANB}},
		{Name: "guest", CCN: "guest", Devices: []string{"site-a2"}, Advertise: []netip.Prefix{guestLAN}},
	}}
	defer func() {
		if t.Failed() {
			for _, n := range []string{"site-a", "site-b", "site-a2"} {
				t.Logf("vcped on %s:\n%s", n, l.DaemonLog(n, "vcped"))
			}
			t.Logf("vcpe-hub:\n%s", l.DaemonLog("hub", "vcpe-hub"))
		}
	}()
	if err := l.StartSystem(ctx, b, plan); err != nil {
		t.Fatal(err)
	}

	t.Run("sites of one CCN reach each other and the cloud", func(t *testing.T) {
		for _, c := range []struct{ from, to string }{
			{"lan-a", "198.19.2.10"}, {"lan-b", "198.19.1.10"},
			{"lan-a", "198.19.100.10"}, {"lan-b", "198.19.100.10"}, {"cloud", "198.19.1.10"},
		} {
			if err := reach(ctx, l, c.from, c.to, 5*time.Second); err != nil {
				t.Errorf("%s → %s over ICMP: %v", c.from, c.to, err)
			}
		}
		// UDP through the tunnel, to the reflectors vcped and the hub run.
		for _, to := range []string{"198.19.2.1:12345", "198.19.100.1:12345"} {
			out, err := l.Run(ctx, "lan-a", b.Vcpe, "probe", "udp", to, "-c", "3", "-i", "100ms", "--json")
			var res struct {
				Stats struct {
					Received int `json:"received"`
				} `json:"stats"`
			}
			_ = json.Unmarshal([]byte(out), &res)
			if err != nil || res.Stats.Received != 3 {
				t.Errorf("lan-a → %s over UDP: %v, received %d\n%s", to, err, res.Stats.Received, out)
			}
		}
	})

	t.Run("vcped takes half the CPUs as Go processors and a soft memory limit", func(t *testing.T) {
		// What vcped chose, by the rules it applies, from the environment
		// it inherited from this test (runtime values of this process
		// stand for the ones vcped started with: same host, same env).
		procs, err := dataplane.ChooseProcs(0, os.Getenv("GOMAXPROCS"), runtime.GOMAXPROCS(0))
		if err != nil {
			t.Fatal(err)
		}
		mem, err := dataplane.ChooseMemoryLimit(0, os.Getenv("GOMEMLIMIT"), dataplane.DefaultMemoryLimitMiB)
		if err != nil {
			t.Fatal(err)
		}
		if mem.MiB == 0 { // from GOMEMLIMIT, as the runtime parsed it
			mem.MiB = debug.SetMemoryLimit(-1) >> 20
		}
		log := l.DaemonLog("site-a", "vcped")
		for _, want := range []string{
			fmt.Sprintf("gomaxprocs=%d available=%d source=%s", procs.N, procs.Available, procs.Source),
			fmt.Sprintf("limit_mib=%d source=%s", mem.MiB, mem.Source),
		} {
			if !strings.Contains(log, want) {
				t.Errorf("vcped log has no %q:\n%s", want, log)
			}
		}
	})

	t.Run("a site in another CCN reaches neither LAN", func(t *testing.T) {
		st, err := l.WaitTunnel(ctx, b, "site-a2")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range st.Routes {
			if r.Overlaps(LANA) || r.Overlaps(LANB) {
				t.Errorf("guest device learned %s from another CCN", r)
			}
		}
		// Even with routes forced into its tunnel, the hub lets nothing
		// through to the other CCN.
		l.Run(ctx, "site-a2", "ip", "route", "replace", LANB.String(), "dev", st.Interface)
		if out, err := l.Run(ctx, "site-a2", "ping", "-c", "2", "-W", "1", "198.19.2.10"); err == nil {
			t.Errorf("guest site reached lan-b:\n%s", out)
		}
	})

	t.Run("a revoked device loses its tunnel and says why", func(t *testing.T) {
		sn, err := l.RegisteredSN(ctx, b, "guest")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Hub(ctx, b, nil, "device", "revoke", sn); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		var st dataplane.Status
		for time.Now().Before(deadline) {
			out, _ := l.Command(ctx, "site-a2", b.Vcpe, "status", "--json", "--state-dir", l.DeviceState("site-a2")).Output()
			_ = json.Unmarshal(out, &st)
			if st.State == dataplane.StateRevoked {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if st.State != dataplane.StateRevoked || !strings.Contains(strings.ToLower(st.Reason+" "+string(st.Sync.State)), "revoked") {
			t.Errorf("status after revoke: state %q reason %q; want revoked with the reason", st.State, st.Reason)
		}
	})

	t.Run("hub kill -9 and restart: traffic back", func(t *testing.T) {
		if err := l.StopDaemon("hub", "vcpe-hub", syscall.SIGKILL, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := l.StartHub(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := reach(ctx, l, "lan-a", "198.19.2.10", 10*time.Second); err != nil {
			t.Errorf("lan-a → lan-b not back within 10 s of the hub's restart: %v", err)
		}
	})
}
