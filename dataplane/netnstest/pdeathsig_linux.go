package netnstest

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill cmd when the test process dies.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
