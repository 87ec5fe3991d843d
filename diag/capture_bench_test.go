package diag

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// wgIPv4Packet is an IPv4/UDP packet carrying a handshake initiation, as
// a SOCK_DGRAM capture reads it.
func wgIPv4Packet(b *testing.B) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{198, 18, 0, 11}, DstIP: net.IP{198, 18, 0, 1}}
	udp := &layers.UDP{SrcPort: 4500, DstPort: 4500}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, udp, gopacket.Payload(wgMsg(WGInitiation, 148, 1, 0))); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkDecodeParser is the capture's per-packet decoding: a reused
// DecodingLayerParser and ParseWireGuard.
func BenchmarkDecodeParser(b *testing.B) {
	pkt := wgIPv4Packet(b)
	var (
		ip4     layers.IPv4
		udp     layers.UDP
		tcp     layers.TCP
		payload gopacket.Payload
	)
	p := gopacket.NewDecodingLayerParser(layers.LayerTypeIPv4, &ip4, &udp, &tcp, &payload)
	p.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 4)
	b.ReportAllocs()
	for b.Loop() {
		if err := p.DecodeLayers(pkt, &decoded); err != nil {
			b.Fatal(err)
		}
		if _, err := ParseWireGuard(udp.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeNewPacket is the baseline: gopacket.NewPacket per packet.
func BenchmarkDecodeNewPacket(b *testing.B) {
	pkt := wgIPv4Packet(b)
	b.ReportAllocs()
	for b.Loop() {
		p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.NoCopy)
		u, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if u == nil {
			b.Fatal("no UDP layer")
		}
		if _, err := ParseWireGuard(u.Payload); err != nil {
			b.Fatal(err)
		}
	}
}
