// Package diag measures the network a vCPE depends on: ICMP and UDP echo
// probes (loss, RTT, RFC 3550 jitter, duplicates, reordering), the UDP probe
// reflector that vcpe-hub and vcped run on UDP 12345, decoding of the ICMP
// errors that come back (port unreachable, fragmentation needed, TTL
// exceeded, host/net unreachable) and a path-MTU search with DF set that
// tells a black-holing path apart from one that answers "fragmentation
// needed".
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
