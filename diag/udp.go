package diag

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// ReflectorPort is the UDP port of the probe reflector on hub and device.
const ReflectorPort = 12345

// The UDP probe payload (big endian), padded with zeros to the probe size:
//
//	0  magic "vcpr"
//	4  version (1)
//	5  kind: 1 request, 2 reply
//	6  reserved, zero
//	8  sequence number (uint32)
//	12 send time, Unix nanoseconds of the sender's clock (int64)
//	20 padding
const (
	probeMagic      = "vcpr"
	ProbeVersion    = 1
	ProbeHeaderLen  = 20
	udpIPHeaders    = 20 + 8 // IPv4 + UDP headers in front of the payload
	MinUDPProbeSize = udpIPHeaders + ProbeHeaderLen
)

// ProbeKind says whether a payload is a request or a reply.
type ProbeKind uint8

const (
	KindRequest ProbeKind = 1
	KindReply   ProbeKind = 2
)

// Probe is a decoded UDP probe payload.
type Probe struct {
	Kind ProbeKind
	Seq  uint32
	Sent time.Time
	Len  int // whole payload length, padding included
}

// ErrMalformed is returned (wrapped) by DecodeProbe for anything that is not
// a well-formed vcpe probe.
var ErrMalformed = errors.New("malformed probe")

// AppendProbe appends the payload of p, padded with zeros to p.Len bytes
// (at least ProbeHeaderLen), to b.
func AppendProbe(b []byte, p Probe) []byte {
	n := max(p.Len, ProbeHeaderLen)
	start := len(b)
	b = append(b, make([]byte, n)...)
	h := b[start:]
	copy(h, probeMagic)
	h[4] = ProbeVersion
	h[5] = byte(p.Kind)
	binary.BigEndian.PutUint32(h[8:], p.Seq)
	var ns int64
	if !p.Sent.IsZero() {
		ns = p.Sent.UnixNano()
	}
	binary.BigEndian.PutUint64(h[12:], uint64(ns))
	return b
}

// DecodeProbe decodes a payload. Anything but a version-1 request or reply
// with the right magic and a zero reserved field is ErrMalformed.
func DecodeProbe(b []byte) (Probe, error) {
	if len(b) < ProbeHeaderLen {
		return Probe{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrMalformed, len(b), ProbeHeaderLen)
	}
	if string(b[:4]) != probeMagic {
		return Probe{}, fmt.Errorf("%w: bad magic %x", ErrMalformed, b[:4])
	}
	if b[4] != ProbeVersion {
		return Probe{}, fmt.Errorf("%w: version %d, want %d", ErrMalformed, b[4], ProbeVersion)
	}
	k := ProbeKind(b[5])
	if k != KindRequest && k != KindReply {
		return Probe{}, fmt.Errorf("%w: kind %d", ErrMalformed, b[5])
	}
	if b[6] != 0 || b[7] != 0 {
		return Probe{}, fmt.Errorf("%w: reserved bytes set", ErrMalformed)
	}
	p := Probe{Kind: k, Seq: binary.BigEndian.Uint32(b[8:]), Len: len(b)}
	if ns := int64(binary.BigEndian.Uint64(b[12:])); ns != 0 {
		p.Sent = time.Unix(0, ns)
	}
	return p, nil
}

// PingUDP sends UDP probes to a reflector at target (port 0 means
// ReflectorPort) and returns every sample and the summary. ICMP errors
// that come back (port unreachable, fragmentation needed, TTL exceeded, ...)
// are reported in the samples with the router that sent them.
func PingUDP(ctx context.Context, target netip.AddrPort, o Options) (Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Result{}, err
	}
	if target.Port() == 0 {
		target = netip.AddrPortFrom(target.Addr(), ReflectorPort)
	}
	if !target.Addr().Unmap().Is4() {
		return Result{}, fmt.Errorf("target %s: only IPv4 is supported", target.Addr())
	}
	target = netip.AddrPortFrom(target.Addr().Unmap(), target.Port())
	if o.Size < MinUDPProbeSize || o.Size > 65535 {
		return Result{}, fmt.Errorf("size %d: a UDP probe is %d to 65535 bytes (IP and UDP headers included)", o.Size, MinUDPProbeSize)
	}
	c, err := openUDP(ctx, target, o, pmtuFor(o.DF))
	if err != nil {
		return Result{}, err
	}
	defer c.close()
	samples, err := run(ctx, c, o)
	res := Result{Protocol: "udp", Target: target.Addr(), Port: target.Port(), Size: o.Size, DF: o.DF, Samples: samples, Stats: Summarize(samples)}
	return res, err
}
