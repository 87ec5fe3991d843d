package diag

import (
	"context"
	"net/netip"
	"time"
)

// Packet is an IPv4 UDP or TCP packet seen by a Capture.
type Packet struct {
	Time     time.Time
	Outgoing bool   // its source is an address of the captured interface
	Proto    string // "udp" or "tcp"
	Src, Dst netip.AddrPort
	SYN      bool   // TCP: a connection attempt
	Payload  []byte // valid only during the callback
}

// WireGuard reads the capture for d (or until ctx ends), keeps the
// WireGuard messages on UDP port and summarizes them.
func (c *Capture) WireGuard(ctx context.Context, port uint16, d time.Duration) (CaptureReport, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var pkts []WGPacket
	other := 0
	err := c.Run(ctx, func(p Packet) bool {
		if p.Proto != "udp" || (p.Src.Port() != port && p.Dst.Port() != port) {
			return true
		}
		h, err := ParseWireGuard(p.Payload)
		if err != nil {
			other++
			return true
		}
		pkts = append(pkts, WGPacket{Time: p.Time, Outgoing: p.Outgoing, Src: p.Src, Dst: p.Dst, WGHeader: h})
		return true
	})
	if err != nil {
		return CaptureReport{}, err
	}
	return SummarizeCapture(c.Interface(), port, start, time.Since(start), pkts, other), nil
}
