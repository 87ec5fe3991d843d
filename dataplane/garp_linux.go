package dataplane

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A gateway address that follows a role (the LAN gateway of a
// multi-attach site, the cloud gateway of a hub group) is announced with
// gratuitous ARP when it moves, and its holder watches for another
// holder's announcement. Edge and hub share these helpers.

// openARPSocket opens an AF_PACKET socket for ARP frames inside the
// namespace inNS enters. With ifindex > 0 it is bound to that link and
// wakes up every 200 ms (a watcher checks for its end); 0 leaves it
// unbound, for sending.
func openARPSocket(inNS func(func() error) error, ifindex int) (int, error) {
	fd := -1
	err := inNS(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
		if err != nil || ifindex <= 0 {
			return err
		}
		sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex}
		if err = unix.Bind(fd, sa); err == nil {
			tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
			err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		}
		if err != nil {
			unix.Close(fd)
			fd = -1
		}
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("ARP socket: %w", err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sendGARP announces vip with mac on the link ifindex (an ARP request for
// itself, broadcast), so the hosts of the segment move their neighbour
// entry at once.
func sendGARP(fd, ifindex int, mac net.HardwareAddr, vip netip.Addr) error {
	if fd < 0 || len(mac) != 6 || !vip.Is4() {
		return nil
	}
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: bcast, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: mac, SourceProtAddress: vip.AsSlice(),
		DstHwAddress: make([]byte, 6), DstProtAddress: vip.AsSlice()}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, eth, arp); err != nil {
		return fmt.Errorf("build gratuitous ARP: %w", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex, Halen: 6}
	copy(sa.Addr[:], bcast)
	if err := unix.Sendto(fd, buf.Bytes(), 0, sa); err != nil {
		return fmt.Errorf("send gratuitous ARP for %s: %w", vip, err)
	}
	return nil
}

// watchAnnouncements reads the bound ARP socket fd (openARPSocket with an
// ifindex) until ctx ends, calling on for every announcement of vip from
// another MAC than own (isAnnouncement), and closes fd.
func watchAnnouncements(ctx context.Context, fd int, vip netip.Addr, own net.HardwareAddr, on func()) {
	defer unix.Close(fd)
	buf := make([]byte, 256)
	for ctx.Err() == nil {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue // timeout or interrupted: check ctx
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if isAnnouncement(buf[:n], vip, own) {
			on()
		}
	}
}

// gatewayLink finds the interface a virtual gateway address goes on (the
// LAN gateway of multi-attach, the cloud gateway of a hub group): the one
// named, or the one with an address inside the gateway's prefix. what
// names the gateway and flag the option that names the interface, for the
// errors.
func gatewayLink(nl *netlink.Handle, name string, gw netip.Prefix, what, flag string) (netlink.Link, error) {
	if name != "" {
		l, err := nl.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("interface %s for %s %s: %w (check %s)", name, what, gw, err, flag)
		}
		return l, nil
	}
	addrs, err := nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if ok && gw.Masked().Contains(ip.Unmap()) && ip.Unmap() != gw.Addr() {
			return nl.LinkByIndex(a.LinkIndex)
		}
	}
	return nil, fmt.Errorf("%s %s: no interface has an address in %s; give this host an address there or pass %s", what, gw, gw.Masked(), flag)
}
