//go:build !linux

package diag

import (
	"context"
	"net/netip"
)

// Capture is unsupported off Linux.
type Capture struct{}

// OpenCapture is unsupported off Linux.
func OpenCapture(string) (*Capture, error) { return nil, errUnsupported }

// Interface is empty off Linux.
func (*Capture) Interface() string { return "" }

// Close does nothing.
func (*Capture) Close() error { return nil }

// Run is unsupported off Linux.
func (*Capture) Run(context.Context, func(Packet) bool) error { return errUnsupported }

// WANInterface is unsupported off Linux.
func WANInterface(netip.Addr) (string, error) { return "", errUnsupported }
