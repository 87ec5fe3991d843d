package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/internal/namespace"
)

func TestDefaultTopologyIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Topology)
		want string
	}{
		{"address outside the benchmark range", func(tp *Topology) { tp.Links[0].AAddr = pfx("10.0.0.1/24") }, "outside 198.18.0.0/15"},
		{"unknown node", func(tp *Topology) { tp.Links[0].B = "nowhere" }, `unknown node "nowhere"`},
		{"duplicate node", func(tp *Topology) { tp.Nodes = append(tp.Nodes, tp.Nodes[0]) }, "defined twice"},
		{"long interface name", func(tp *Topology) { tp.Links[0].AIf = "a-very-long-ifname" }, "1 to 15 characters"},
		{"address on a switch port", func(tp *Topology) { tp.Links[0].BAddr = pfx("198.18.0.99/24") }, "switch port takes no address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := Default()
			tt.mod(&tp)
			err := tp.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

// testLab builds the default topology's network under a unique vcpet-
// prefix and removes it when the test ends.
func testLab(t testing.TB) *Lab { t.Helper(); return testLabWith(t, nil) }

// testLabWith is testLab with the lab shaped by shape (its topology, the
// number of hubs) before the network is built.
func testLabWith(t testing.TB, shape func(*Lab)) *Lab {
	t.Helper()
	namespace.RequireRoot(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	l := New(namespace.Prefix+hex.EncodeToString(b[:]), t.TempDir()+"/run", nil)
	if shape != nil {
		shape(l)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err := l.UpNetwork(context.Background()); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	return l
}

func TestUpNetworkReachabilityAndDown(t *testing.T) {
	l := testLab(t)
	ctx := context.Background()
	reach := []struct{ from, to string }{
		{"site-a", "198.18.0.1"},   // across the internet segment
		{"site-b", "198.18.0.254"}, // the internet gateway
		{"lan-a", "198.19.1.1"},    // LAN to site A
		{"lan-a", "198.19.1.2"},    // LAN to site A's standby
		{"lan-b", "198.19.2.1"},
		{"cloud", "198.18.0.1"}, // cloud host routes via the hub
	}
	for _, r := range reach {
		if out, err := l.Run(ctx, r.from, "ping", "-c", "1", "-W", "2", r.to); err != nil {
			t.Errorf("%s → %s: %v\n%s", r.from, r.to, err, out)
		}
	}
	// Without tunnels, LANs and the cloud are not reachable from each other.
	if out, err := l.Run(ctx, "lan-a", "ping", "-c", "1", "-W", "1", "198.19.2.10"); err == nil {
		t.Errorf("lan-a reached lan-b with no tunnel up:\n%s", out)
	}
	if err := l.UpNetwork(ctx); err == nil || !strings.Contains(err.Error(), "already up") {
		t.Errorf("second up: %v; want 'already up'", err)
	}
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), l.Prefix+"-") {
		t.Errorf("namespaces left after down:\n%s", out)
	}
}

func TestFailedUpRemovesWhatItMade(t *testing.T) {
	namespace.RequireRoot(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	l := New(namespace.Prefix+hex.EncodeToString(b[:]), t.TempDir()+"/run", nil)
	t.Cleanup(func() { _ = l.Down() })
	// A gateway that is not on-link passes validation, but the kernel
	// refuses the route at the very end of the build, after every
	// namespace and link exists.
	for i, n := range l.Topo.Nodes {
		if n.Name == "cloud" {
			l.Topo.Nodes[i].Gateway = netip.MustParseAddr("198.18.200.1")
		}
	}
	err := l.UpNetwork(context.Background())
	if err == nil {
		t.Fatal("up with a duplicate address succeeded")
	}
	if left, _ := l.Namespaces(); len(left) != 0 {
		t.Errorf("failed up left namespaces behind: %v (error was %v)", left, err)
	}
}

func TestDaemonAndDialAcrossNamespaces(t *testing.T) {
	l := testLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := l.StartDaemon("hub", "iperf3", []string{"iperf3", "-s", "-B", "198.18.0.1", "-p", "8443"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitTCP(ctx, "site-a", "198.18.0.1:8443"); err != nil {
		t.Fatalf("%v\nlog:\n%s", err, l.DaemonLog("hub", "iperf3"))
	}
	if pid, ok := l.DaemonPID("hub", "iperf3"); !ok || pid != d.PID {
		t.Fatalf("DaemonPID = %d, %v; want %d", pid, ok, d.PID)
	}
	if err := l.StopDaemon("hub", "iperf3", syscall.SIGTERM, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.DaemonPID("hub", "iperf3"); ok {
		t.Error("daemon still running after StopDaemon")
	}
}
