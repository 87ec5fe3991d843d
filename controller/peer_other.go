//go:build !linux

package controller

import "net"

// peer is the process at the other end of an admin connection. Outside
// Linux it is not known; the socket's mode 0600 is the only guard.
type peer struct{}

func (peer) String() string { return "admin:local" }
func (peer) allowed() bool  { return true }
func peerOf(net.Conn) peer  { return peer{} }
