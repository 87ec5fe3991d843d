package provision

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemonProcs returns the pids of the running processes of the program exe
// that carry owner in their environment (OwnerEnv=owner), or, when owner
// is empty, that run with --state-dir stateDir. It is how undo finds a
// daemon whose pid file was never written, and nothing else.
func daemonProcs(exe, owner, stateDir string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			continue
		}
		link = strings.TrimSuffix(link, " (deleted)")
		if exe != "" && link != exe || exe == "" && filepath.Base(link) != "vcped" {
			continue
		}
		if owner != "" {
			env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if bytes.Contains(append([]byte{0}, env...), []byte("\x00"+OwnerEnv+"="+owner+"\x00")) {
				out = append(out, pid)
			}
			continue
		}
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
		for i, a := range args {
			if a == "--state-dir="+stateDir || a == "--state-dir" && i+1 < len(args) && args[i+1] == stateDir {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// stopPIDs sends SIGTERM, waits up to 10 s, then SIGKILLs what is left.
// alive tells whether a pid still is the process we mean.
func stopPIDs(pids []int, alive func(pid int) bool) {
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		left := 0
		for _, p := range pids {
			if alive(p) {
				left++
			}
		}
		if left == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range pids {
		if alive(p) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// procIs reports whether pid runs exe (and is not a zombie).
func procIs(pid int, exe string) bool {
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.TrimSuffix(link, " (deleted)") == exe
}

// parentPID returns the parent of pid, or 0.
func parentPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}
