//go:build !linux

package lab

import (
	"context"
	"errors"
	"net"
)

var errUnsupported = errors.New("the lab needs Linux network namespaces")

// UpNetwork is not supported off Linux.
func (l *Lab) UpNetwork(context.Context) error { return errUnsupported }

// Down is not supported off Linux.
func (l *Lab) Down() error { return errUnsupported }

// WaitTCP is not supported off Linux.
func (l *Lab) WaitTCP(context.Context, string, string) error { return errUnsupported }

// Dial is not supported off Linux.
func (l *Lab) Dial(context.Context, string, string, string) (net.Conn, error) {
	return nil, errUnsupported
}

func (l *Lab) inNS(string, func() error) error { return errUnsupported }
