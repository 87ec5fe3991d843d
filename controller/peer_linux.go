package controller

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// peer is the process at the other end of an admin connection.
type peer struct {
	known    bool
	uid, pid int
}

func (p peer) String() string {
	if !p.known {
		return "admin:unknown"
	}
	return fmt.Sprintf("admin:uid=%d,pid=%d", p.uid, p.pid)
}

// allowed: root or the server's own user.
func (p peer) allowed() bool { return p.known && (p.uid == 0 || p.uid == os.Geteuid()) }

func peerOf(c net.Conn) peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{}
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil || cred == nil {
		return peer{}
	}
	return peer{known: true, uid: int(cred.Uid), pid: int(cred.Pid)}
}
