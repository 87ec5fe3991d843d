package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
)

// Case is one kind of measurement: a protocol, an optional TCP MSS or UDP
// payload length, and a number of parallel streams.
type Case struct {
	Proto   string `json:"proto"`         // "tcp" or "udp"
	MSS     int    `json:"mss,omitempty"` // TCP maximum segment size; 0 is the kernel's default
	Len     int    `json:"len,omitempty"` // UDP payload bytes
	Streams int    `json:"streams"`       // iperf3 -P
	// Sites is the number of sites sending to one hub at once, each with
	// its own iperf3 client; 0 is the two-end case. Only TCP.
	Sites int `json:"sites,omitempty"`
}

// String names the case the way the report's rows do.
func (c Case) String() string {
	switch {
	case c.Sites > 0:
		return fmt.Sprintf("hub: %d sites at once, TCP -P %d each", c.Sites, c.Streams)
	case c.Proto == "udp":
		return fmt.Sprintf("UDP %d B, lossless, -P %d", c.Len, c.Streams)
	case c.MSS > 0:
		return fmt.Sprintf("TCP MSS %d, -P %d", c.MSS, c.Streams)
	default:
		return fmt.Sprintf("TCP, -P %d", c.Streams)
	}
}

// HubSites is how many sites the hub case sends from at once.
const HubSites = 4

// DefaultCases are the rows issue 4 asks for: TCP with the default MSS and
// with MSS 1024, and lossless UDP with 1024-byte payloads, each with 1 and 4
// streams; and the hub's row (issue 18): HubSites sites sending TCP to one
// hub at once.
func DefaultCases() []Case {
	return []Case{
		{Proto: "tcp", Streams: 1},
		{Proto: "tcp", Streams: 4},
		{Proto: "tcp", MSS: 1024, Streams: 1},
		{Proto: "tcp", MSS: 1024, Streams: 4},
		{Proto: "udp", Len: 1024, Streams: 1},
		{Proto: "udp", Len: 1024, Streams: 4},
		{Proto: "tcp", Streams: 1, Sites: HubSites},
	}
}

// UDPSocketBuffer is iperf3's -w for UDP runs.
const UDPSocketBuffer = "4M"

// IperfPort is the port the iperf3 server listens on inside its namespace.
const IperfPort = 5201

// IperfArgs returns the iperf3 client arguments for one run of c against
// target lasting seconds (plus omit seconds of warm-up that iperf3 leaves
// out of the result). rate is the total offered UDP rate in bit/s, spread
// over the streams; 0 means as fast as the sender can.
func IperfArgs(c Case, target netip.Addr, seconds, omit int, rate float64) []string {
	return iperfArgsPort(c, target, IperfPort, seconds, omit, rate)
}

func iperfArgsPort(c Case, target netip.Addr, port, seconds, omit int, rate float64) []string {
	args := []string{
		"-c", target.String(), "-p", strconv.Itoa(port),
		"-J", "-t", strconv.Itoa(seconds), "--connect-timeout", "3000",
	}
	if omit > 0 {
		args = append(args, "-O", strconv.Itoa(omit))
	}
	if c.Streams > 1 {
		args = append(args, "-P", strconv.Itoa(c.Streams))
	}
	if c.MSS > 0 {
		args = append(args, "-M", strconv.Itoa(c.MSS))
	}
	if c.Proto == "udp" {
		perStream := uint64(0)
		if rate > 0 {
			perStream = uint64(math.Max(1, math.Round(rate/float64(max(1, c.Streams)))))
		}
		// A 4 MiB socket buffer on both iperf3 ends, so a receiver that
		// waits for a CPU shared with the tunnel daemons does not count as
		// loss of the path.
		args = append(args, "-u", "-l", strconv.Itoa(c.Len), "-b", strconv.FormatUint(perStream, 10), "-w", UDPSocketBuffer)
	}
	return args
}

// Measurement is what one iperf3 run reports.
type Measurement struct {
	// BitsPerSecond is the goodput at the receiver.
	BitsPerSecond float64 `json:"bits_per_second"`
	// SentBitsPerSecond is what the sender put on the wire.
	SentBitsPerSecond float64 `json:"sent_bits_per_second"`
	// LostPercent is the UDP datagram loss seen by the receiver.
	LostPercent float64 `json:"lost_percent,omitempty"`
	// Retransmits counts TCP retransmissions at the sender.
	Retransmits int64 `json:"retransmits,omitempty"`
}

type iperfSum struct {
	Seconds       float64 `json:"seconds"`
	Bytes         int64   `json:"bytes"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Retransmits   int64   `json:"retransmits"`
	LostPercent   float64 `json:"lost_percent"`
	Packets       int64   `json:"packets"`
}

type iperfReport struct {
	Error string `json:"error"`
	End   struct {
		SumSent     *iperfSum `json:"sum_sent"`
		SumReceived *iperfSum `json:"sum_received"`
	} `json:"end"`
}

// ParseIperf reads the JSON document of an iperf3 client run (-J). An
// iperf3 error, a missing summary or a nonsensical number is an error.
func ParseIperf(b []byte) (Measurement, error) {
	var r iperfReport
	if err := json.Unmarshal(b, &r); err != nil {
		return Measurement{}, fmt.Errorf("parse iperf3 JSON: %w", err)
	}
	if r.Error != "" {
		return Measurement{}, fmt.Errorf("iperf3: %s", r.Error)
	}
	sent, recv := r.End.SumSent, r.End.SumReceived
	if sent == nil || recv == nil {
		return Measurement{}, errors.New("parse iperf3 JSON: no end.sum_sent/end.sum_received summary")
	}
	for _, v := range []float64{sent.BitsPerSecond, recv.BitsPerSecond, recv.LostPercent} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return Measurement{}, fmt.Errorf("parse iperf3 JSON: invalid value %v in summary", v)
		}
	}
	if recv.LostPercent > 100 {
		return Measurement{}, fmt.Errorf("parse iperf3 JSON: loss %v%% is over 100%%", recv.LostPercent)
	}
	return Measurement{
		BitsPerSecond:     recv.BitsPerSecond,
		SentBitsPerSecond: sent.BitsPerSecond,
		LostPercent:       recv.LostPercent,
		Retransmits:       sent.Retransmits,
	}, nil
}
