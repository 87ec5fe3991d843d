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
// than two (ratios within one run; see CHANGELOG). Hosts with more than
// two CPUs were not measured here: the rule keeps half.
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
