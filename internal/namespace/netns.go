package namespace

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// This file is the part of the package that tests, the bench harness and
// the lab share: create a namespace, run a command in it, and tear it down
// with whatever still runs inside. It needs the ip command (iproute2) and
// root; nothing in it touches the root namespace.

// NewName returns Prefix, then tag, then ten random hex digits: a name no
// other run uses, which make clean-netns finds when a run is killed.
func NewName(tag string) (string, error) {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("namespace name: %w", err)
	}
	return Prefix + tag + hex.EncodeToString(b[:]), nil
}

// Create adds the namespace name with its loopback up. When bringing the
// loopback up fails the namespace is deleted again.
func Create(name string) error {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("create namespace %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		_ = Delete(0, name)
		return fmt.Errorf("namespace %s: set lo up: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// Command returns a command that runs argv inside the namespace name (ip
// netns exec, which also gives it the namespace's own /sys).
func Command(ctx context.Context, name string, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", name}, argv...)...)
}

// PIDs lists the processes inside the namespace name, leaving out this
// process.
func PIDs(name string) []int {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Delete stops every process inside the namespaces and deletes them. With
// a grace period the processes are sent SIGTERM first (so daemons undo
// their changes) and are killed if still there after it; with 0 they are
// killed at once. A namespace that is already gone is not an error.
func Delete(grace time.Duration, names ...string) error {
	signals := []syscall.Signal{syscall.SIGKILL}
	if grace > 0 {
		signals = []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}
	}
	for _, sig := range signals {
		sent := 0
		for _, name := range names {
			for _, pid := range PIDs(name) {
				_ = syscall.Kill(pid, sig)
				sent++
			}
		}
		if sent == 0 {
			break
		}
		wait := grace
		if wait == 0 {
			wait = time.Second
		}
		for deadline := time.Now().Add(wait); time.Now().Before(deadline) && anyPIDs(names); {
			time.Sleep(50 * time.Millisecond)
		}
	}
	var errs []error
	for _, name := range names {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil && exists(name) {
			errs = append(errs, fmt.Errorf("delete namespace %s: %w: %s", name, err, bytes.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}

func anyPIDs(names []string) bool {
	for _, name := range names {
		if len(PIDs(name)) > 0 {
			return true
		}
	}
	return false
}

func exists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}
