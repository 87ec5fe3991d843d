package diag

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// WGType is a WireGuard message type (the first byte of its UDP payload).
type WGType uint8

// The four WireGuard message types.
const (
	WGInitiation  WGType = 1
	WGResponse    WGType = 2
	WGCookieReply WGType = 3
	WGTransport   WGType = 4
)

// WireGuard message sizes (whitepaper §5.4): fixed for the handshake
// messages; a transport message is a 16-byte header and an AEAD-sealed
// payload with a 16-byte tag.
const (
	wgInitiationLen  = 148
	wgResponseLen    = 92
	wgCookieReplyLen = 64
	wgTransportMin   = 32
)

func (t WGType) String() string {
	switch t {
	case WGInitiation:
		return "handshake initiation"
	case WGResponse:
		return "handshake response"
	case WGCookieReply:
		return "cookie reply"
	case WGTransport:
		return "transport data"
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// MarshalText names the type in JSON.
func (t WGType) MarshalText() ([]byte, error) {
	switch t {
	case WGInitiation:
		return []byte("initiation"), nil
	case WGResponse:
		return []byte("response"), nil
	case WGCookieReply:
		return []byte("cookie_reply"), nil
	case WGTransport:
		return []byte("transport"), nil
	}
	return []byte(fmt.Sprintf("type_%d", uint8(t))), nil
}

// ParseWireGuard decodes the header of a WireGuard message from a UDP
// payload: its type and the sender (initiation, response) and receiver
// (response, cookie reply, transport) indexes. It accepts only what
// wireguard-go itself would: a known type, three zero reserved bytes and the
// exact length of the type (a transport message: at least 32 bytes).
func ParseWireGuard(b []byte) (WGHeader, error) {
	if len(b) < 4 {
		return WGHeader{}, fmt.Errorf("wireguard: %d bytes, shorter than a header", len(b))
	}
	if b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return WGHeader{}, fmt.Errorf("wireguard: reserved bytes are not zero")
	}
	h := WGHeader{Type: WGType(b[0]), Length: len(b)}
	var want int
	switch h.Type {
	case WGInitiation:
		want = wgInitiationLen
	case WGResponse:
		want = wgResponseLen
	case WGCookieReply:
		want = wgCookieReplyLen
	case WGTransport:
		// The payload is padded to 16 bytes only up to the MTU, so a
		// full-size packet may be any length: check the minimum only, as
		// wireguard-go does.
		if len(b) < wgTransportMin {
			return WGHeader{}, fmt.Errorf("wireguard: transport message of %d bytes", len(b))
		}
		h.Receiver = binary.LittleEndian.Uint32(b[4:8])
		return h, nil
	default:
		return WGHeader{}, fmt.Errorf("wireguard: unknown message type %d", b[0])
	}
	if len(b) != want {
		return WGHeader{}, fmt.Errorf("wireguard: %s of %d bytes, want %d", h.Type, len(b), want)
	}
	switch h.Type {
	case WGInitiation: // type, sender, ephemeral, static, timestamp, macs
		h.Sender = binary.LittleEndian.Uint32(b[4:8])
	case WGResponse: // type, sender, receiver, ephemeral, empty, macs
		h.Sender = binary.LittleEndian.Uint32(b[4:8])
		h.Receiver = binary.LittleEndian.Uint32(b[8:12])
	case WGCookieReply: // type, receiver, nonce, cookie
		h.Receiver = binary.LittleEndian.Uint32(b[4:8])
	}
	return h, nil
}

// WGHeader is what ParseWireGuard reads.
type WGHeader struct {
	Type     WGType `json:"type"`
	Sender   uint32 `json:"sender,omitempty"`
	Receiver uint32 `json:"receiver,omitempty"`
	Length   int    `json:"length"`
}

// WGPacket is one WireGuard message seen on the wire.
type WGPacket struct {
	Time     time.Time      `json:"time"`
	Outgoing bool           `json:"outgoing"` // sent by this host
	Src      netip.AddrPort `json:"src"`
	Dst      netip.AddrPort `json:"dst"`
	WGHeader
}

// CaptureReport is what a WireGuard capture saw, per direction and type,
// and the verdict drawn from it.
type CaptureReport struct {
	Interface string        `json:"interface"`
	Port      uint16        `json:"port"`
	Duration  time.Duration `json:"duration_ns"`
	Start     time.Time     `json:"start"`

	Sent     map[WGType]int `json:"sent"`     // by this host
	Received map[WGType]int `json:"received"` // by this host
	// Other counts UDP packets on the port that are not WireGuard messages.
	Other int `json:"other"`

	FirstInitiation   time.Time `json:"first_initiation,omitzero"`
	LastInitiation    time.Time `json:"last_initiation,omitzero"`
	LastResponse      time.Time `json:"last_response,omitzero"`
	LastTransportIn   time.Time `json:"last_transport_in,omitzero"`
	LastTransportOut  time.Time `json:"last_transport_out,omitzero"`
	InitiationsLeave  bool      `json:"initiations_leave"`
	ResponsesComeBack bool      `json:"responses_come_back"`

	// Verdict is one sentence: what the capture shows and what to do.
	Verdict string     `json:"verdict"`
	Packets []WGPacket `json:"packets"`
}

// maxReportPackets bounds the packets a report keeps (counts are exact).
const maxReportPackets = 200

// SummarizeCapture counts packets and draws the verdict. It is pure.
func SummarizeCapture(iface string, port uint16, start time.Time, d time.Duration, pkts []WGPacket, other int) CaptureReport {
	r := CaptureReport{Interface: iface, Port: port, Start: start, Duration: d,
		Sent: map[WGType]int{}, Received: map[WGType]int{}, Other: other, Packets: []WGPacket{}}
	for _, p := range pkts {
		if len(r.Packets) < maxReportPackets {
			r.Packets = append(r.Packets, p)
		}
		if p.Outgoing {
			r.Sent[p.Type]++
		} else {
			r.Received[p.Type]++
		}
		switch {
		case p.Type == WGInitiation && p.Outgoing:
			if r.FirstInitiation.IsZero() {
				r.FirstInitiation = p.Time
			}
			r.LastInitiation = p.Time
		case p.Type == WGResponse && !p.Outgoing:
			r.LastResponse = p.Time
		case p.Type == WGTransport && p.Outgoing:
			r.LastTransportOut = p.Time
		case p.Type == WGTransport && !p.Outgoing:
			r.LastTransportIn = p.Time
		}
	}
	r.InitiationsLeave = r.Sent[WGInitiation] > 0
	r.ResponsesComeBack = r.Received[WGResponse] > 0
	secs := d.Round(time.Second)
	switch {
	case r.InitiationsLeave && r.ResponsesComeBack:
		r.Verdict = fmt.Sprintf("handshakes complete: %d initiation(s) left %s and %d response(s) came back", r.Sent[WGInitiation], iface, r.Received[WGResponse])
	case r.InitiationsLeave && r.Received[WGCookieReply] > 0:
		r.Verdict = "the hub answers initiations with cookie replies only: it is under load; wait and retry, or check the hub's CPU"
	case r.InitiationsLeave:
		r.Verdict = fmt.Sprintf("%d initiation(s) left %s but no response came back: UDP %d is blocked on the way to or from the hub (upstream firewall, cloud security group, or the hub's own input filter), or the hub does not know this device's key; open UDP %d both ways and check the device is registered", r.Sent[WGInitiation], iface, port, port)
	case r.Received[WGInitiation] > 0 && r.Sent[WGResponse] == 0:
		r.Verdict = fmt.Sprintf("initiations arrive on %s but this host sends no response: is the WireGuard daemon listening on UDP %d, and does it know the peer's key?", iface, port)
	case r.Sent[WGTransport]+r.Received[WGTransport] > 0:
		r.Verdict = fmt.Sprintf("no handshake in %s, but transport data flows (%d out, %d in): the session is established; a handshake happens every 2 minutes", secs, r.Sent[WGTransport], r.Received[WGTransport])
	default:
		r.Verdict = fmt.Sprintf("no WireGuard packet on %s UDP %d in %s: is vcped running (vcpe status), and is this the WAN interface (--wan-if)?", iface, port, secs)
	}
	return r
}
