package diag

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// ICMPError is an ICMP error that came back instead of a reply, with the
// address of the router (or host) that sent it.
type ICMPError struct {
	Type uint8      `json:"type"`
	Code uint8      `json:"code"`
	Name string     `json:"name"`
	From netip.Addr `json:"from"`
	// MTU is the next-hop MTU of a "fragmentation needed" error (0 when the
	// router did not say).
	MTU int `json:"mtu,omitempty"`
}

func (e *ICMPError) Error() string {
	s := e.Name
	if e.MTU > 0 {
		s += fmt.Sprintf(" (next-hop MTU %d)", e.MTU)
	}
	if e.From.IsValid() {
		s += " from " + e.From.String()
	}
	return s
}

// FragNeeded reports whether e is "fragmentation needed and DF set".
func (e *ICMPError) FragNeeded() bool {
	return e.Type == layers.ICMPv4TypeDestinationUnreachable && e.Code == layers.ICMPv4CodeFragmentationNeeded
}

// newICMPError names an ICMPv4 error by type and code.
func newICMPError(typ, code uint8, from netip.Addr, mtu int) *ICMPError {
	e := &ICMPError{Type: typ, Code: code, From: from, Name: icmpName(typ, code)}
	if e.FragNeeded() {
		e.MTU = mtu
	}
	return e
}

// icmpName is the name an on-call engineer knows; gopacket's name for the
// rarer ones.
func icmpName(typ, code uint8) string {
	switch typ {
	case layers.ICMPv4TypeDestinationUnreachable:
		switch code {
		case layers.ICMPv4CodeNet:
			return "network unreachable"
		case layers.ICMPv4CodeHost:
			return "host unreachable"
		case layers.ICMPv4CodeProtocol:
			return "protocol unreachable"
		case layers.ICMPv4CodePort:
			return "port unreachable"
		case layers.ICMPv4CodeFragmentationNeeded:
			return "fragmentation needed"
		case layers.ICMPv4CodeNetAdminProhibited, layers.ICMPv4CodeHostAdminProhibited, layers.ICMPv4CodeCommAdminProhibited:
			return "administratively prohibited"
		}
	case layers.ICMPv4TypeTimeExceeded:
		if code == layers.ICMPv4CodeTTLExceeded {
			return "TTL exceeded"
		}
		return "fragment reassembly time exceeded"
	}
	return layers.CreateICMPv4TypeCode(typ, code).String()
}

// quote is what an ICMP error quotes of the packet that caused it: the
// inner IPv4 header and the first 8 bytes of its transport header.
type quote struct {
	Src, Dst netip.Addr
	Proto    layers.IPProtocol
	// For ICMP echo: ID and Seq. For UDP: source and destination port.
	A, B uint16
	// Size is the total length of the original packet.
	Size int
}

// decodeICMPError decodes an ICMPv4 message (without the outer IP header,
// as a raw socket delivers it) that is an error: destination unreachable,
// time exceeded or parameter problem. ok is false for anything else,
// including truncated or malformed messages.
func decodeICMPError(b []byte, from netip.Addr) (e *ICMPError, q quote, ok bool) {
	var ic layers.ICMPv4
	if err := ic.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		return nil, q, false
	}
	typ, code := ic.TypeCode.Type(), ic.TypeCode.Code()
	switch typ {
	case layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4TypeTimeExceeded, layers.ICMPv4TypeParameterProblem:
	default:
		return nil, q, false
	}
	var ip layers.IPv4
	if err := ip.DecodeFromBytes(ic.Payload, gopacket.NilDecodeFeedback); err != nil || ip.Version != 4 {
		return nil, q, false
	}
	if len(ip.Payload) < 8 {
		return nil, q, false
	}
	src, ok1 := netip.AddrFromSlice(ip.SrcIP.To4())
	dst, ok2 := netip.AddrFromSlice(ip.DstIP.To4())
	if !ok1 || !ok2 {
		return nil, q, false
	}
	q = quote{Src: src, Dst: dst, Proto: ip.Protocol, Size: int(binary.BigEndian.Uint16(ip.Contents[2:4]))}
	switch ip.Protocol {
	case layers.IPProtocolICMPv4:
		q.A = binary.BigEndian.Uint16(ip.Payload[4:6])
		q.B = binary.BigEndian.Uint16(ip.Payload[6:8])
	default: // UDP, TCP: the ports
		q.A = binary.BigEndian.Uint16(ip.Payload[0:2])
		q.B = binary.BigEndian.Uint16(ip.Payload[2:4])
	}
	// For "fragmentation needed" the next-hop MTU is in bytes 6-7 of the
	// ICMP header, which gopacket decodes as Seq (RFC 1191).
	return newICMPError(typ, code, from, int(ic.Seq)), q, true
}
