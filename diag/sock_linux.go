package diag

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// ErrICMPNotPermitted is returned (wrapped, with the fix) when this process
// may open neither a raw nor an unprivileged ICMP socket.
var ErrICMPNotPermitted = errors.New("ICMP sockets not permitted")

// setSockopts applies the probe options to a socket before it is bound.
func setSockopts(fd int, o Options, mode pmtuMode, recvErr bool) error {
	pm := map[pmtuMode]int{pmtuDont: unix.IP_PMTUDISC_DONT, pmtuDo: unix.IP_PMTUDISC_DO, pmtuProbe: unix.IP_PMTUDISC_PROBE}[mode]
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, pm); err != nil {
		return fmt.Errorf("set IP_MTU_DISCOVER: %w", err)
	}
	if recvErr {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1); err != nil {
			return fmt.Errorf("set IP_RECVERR: %w", err)
		}
	}
	if o.TTL > 0 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, o.TTL); err != nil {
			return fmt.Errorf("set IP_TTL: %w", err)
		}
	}
	// Kernel receive timestamps: the RTT does not include the time this
	// process took to be scheduled and read the reply.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("set SO_TIMESTAMPNS: %w", err)
	}
	return nil
}

// rxTime returns the kernel receive timestamp in a control message, or
// fallback when there is none.
func rxTime(oob []byte, fallback time.Time) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fallback
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			return time.Unix(ts.Unix())
		}
	}
	return fallback
}

func control(o Options, mode pmtuMode, recvErr bool) func(string, string, syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = setSockopts(int(fd), o, mode, recvErr) }); err != nil {
			return err
		}
		return serr
	}
}

func bindAddr(src netip.Addr, port int) string {
	if !src.IsValid() {
		return fmt.Sprintf("0.0.0.0:%d", port)
	}
	return netip.AddrPortFrom(src.Unmap(), uint16(port)).String()
}

// recvErr is one entry of a socket's error queue (IP_RECVERR).
type recvErr struct {
	Errno    syscall.Errno
	Origin   uint8
	Type     uint8
	Code     uint8
	Info     uint32 // the MTU for "fragmentation needed" and local EMSGSIZE
	Offender netip.Addr
}

// parseRecvErr decodes the IP_RECVERR control message of an error-queue
// read: a struct sock_extended_err followed by the offender's sockaddr_in.
func parseRecvErr(oob []byte) (recvErr, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return recvErr{}, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_IP || m.Header.Type != unix.IP_RECVERR || len(m.Data) < 16 {
			continue
		}
		d := m.Data
		e := recvErr{
			Errno:  syscall.Errno(binary.NativeEndian.Uint32(d[0:4])),
			Origin: d[4], Type: d[5], Code: d[6],
			Info: binary.NativeEndian.Uint32(d[8:12]),
		}
		if sa := d[16:]; len(sa) >= 8 && binary.NativeEndian.Uint16(sa[0:2]) == unix.AF_INET {
			e.Offender = netip.AddrFrom4([4]byte(sa[4:8]))
		}
		return e, true
	}
	return recvErr{}, false
}

// readPacket reads either a datagram or an error-queue entry from a socket
// with IP_RECVERR set. It honours the connection's read deadline. at is
// the kernel's receive timestamp (zero when the kernel gave none).
func readPacket(rc syscall.RawConn, buf, oob []byte) (n int, from netip.Addr, at time.Time, qe *recvErr, err error) {
	rerr := rc.Read(func(fd uintptr) bool {
		for range 3 {
			var oobn int
			n, oobn, _, _, err = unix.Recvmsg(int(fd), buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err == nil {
				if e, ok := parseRecvErr(oob[:oobn]); ok {
					qe, at = &e, rxTime(oob[:oobn], time.Time{})
					return true
				}
				continue
			}
			var sa unix.Sockaddr
			n, oobn, _, sa, err = unix.Recvmsg(int(fd), buf, oob, unix.MSG_DONTWAIT)
			switch {
			case err == unix.EAGAIN:
				return false
			case err != nil:
				// A pending ICMP error (ECONNREFUSED, EMSGSIZE, ...): its
				// details are in the error queue; read them next round.
				continue
			}
			if sa4, ok := sa.(*unix.SockaddrInet4); ok {
				from = netip.AddrFrom4(sa4.Addr)
			}
			at = rxTime(oob[:oobn], time.Time{})
			return true
		}
		err = unix.EAGAIN
		return false
	})
	if rerr != nil {
		return 0, netip.Addr{}, time.Time{}, nil, rerr
	}
	return n, from, at, qe, err
}

// isPendingAsyncErr reports whether a send failed only because an earlier
// ICMP error was still pending on the socket.
func isPendingAsyncErr(err error) bool {
	return errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.EHOSTUNREACH) || errors.Is(err, unix.ENETUNREACH)
}

// sendErr explains a failed send. EMSGSIZE with DF set means the probe is
// larger than the path MTU the kernel has learned (from an earlier
// "fragmentation needed") or the interface MTU: say which.
func sendErr(err error, size int, dst, src netip.Addr) error {
	if errors.Is(err, unix.EMSGSIZE) {
		if mtu, merr := routeMTU(dst, src); merr == nil {
			return fmt.Errorf("message too long: DF is set and the %d-byte probe is larger than the path MTU %d this host knows for %s (%w)", size, mtu, dst, err)
		}
		return fmt.Errorf("message too long: DF is set and the %d-byte probe is larger than the path MTU this host knows for %s (%w)", size, dst, err)
	}
	return err
}

// ---- UDP probes ----

type udpConn struct {
	c        *net.UDPConn
	rc       syscall.RawConn
	dst      netip.AddrPort
	src      netip.Addr
	now      func() time.Time
	out      []byte
	buf, oob []byte
}

func openUDP(ctx context.Context, dst netip.AddrPort, o Options, mode pmtuMode) (*udpConn, error) {
	lc := net.ListenConfig{Control: control(o, mode, true)}
	pc, err := lc.ListenPacket(ctx, "udp4", bindAddr(o.Source, 0))
	if err != nil {
		return nil, fmt.Errorf("open UDP probe socket on %s: %w", bindAddr(o.Source, 0), err)
	}
	c := pc.(*net.UDPConn)
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open UDP probe socket: %w", err)
	}
	return &udpConn{c: c, rc: rc, dst: dst, src: o.Source, now: o.Now, buf: make([]byte, 65536), oob: make([]byte, 512)}, nil
}

func (u *udpConn) send(seq, size int) error {
	u.out = AppendProbe(u.out[:0], Probe{Kind: KindRequest, Seq: uint32(seq), Sent: u.now(), Len: size - udpIPHeaders})
	_, err := u.c.WriteToUDPAddrPort(u.out, u.dst)
	if err != nil && isPendingAsyncErr(err) {
		_, err = u.c.WriteToUDPAddrPort(u.out, u.dst)
	}
	if err != nil {
		return sendErr(err, size, u.dst.Addr(), u.src)
	}
	return nil
}

func (u *udpConn) recv(deadline time.Time) (event, error) {
	if err := u.c.SetReadDeadline(deadline); err != nil {
		return event{}, err
	}
	for {
		n, from, at, qe, err := readPacket(u.rc, u.buf, u.oob)
		if err != nil {
			return event{}, err
		}
		if at.IsZero() {
			at = u.now()
		}
		if qe != nil {
			if qe.Origin != unix.SO_EE_ORIGIN_ICMP {
				continue // local errors were returned by send already
			}
			// The error queue returns the payload of the probe that failed.
			p, perr := DecodeProbe(u.buf[:n])
			if perr != nil || p.Kind != KindRequest {
				continue
			}
			return event{seq: int(p.Seq), at: at, from: qe.Offender, size: n + udpIPHeaders,
				icmp: newICMPError(qe.Type, qe.Code, qe.Offender, int(qe.Info))}, nil
		}
		if from != u.dst.Addr() {
			continue
		}
		p, perr := DecodeProbe(u.buf[:n])
		if perr != nil || p.Kind != KindReply {
			continue
		}
		return event{seq: int(p.Seq), at: at, from: from, size: n + udpIPHeaders}, nil
	}
}

func (u *udpConn) close() error { return u.c.Close() }

// ---- ICMP echo ----

type icmpConn struct {
	pc       net.PacketConn
	rc       syscall.RawConn
	raw      bool
	id       uint16
	dst, src netip.Addr
	now      func() time.Time
	buf, oob []byte
}

func openICMP(ctx context.Context, dst netip.Addr, o Options, mode pmtuMode) (*icmpConn, error) {
	c := &icmpConn{dst: dst, src: o.Source, now: o.Now, buf: make([]byte, 65536), oob: make([]byte, 512)}
	var rawErr error
	if o.ICMPMode != ICMPUnprivileged {
		lc := net.ListenConfig{Control: control(o, mode, false)}
		laddr := "0.0.0.0"
		if o.Source.IsValid() {
			laddr = o.Source.Unmap().String()
		}
		pc, err := lc.ListenPacket(ctx, "ip4:icmp", laddr)
		if err == nil {
			c.pc, c.raw, c.id = pc, true, uint16(rand.UintN(1<<16))
			// A raw socket gets every ICMP message the host receives: let
			// the kernel pass only replies and errors.
			var f ipv4.ICMPFilter
			f.SetAll(true)
			for _, typ := range []ipv4.ICMPType{ipv4.ICMPTypeEchoReply, ipv4.ICMPTypeDestinationUnreachable, ipv4.ICMPTypeTimeExceeded, ipv4.ICMPTypeParameterProblem} {
				f.Accept(typ)
			}
			if err := ipv4.NewPacketConn(pc).SetICMPFilter(&f); err != nil {
				pc.Close()
				return nil, fmt.Errorf("set ICMP filter on raw socket: %w", err)
			}
		} else if o.ICMPMode == ICMPRaw || !errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("open raw ICMP socket: %w", err)
		}
		rawErr = err
	}
	if c.pc == nil {
		pc, err := openPingSocket(o, mode)
		if err != nil {
			if errors.Is(err, os.ErrPermission) {
				return nil, pingPermissionError(rawErr, err)
			}
			return nil, err
		}
		c.pc = pc
	}
	sc, ok := c.pc.(syscall.Conn)
	if !ok {
		c.pc.Close()
		return nil, fmt.Errorf("open ICMP socket: no raw access to %T", c.pc)
	}
	var err error
	if c.rc, err = sc.SyscallConn(); err != nil {
		c.pc.Close()
		return nil, fmt.Errorf("open ICMP socket: %w", err)
	}
	return c, nil
}

// openPingSocket opens an unprivileged ICMP ("ping") socket. x/net/icmp can
// open one too, but gives no access to the descriptor for IP_RECVERR and
// IP_MTU_DISCOVER, so it is opened here the same way.
func openPingSocket(o Options, mode pmtuMode) (net.PacketConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return nil, fmt.Errorf("open unprivileged ICMP socket: %w", err)
	}
	if err := setSockopts(fd, o, mode, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open unprivileged ICMP socket: %w", err)
	}
	sa := &unix.SockaddrInet4{}
	if o.Source.IsValid() {
		sa.Addr = o.Source.Unmap().As4()
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind unprivileged ICMP socket to %s: %w", bindAddr(o.Source, 0), err)
	}
	f := os.NewFile(uintptr(fd), "icmp-dgram")
	defer f.Close()
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("open unprivileged ICMP socket: %w", err)
	}
	return pc, nil
}

func pingPermissionError(rawErr, dgramErr error) error {
	rng, _ := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	gid := os.Getegid()
	msg := fmt.Sprintf("this process (gid %d) may not open a raw ICMP socket (needs root or CAP_NET_RAW)", gid)
	if rawErr == nil {
		msg = fmt.Sprintf("unprivileged ICMP socket refused for gid %d", gid)
	}
	return fmt.Errorf("%w: %s, and net.ipv4.ping_group_range is %q, which does not include it: "+
		"run as root, or allow unprivileged ICMP with 'sysctl -w net.ipv4.ping_group_range=\"%d %d\"' "+
		"(persist it in /etc/sysctl.d/), or probe a reflector with 'vcpe probe udp' (%v)",
		ErrICMPNotPermitted, msg, strings.Join(strings.Fields(string(rng)), " "), gid, gid, dgramErr)
}

func (c *icmpConn) send(seq, size int) error {
	m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: int(c.id), Seq: seq & 0xffff, Data: make([]byte, size-icmpIPHeaders)}}
	b, err := m.Marshal(nil)
	if err != nil {
		return err
	}
	var to net.Addr = &net.IPAddr{IP: c.dst.AsSlice()}
	if !c.raw {
		to = &net.UDPAddr{IP: c.dst.AsSlice()}
	}
	_, err = c.pc.WriteTo(b, to)
	if err != nil && isPendingAsyncErr(err) {
		_, err = c.pc.WriteTo(b, to)
	}
	if err != nil {
		return sendErr(err, size, c.dst, c.src)
	}
	return nil
}

func (c *icmpConn) recv(deadline time.Time) (event, error) {
	if err := c.pc.SetReadDeadline(deadline); err != nil {
		return event{}, err
	}
	for {
		if c.raw {
			n, oobn, _, ia, err := c.pc.(*net.IPConn).ReadMsgIP(c.buf, c.oob)
			if err != nil {
				return event{}, err
			}
			// ReadMsgIP, unlike ReadFrom, leaves the IPv4 header on.
			if ia == nil || n < 20 || int(c.buf[0]&0x0f)*4 > n {
				continue
			}
			from, _ := netip.AddrFromSlice(ia.IP.To4())
			at := rxTime(c.oob[:oobn], c.now())
			if ev, ok := c.decodeRaw(c.buf[int(c.buf[0]&0x0f)*4:n], from, at); ok {
				return ev, nil
			}
			continue
		}
		n, from, at, qe, err := readPacket(c.rc, c.buf, c.oob)
		if err != nil {
			return event{}, err
		}
		if at.IsZero() {
			at = c.now()
		}
		if qe != nil {
			// The error queue returns the echo request that failed.
			if qe.Origin != unix.SO_EE_ORIGIN_ICMP || n < 8 {
				continue
			}
			seq := int(binary.BigEndian.Uint16(c.buf[6:8]))
			return event{seq: seq, at: at, from: qe.Offender, size: n + 20,
				icmp: newICMPError(qe.Type, qe.Code, qe.Offender, int(qe.Info))}, nil
		}
		if from != c.dst {
			continue
		}
		m, err := icmp.ParseMessage(1, c.buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok {
			return event{seq: e.Seq, at: at, from: from, size: n + 20}, nil
		}
	}
}

// decodeRaw turns one ICMP message read from the raw socket into an event
// of this run: an echo reply with our ID from the target, or an ICMP error
// quoting one of our echo requests.
func (c *icmpConn) decodeRaw(b []byte, from netip.Addr, at time.Time) (event, bool) {
	if len(b) >= 8 && b[0] == byte(ipv4.ICMPTypeEchoReply) {
		m, err := icmp.ParseMessage(1, b)
		if err != nil {
			return event{}, false
		}
		e, ok := m.Body.(*icmp.Echo)
		if !ok || uint16(e.ID) != c.id || from != c.dst {
			return event{}, false
		}
		return event{seq: e.Seq, at: at, from: from, size: len(b) + 20}, true
	}
	ie, q, ok := decodeICMPError(b, from)
	if !ok || q.Proto != 1 || q.Dst != c.dst || q.A != c.id {
		return event{}, false
	}
	return event{seq: int(q.B), at: at, from: from, size: q.Size, icmp: ie}, true
}

func (c *icmpConn) close() error { return c.pc.Close() }

func isMsgSize(err error) bool { return errors.Is(err, unix.EMSGSIZE) }

// localMTUOf has no MTU to offer from a send error: the search narrows by
// bisection instead.
func localMTUOf(error) int { return 0 }
