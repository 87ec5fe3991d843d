//go:build !linux

package provision

import "errors"

// Lock is the install lock; it is implemented on Linux only.
type Lock struct{}

// AcquireLock is not supported on this system.
func AcquireLock(stateDir, command string) (*Lock, error) {
	return nil, errors.New("the install lock needs Linux")
}

// Release does nothing.
func (l *Lock) Release() {}
