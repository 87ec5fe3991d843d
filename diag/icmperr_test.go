package diag

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	client = netip.MustParseAddr("198.18.0.11")
	server = netip.MustParseAddr("198.19.100.10")
	router = netip.MustParseAddr("198.18.0.1")
)

// quotedPacket serialises the start of the packet an ICMP error quotes:
// an IPv4 header (total length size) and 8 bytes of transport header.
func quotedPacket(t testing.TB, proto layers.IPProtocol, a, b uint16, size int) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: client.AsSlice(), DstIP: server.AsSlice(), Length: uint16(size), Flags: layers.IPv4DontFragment}
	buf := gopacket.NewSerializeBuffer()
	var l4 []byte
	switch proto {
	case layers.IPProtocolICMPv4:
		l4 = []byte{8, 0, 0, 0, byte(a >> 8), byte(a), byte(b >> 8), byte(b)}
	default:
		l4 = []byte{byte(a >> 8), byte(a), byte(b >> 8), byte(b), 0, 8, 0, 0}
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, ip, gopacket.Payload(l4)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// icmpErrorMsg serialises an ICMPv4 error message (no outer IP header, as
// a raw socket delivers it) quoting inner.
func icmpErrorMsg(t testing.TB, typ, code uint8, mtu uint16, inner []byte) []byte {
	t.Helper()
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Seq: mtu}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ic, gopacket.Payload(inner)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeICMPError(t *testing.T) {
	tests := []struct {
		name      string
		msg       []byte
		wantErr   *ICMPError
		wantQuote quote
		wantError string
	}{
		{
			name:      "fragmentation needed with next-hop MTU",
			msg:       icmpErrorMsg(t, 3, 4, 1300, quotedPacket(t, layers.IPProtocolICMPv4, 0x1234, 7, 1500)),
			wantErr:   &ICMPError{Type: 3, Code: 4, Name: "fragmentation needed", From: router, MTU: 1300},
			wantQuote: quote{Src: client, Dst: server, Proto: layers.IPProtocolICMPv4, A: 0x1234, B: 7, Size: 1500},
			wantError: "fragmentation needed (next-hop MTU 1300) from 198.18.0.1",
		},
		{
			name:      "port unreachable quoting UDP",
			msg:       icmpErrorMsg(t, 3, 3, 0, quotedPacket(t, layers.IPProtocolUDP, 40000, 12345, 84)),
			wantErr:   &ICMPError{Type: 3, Code: 3, Name: "port unreachable", From: router},
			wantQuote: quote{Src: client, Dst: server, Proto: layers.IPProtocolUDP, A: 40000, B: 12345, Size: 84},
			wantError: "port unreachable from 198.18.0.1",
		},
		{
			name:      "TTL exceeded",
			msg:       icmpErrorMsg(t, 11, 0, 0, quotedPacket(t, layers.IPProtocolICMPv4, 1, 2, 84)),
			wantErr:   &ICMPError{Type: 11, Code: 0, Name: "TTL exceeded", From: router},
			wantQuote: quote{Src: client, Dst: server, Proto: layers.IPProtocolICMPv4, A: 1, B: 2, Size: 84},
			wantError: "TTL exceeded from 198.18.0.1",
		},
		{
			name:      "host unreachable",
			msg:       icmpErrorMsg(t, 3, 1, 0, quotedPacket(t, layers.IPProtocolICMPv4, 1, 2, 84)),
			wantErr:   &ICMPError{Type: 3, Code: 1, Name: "host unreachable", From: router},
			wantQuote: quote{Src: client, Dst: server, Proto: layers.IPProtocolICMPv4, A: 1, B: 2, Size: 84},
			wantError: "host unreachable from 198.18.0.1",
		},
		{
			name:      "network unreachable",
			msg:       icmpErrorMsg(t, 3, 0, 0, quotedPacket(t, layers.IPProtocolUDP, 1, 2, 84)),
			wantErr:   &ICMPError{Type: 3, Code: 0, Name: "network unreachable", From: router},
			wantQuote: quote{Src: client, Dst: server, Proto: layers.IPProtocolUDP, A: 1, B: 2, Size: 84},
			wantError: "network unreachable from 198.18.0.1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, q, ok := decodeICMPError(tt.msg, router)
			if !ok {
				t.Fatalf("decodeICMPError(% x): not decoded", tt.msg)
			}
			if diff := cmp.Diff(tt.wantErr, e, addrCmp); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantQuote, q, addrCmp); diff != "" {
				t.Errorf("quote mismatch (-want +got):\n%s", diff)
			}
			if got := e.Error(); got != tt.wantError {
				t.Errorf("Error() = %q; want %q", got, tt.wantError)
			}
		})
	}
}

func TestDecodeICMPErrorRejects(t *testing.T) {
	inner := quotedPacket(t, layers.IPProtocolICMPv4, 1, 2, 84)
	echoReply := icmpErrorMsg(t, 0, 0, 0, inner)
	for name, msg := range map[string][]byte{
		"empty":              nil,
		"echo reply":         echoReply,
		"truncated header":   icmpErrorMsg(t, 3, 3, 0, nil)[:6],
		"no quote":           icmpErrorMsg(t, 3, 3, 0, nil),
		"quote without L4":   icmpErrorMsg(t, 3, 3, 0, inner[:20]),
		"quote not IPv4":     icmpErrorMsg(t, 3, 3, 0, append([]byte{0x65}, inner[1:]...)),
		"quote short header": icmpErrorMsg(t, 3, 3, 0, inner[:12]),
	} {
		if _, _, ok := decodeICMPError(msg, router); ok {
			t.Errorf("%s: decodeICMPError(% x) accepted it", name, msg)
		}
	}
}

func FuzzDecodeICMPError(f *testing.F) {
	f.Add(icmpErrorMsg(f, 3, 4, 1300, quotedPacket(f, layers.IPProtocolICMPv4, 0x1234, 7, 1500)))
	f.Add(icmpErrorMsg(f, 3, 3, 0, quotedPacket(f, layers.IPProtocolUDP, 40000, 12345, 84)))
	f.Add(icmpErrorMsg(f, 11, 0, 0, quotedPacket(f, layers.IPProtocolTCP, 1, 2, 40)))
	f.Add([]byte{3, 3, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, q, ok := decodeICMPError(b, router)
		if !ok {
			return
		}
		if e == nil || e.Name == "" || !q.Src.Is4() || !q.Dst.Is4() {
			t.Fatalf("decoded %v %+v from % x", e, q, b)
		}
		if e.Type != 3 && e.Type != 11 && e.Type != 12 {
			t.Fatalf("type %d accepted as an error", e.Type)
		}
		_ = e.Error()
	})
}

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
