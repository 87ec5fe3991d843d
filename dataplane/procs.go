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
// runtime's GOMEMLIMIT). Under load wireguard-go keeps a few hundred MiB of
// packet buffers in flight and, with the runtime's default of collecting
// when the heap doubles, the daemon grew to 580–700 MiB; a 1 vCPU / 2 GB
// CPE cannot spare that. With 256 MiB the receiving end stayed at 235 MiB
// and carried the same throughput (make bench, same run: 1.05–1.16× TCP,
// 0.97–1.04× lossless UDP against no limit). It is a soft limit: the
// heap that is live is never refused, the collector only runs sooner.
// vcpe-hub's tunnel end takes it too: in the hub case its RSS under load
// went from 391 to 233 MiB for 864 ±3% against 897 ±5% Mbit/s; 160 MiB
// kept it at 130 MiB but cost 29% (635 ±4%), and 128 MiB on vcped cost
// TCP with 4 streams half its rate: below the queues wireguard-go keeps
// in flight the collector runs all the time.
const DefaultMemoryLimitMiB = 256

// MemoryLimit says which soft memory limit a daemon runs with and why.
type MemoryLimit struct {
	MiB    int64  // 0 when the limit comes from GOMEMLIMIT (the runtime applied it)
	Source string // "flag", "env" or "auto"
}

// ChooseMemoryLimit picks the soft memory limit: the --memory-limit flag
// (MiB) when it is not 0, else GOMEMLIMIT from the environment when it is
// set (the runtime has already applied it), else DefaultMemoryLimitMiB.
func ChooseMemoryLimit(flagMiB int64, env string) (MemoryLimit, error) {
	switch {
	case flagMiB < 0:
		return MemoryLimit{}, fmt.Errorf("--memory-limit %d: give MiB (64 or more), or 0 for the default (%d MiB)", flagMiB, DefaultMemoryLimitMiB)
	case flagMiB > 0 && flagMiB < 64:
		return MemoryLimit{}, fmt.Errorf("--memory-limit %d: under 64 MiB the collector would run all the time; give 64 or more, or 0 for the default (%d MiB)", flagMiB, DefaultMemoryLimitMiB)
	case flagMiB > 0:
		return MemoryLimit{MiB: flagMiB, Source: "flag"}, nil
	case env != "":
		return MemoryLimit{Source: "env"}, nil
	default:
		return MemoryLimit{MiB: DefaultMemoryLimitMiB, Source: "auto"}, nil
	}
}
