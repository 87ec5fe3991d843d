package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/openvcpe/vcpe/diag"
)

// Probe is one connectivity check: a probe from a node to a target.
type Probe struct {
	From   string `json:"from"`
	Proto  string `json:"proto"` // "icmp" or "udp"
	Target string `json:"target"`
	What   string `json:"what"`
}

// ProbeResult is a Probe's outcome.
type ProbeResult struct {
	Probe
	Stats diag.Stats `json:"stats"`
	OK    bool       `json:"ok"`
	Error string     `json:"error,omitempty"`
}

// DefaultProbes check what the default plan promises: LAN to LAN across
// the CCN both ways, LAN to cloud, and UDP to the far device's reflector.
func DefaultProbes() []Probe {
	return []Probe{
		{"lan-a", "icmp", "198.19.2.10", "LAN A → LAN B host"},
		{"lan-b", "icmp", "198.19.1.10", "LAN B → LAN A host"},
		{"lan-a", "icmp", "198.19.100.10", "LAN A → cloud host"},
		{"lan-b", "icmp", "198.19.100.10", "LAN B → cloud host"},
		{"lan-a", "udp", "198.19.2.1:12345", "LAN A → site B reflector (UDP)"},
		{"cloud", "udp", "198.18.64.1:12345", "cloud → hub reflector (UDP)"},
	}
}

// Probes are the connectivity checks of this lab: DefaultProbes, and with
// a hub group the cloud host asks the reflector of the hub holding its
// gateway address instead of the single hub's overlay address.
func (l *Lab) Probes() []Probe {
	ps := DefaultProbes()
	if l.Hubs > 1 {
		for i, p := range ps {
			if p.From == "cloud" {
				ps[i] = Probe{"cloud", "udp", netip.AddrPortFrom(CloudGateway.Addr(), 12345).String(), "cloud → gateway hub's reflector (UDP)"}
			}
		}
	}
	return ps
}

// Connectivity runs the probes (in the nodes, with the real vcpe probe
// binary) and returns their results.
func (l *Lab) Connectivity(ctx context.Context, b Binaries, probes []Probe, count int) []ProbeResult {
	out := make([]ProbeResult, len(probes))
	done := make(chan struct{}, len(probes))
	for i, p := range probes {
		go func() {
			defer func() { done <- struct{}{} }()
			r := ProbeResult{Probe: p}
			s, err := l.Run(ctx, p.From, b.Vcpe, "probe", p.Proto, p.Target, "-c", fmt.Sprint(count), "-i", "200ms", "--json")
			var res diag.Result
			if jerr := json.Unmarshal([]byte(s), &res); jerr == nil {
				r.Stats = res.Stats
			}
			r.OK = err == nil && r.Stats.Received > 0
			if !r.OK {
				r.Error = "no answer"
				if err != nil {
					r.Error = strings.TrimSpace(err.Error())
				}
			}
			out[i] = r
		}()
	}
	for range probes {
		<-done
	}
	return out
}

// WriteConnectivity prints results as a table a person reads; status words
// carry the meaning, not colour.
func WriteConnectivity(w io.Writer, rs []ProbeResult) {
	for _, r := range rs {
		word := "OK  "
		if !r.OK {
			word = "FAIL"
		}
		fmt.Fprintf(w, "%s  %-34s %-4s %-18s loss %3.0f%%  rtt avg %s\n", word, r.What, r.Proto, r.Target,
			r.Stats.LossPct, r.Stats.Avg.Round(10*time.Microsecond))
	}
}
