package dataplane

import (
	"net"
	"net/netip"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// readEchoReplies reads the ICMP echo replies carrying identifier id from
// c (an "ip4:icmp" socket) until c is closed, and hands each one's source
// and sequence number to f. The liveness prober, the LAN and cloud health
// targets and the path-MTU prober each read their own socket with it.
func readEchoReplies(c net.PacketConn, id, bufSize int, f func(from netip.Addr, seq int)) {
	buf := make([]byte, bufSize)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		ip, ok2 := from.(*net.IPAddr)
		if !ok || !ok2 || echo.ID != id {
			continue
		}
		a, ok := netip.AddrFromSlice(ip.IP)
		if !ok {
			continue
		}
		f(a.Unmap(), echo.Seq)
	}
}
