//go:build !linux

package lab

import (
	"context"
	"errors"
)

var errUnsupported = errors.New("the lab needs Linux network namespaces")

// UpNetwork is not supported off Linux.
func (l *Lab) UpNetwork(context.Context) error { return errUnsupported }

// Down is not supported off Linux.
func (l *Lab) Down() error { return errUnsupported }

// WaitTCP is not supported off Linux.
func (l *Lab) WaitTCP(context.Context, string, string) error { return errUnsupported }
