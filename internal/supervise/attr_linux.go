package supervise

import "syscall"

// childAttr makes the child die with its supervisor (SIGTERM), so a
// killed supervisor never leaves a child that no record owns.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
