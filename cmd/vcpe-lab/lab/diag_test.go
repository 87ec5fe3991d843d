package lab

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/diag/suite"
)

type diagRun struct {
	code int
	rep  suite.Report
	out  string
	took time.Duration
}

// runDiag runs `vcpe diag --json` on node, with the default probe targets
// (one per learned prefix, from the controller) and any extra arguments.
func runDiag(ctx context.Context, t *testing.T, l *Lab, b Binaries, node string, extra ...string) diagRun {
	t.Helper()
	start := time.Now()
	argv := append([]string{b.Vcpe, "diag", "--json", "--state-dir", l.DeviceState(node)}, extra...)
	cmd := l.Command(ctx, node, argv...)
	out, err := cmd.Output()
	r := diagRun{out: string(out), took: time.Since(start)}
	var ee *exec.ExitError
	var stderr []byte
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		stderr = ee.Stderr
	case err != nil:
		t.Fatalf("vcpe diag on %s: %v", node, err)
	}
	if err := json.Unmarshal(out, &r.rep); err != nil {
		t.Fatalf("vcpe diag --json on %s: %v (exit %d)\nstdout:\n%s\nstderr:\n%s", node, err, r.code, out, stderr)
	}
	return r
}

func (r diagRun) summary() string {
	var s []string
	for _, f := range r.rep.Findings {
		if f.Severity != suite.SevOK {
			s = append(s, f.ID+"="+f.Severity+" ("+f.Title+") caused by "+strings.Join(f.CausedBy, ","))
		}
	}
	return strings.Join(s, "\n")
}

// waitHealthy runs diag until it finds no error (the fault's restore has
// taken effect), or fails the test.
func waitHealthy(ctx context.Context, t *testing.T, l *Lab, b Binaries, node string, within time.Duration) diagRun {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := runDiag(ctx, t, l, b, node)
		if r.code == 0 && r.rep.OK {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy within %v after restoring: exit %d\n%s", node, within, r.code, r.summary())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestDiagPlantedFaults plants one fault at a time in one lab (site-a and
// site-b in one CCN) and checks that `vcpe diag` on site-a names the real
// cause as its top finding, with its fix, and exits 1; each fault is
// undone before the next. It also reports the wall time of a default run
// (median of the healthy runs; not asserted).
func TestDiagPlantedFaults(t *testing.T) {
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	plan := twoSites()
	defer func() {
		if t.Failed() {
			t.Logf("vcped on site-a:\n%s", l.DaemonLog("site-a", "vcped"))
			t.Logf("vcpe-hub:\n%s", l.DaemonLog("hub", "vcpe-hub"))
		}
	}()
	if err := l.StartSystem(ctx, b, plan); err != nil {
		t.Fatal(err)
	}
	const node = "site-a"
	var healthy []time.Duration
	h := waitHealthy(ctx, t, l, b, node, 15*time.Second)
	healthy = append(healthy, h.took)
	for _, id := range []string{"tunnel.hub", "wan.loss", "routes.match", "tunnel.mtu", "controller.reachable"} {
		if !slices.ContainsFunc(h.rep.Findings, func(f suite.Finding) bool { return f.ID == id && f.Severity == suite.SevOK }) {
			t.Errorf("healthy run: no ok %s finding:\n%s", id, h.out)
		}
	}
	// Without --target, every learned prefix is probed at the address the
	// controller names: site-b's LAN address, the hub's cloud address.
	hasOK := func(r diagRun, id, prefix string) bool {
		return slices.ContainsFunc(r.rep.Findings, func(f suite.Finding) bool {
			return f.ID == id && f.Severity == suite.SevOK && strings.Contains(f.Title, prefix)
		})
	}
	for _, want := range [][2]string{{"target.198.19.2.1", LANB.String()}, {"target.198.19.100.1", CloudPrefix.String()}} {
		if !hasOK(h, want[0], want[1]) {
			t.Errorf("healthy run: no ok %s finding naming %s:\n%s", want[0], want[1], h.out)
		}
	}
	if slices.ContainsFunc(h.rep.Findings, func(f suite.Finding) bool { return f.ID == "targets.unprobed" }) {
		t.Errorf("healthy run: a learned prefix without a default target:\n%s", h.out)
	}
	t.Run("an explicit target replaces its prefix's default", func(t *testing.T) {
		r := runDiag(ctx, t, l, b, node, "--target", "198.19.2.10")
		if r.code != 0 || !hasOK(r, "target.198.19.2.10", LANB.String()) || !hasOK(r, "target.198.19.100.1", CloudPrefix.String()) ||
			slices.ContainsFunc(r.rep.Findings, func(f suite.Finding) bool { return f.ID == "target.198.19.2.1" }) {
			t.Errorf("exit %d; want ok target.198.19.2.10 and target.198.19.100.1 and no target.198.19.2.1:\n%s", r.code, r.out)
		}
	})

	run := func(t *testing.T, plant func() error, restore func(top suite.Finding) error, wantTop, wantFix string) {
		t.Helper()
		if err := plant(); err != nil {
			t.Fatal(err)
		}
		// The fault is undone even when this subtest fails, so one
		// failure does not cascade into the next subtests.
		var top suite.Finding
		restored := false
		defer func() {
			if restore != nil && !restored {
				if err := restore(top); err != nil {
					t.Errorf("undo the fault: %v", err)
				}
			}
		}()
		r := runDiag(ctx, t, l, b, node)
		if len(r.rep.Findings) > 0 {
			top = r.rep.Findings[0]
		}
		if r.code != 1 || top.ID != wantTop || top.Severity != suite.SevError || !strings.Contains(top.Fix, wantFix) {
			t.Errorf("exit %d, top finding %s (%s): %s\nfix: %s\nwant exit 1, top %s with a fix containing %q\nall problems:\n%s",
				r.code, top.ID, top.Severity, top.Title, top.Fix, wantTop, wantFix, r.summary())
		} else {
			t.Logf("top: %s: %s; evidence %v; fix: %s (run %v)", top.ID, top.Title, top.Evidence, top.Fix, r.took.Round(time.Millisecond))
		}
		if restore != nil {
			restored = true
			if err := restore(top); err != nil {
				t.Fatal(err)
			}
			h := waitHealthy(ctx, t, l, b, node, 30*time.Second)
			healthy = append(healthy, h.took)
		}
	}
	nft := func(node, script string) error {
		c := l.Command(ctx, node, "nft", "-f", "-")
		c.Stdin = strings.NewReader(script)
		if out, err := c.CombinedOutput(); err != nil {
			return errors.New("nft: " + err.Error() + ": " + string(out))
		}
		return nil
	}
	sh := func(node string, argv ...string) func() error {
		return func() error { _, err := l.Run(ctx, node, argv...); return err }
	}

	t.Run("UDP 4500 dropped on the WAN", func(t *testing.T) {
		run(t, func() error {
			return nft(node, "table inet vcpetest4500 {\nchain out {\ntype filter hook output priority 0\noifname \"wan0\" udp dport 4500 drop\n}\n}\n")
		}, func(suite.Finding) error { return sh(node, "nft", "delete", "table", "inet", "vcpetest4500")() },
			"hub.udp4500", "4500")
	})
	t.Run("UDP 4500 dropped at the hub", func(t *testing.T) {
		run(t, func() error {
			return nft("hub", "table inet vcpetest4500 {\nchain in {\ntype filter hook input priority 0\niifname \"wan0\" ip saddr 198.18.0.11 udp dport 4500 drop\n}\n}\n")
		}, func(suite.Finding) error { return sh("hub", "nft", "delete", "table", "inet", "vcpetest4500")() },
			"hub.udp4500", "allow UDP 4500")
	})
	t.Run("forwarding off", func(t *testing.T) {
		run(t, sh(node, "sysctl", "-qw", "net.ipv4.ip_forward=0"), func(suite.Finding) error {
			return sh(node, "sysctl", "-qw", "net.ipv4.ip_forward=1")()
		}, "ip.forward", "sysctl -w net.ipv4.ip_forward=1")
	})
	t.Run("a learned route deleted", func(t *testing.T) {
		// The restore is the finding's own fix, run as written.
		run(t, sh(node, "ip", "route", "del", LANB.String(), "proto", "118", "table", "51820"), func(top suite.Finding) error {
			fix, _, _ := strings.Cut(top.Fix, " (")
			if top.ID != "routes.match" { // diag failed this subtest; undo by hand
				fix = "ip route replace " + LANB.String() + " dev vcpe0 proto 118 table 51820"
			}
			for _, c := range strings.Split(fix, "; ") {
				if err := sh(node, strings.Fields(c)...)(); err != nil {
					return err
				}
			}
			return nil
		}, "routes.match", "ip route replace "+LANB.String()+" dev vcpe0 proto 118")
	})
	t.Run("heavy loss on the WAN", func(t *testing.T) {
		run(t, func() error {
			return nft(node, "table netdev vcpetestloss {\nchain in {\ntype filter hook ingress device \"wan0\" priority 0\nnumgen random mod 100 < 60 drop\n}\n}\n")
		}, func(suite.Finding) error { return sh(node, "nft", "delete", "table", "netdev", "vcpetestloss")() },
			"wan.loss", "mtr -n 198.18.0.1")
	})
	t.Run("the remote site's device down", func(t *testing.T) {
		var argv []string
		run(t, func() error { argv = stopVcped(t, l, "site-b"); return nil },
			func(suite.Finding) error { startVcped(t, l, "site-b", argv, 1); return nil },
			"target.198.19.2.1", "remote device 198.19.2.1")
	})
	t.Run("the hub down", func(t *testing.T) {
		run(t, func() error { return l.StopDaemon("hub", "vcpe-hub", syscall.SIGTERM, 10*time.Second) },
			func(suite.Finding) error { _, err := l.StartHub(ctx, b); return err },
			"hub.down", "vcpe-hub")
	})
	t.Run("a revoked device", func(t *testing.T) {
		// Last: a revoked device stays revoked until its key is reset.
		sn, err := l.RegisteredSN(ctx, b, "site-a")
		if err != nil {
			t.Fatal(err)
		}
		run(t, func() error { return l.Hub(ctx, b, nil, "device", "revoke", sn) }, nil,
			"registration.valid", "vcpe-hub device reset-key "+sn)
	})

	// Baseline: one probe series of the same shape as diag's (20 every
	// 50 ms) to the hub, alone.
	var probe []time.Duration
	for range 3 {
		start := time.Now()
		if _, err := l.Run(ctx, node, b.Vcpe, "probe", "icmp", "198.18.0.1", "-c", "20", "-i", "50ms"); err != nil {
			t.Fatal(err)
		}
		probe = append(probe, time.Since(start))
	}
	med := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	t.Logf("wall time of a default vcpe diag run on a healthy device: median %v of %d runs (min %v, max %v); "+
		"one bare probe series (vcpe probe icmp -c 20 -i 50ms): median %v; ratio %.2f",
		med(healthy).Round(time.Millisecond), len(healthy), healthy[0].Round(time.Millisecond), healthy[len(healthy)-1].Round(time.Millisecond),
		med(probe).Round(time.Millisecond), float64(med(healthy))/float64(med(probe)))
}
