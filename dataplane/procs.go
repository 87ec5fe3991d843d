package dataplane

import (
	"fmt"
	"strconv"
)

// Procs says how many Go processors (GOMAXPROCS) a tunnel daemon runs with
// and why.
type Procs struct {
	N         int    // the GOMAXPROCS to set
	Available int    // what the Go runtime would use: the CPUs, or the cgroup's CPU limit
	Source    string // "flag", "env" or "auto"
}

// AutoProcs is the default GOMAXPROCS of vcped on a host where the Go
// runtime would use available processors: half of them, at least one.
//
// Userspace WireGuard does only part of the per-packet work; the kernel
// does the rest (NIC and veth receive in softirq, UDP, routing, the TUN
// queue), and on a small CPE host the LAN traffic's own processes need a
// core too. With every processor given to the daemon, its threads compete
// with that work and packets queue up and drop in the TUN. make bench on 2
// vCPUs, with both tunnel ends on the machine: one processor per daemon
// carried 1.24–1.37× more lossless 1,024-byte UDP and 1.0–1.3× more TCP
// than two (ratios within one run; see CHANGELOG). vcpe-hub, when it
// carries tunnels, takes the same default: make bench's hub case (four
// sites sending to one hub at once, 2 vCPUs, 3-4 runs) carried 1,195
// ±13% against 897 ±5% Mbit/s with one processor for the hub instead of
// two, and in another run the same (683 ±14% against 677 ±4%) with the
// hub at 53% instead of 65% of a core: its profile spent less in the
// scheduler, sysmon and the collector. On a host busy with other work
// (load average 8-12 on 2 CPUs) the balance turns for vcped: two
// processors carried 1.5-1.7x more lossless UDP than one in 6 of 6
// paired runs, because one thread gets only its share of a contended
// CPU; the default stays at half for a CPE whose CPUs carry its own
// traffic. Hosts with more than two CPUs were not measured here: the
// rule keeps half.
func AutoProcs(available int) int { return max(1, available/2) }

// ChooseProcs picks the GOMAXPROCS: the --gomaxprocs flag when it is not 0,
// else the GOMAXPROCS environment variable when it is set (the runtime has
// already applied it: keep it), else AutoProcs. available is
// runtime.GOMAXPROCS(0) read before any change.
func ChooseProcs(flag int, env string, available int) (Procs, error) {
	p := Procs{Available: available}
	switch {
	case flag < 0:
		return p, fmt.Errorf("--gomaxprocs %d: give a number of processors (1 or more), or 0 for the default (half the CPUs)", flag)
	case flag > 0:
		p.N, p.Source = flag, "flag"
	case env != "":
		n, err := strconv.Atoi(env)
		if err != nil || n < 1 {
			return p, fmt.Errorf("GOMAXPROCS=%q in the environment: give a number of processors (1 or more), or unset it for the default (half the CPUs)", env)
		}
		p.N, p.Source = n, "env"
	default:
		p.N, p.Source = AutoProcs(available), "auto"
	}
	return p, nil
}

// DefaultMemoryLimitMiB is vcped's default soft memory limit (the Go
// runtime's GOMEMLIMIT). It is a soft limit: the heap that is live is
// never refused, the collector only runs sooner.
//
// wireguard-go keeps every packet in flight in its own 64 KiB buffer.
// Before the in-flight bound (inflightLimit) its queues grew under load
// until a daemon held 580–700 MiB; 256 MiB then kept the receiving end at
// 235 MiB for the same throughput, and 128 MiB halved 4-stream TCP because
// the collector ran all the time below what the queues held. With the
// bound the packets in flight take about 20 MiB a direction, and in make
// bench (same run) 128 MiB kept both tunnel ends at 109–110 MiB under load
// against 118 MiB with 256 MiB, at the same goodput in every cell (within
// each cell's noise).
const DefaultMemoryLimitMiB = 128

// DefaultHubMemoryLimitMiB is vcpe-hub's default soft memory limit when it
// carries tunnels. A hub keeps about 32 KiB per peer besides the packets in
// flight (BenchmarkHubGroupPeers), so it keeps more room than a device: in
// the hub case 256 MiB left its RSS under load at 112–114 MiB.
const DefaultHubMemoryLimitMiB = 256

// MemoryLimit says which soft memory limit a daemon runs with and why.
type MemoryLimit struct {
	MiB    int64  // 0 when the limit comes from GOMEMLIMIT (the runtime applied it)
	Source string // "flag", "env" or "auto"
}

// ChooseMemoryLimit picks the soft memory limit: the --memory-limit flag
// (MiB) when it is not 0, else GOMEMLIMIT from the environment when it is
// set (the runtime has already applied it), else def MiB.
func ChooseMemoryLimit(flagMiB int64, env string, def int64) (MemoryLimit, error) {
	switch {
	case flagMiB < 0:
		return MemoryLimit{}, fmt.Errorf("--memory-limit %d: give MiB (64 or more), or 0 for the default (%d MiB)", flagMiB, def)
	case flagMiB > 0 && flagMiB < 64:
		return MemoryLimit{}, fmt.Errorf("--memory-limit %d: under 64 MiB the collector would run all the time; give 64 or more, or 0 for the default (%d MiB)", flagMiB, def)
	case flagMiB > 0:
		return MemoryLimit{MiB: flagMiB, Source: "flag"}, nil
	case env != "":
		return MemoryLimit{Source: "env"}, nil
	default:
		return MemoryLimit{MiB: def, Source: "auto"}, nil
	}
}
