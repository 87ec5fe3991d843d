package lab

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// TestReplicatedControlPlane runs the lab with 3 controller processes on
// PostgreSQL and a separate hub process: a controller killed with -9 under
// a 100 packets/s LAN-to-LAN stream leaves no gap, the devices carry on
// with the others without registering again, and a route change made
// through the third replica reaches them within a second (bound 5 s on a
// loaded machine).
func TestReplicatedControlPlane(t *testing.T) {
	if _, err := os.Stat("/usr/bin/setpriv"); err != nil {
		namespace.Skipf(t, "the replicated lab needs setpriv (util-linux) to run PostgreSQL as nobody")
	}
	if dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres"); len(dirs) == 0 {
		namespace.Skipf(t, "the replicated lab needs the postgresql package (make deps installs it)")
	}
	l := testLab(t)
	l.Controllers = 3
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h := startHA(t, ctx, l, b)
	defer func() {
		if t.Failed() {
			for i := 1; i <= 3; i++ {
				t.Logf("controller %d:\n%s", i, l.DaemonLog("hub", "vcpe-hub-ctl"+string(rune('0'+i))))
			}
			h.logs(t)
		}
	}()
	credential := func(node string) string {
		st, err := device.LoadState(l.DeviceState(node))
		if err != nil {
			t.Fatal(err)
		}
		return st.Credential
	}
	before := credential("site-a")
	s := startStream(t, ctx, l)
	if err := s.flowing(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	pid, ok := l.DaemonPID("hub", "vcpe-hub-ctl1")
	if !ok {
		t.Fatal("controller 1 is not running")
	}
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gap, err := s.gap(t0, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("longest silence of the 100 pps stream around the kill -9: %v", gap)
	if gap > 300*time.Millisecond {
		t.Errorf("stream gap %v after a controller was killed; want none (under 300 ms)", gap)
	}
	routes := func(node string) []string {
		out, _ := l.Command(ctx, node, b.Vcpe, "status", "--json", "--state-dir", l.DeviceState(node)).Output()
		var st dataplane.Status
		_ = json.Unmarshal(out, &st)
		var rs []string
		for _, r := range st.Routes {
			rs = append(rs, r.String())
		}
		return rs
	}
	// A route change through replica 3 reaches the devices.
	t1 := time.Now()
	if out, err := l.Run(ctx, "hub", b.Hub, "ccn", "detach", "corp", "site-b", "--state", l.ControllerState(2)); err != nil {
		t.Fatalf("detach through replica 3: %v\n%s", err, out)
	}
	for _, node := range []string{"site-a", "site-a2"} {
		for slices.Contains(routes(node), LANB.String()) {
			if time.Since(t1) > 5*time.Second {
				t.Fatalf("%s still routes %s 5 s after the change through replica 3", node, LANB)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s: route change through replica 3 arrived after %v", node, time.Since(t1))
	}
	if after := credential("site-a"); after != before {
		t.Error("site-a registered again; want it to carry on with its credential")
	}
}
