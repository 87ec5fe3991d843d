// Package namespace is the project's one network-namespace helper: Create,
// Command, PIDs and Delete serve the bench harness and the lab; on top of
// them New, Veth and Binary give privileged tests throw-away namespaces and
// the project's binaries to run inside them.
//
// Every namespace a test or a bench run makes is named with Prefix and a
// random suffix (NewName), and is removed (after killing the processes left
// inside it) when the test ends, pass or fail. Nothing here touches the
// root namespace: veth pairs are created directly inside the namespaces
// that own them.
//
// Without root, New skips the test with a clear message, unless the
// environment variable VCPE_REQUIRE_PRIVILEGED is set (CI sets it), in which
// case the test fails: a privileged test never passes by being skipped there.
package namespace

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Prefix starts the name of every namespace this package creates, so a
// leftover from a killed test run can be found (make clean-netns).
const Prefix = "vcpet-"

// RequireRoot skips (or, under VCPE_REQUIRE_PRIVILEGED, fails) a test that
// needs root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	Skipf(tb, "needs root for network namespaces (run: sudo make test)")
}

// Skipf is the one way a privileged test (or benchmark) skips: when
// something it needs is missing here (root, a system command, pseudo-
// terminals) it skips with the reason, or fails with it when
// VCPE_REQUIRE_PRIVILEGED is set, so CI never passes a privileged test by
// skipping it.
func Skipf(tb testing.TB, format string, args ...any) {
	tb.Helper()
	reason := fmt.Sprintf(format, args...)
	if os.Getenv("VCPE_REQUIRE_PRIVILEGED") != "" {
		tb.Fatalf("privileged test cannot run (VCPE_REQUIRE_PRIVILEGED is set): %s", reason)
	}
	tb.Skipf("privileged test skipped: %s", reason)
}

// NS is a network namespace owned by one test.
type NS struct {
	Name string
	tb   testing.TB
}

// New creates a fresh namespace with its loopback up. It is removed when the
// test ends.
func New(tb testing.TB) *NS {
	tb.Helper()
	RequireRoot(tb)
	name, err := NewName("")
	if err != nil {
		tb.Fatalf("namespace: %v", err)
	}
	if err := Create(name); err != nil {
		tb.Fatalf("namespace: %v", err)
	}
	tb.Cleanup(func() {
		if err := Delete(0, name); err != nil {
			tb.Errorf("namespace: %v", err)
		}
	})
	return &NS{Name: name, tb: tb}
}

// Command returns a command that runs inside the namespace (ip netns exec,
// which also gives it the namespace's own /sys).
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return Command(ctx, ns.Name, append([]string{name}, args...)...)
}

// Run runs a command inside the namespace and fails the test if it fails.
// It returns the combined output.
func (ns *NS) Run(name string, args ...string) string {
	ns.tb.Helper()
	out, err := ns.Try(name, args...)
	if err != nil {
		ns.tb.Fatalf("in %s: %s %s: %v\n%s", ns.Name, name, strings.Join(args, " "), err, out)
	}
	return out
}

// Try runs a command inside the namespace and returns its combined output
// and error, for commands that are expected to fail.
func (ns *NS) Try(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var buf bytes.Buffer
	cmd := ns.Command(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// Start starts a long-running command inside the namespace. Its output goes
// to the test log when the test ends; it is killed at cleanup if still
// running.
func (ns *NS) Start(name string, args ...string) *exec.Cmd {
	ns.tb.Helper()
	var buf Buffer
	cmd := ns.Command(context.Background(), name, args...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		ns.tb.Fatalf("in %s: start %s: %v", ns.Name, name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	ns.tb.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
		if ns.tb.Failed() || testing.Verbose() {
			ns.tb.Logf("output of %s in %s:\n%s", name, ns.Name, buf.String())
		}
	})
	return cmd
}

// Veth joins two namespaces with a veth pair: aIf in a, bIf in b, both up.
// Addresses (CIDR strings) are assigned when not empty.
func Veth(tb testing.TB, a *NS, aIf, aAddr string, b *NS, bIf, bAddr string) {
	tb.Helper()
	a.Run("ip", "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.Name)
	if aAddr != "" {
		a.Run("ip", "addr", "add", aAddr, "dev", aIf)
	}
	if bAddr != "" {
		b.Run("ip", "addr", "add", bAddr, "dev", bIf)
	}
	a.Run("ip", "link", "set", aIf, "up")
	b.Run("ip", "link", "set", bIf, "up")
	a.WaitOperational(aIf)
	b.WaitOperational(bIf)
}

// WaitOperational waits until dev is up with carrier and the kernel has
// given it its real qdisc: until then (up to a second after "ip link set
// up", the link watcher's delay) packets sent on it are dropped.
func (ns *NS) WaitOperational(dev string) {
	ns.tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := ns.Try("ip", "-o", "link", "show", "dev", dev)
		if strings.Contains(out, "LOWER_UP") && strings.Contains(out, "state UP") && !strings.Contains(out, "qdisc noop") {
			return
		}
		if time.Now().After(deadline) {
			ns.tb.Fatalf("%s in %s not operational after 5s: %s", dev, ns.Name, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Buffer is a bytes.Buffer safe for one writer goroutine (a process's
// output) and readers in the test.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	binMu  sync.Mutex
	binDir string
	built  = map[string]string{}
)

// Binary builds one of the project's commands (for example "cmd/vcpe") as a
// static binary, once per test process, and returns its path. Call Main from
// TestMain to remove the binaries when the tests end.
func Binary(tb testing.TB, cmdDir string) string {
	tb.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := built[cmdDir]; ok {
		return p
	}
	root, err := moduleRoot()
	if err != nil {
		tb.Fatalf("namespace: %v", err)
	}
	if binDir == "" {
		if binDir, err = os.MkdirTemp("", "vcpe-testbin-"); err != nil {
			tb.Fatalf("namespace: %v", err)
		}
	}
	out := filepath.Join(binDir, filepath.Base(cmdDir))
	cmd := exec.Command("go", "build", "-o", out, "./"+cmdDir)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("namespace: go build ./%s: %v\n%s", cmdDir, err, b)
	}
	built[cmdDir] = out
	return out
}

// Main runs the tests and removes the binaries Binary built.
func Main(m *testing.M) {
	code := m.Run()
	binMu.Lock()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	binMu.Unlock()
	os.Exit(code)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the vcpe module")
	}
	return filepath.Dir(mod), nil
}
