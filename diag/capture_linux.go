package diag

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Capture reads IPv4 UDP and TCP packets of one interface through an
// AF_PACKET socket (SOCK_DGRAM: no link header), in both directions. It
// only reads: nothing is injected or changed.
type Capture struct {
	iface string
	tp    *afpacket.TPacket
	local map[netip.Addr]bool
}

// ipProtoFilter keeps IPv4 packets whose protocol is UDP or TCP; the rest
// is dropped in the kernel. With SOCK_DGRAM the filter sees the packet from
// its IP header. (The socket is bound to ETH_P_ALL, not ETH_P_IP: only
// ETH_P_ALL sockets see outgoing packets.)
var ipProtoFilter = []bpf.Instruction{
	bpf.LoadExtension{Num: bpf.ExtProto},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IP, SkipFalse: 4},
	bpf.LoadAbsolute{Off: 9, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_UDP, SkipTrue: 1},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_TCP, SkipFalse: 1},
	bpf.RetConstant{Val: 0xffff},
	bpf.RetConstant{Val: 0},
}

// OpenCapture starts capturing on iface; packets are buffered from now on,
// so a caller can open, then provoke traffic, then Run.
func OpenCapture(iface string) (*Capture, error) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("capture on %s: %w (name the WAN interface with --wan-if)", iface, err)
	}
	local := map[netip.Addr]bool{}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, fmt.Errorf("capture on %s: list addresses: %w", iface, err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			local[p.Addr().Unmap()] = true
		}
	}
	raw, err := bpf.Assemble(ipProtoFilter)
	if err != nil {
		return nil, fmt.Errorf("capture on %s: assemble filter: %w", iface, err)
	}
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(iface),
		afpacket.SocketDgram,
		afpacket.OptProtocol(unix.ETH_P_ALL),
		afpacket.OptFrameSize(4096),
		afpacket.OptBlockSize(4096*32),
		afpacket.OptNumBlocks(8),
		afpacket.OptBlockTimeout(20*time.Millisecond),
		afpacket.OptPollTimeout(100*time.Millisecond),
	)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("capture on %s: %w (capturing needs root or CAP_NET_RAW)", iface, err)
		}
		return nil, fmt.Errorf("capture on %s: open AF_PACKET socket: %w", iface, err)
	}
	if err := tp.SetBPF(raw); err != nil {
		tp.Close()
		return nil, fmt.Errorf("capture on %s: attach filter: %w", iface, err)
	}
	return &Capture{iface: iface, tp: tp, local: local}, nil
}

// Interface is the captured interface.
func (c *Capture) Interface() string { return c.iface }

// Close stops the capture. It must not be called while Run runs (Run
// reads the ring Close unmaps): cancel Run's context and wait first.
func (c *Capture) Close() error { c.tp.Close(); return nil }

// Run calls fn for every captured packet until ctx ends (nil error) or fn
// returns false.
func (c *Capture) Run(ctx context.Context, fn func(Packet) bool) error {
	var (
		ip4     layers.IPv4
		udp     layers.UDP
		tcp     layers.TCP
		payload gopacket.Payload
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeIPv4, &ip4, &udp, &tcp, &payload)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 4)
	for ctx.Err() == nil {
		data, ci, err := c.tp.ZeroCopyReadPacketData()
		if errors.Is(err, afpacket.ErrTimeout) {
			continue
		}
		if err != nil {
			return fmt.Errorf("capture on %s: %w", c.iface, err)
		}
		// Only IPv4 + UDP or TCP goes on. A non-first fragment decodes
		// to IPv4 alone with no error (its transport header is in the
		// first fragment), and a truncated packet to IPv4 with one.
		if _ = parser.DecodeLayers(data, &decoded); len(decoded) < 2 {
			continue
		}
		p := Packet{Time: ci.Timestamp}
		src, _ := netip.AddrFromSlice(ip4.SrcIP)
		dst, _ := netip.AddrFromSlice(ip4.DstIP)
		src, dst = src.Unmap(), dst.Unmap()
		switch decoded[1] {
		case layers.LayerTypeUDP:
			p.Proto, p.Payload = "udp", udp.Payload
			p.Src, p.Dst = netip.AddrPortFrom(src, uint16(udp.SrcPort)), netip.AddrPortFrom(dst, uint16(udp.DstPort))
		case layers.LayerTypeTCP:
			p.Proto, p.Payload, p.SYN = "tcp", tcp.Payload, tcp.SYN && !tcp.ACK
			p.Src, p.Dst = netip.AddrPortFrom(src, uint16(tcp.SrcPort)), netip.AddrPortFrom(dst, uint16(tcp.DstPort))
		default:
			continue
		}
		p.Outgoing = c.local[src]
		if !fn(p) {
			return nil
		}
	}
	return nil
}

// WANInterface is the interface of this host's route to dst.
func WANInterface(dst netip.Addr) (string, error) {
	routes, err := netlink.RouteGet(dst.AsSlice())
	if err != nil || len(routes) == 0 {
		return "", fmt.Errorf("find the WAN interface: no route to %s (%v); name it with --wan-if", dst, err)
	}
	l, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return "", fmt.Errorf("find the WAN interface toward %s: %w", dst, err)
	}
	return l.Attrs().Name, nil
}
