// Package bench is the harness behind make bench: it measures encrypted
// throughput of vcpe's dataplane side by side with upstream wireguard-go
// and a raw veth baseline, in the same run, on the same machine.
//
// Every variant gets its own pair of network namespaces (named like
// internal/namespace's, vcpet-*, so make clean-netns finds leftovers) joined by a
// veth pair on 198.18.0.0/24; the tunnels use 198.18.64.0/18 (the overlay
// of the lab's address plan, cmd/vcpe-lab/lab/topology.go). An iperf3
// client in namespace A measures against an iperf3 server in namespace B:
//
//   - raw: straight over the veth, no tunnel: the baseline;
//   - upstream: the wireguard-go main package of the module version in
//     go.mod, one per end, in the foreground, configured over its UAPI
//     socket (built with its socket directory moved to a private one, the
//     only change);
//   - vcpe: two vcped daemons in static mode, each the other's hub, from a
//     device state written by the harness. Without cmd/vcped in the tree
//     the variant is an error row, "not available: cmd/vcped not present".
//
// Cases are TCP (default MSS and MSS 1024) and UDP with 1,024-byte
// payloads at the highest rate with under 1% loss (found by a bounded
// search, then measured), each with 1 and 4 streams; and the hub case:
// HubSites sites, each in its own namespace with its own veth pair to a
// hub namespace (WAN 198.18.i.0/24), send TCP to the hub at once, one
// iperf3 client per site against its own server in the hub's namespace.
// Its cell is the sum of the sites' goodputs and its CPU columns are the
// hub's daemon and the sites' daemons together. Upstream's hub is one
// wireguard-go with a peer per site; vcpe's is vcpe-hub serve --role hub
// forwarding on a saved configuration (its static stability: the
// --controller it is given is a closed port on its own WAN address) with
// a static-mode vcped per site; raw is the sites over their veths. The variants are
// interleaved run by run and each cell is the median of its runs; CPU per
// process comes from /proc/PID/stat deltas (the iperf3 client from its
// rusage), host CPU from /proc/stat, daemon RSS from /proc/PID/status when
// idle and sampled under load. Ratios are only ever taken between numbers
// of the same run.
//
// The machine is shared and has few cores: the numbers are noisy, which is
// why the report gives ratios from one run and never absolute claims, and
// why no test asserts a speed. The privileged smoke test only checks that
// the harness still measures something non-zero.
//
// The package must not change anything outside the namespaces it is given
// (no root-namespace routes, addresses, sysctls or firewall rules), must
// not send traffic outside 198.18.0.0/15, and must not edit the dataplane:
// tuning findings go in the report, not into vcped.
package bench
