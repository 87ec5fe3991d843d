package diag

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvErrCmsg builds the control message the kernel attaches to an
// error-queue read: sock_extended_err and the offender's sockaddr_in.
func recvErrCmsg(errno uint32, origin, typ, code uint8, info uint32, offender netip.Addr) []byte {
	data := make([]byte, 16+unix.SizeofSockaddrInet4)
	binary.NativeEndian.PutUint32(data[0:], errno)
	data[4], data[5], data[6] = origin, typ, code
	binary.NativeEndian.PutUint32(data[8:], info)
	if offender.IsValid() {
		binary.NativeEndian.PutUint16(data[16:], unix.AF_INET)
		a := offender.As4()
		copy(data[20:], a[:])
	}
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_IP, unix.IP_RECVERR
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func TestParseRecvErr(t *testing.T) {
	b := recvErrCmsg(uint32(unix.EMSGSIZE), unix.SO_EE_ORIGIN_ICMP, 3, 4, 1300, router)
	got, ok := parseRecvErr(b)
	want := recvErr{Errno: unix.EMSGSIZE, Origin: unix.SO_EE_ORIGIN_ICMP, Type: 3, Code: 4, Info: 1300, Offender: router}
	if !ok || got != want {
		t.Errorf("parseRecvErr = %+v, %v; want %+v", got, ok, want)
	}
	e := newICMPError(got.Type, got.Code, got.Offender, int(got.Info))
	if s := e.Error(); s != "fragmentation needed (next-hop MTU 1300) from 198.18.0.1" {
		t.Errorf("Error() = %q", s)
	}
	if _, ok := parseRecvErr(b[:len(b)-20]); ok {
		t.Error("truncated control message accepted")
	}
	if _, ok := parseRecvErr(nil); ok {
		t.Error("empty control message accepted")
	}
}

func FuzzParseRecvErr(f *testing.F) {
	f.Add(recvErrCmsg(111, unix.SO_EE_ORIGIN_ICMP, 3, 3, 0, router))
	f.Add(recvErrCmsg(90, unix.SO_EE_ORIGIN_LOCAL, 0, 0, 1400, netip.Addr{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, ok := parseRecvErr(b)
		if ok && e.Offender.IsValid() && !e.Offender.Is4() {
			t.Fatalf("offender %v is not IPv4", e.Offender)
		}
	})
}
