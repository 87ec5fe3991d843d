// Package lab is vcpe's sandbox library: the whole system on one machine,
// in network namespaces, and the end-to-end tests that run in it. It has
// three parts:
//
//   - the topology (topology.go, validate.go, net_linux.go): nodes, links
//     and the address plan (a hub with a cloud-side host, sites with their
//     LAN hosts, joined by an "internet" segment), built as namespaces
//     named PREFIX-NODE with the shared internal/namespace helper; Down
//     removes every trace, and a failed Up removes what it made;
//   - the system (system.go, daemon.go, check.go, dial_linux.go): the real
//     binaries started inside it — the hub's controller, devices installed
//     and registered by the plan, daemons, probes between the sites;
//   - the tests (*_test.go): installation, the wizard in a terminal,
//     failover, diagnosis and support bundles against that running system.
//
// cmd/vcpe-lab is the command over it (up, down, status, exec, check).
//
// It never touches the root namespace: links are created inside the
// namespaces that own them and every address is inside 198.18.0.0/15.
package lab
