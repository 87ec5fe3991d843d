package provision

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestLockNamesTheHolder: while one run holds the lock, another gets a
// LockedError naming it and nothing else happens; after Release the lock
// file is gone and the lock can be taken again.
func TestLockNamesTheHolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, err := AcquireLock(dir, "install")
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcquireLock(dir, "uninstall")
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.PID != os.Getpid() || le.Holder.Command != "install" {
		t.Fatalf("second lock: %v; want a LockedError naming pid %d, install", err, os.Getpid())
	}
	// The state dir's own lock (flock), without the host's.
	other := &Lock{path: lockPath(dir)}
	err = other.lockFile(LockHolder{StateDir: dir})
	if !errors.As(err, &le) || le.Holder.Command != "install" {
		t.Errorf("state dir lock: %v; want a LockedError naming the holder", err)
	}
	l.Release()
	if _, err := os.Stat(lockPath(dir)); !os.IsNotExist(err) {
		t.Errorf("lock file after release: %v", err)
	}
	l, err = AcquireLock(dir, "install")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l.Release()
}
