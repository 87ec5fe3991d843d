package provision

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// LockHolder is who holds the install lock: written into the lock file
// and answered on the host lock's socket.
type LockHolder struct {
	PID      int       `json:"pid"`
	Command  string    `json:"command"`
	Since    time.Time `json:"since"`
	StateDir string    `json:"state_dir"`
}

// LockedError means another vcpe install or uninstall holds the lock of
// the state dir or of the host. Nothing was changed.
type LockedError struct {
	What   string // "state dir DIR" or "this host"
	Holder LockHolder
}

func (e *LockedError) Error() string {
	h := e.Holder
	who := "another vcpe install or uninstall"
	if h.PID > 0 {
		who = fmt.Sprintf("vcpe %s (pid %d, since %s, state dir %s)", orUnknown(h.Command), h.PID, h.Since.Format(time.RFC3339), orUnknown(h.StateDir))
	}
	return fmt.Sprintf("%s holds the install lock of %s: nothing was changed; wait for it to finish (a killed run's lock is freed with it) and run this again", who, e.What)
}

// lockPath is the lock file of a state dir: next to it, so that removing
// the state dir (uninstall) never races with the lock.
func lockPath(stateDir string) string {
	d := filepath.Clean(stateDir)
	return filepath.Join(filepath.Dir(d), "."+strings.TrimPrefix(filepath.Base(d), ".")+".lock")
}
