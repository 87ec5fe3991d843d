package lab

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/provision"
)

// upgradeBudget is the bound on the LAN↔LAN gap while vcped is
// swapped for a new binary and restarted: about one WireGuard handshake.
const upgradeBudget = 2 * time.Second

// TestUpgradeVcpedUnderTraffic swaps site-a's vcped for a rebuilt binary
// the way a package upgrade does (rename over the old file), restarts it
// the way the supervisor does (SIGTERM, then the same command line), and
// measures the gap in a 100 packets/s lan-a → lan-b stream.
func TestUpgradeVcpedUnderTraffic(t *testing.T) {
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	plan := twoSites()
	fp, issued, err := l.StartControlPlane(ctx, b, plan)
	if err != nil {
		t.Fatal(err)
	}
	// site-a runs vcped from a path of its own, which the upgrade replaces.
	dir := t.TempDir()
	vcped := filepath.Join(dir, "vcped")
	copyExe(t, b.Vcped, vcped)
	for _, d := range issued {
		adv := LANA
		var extra []string
		if d.Node == "site-b" {
			adv = LANB
		} else {
			extra = []string{"--vcped", vcped}
		}
		if out, err := l.Install(ctx, b, fp, d, []netip.Prefix{adv}, extra...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	for _, d := range issued {
		if _, err := l.WaitTunnel(ctx, b, d.Node); err != nil {
			t.Fatal(err)
		}
		if err := l.waitRoutes(ctx, b, d.Node, plan.learnedBy(d.Node)); err != nil {
			t.Fatal(err)
		}
	}
	startEcho(t, l)

	// The rebuilt binary: another version string, so the swap is visible.
	root, _ := exec.Command("go", "env", "GOMOD").Output()
	rebuilt := filepath.Join(dir, "vcped.new")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=upgrade-test", "-o", rebuilt, "./cmd/vcped")
	build.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("rebuild vcped: %v\n%s", err, out)
	}

	s := startStream(t, ctx, l)
	if err := s.flowing(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(l.DeviceState("site-a"), provision.PIDFile)
	pid, ok := provision.RunningPID(pidFile, vcped)
	if !ok {
		t.Fatal("site-a: vcped not running from its own path")
	}
	argv, err := cmdline(pid)
	if err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	if err := os.Rename(rebuilt, vcped); err != nil { // what dpkg does
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for !gone(pid) {
		time.Sleep(5 * time.Millisecond)
	}
	stopped := time.Since(t0)
	newPID := startDetached(t, l, "site-a", argv, pidFile)
	gap, err := s.gap(t0, 20*time.Second)
	t.Logf("upgrade of vcped under a 100 pps stream: gap %v (old vcped stopped after %v)", gap.Round(time.Millisecond), stopped.Round(time.Millisecond))
	if err != nil {
		t.Fatalf("after the upgrade: %v\nvcped log:\n%s", err, l.DaemonLog("site-a", "vcped"))
	}
	if gap > upgradeBudget {
		t.Errorf("gap %v during the vcped upgrade; want under %v", gap, upgradeBudget)
	}
	if out, _ := exec.Command(vcped, "--version").Output(); !strings.Contains(string(out), "upgrade-test") {
		t.Errorf("%s --version = %q; want the rebuilt binary", vcped, out)
	}
	if p, ok := provision.RunningPID(pidFile, vcped); !ok || p != newPID {
		t.Errorf("running vcped pid %d (%v); want the restarted %d", p, ok, newPID)
	}
}

func copyExe(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// startDetached starts argv in node as vcpe install does (own session,
// output appended to the daemon's log) and writes its pid file.
func startDetached(t *testing.T, l *Lab, node string, argv []string, pidFile string) int {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(l.DeviceState(node), provision.LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := l.Command(context.Background(), node, argv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	// ip netns exec execs the daemon in place: the pid is vcped's.
	pid := cmd.Process.Pid
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
	return pid
}
