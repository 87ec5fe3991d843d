// Package precheck answers "can this host become a vCPE?" before anything is
// installed: OS and kernel, CPU and memory (and the throughput class they
// give), the Internet-facing NIC, remote logon, conflicting services,
// required ports, ICMP, flood protection, traffic shaping and forwarding.
//
// Checks are pure functions of a [Snapshot]: a set of raw host files kept
// under the paths they have on a live host. [Gather] reads them from this
// host (gather_linux.go), [Snapshot.Save] writes them to a directory and
// [Load] reads such a directory back, so `vcpe precheck --root DIR` runs the
// same checks on a saved or hand-edited host and editing a file changes the
// verdict exactly as the same change on a live host would. The layout is the
// core of the support bundle:
//
//	etc/os-release, etc/redhat-release, etc/centos-release   (when present)
//	etc/ssh/sshd_config
//	proc/sys/kernel/osrelease, proc/cpuinfo, proc/meminfo
//	proc/net/{tcp,tcp6,udp,udp6,route}
//	proc/sys/net/ipv4/{icmp_echo_ignore_all,icmp_ratelimit,icmp_ratemask,ip_forward}
//	sys/class/net/IF/{operstate,type,mtu,address,uevent}
//	sys/class/net/IF/device      present only for a NIC backed by a device
//	                             (a symlink on a live host; any file in a snapshot)
//	cmd/iptables-save.txt, cmd/ip6tables-save.txt   (iptables-save output)
//	cmd/nft-ruleset.json                            (nft -j list ruleset)
//
// and these files, which have no plain-file source on a live host:
//
//	vcpe/addresses.json   {"IF": ["198.18.0.11/24", ...]}: addresses per
//	                      interface (netlink)
//	vcpe/links.json       {"IF": "veth"}: the link kind netlink reports
//	                      (device, veth, bridge, tun, wireguard, ...)
//	vcpe/tc.json          [{"dev","kind","parent","handle"}]: qdiscs per
//	                      interface, and "police" entries for tc filters
//	                      with a police action (netlink)
//	vcpe/sockets.json     [{"proto","local","pid","process"}]: the owners of
//	                      inet sockets (gopsutil); pid 0 when not visible
//	                      (another user's process, not running as root)
//	vcpe/missing.json     {"path": "why it was not gathered"}
//
// A file that is absent makes the checks that need it skip, with the reason.
// Firewall analysis evaluates the IPv4 INPUT path (iptables filter INPUT
// and nftables input hooks of the ip and inet families) for a new packet
// arriving on the WAN interface from an arbitrary source; rules whose
// conditions cannot be decided statically (source addresses, sets, rate
// limits, verdict maps) are assumed not to match. The flood checks look at
// the rules of every table and chain (a limit in FORWARD throttles the
// traffic a vCPE routes as well). nft tables that iptables-save already
// shows (iptables-nft keeps its rules in ip/ip6 tables of the same names)
// are judged once, from iptables-save. Sockets bound to loopback do not take a
// reserved port from the outside and are not counted, except for the ports
// vcpe binds itself (UDP 4500, 12345, TCP 8443, 10000-10100).
//
// The package must not change the host: gathering is read-only, and the only
// packets it sends are wan.internet's probes to the controller named by the
// caller. With Options.OutsideIn (vcpe precheck --controller-fingerprint),
// wan.internet also asks the controller to probe this host's public address
// on UDP 4500 and reports whether that arrives; the hook is the caller's,
// so precheck itself opens nothing else.
package precheck
