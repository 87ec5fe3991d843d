// Package diag measures the network a vCPE depends on: ICMP and UDP echo
// probes (loss, RTT, RFC 3550 jitter, duplicates, reordering), the UDP probe
// reflector that vcpe-hub and vcped run on UDP 12345, decoding of the ICMP
// errors that come back (port unreachable, fragmentation needed, TTL
// exceeded, host/net unreachable) and a path-MTU search with DF set that
// tells a black-holing path apart from one that answers "fragmentation
// needed".
//
// It also reads WireGuard traffic off the WAN interface (Capture and its
// WireGuard summary: an AF_PACKET socket through gopacket, no cgo, a kernel
// BPF filter from x/net/bpf; ParseWireGuard decodes message types) and runs
// the outside-in reach check (OutsideIn): it asks the controller to probe
// this host's public address on api.ReachPorts and watches which probes
// arrive, on listeners for free ports and by capture for ports already in
// use. Captures only read: nothing is injected.
//
// Results are data (Sample, Stats, Result, MTUResult); Summarize is pure.
// Sockets and clocks are injectable so the later diagnosis suite, support
// bundle and TUI build on the same values.
//
// diag is read-only: it must not change routes, addresses, sysctls or
// firewall rules, and it sends packets only to the target it is given. The
// reflector answers only well-formed probes, never with more bytes than it
// received, and rate-limits every source so it cannot be used as an
// amplifier. Only IPv4 is supported for now.
package diag
