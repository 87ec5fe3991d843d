package bench

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// NamespacePrefix starts the name of every namespace Namespaces creates; it
// is internal/namespace's, so make clean-netns also removes what a killed bench
// left behind.
const NamespacePrefix = "vcpet-"

// Namespaces creates network namespaces for a bench run outside of tests
// and removes them all, with whatever still runs inside, on Close.
type Namespaces struct {
	mu    sync.Mutex
	names []string
}

// New creates a namespace named NamespacePrefix+"b"+random hex, with its
// loopback up.
func (n *Namespaces) New() (string, error) {
	name := NamespacePrefix + "b" + randomHex(5)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return "", fmt.Errorf("ip netns add %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	n.mu.Lock()
	n.names = append(n.names, name)
	n.mu.Unlock()
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return "", fmt.Errorf("ip -n %s link set lo up: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return name, nil
}

// Close kills the processes left in every namespace it created and
// deletes them. It is safe to call more than once.
func (n *Namespaces) Close() error {
	n.mu.Lock()
	names := n.names
	n.names = nil
	n.mu.Unlock()
	var errs []string
	for _, name := range names {
		for range 3 {
			out, _ := exec.Command("ip", "netns", "pids", name).Output()
			pids := strings.Fields(string(out))
			if len(pids) == 0 {
				break
			}
			for _, p := range pids {
				if pid, err := strconv.Atoi(p); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Sprintf("ip netns del %s: %v: %s", name, err, bytes.TrimSpace(out)))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove namespaces: %s", strings.Join(errs, "; "))
	}
	return nil
}
