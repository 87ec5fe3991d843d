//go:build !linux

package netnstest

import "os/exec"

// setPdeathsig is Linux-only; elsewhere namespaces do not exist anyway.
func setPdeathsig(*exec.Cmd) {}
