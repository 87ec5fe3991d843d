package dataplane

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func arpFrame(t *testing.T, op uint16, mac net.HardwareAddr, spa, tpa netip.Addr) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: op, SourceHwAddress: mac, SourceProtAddress: spa.AsSlice(), DstHwAddress: make([]byte, 6), DstProtAddress: tpa.AsSlice()}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, eth, arp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestIsAnnouncement(t *testing.T) {
	vip := netip.MustParseAddr("198.19.1.254")
	host := netip.MustParseAddr("198.19.1.10")
	own := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	other := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"another device announces the gateway", arpFrame(t, layers.ARPRequest, other, vip, vip), true},
		{"our own announcement", arpFrame(t, layers.ARPRequest, own, vip, vip), false},
		// A killed device's kernel still answers ARP for the address: an
		// answer to a host, not an announcement.
		{"kernel reply of a device holding the address", arpFrame(t, layers.ARPReply, other, vip, host), false},
		{"a host asking for the gateway", arpFrame(t, layers.ARPRequest, other, host, vip), false},
		{"another address announced", arpFrame(t, layers.ARPRequest, other, host, host), false},
		{"garbage", []byte{1, 2, 3}, false},
	}
	for _, tt := range tests {
		if got := isAnnouncement(tt.frame, vip, own); got != tt.want {
			t.Errorf("%s: %v; want %v", tt.name, got, tt.want)
		}
	}
}
