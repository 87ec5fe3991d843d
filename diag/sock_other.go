//go:build !linux

package diag

import (
	"context"
	"errors"
	"net/netip"
)

// ErrICMPNotPermitted is returned (wrapped, with the fix) when this process
// may open neither a raw nor an unprivileged ICMP socket.
var ErrICMPNotPermitted = errors.New("ICMP sockets not permitted")

var errUnsupported = errors.New("probes are only supported on Linux")

func openUDP(context.Context, netip.AddrPort, Options, pmtuMode) (echoConn, error) {
	return nil, errUnsupported
}

func openICMP(context.Context, netip.Addr, Options, pmtuMode) (echoConn, error) {
	return nil, errUnsupported
}

func ifaceMTU(netip.Addr, netip.Addr) (int, error) { return 0, errUnsupported }

func isMsgSize(error) bool { return false }

func localMTUOf(error) int { return 0 }
