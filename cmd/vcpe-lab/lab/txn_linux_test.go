package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/internal/namespace"
	"github.com/openvcpe/vcpe/provision"
)

// killedInstall starts vcpe install in node and SIGKILLs it at the pause
// point (when point is not empty) or after delay. It reports whether the
// process was killed (false: it ended by itself first).
func killedInstall(t *testing.T, l *Lab, b Binaries, node, point string, delay time.Duration, args ...string) bool {
	t.Helper()
	argv := append([]string{b.Vcpe, "install", "--yes", "--json", "--state-dir", l.DeviceState(node),
		"--uapi-dir", l.Path(node, "uapi"), "--service", "process", "--vcped", b.Vcped, "--tunnel-timeout", "10s"}, args...)
	os.MkdirAll(l.Path(node, "uapi"), 0o700)
	cmd := l.Command(context.Background(), node, argv...)
	if point != "" {
		cmd.Env = append(os.Environ(), provision.TestPauseEnv+"="+point)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	paused := make(chan struct{})
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "vcpe: paused at "+point) && point != "" {
				close(paused)
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var trigger <-chan time.Time
	if point == "" {
		trigger = time.After(delay)
	}
	select {
	case <-paused:
	case <-trigger:
	case err := <-done:
		if point != "" {
			t.Fatalf("install ended (%v) before pause point %s:\n%s", err, point, log.String())
		}
		return false
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("install never reached pause point %s:\n%s", point, log.String())
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	return true
}

// controllerDevice is the controller's view of sn.
func controllerDevice(t *testing.T, l *Lab, b Binaries, sn string) controller.DeviceInfo {
	t.Helper()
	var devs []controller.DeviceInfo
	if err := l.Hub(context.Background(), b, &devs, "device", "list"); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.SN == sn {
			return d
		}
	}
	t.Fatalf("the controller lists no device %s", sn)
	return controller.DeviceInfo{}
}

// waitHostState waits until node's host state is before again (a killed
// daemon takes a moment to leave the namespace's pid list).
func waitHostState(t *testing.T, l *Lab, node string, before map[string]string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := hostState(t, l, node)
		same := true
		for k, v := range before {
			same = same && st[k] == v
		}
		if same || time.Now().After(deadline) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestInstallSurvivesKills kills the real vcpe install (SIGKILL) at every
// step boundary, at the instants inside steps where a kill hurts most
// (registration journalled but not sent; answer arrived but not saved;
// daemon started but pid file not written) and at random instants; after
// each kill both recoveries are run: the same install (which must end
// with the tunnel up and the controller holding this host's key), and
// vcpe uninstall (which must leave the host exactly as before and the SN
// free at the controller).
func TestInstallSurvivesKills(t *testing.T) {
	t.Parallel() // waits on processes and the network, little CPU: runs beside the other long ones (see the Makefile's E2E_PARALLEL)
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	fp, issued, err := l.StartControlPlane(ctx, b, twoSites())
	if err != nil {
		t.Fatal(err)
	}
	a := issued[0]
	node := a.Node
	args := []string{"--controller", ControllerURL(), "--controller-fingerprint", fp, "--sn", a.SN,
		"--advertise", LANA.String(), "--key-file", a.KeyFile}
	before := settledHostState(t, l, node)
	defer func() {
		if t.Failed() {
			t.Logf("vcpe-hub:\n%s", l.DaemonLog("hub", "vcpe-hub"))
		}
	}()
	uninstall := func(what string) {
		t.Helper()
		out, err := l.Run(ctx, node, b.Vcpe, "uninstall", "--yes", "--json", "--state-dir", l.DeviceState(node))
		if err != nil {
			t.Fatalf("%s: uninstall: %v\n%s", what, err, out)
		}
		assertHostUnchanged(t, what+": uninstall", before, waitHostState(t, l, node, before))
		if d := controllerDevice(t, l, b, a.SN); d.Status != "unregistered" || d.PublicKey != nil {
			t.Fatalf("%s: after uninstall the controller shows %s as %s (key %v); want it free", what, a.SN, d.Status, d.PublicKey)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(l.DeviceState(node)), ".state.lock")); err == nil {
			t.Errorf("%s: the lock file is left after uninstall", what)
		}
	}
	reinstall := func(what string) {
		t.Helper()
		r := vcpeInstall(t, l, b, node, nil, args...)
		if r.code != 0 || !r.res.OK {
			ss, _ := l.Run(ctx, node, "ss", "-lunpa")
			ps, _ := l.Run(ctx, node, "ps", "-eo", "pid,ppid,stat,comm,args")
			t.Logf("ss:\n%s\nps:\n%s", ss, ps)
			t.Fatalf("%s: the same install after the kill: exit %d, %+v\n%s", what, r.code, r.res, r.err)
		}
		st, err := device.LoadState(l.DeviceState(node))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		d := controllerDevice(t, l, b, a.SN)
		if d.Status != "registered" || d.PublicKey == nil || *d.PublicKey != st.PrivateKey.PublicKey() {
			t.Fatalf("%s: after the repeated install the controller shows %s as %s with key %v; want registered with this host's key %v", what, a.SN, d.Status, d.PublicKey, st.PrivateKey.PublicKey())
		}
		if err := reach(ctx, l, node, "198.18.64.1", 5*time.Second); err != nil {
			t.Errorf("%s: the hub's overlay address does not answer after the repeated install: %v", what, err)
		}
	}

	// A full install, timed, bounds the random kill instants.
	start := time.Now()
	if r := vcpeInstall(t, l, b, node, nil, args...); r.code != 0 {
		t.Fatalf("baseline install: exit %d\n%s", r.code, r.err)
	}
	full := time.Since(start)
	uninstall("baseline")

	var points []string
	for _, s := range []provision.StepID{provision.StepPrecheck, provision.StepRegister, provision.StepPlan, provision.StepReview,
		provision.StepApply, provision.StepStart, provision.StepTunnel, provision.StepConnectivity} {
		points = append(points, "before:"+string(s), "after:"+string(s))
	}
	points = append(points, "register:journalled", "register:answered", "start:before-exec", "start:before-pidfile")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	const randomKills = 10
	for i := range randomKills {
		points = append(points, fmt.Sprintf("random-%d", i))
	}
	killed := 0
	for _, p := range points {
		for _, recovery := range []string{"install", "uninstall"} {
			what := p + " then " + recovery
			point, delay := p, time.Duration(0)
			if strings.HasPrefix(p, "random-") {
				point, delay = "", time.Duration(rng.Int64N(int64(full)))
				what = fmt.Sprintf("kill after %v then %s", delay.Round(time.Millisecond), recovery)
			}
			if killedInstall(t, l, b, node, point, delay, args...) {
				killed++
			}
			if recovery == "install" {
				reinstall(what)
			}
			uninstall(what)
		}
	}
	t.Logf("%d kills at %d points (install takes %v)", killed, len(points), full.Round(time.Millisecond))
	if killed < 30 {
		t.Errorf("only %d kills landed; want at least 30", killed)
	}
}

// TestInstallOneAtATime starts two vcpe install processes in the same
// instant, 20 times: one proceeds (it is paused at its first step and
// killed, which leaves a stale lock for the next round to take over), the
// other exits 2 at once naming the holder and touches nothing. A last
// round lets the winner finish: one daemon, a working tunnel, and
// uninstall restores the host.
func TestInstallOneAtATime(t *testing.T) {
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fp, issued, err := l.StartControlPlane(ctx, b, twoSites())
	if err != nil {
		t.Fatal(err)
	}
	a := issued[0]
	node := a.Node
	os.MkdirAll(l.Path(node, "uapi"), 0o700)
	argv := []string{b.Vcpe, "install", "--yes", "--json", "--state-dir", l.DeviceState(node),
		"--uapi-dir", l.Path(node, "uapi"), "--service", "process", "--vcped", b.Vcped, "--tunnel-timeout", "10s",
		"--controller", ControllerURL(), "--controller-fingerprint", fp, "--sn", a.SN,
		"--advertise", LANA.String(), "--key-file", a.KeyFile}
	before := settledHostState(t, l, node)

	type result struct {
		i      int
		code   int
		stderr string
		cmd    interface{ Kill() error }
		reaped chan struct{} // closed once a paused run is reaped
	}
	race := func(pause string) []result {
		t.Helper()
		go1 := make(chan struct{})
		out := make(chan result, 2)
		for i := range 2 {
			cmd := l.Command(ctx, node, argv...)
			if pause != "" {
				cmd.Env = append(os.Environ(), provision.TestPauseEnv+"="+pause)
			}
			stderr, _ := cmd.StderrPipe()
			go func() {
				<-go1
				if err := cmd.Start(); err != nil {
					out <- result{i: i, code: -1, stderr: err.Error()}
					return
				}
				sc := bufio.NewScanner(stderr)
				var log strings.Builder
				for sc.Scan() {
					log.WriteString(sc.Text() + "\n")
					if pause != "" && strings.Contains(sc.Text(), "vcpe: paused at") {
						reaped := make(chan struct{})
						out <- result{i: i, code: -100, stderr: log.String(), cmd: cmd.Process, reaped: reaped}
						go func() {
							for sc.Scan() {
							}
						}()
						cmd.Wait()
						close(reaped)
						return
					}
				}
				cmd.Wait()
				out <- result{i: i, code: cmd.ProcessState.ExitCode(), stderr: log.String()}
			}()
		}
		close(go1)
		return []result{<-out, <-out}
	}
	for round := range 20 {
		rs := race("before:precheck")
		var winner, loser *result
		for i := range rs {
			if rs[i].code == -100 {
				winner = &rs[i]
			} else {
				loser = &rs[i]
			}
		}
		if winner == nil || loser == nil {
			t.Fatalf("round %d: want one install running and one refused; got %+v", round, rs)
		}
		if loser.code != 2 || !strings.Contains(loser.stderr, "holds the install lock") || !strings.Contains(loser.stderr, "pid ") {
			t.Errorf("round %d: the second install: exit %d, %q; want exit 2 naming the holder", round, loser.code, loser.stderr)
		}
		winner.cmd.Kill()
		<-winner.reaped // its locks go with it
		assertHostUnchanged(t, fmt.Sprintf("round %d", round), before, waitHostState(t, l, node, before))
	}
	rs := race("")
	codes := []int{rs[0].code, rs[1].code}
	if !(codes[0] == 0 && codes[1] == 2 || codes[0] == 2 && codes[1] == 0) {
		t.Fatalf("last round: exits %v; want one 0 and one 2\n%s\n%s", codes, rs[0].stderr, rs[1].stderr)
	}
	if d, s, _ := vcpedProcs(l, node); d != 1 || s != 1 {
		t.Errorf("%d vcped and %d supervisors run in %s after two installs; want 1 and 1", d, s, node)
	}
	if out, err := l.Run(ctx, node, b.Vcpe, "uninstall", "--yes", "--state-dir", l.DeviceState(node)); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	assertHostUnchanged(t, "uninstall", before, waitHostState(t, l, node, before))
}

// TestDamagedStateIsShownAndRepaired damages, one at a time, the device
// state, the journal and the pid file of an installed device (corrupt,
// truncated, deleted). vcpe status and vcpe diag must name the file and
// the repair; the repair named must work: the same install for the device
// state and the pid file (tunnel up, the controller holding this host's
// key, one vcped), vcpe uninstall for the journal (it undoes what the
// state dir shows and lists, exit 1, what only the journal knew).
func TestDamagedStateIsShownAndRepaired(t *testing.T) {
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	fp, issued, err := l.StartControlPlane(ctx, b, twoSites())
	if err != nil {
		t.Fatal(err)
	}
	a := issued[0]
	node := a.Node
	dir := l.DeviceState(node)
	args := []string{"--controller", ControllerURL(), "--controller-fingerprint", fp, "--sn", a.SN,
		"--advertise", LANA.String(), "--key-file", a.KeyFile}
	before := settledHostState(t, l, node)
	damage := map[string]func(path string){
		"corrupt":   func(p string) { os.WriteFile(p, []byte("{\"version\": 1, garbage"), 0o600) },
		"truncated": func(p string) { b, _ := os.ReadFile(p); os.WriteFile(p, b[:len(b)/2], 0o600) },
		"deleted":   func(p string) { os.Remove(p) },
	}
	for _, file := range []string{device.StateFile, device.JournalFile, device.PIDFile} {
		for _, how := range []string{"corrupt", "truncated", "deleted"} {
			name := file + " " + how
			t.Run(name, func(t *testing.T) {
				if r := vcpeInstall(t, l, b, node, nil, args...); r.code != 0 {
					t.Fatalf("install: exit %d\n%s", r.code, r.err)
				}
				damage[how](filepath.Join(dir, file))
				wantID := map[string]string{device.StateFile: "state.corrupt", device.JournalFile: "journal.corrupt", device.PIDFile: "pidfile.corrupt"}[file]
				if how == "deleted" {
					wantID = map[string]string{device.StateFile: "state.missing", device.JournalFile: "journal.missing", device.PIDFile: "pidfile.missing"}[file]
				}
				if file == device.PIDFile && how == "truncated" {
					// A cut pid may still be a number: another process's.
					wantID = "pidfile."
				}
				out, err := l.Run(ctx, node, b.Vcpe, "status", "--json", "--state-dir", dir)
				if err == nil || !strings.Contains(out, `"id": "`+wantID) || !strings.Contains(out, `"fix": "`) {
					t.Errorf("vcpe status: err %v; want exit 1 and problem %s with its fix:\n%s", err, wantID, out)
				}
				out, err = l.Run(ctx, node, b.Vcpe, "diag", "--json", "--timeout", "2s", "--state-dir", dir)
				if err == nil || !strings.Contains(out, `"id": "`+wantID) {
					t.Errorf("vcpe diag: err %v; want exit 1 and finding %s:\n%s", err, wantID, out)
				}
				if file == device.JournalFile {
					out, err := l.Run(ctx, node, b.Vcpe, "uninstall", "--yes", "--json", "--state-dir", dir)
					if err == nil || !strings.Contains(out, "ip_forward") || !strings.Contains(out, `"ok": false`) {
						t.Errorf("uninstall without a journal: err %v; want exit 1 listing ip_forward as not undone:\n%s", err, out)
					}
					if d := controllerDevice(t, l, b, a.SN); d.Status != "unregistered" {
						t.Errorf("after uninstall without a journal the controller shows %s as %s; want it free", a.SN, d.Status)
					}
					// The fixes it listed, done by hand.
					l.Run(ctx, node, "sysctl", "-w", "net.ipv4.ip_forward="+before["forward"])
					os.Remove(filepath.Join(dir, device.JournalFile))
					os.Remove(dir)
					assertHostUnchanged(t, "uninstall and the listed fixes", before, waitHostState(t, l, node, before))
					return
				}
				r := vcpeInstall(t, l, b, node, nil, args...)
				if r.code != 0 {
					t.Fatalf("repair by the same install: exit %d, %+v\n%s", r.code, r.res, r.err)
				}
				if _, err := l.WaitTunnel(ctx, b, node); err != nil {
					t.Errorf("tunnel after the repair: %v", err)
				}
				out, err = l.Run(ctx, node, b.Vcpe, "status", "--json", "--state-dir", dir)
				if err != nil || strings.Contains(out, `"problems"`) {
					t.Errorf("vcpe status after the repair: %v\n%s", err, out)
				}
				st, err := device.LoadState(dir)
				if err != nil {
					t.Fatal(err)
				}
				if d := controllerDevice(t, l, b, a.SN); d.PublicKey == nil || *d.PublicKey != st.PrivateKey.PublicKey() {
					t.Errorf("after the repair the controller holds key %v; want this host's %v", d.PublicKey, st.PrivateKey.PublicKey())
				}
				if d, s, _ := vcpedProcs(l, node); d != 1 || s != 1 {
					t.Errorf("%d vcped and %d supervisors after the repair; want 1 and 1", d, s)
				}
				if out, err := l.Run(ctx, node, b.Vcpe, "uninstall", "--yes", "--state-dir", dir); err != nil {
					t.Fatalf("uninstall: %v\n%s", err, out)
				}
				assertHostUnchanged(t, "uninstall after the repair", before, waitHostState(t, l, node, before))
			})
		}
	}
}

// vcpedProcs counts the vcped daemons and vcped supervisors running in
// node's namespace, and returns the daemons' pids.
func vcpedProcs(l *Lab, node string) (daemons, supervisors int, pids []int) {
	for _, pid := range namespace.PIDs(l.NS(node)) {
		cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cl), "\x00")
		if filepath.Base(args[0]) != "vcped" {
			continue
		}
		if slices.Contains(args, "--supervise") {
			supervisors++
		} else {
			daemons++
			pids = append(pids, pid)
		}
	}
	return daemons, supervisors, pids
}

// TestDetachedVcpedComesBack kills the detached vcped (SIGKILL) three
// times: its supervisor starts a new one within 2 s, never two at once,
// and the tunnel comes back; uninstall stops both and restores the host.
func TestDetachedVcpedComesBack(t *testing.T) {
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fp, issued, err := l.StartControlPlane(ctx, b, twoSites())
	if err != nil {
		t.Fatal(err)
	}
	a := issued[0]
	node := a.Node
	before := settledHostState(t, l, node)
	if r := vcpeInstall(t, l, b, node, nil, "--controller", ControllerURL(), "--controller-fingerprint", fp, "--sn", a.SN,
		"--advertise", LANA.String(), "--key-file", a.KeyFile); r.code != 0 {
		t.Fatalf("install: exit %d\n%s", r.code, r.err)
	}
	for round := range 3 {
		d, s, pids := vcpedProcs(l, node)
		if d != 1 || s != 1 {
			t.Fatalf("round %d: %d vcped and %d supervisors; want 1 and 1", round, d, s)
		}
		old := pids[0]
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		var back time.Duration
		for back == 0 && time.Since(killed) < 5*time.Second {
			d, _, pids := vcpedProcs(l, node)
			if d > 1 {
				t.Fatalf("round %d: %d vcped run at once", round, d)
			}
			if d == 1 && pids[0] != old {
				back = time.Since(killed)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if back == 0 || back > 2*time.Second {
			t.Fatalf("round %d: vcped back after %v; want within 2s", round, back)
		}
		t.Logf("round %d: vcped back after %v", round, back.Round(time.Millisecond))
		if _, err := l.WaitTunnel(ctx, b, node); err != nil {
			t.Fatalf("round %d: tunnel after the restart: %v", round, err)
		}
	}
	if out, err := l.Run(ctx, node, b.Vcpe, "uninstall", "--yes", "--state-dir", l.DeviceState(node)); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	assertHostUnchanged(t, "uninstall", before, waitHostState(t, l, node, before))
}

// inMountNS runs each function sent on the returned channel on one OS
// thread that has its own private mount namespace with a tmpfs of size
// bytes mounted at dir; processes started from it inherit both. The thread
// ends (and with the last process the namespace) when the channel closes.
func inMountNS(t *testing.T, dir string, size int) chan<- func() {
	t.Helper()
	fns := make(chan func())
	ready := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its namespace
		err := unix.Unshare(unix.CLONE_NEWNS)
		if err == nil {
			err = unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
		}
		if err == nil {
			err = unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size))
		}
		ready <- err
		if err != nil {
			return
		}
		for f := range fns {
			f()
		}
	}()
	if err := <-ready; err != nil {
		t.Fatalf("private mount namespace with a tmpfs at %s: %v", dir, err)
	}
	return fns
}

// TestInstallOnAFullDisk puts the state dir on a small tmpfs in a private
// mount namespace and installs with 0, 1, 2, … free pages until the
// install succeeds. Every failed install leaves the host and the tmpfs as
// they were and the SN free at the controller. Then the disk is filled
// again: a new configuration the device cannot save shows as a sync error
// in vcpe status, and is saved once space returns.
func TestInstallOnAFullDisk(t *testing.T) {
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fp, issued, err := l.StartControlPlane(ctx, b, twoSites())
	if err != nil {
		t.Fatal(err)
	}
	a := issued[0]
	node := a.Node
	mnt := l.Path(node, "small")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	const pages = 24
	ns := inMountNS(t, mnt, pages*4096)
	defer close(ns)
	do := func(f func()) {
		done := make(chan struct{})
		ns <- func() { defer close(done); f() }
		<-done
	}
	state := filepath.Join(mnt, "state")
	os.MkdirAll(l.Path(node, "uapi"), 0o700)
	run := func(argv ...string) (string, int) {
		var out []byte
		var code int
		do(func() {
			cmd := l.Command(ctx, node, argv...)
			out, _ = cmd.CombinedOutput()
			code = cmd.ProcessState.ExitCode()
		})
		return string(out), code
	}
	install := func() (string, int) {
		return run(b.Vcpe, "install", "--yes", "--json", "--state-dir", state, "--uapi-dir", l.Path(node, "uapi"),
			"--service", "process", "--vcped", b.Vcped, "--tunnel-timeout", "10s",
			"--controller", ControllerURL(), "--controller-fingerprint", fp, "--sn", a.SN,
			"--advertise", LANA.String(), "--key-file", a.KeyFile)
	}
	filler := filepath.Join(mnt, "filler")
	fill := func(free int) { // leave free pages
		do(func() {
			os.Remove(filler)
			f, err := os.Create(filler)
			if err != nil {
				t.Errorf("create filler: %v", err)
				return
			}
			defer f.Close()
			page := make([]byte, 4096)
			for {
				if _, err := f.Write(page); err != nil {
					break
				}
			}
			for range free {
				fi, _ := f.Stat()
				if fi.Size() < 4096 {
					break
				}
				f.Truncate(fi.Size() - 4096)
			}
		})
	}
	listing := func() string {
		var names []string
		do(func() {
			ents, _ := os.ReadDir(mnt)
			for _, e := range ents {
				names = append(names, e.Name())
			}
		})
		return strings.Join(names, " ")
	}
	before := settledHostState(t, l, node)
	installedAt := -1
	for free := 0; free <= pages; free++ {
		fill(free)
		out, code := install()
		if code == 0 {
			installedAt = free
			t.Logf("install succeeded with %d free pages", free)
			break
		}
		// The cause is named, or (when vcped itself ran out of space) the
		// tunnel's failure is.
		if code != 1 || !strings.Contains(out, "no space left") && !strings.Contains(out, "tunnel not up") {
			t.Errorf("%d free pages: exit %d; want 1 and 'no space left':\n%s", free, code, out)
		}
		if after := waitHostState(t, l, node, before); after["pids"] != before["pids"] {
			ps, _ := l.Run(ctx, node, "ps", "-o", "pid,ppid,stat,args", "-p", strings.ReplaceAll(after["pids"], " ", ","))
			t.Logf("%d free pages: processes left:\n%s\ninstall output:\n%s", free, ps, out)
		}
		assertHostUnchanged(t, fmt.Sprintf("%d free pages", free), before, waitHostState(t, l, node, before))
		if got := listing(); got != "filler" {
			t.Errorf("%d free pages: the tmpfs holds %q after the failed install; want only the filler", free, got)
		}
		if d := controllerDevice(t, l, b, a.SN); d.Status != "unregistered" {
			t.Fatalf("%d free pages: the controller shows %s as %s after the failed install; want it free", free, a.SN, d.Status)
		}
	}
	if installedAt < 0 {
		t.Fatalf("no install succeeded with up to %d free pages", pages)
	}

	// The disk fills up; site B joins, so site A gets a new configuration.
	fill(0)
	if _, err := l.Install(ctx, b, fp, issued[1], []netip.Prefix{LANB}); err != nil {
		t.Fatal(err)
	}
	type syncDoc struct {
		Generation uint64 `json:"generation"`
		Sync       struct {
			State           string `json:"state"`
			LastError       string `json:"last_error"`
			Generation      uint64 `json:"generation"`
			SavedGeneration uint64 `json:"saved_generation"`
		} `json:"sync"`
	}
	status := func() syncDoc {
		out, _ := run(b.Vcpe, "status", "--json", "--state-dir", state)
		var d syncDoc
		json.Unmarshal([]byte(out), &d)
		return d
	}
	waitSync := func(want string) syncDoc {
		deadline := time.Now().Add(20 * time.Second)
		for {
			d := status()
			if d.Sync.State == want || time.Now().After(deadline) {
				return d
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if d := waitSync("save failed"); d.Sync.State != "save failed" || d.Sync.SavedGeneration >= d.Sync.Generation || !strings.Contains(d.Sync.LastError, "no space left") {
		t.Errorf("a config that cannot be saved: sync %+v; want 'save failed' naming the cause, saved generation behind", d.Sync)
	}
	do(func() { os.Remove(filler) })
	d := waitSync("ok")
	if d.Sync.State != "ok" || d.Sync.SavedGeneration != d.Sync.Generation {
		t.Errorf("space back: sync %+v; want ok with the generation saved", d.Sync)
	}
	if st, err := readStateIn(do, state); err != nil || st.Config.Generation != d.Sync.Generation {
		t.Errorf("state file after space returned: generation %d, %v; want %d", st.Config.Generation, err, d.Sync.Generation)
	}
	if out, code := run(b.Vcpe, "uninstall", "--yes", "--state-dir", state); code != 0 {
		t.Fatalf("uninstall: exit %d\n%s", code, out)
	}
	assertHostUnchanged(t, "uninstall", before, waitHostState(t, l, node, before))
}

func readStateIn(do func(func()), dir string) (st *device.State, err error) {
	do(func() { st, err = device.LoadState(dir) })
	if st == nil {
		st = &device.State{}
	}
	return st, err
}

// TestHubSaysWhatIsWrong runs vcpe-hub with its state dir on a small tmpfs
// in a private mount namespace, then fills it: an admin command gets the
// cause (full) and the fix, a device registering gets "unavailable" with a
// Retry-After, never a refusal; with space back both work.
func TestHubSaysWhatIsWrong(t *testing.T) {
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := os.MkdirAll(l.HubState(), 0o700); err != nil {
		t.Fatal(err)
	}
	ns := inMountNS(t, l.HubState(), 8<<20)
	defer close(ns)
	do := func(f func()) {
		done := make(chan struct{})
		ns <- func() { defer close(done); f() }
		<-done
	}
	var (
		fp     string
		issued []Issued
		err    error
	)
	do(func() { fp, issued, err = l.StartControlPlane(ctx, b, twoSites()) })
	if err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(l.HubState(), "filler")
	do(func() {
		f, err := os.Create(filler)
		if err != nil {
			t.Error(err)
			return
		}
		page := make([]byte, 4096)
		for {
			if _, err := f.Write(page); err != nil {
				break
			}
		}
		f.Close()
	})
	// Admin writes until the store's cached pages are used up.
	var adminErr string
	for i := range 200 {
		var out string
		do(func() {
			out, err = l.Run(ctx, "hub", b.Hub, "instance", "create", fmt.Sprintf("full-%d", i), "--state", l.HubState())
		})
		if err != nil {
			adminErr = out
			break
		}
	}
	t.Logf("admin on a full store: %s", strings.TrimSpace(adminErr))
	if !strings.Contains(adminErr, "is full") || !strings.Contains(adminErr, "free space") {
		t.Errorf("admin command on a full store: %q; want the cause (full) and the fix (free space)", adminErr)
	}
	opts := device.ClientOptions{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return l.Dial(ctx, "site-a", network, addr)
	}}
	c, err := device.NewClient(ControllerURL(), fp, opts)
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(issued[0].KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := api.GeneratePrivateKey()
	req := device.RegisterRequest{SN: issued[0].SN, Key: string(key), PublicKey: priv.PublicKey(), Advertise: []netip.Prefix{LANA}}
	_, err = c.Register(ctx, req)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeUnavailable || ae.RetryAfter <= 0 || strings.Contains(ae.Message, "filler") {
		t.Errorf("device registering on a full store: %v (%+v); want unavailable with a Retry-After and no details of the disk", err, ae)
	}
	if ae != nil {
		t.Logf("device on a full store: %v (retry after %d s)", err, ae.RetryAfter)
	}
	do(func() { os.Remove(filler) })
	if _, err := c.Register(ctx, req); err != nil {
		t.Errorf("register with space back: %v", err)
	}
	var out string
	do(func() {
		out, err = l.Run(ctx, "hub", b.Hub, "instance", "create", "after-full", "--state", l.HubState())
	})
	if err != nil {
		t.Errorf("admin command with space back: %v\n%s", err, out)
	}
	do(func() { l.StopDaemon("hub", "vcpe-hub", syscall.SIGTERM, 10*time.Second) })
}
