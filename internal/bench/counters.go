package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Counters are the kernel's drop and error counters of one namespace (and
// the host's backlog drops), by name, for finding where UDP loss happens:
// "udp RcvbufErrors", "wan tx_dropped", "qdisc wgX drops",
// "host backlog drops".
type Counters map[string]uint64

// Delta returns the counters that grew from before to c.
func (c Counters) Delta(before Counters) Counters {
	d := Counters{}
	for k, v := range c {
		if v > before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

// udpCounters are the /proc/net/snmp Udp fields that count loss.
var udpCounters = []string{"NoPorts", "InErrors", "RcvbufErrors", "SndbufErrors", "MemErrors"}

// ParseSNMP adds the UDP loss counters from the content of /proc/net/snmp
// to c.
func ParseSNMP(b []byte, c Counters) error {
	var header []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if header == nil {
			header = f[1:]
			continue
		}
		if len(f)-1 != len(header) {
			return fmt.Errorf("parse /proc/net/snmp: Udp has %d names and %d values", len(header), len(f)-1)
		}
		for i, name := range header {
			for _, want := range udpCounters {
				if name != want {
					continue
				}
				v, err := strconv.ParseUint(f[i+1], 10, 64)
				if err != nil {
					return fmt.Errorf("parse /proc/net/snmp Udp %s: %w", name, err)
				}
				c["udp "+name] = v
			}
		}
		return nil
	}
	return fmt.Errorf("parse /proc/net/snmp: no Udp lines")
}

// ParseLinkStats adds every interface's rx/tx dropped counters from the
// output of ip -s -j link show to c.
func ParseLinkStats(b []byte, c Counters) error {
	var links []struct {
		Name  string `json:"ifname"`
		Stats struct {
			RX struct {
				Dropped uint64 `json:"dropped"`
			} `json:"rx"`
			TX struct {
				Dropped uint64 `json:"dropped"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(b, &links); err != nil {
		return fmt.Errorf("parse ip -s -j link: %w", err)
	}
	for _, l := range links {
		c[l.Name+" rx_dropped"] = l.Stats.RX.Dropped
		c[l.Name+" tx_dropped"] = l.Stats.TX.Dropped
	}
	return nil
}

// ParseQdiscStats adds every root qdisc's drops from the output of
// tc -s -j qdisc show to c.
func ParseQdiscStats(b []byte, c Counters) error {
	var qdiscs []struct {
		Kind  string `json:"kind"`
		Dev   string `json:"dev"`
		Root  bool   `json:"root"`
		Drops uint64 `json:"drops"`
	}
	if err := json.Unmarshal(b, &qdiscs); err != nil {
		return fmt.Errorf("parse tc -s -j qdisc: %w", err)
	}
	for _, q := range qdiscs {
		if q.Root && q.Kind != "noqueue" {
			c["qdisc "+q.Dev+" drops"] += q.Drops
		}
	}
	return nil
}

// ParseSoftnet adds the host's input backlog drops (second column of
// /proc/net/softnet_stat, summed over CPUs) to c: packets that found a
// CPU's backlog full (net.core.netdev_max_backlog), host wide.
func ParseSoftnet(b []byte, c Counters) error {
	var sum uint64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseUint(f[1], 16, 64)
		if err != nil {
			return fmt.Errorf("parse /proc/net/softnet_stat: %w", err)
		}
		sum += v
	}
	c["host backlog drops"] = sum
	return nil
}

// ParseSocketDrops adds the receive drops of the UDP sockets bound to port
// (the skmem d field of ss -Huanm, summed) to c as "udp :PORT drops": the
// tunnel's own share of the namespace's RcvbufErrors. The iperf3 server's
// UDP socket lives only during a test, so its drops are the rest.
func ParseSocketDrops(b []byte, port int, c Counters) error {
	suffix := ":" + strconv.Itoa(port)
	var sum uint64
	// A socket is "STATE RECV-Q SEND-Q LOCAL PEER skmem:(…)".
	pos, mine := -1, false
	for _, f := range strings.Fields(string(b)) {
		switch {
		case strings.HasPrefix(f, "skmem:("):
			if mine {
				for _, kv := range strings.Split(strings.Trim(strings.TrimPrefix(f, "skmem:"), "()"), ",") {
					if v, ok := strings.CutPrefix(kv, "d"); ok {
						n, err := strconv.ParseUint(v, 10, 64)
						if err != nil {
							return fmt.Errorf("parse ss skmem %q: %w", f, err)
						}
						sum += n
					}
				}
			}
			pos, mine = -1, false
		case pos < 0:
			pos = 0 // the state
		default:
			pos++
			if pos == 3 {
				mine = strings.HasSuffix(f, suffix)
			}
		}
	}
	c["udp "+suffix+" drops"] = sum
	return nil
}
