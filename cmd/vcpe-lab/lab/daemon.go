package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openvcpe/vcpe/internal/namespace"
	"github.com/openvcpe/vcpe/provision"
)

// Daemon is a long-running process the lab started inside a node.
type Daemon struct {
	Node    string
	Name    string
	PID     int
	LogFile string
}

// StartDaemon starts argv inside node as a detached process (its own
// session, output to RUNDIR/NODE/NAME.log, pid in NAME.pid) that outlives
// this process; Down stops it. Secrets go through env or files, never argv.
func (l *Lab) StartDaemon(node, name string, argv []string, env []string) (*Daemon, error) {
	dir := l.Path(node)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", name, node, err)
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", name, node, err)
	}
	defer logf.Close()
	cmd := namespace.Command(context.Background(), l.NS(node), argv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", name, node, err)
	}
	// ip netns exec execs the program in place, so this pid is the daemon.
	d := &Daemon{Node: node, Name: name, PID: cmd.Process.Pid, LogFile: logPath}
	go func() { _ = cmd.Wait() }() // reap it if it dies while we run
	if err := os.WriteFile(filepath.Join(dir, name+".pid"), []byte(strconv.Itoa(d.PID)+"\n"), 0o600); err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("start %s on %s: %w", name, node, err)
	}
	return d, nil
}

// DaemonPID returns the pid of a daemon the lab started, when it is still
// running.
func (l *Lab) DaemonPID(node, name string) (int, bool) {
	b, err := os.ReadFile(l.Path(node, name+".pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	if syscall.Kill(pid, 0) != nil || gone(pid) {
		return 0, false
	}
	return pid, true
}

// gone reports whether a process that still has a pid has finished: a
// zombie with no thread left, whose sockets and devices are closed. (The
// main thread of a killed process turns zombie while its other threads
// are still closing its files.)
func gone(pid int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return true
	}
	var state string
	threads := -1
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			state = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return strings.HasPrefix(state, "Z") && threads <= 1
}

// StopDaemon sends sig to a daemon the lab started and waits up to timeout
// for it to exit.
func (l *Lab) StopDaemon(node, name string, sig syscall.Signal, timeout time.Duration) error {
	pid, ok := l.DaemonPID(node, name)
	if !ok {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %s on %s: %w", name, node, err)
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, ok := l.DaemonPID(node, name); !ok {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s on %s (pid %d) still running %s after %v", name, node, pid, sig, timeout)
}

// DaemonLog returns what a daemon wrote so far: one the lab started
// itself, or vcped as vcpe install started it (STATE/vcped.log).
func (l *Lab) DaemonLog(node, name string) string {
	b, err := os.ReadFile(l.Path(node, name+".log"))
	if errors.Is(err, os.ErrNotExist) && name == "vcped" {
		b, _ = os.ReadFile(filepath.Join(l.DeviceState(node), provision.LogFile))
	}
	return string(b)
}
