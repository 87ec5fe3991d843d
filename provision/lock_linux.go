package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// HostLockName is the abstract unix socket that is the host's install
// lock. Abstract sockets belong to a network namespace, as do the TUN,
// routes and sysctls an install changes, and vanish with their owner.
const HostLockName = "@vcpe-install-lock"

// Lock is held by one install or uninstall for the whole run: an flock on
// the state dir's lock file, and the host's lock socket. A killed run's
// locks are freed by the kernel with it, so a stale lock is never seen.
type Lock struct {
	f    *os.File
	path string
	ln   net.Listener
}

// AcquireLock takes the locks of stateDir and of the host for command
// ("install", "uninstall"), or returns a *LockedError naming the holder.
func AcquireLock(stateDir, command string) (*Lock, error) {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", stateDir, err)
	}
	me := LockHolder{PID: os.Getpid(), Command: command, Since: time.Now().UTC(), StateDir: abs}
	ln, err := net.Listen("unix", HostLockName)
	if err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, &LockedError{What: "this host", Holder: hostLockHolder()}
		}
		return nil, fmt.Errorf("take the host's install lock %s: %w", HostLockName, err)
	}
	go serveHolder(ln, me)
	l := &Lock{ln: ln, path: lockPath(abs)}
	if err := l.lockFile(me); err != nil {
		ln.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lock) lockFile(me LockHolder) error {
	parent := filepath.Dir(l.path)
	if _, err := os.Stat(parent); err != nil {
		// The state dir's parent does not exist yet (the install will
		// create it, journalled): the host lock alone serialises.
		l.path = ""
		return nil
	}
	for {
		f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("open lock file %s: %w", l.path, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			var h LockHolder
			_ = json.NewDecoder(f).Decode(&h)
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return &LockedError{What: "state dir " + me.StateDir, Holder: h}
			}
			return fmt.Errorf("lock %s: %w", l.path, err)
		}
		// The previous holder may have removed the file between our open
		// and our flock: then we hold a lock on a file nobody else sees.
		var a, b unix.Stat_t
		if unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat(l.path, &b) != nil || a.Ino != b.Ino || a.Dev != b.Dev {
			f.Close()
			continue
		}
		doc, _ := json.Marshal(me)
		_ = f.Truncate(0)
		_, _ = f.WriteAt(append(doc, '\n'), 0)
		l.f = f
		return nil
	}
}

// Release removes the lock file and frees both locks.
func (l *Lock) Release() {
	if l == nil {
		return
	}
	if l.f != nil {
		_ = os.Remove(l.path)
		l.f.Close()
	}
	if l.ln != nil {
		l.ln.Close()
	}
}

// serveHolder tells whoever connects to the host lock who holds it.
func serveHolder(ln net.Listener, me LockHolder) {
	doc, _ := json.Marshal(me)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(time.Second))
		_, _ = c.Write(doc)
		c.Close()
	}
}

func hostLockHolder() LockHolder {
	var h LockHolder
	c, err := net.DialTimeout("unix", HostLockName, time.Second)
	if err != nil {
		return h
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_ = json.NewDecoder(c).Decode(&h)
	return h
}
