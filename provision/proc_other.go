//go:build !linux

package provision

func daemonProcs(exe, owner, stateDir string) []int { return nil }
func stopPIDs(pids []int, alive func(pid int) bool) {}
func procIs(pid int, exe string) bool               { return false }

func parentPID(pid int) int { return 0 }
