package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/internal/namespace"
)

// tmuxWizard runs `vcpe install` (the wizard, no --yes) on node inside a
// real terminal: a detached tmux session of 100×30.
type tmuxWizard struct {
	t       *testing.T
	session string
	socket  string // a tmux server of the test's own (tmux -L), never the operator's
}

func (w *tmuxWizard) tmux(args ...string) *exec.Cmd {
	return exec.Command("tmux", append([]string{"-L", w.socket}, args...)...)
}

func startWizard(t *testing.T, l *Lab, b Binaries, node string, args ...string) *tmuxWizard {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux not found (make deps installs it): %v", err)
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	name := namespace.Prefix + "tui-" + hex.EncodeToString(r[:])
	w := &tmuxWizard{t: t, session: name, socket: name}
	os.MkdirAll(l.Path(node, "uapi"), 0o700)
	argv := append([]string{"ip", "netns", "exec", l.NS(node), b.Vcpe, "install",
		"--state-dir", l.DeviceState(node), "--uapi-dir", l.Path(node, "uapi"), "--service", "process", "--vcped", b.Vcped}, args...)
	// The shell stays after vcpe exits so the test can read the exit code.
	script := strings.Join(argv, " ") + "; echo VCPE-EXIT=$?; sleep 300"
	out, err := w.tmux("-f", "/dev/null", "new-session", "-d", "-s", w.session, "-x", "100", "-y", "30", "-e", "TERM=xterm-256color", "bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		_ = w.tmux("kill-server").Run()
		dir := os.Getenv("TMUX_TMPDIR")
		if dir == "" {
			dir = "/tmp"
		}
		_ = os.Remove(filepath.Join(dir, fmt.Sprintf("tmux-%d", os.Getuid()), w.socket))
	})
	return w
}

func (w *tmuxWizard) screen() string {
	out, _ := w.tmux("capture-pane", "-p", "-t", w.session).Output()
	return string(out)
}

func (w *tmuxWizard) keys(keys ...string) {
	w.t.Helper()
	if out, err := w.tmux(append([]string{"send-keys", "-t", w.session}, keys...)...).CombinedOutput(); err != nil {
		w.t.Fatalf("tmux send-keys %v: %v\n%s", keys, err, out)
	}
}

// drive answers the wizard page by page as an operator would (accepting
// what the flags filled in) until stop says so or vcpe exits; it returns
// the last screen and the exit line.
func (w *tmuxWizard) drive(ctx context.Context, stop func(screen string) bool) string {
	w.t.Helper()
	lastKey := time.Time{}
	for {
		s := w.screen()
		if strings.Contains(s, "VCPE-EXIT=") || (stop != nil && stop(s)) {
			return s
		}
		title := strings.SplitN(s, "\n", 2)[0]
		// Answer each page once, then give it time to move on.
		if time.Since(lastKey) > 700*time.Millisecond {
			switch {
			case strings.Contains(title, "· Welcome"), strings.Contains(title, "· Registration"), strings.Contains(title, "· Routes"),
				strings.Contains(title, "· Interfaces"), strings.Contains(title, "· Multi-attach"):
				w.keys("Enter")
				lastKey = time.Now()
			case strings.Contains(title, "· Connectivity") && strings.Contains(s, "enter continue"):
				w.keys("Enter")
				lastKey = time.Now()
			case strings.Contains(title, "· Precheck") && strings.Contains(s, "continue"):
				w.keys("c")
				lastKey = time.Now()
			case strings.Contains(title, "· Review the plan"):
				w.keys("y")
				lastKey = time.Now()
			case strings.Contains(title, "· Done"):
				w.keys("Enter")
				lastKey = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			w.t.Fatalf("wizard stuck; screen:\n%s", s)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestWizardInATerminal drives the real wizard in tmux inside a lab site:
// it reaches "Done" with the tunnel up; a second run, quit at the review
// page after registering, leaves the host exactly as it was.
func TestWizardInATerminal(t *testing.T) {
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fp, issued, err := l.StartControlPlane(ctx, b, twoSites())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Install(ctx, b, fp, issued[1], []netip.Prefix{LANB}); err != nil {
		t.Fatal(err)
	}
	a := issued[0]
	args := []string{"--controller", ControllerURL(), "--controller-fingerprint", fp, "--sn", a.SN,
		"--advertise", LANA.String(), "--key-file", a.KeyFile}
	before := settledHostState(t, l, "site-a")

	t.Run("quit at the review page leaves the host as it was", func(t *testing.T) {
		w := startWizard(t, l, b, "site-a", args...)
		s := w.drive(ctx, func(s string) bool { return strings.Contains(strings.SplitN(s, "\n", 2)[0], "· Review the plan") })
		if strings.Contains(s, "VCPE-EXIT=") {
			t.Fatalf("wizard ended before the review page:\n%s", s)
		}
		w.keys("q")
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(w.screen(), "Quit now?") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		w.keys("y")
		for !strings.Contains(w.screen(), "VCPE-EXIT=") && time.Now().Before(deadline.Add(20*time.Second)) {
			time.Sleep(100 * time.Millisecond)
		}
		if s := w.screen(); !strings.Contains(s, "VCPE-EXIT=") || strings.Contains(s, "VCPE-EXIT=0") {
			t.Errorf("quitting did not end the wizard with a failure exit:\n%s", s)
		}
		assertHostUnchanged(t, "quit wizard", before, hostState(t, l, "site-a"))
	})

	t.Run("the wizard reaches done with the tunnel up", func(t *testing.T) {
		w := startWizard(t, l, b, "site-a", args...)
		var done string
		s := w.drive(ctx, func(s string) bool {
			if strings.Contains(strings.SplitN(s, "\n", 2)[0], "· Done") {
				done = s
			}
			return false
		})
		if !strings.Contains(s, "VCPE-EXIT=0") {
			t.Fatalf("wizard did not exit 0:\n%s\nlast Done page:\n%s", s, done)
		}
		if !strings.Contains(done, "Installed") {
			t.Errorf("Done page does not say installed:\n%s", done)
		}
		if _, err := l.WaitTunnel(ctx, b, "site-a"); err != nil {
			t.Error(err)
		}
		if err := reach(ctx, l, "lan-a", "198.19.2.10", 5*time.Second); err != nil {
			t.Errorf("lan-a → lan-b after the wizard: %v", err)
		}
	})
}
