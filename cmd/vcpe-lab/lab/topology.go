package lab

import "net/netip"

// Node kinds.
const (
	KindHub    = "hub"    // runs vcpe-hub (controller + hub tunnel end)
	KindDevice = "device" // a vCPE host
	KindHost   = "host"   // a plain host (LAN or cloud side)
	KindSwitch = "switch" // an L2 segment: a bridge in its own namespace
)

// Node is one namespace of the lab.
type Node struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Forward turns on IPv4 forwarding inside the node.
	Forward bool `json:"forward,omitempty"`
	// Gateway is the node's default route (zero: none).
	Gateway netip.Addr `json:"gateway,omitzero"`
}

// Link is a veth pair. When B is a switch, B's end is a bridge port and
// BAddr is empty.
type Link struct {
	A     string       `json:"a"`
	AIf   string       `json:"a_if"`
	AAddr netip.Prefix `json:"a_addr,omitzero"`
	B     string       `json:"b"`
	BIf   string       `json:"b_if"`
	BAddr netip.Prefix `json:"b_addr,omitzero"`
}

// Addr is an address a switch node itself holds on its bridge (the
// internet segment's gateway, for example).
type Addr struct {
	Node string       `json:"node"`
	Addr netip.Prefix `json:"addr"`
}

// Topology is the lab's shape: nodes and the links between them. Every
// address in it is inside 198.18.0.0/15.
type Topology struct {
	Nodes      []Node `json:"nodes"`
	Links      []Link `json:"links"`
	BridgeAddr []Addr `json:"bridge_addrs,omitempty"`
}

// The lab's address plan, every address inside 198.18.0.0/15: the
// "internet" segment 198.18.0.0/24 (hub .1, gateway .254), the overlay
// 198.18.64.0/18, the cloud-side prefix 198.19.100.0/24 and the site LANs
// 198.19.1.0/24 (A) and 198.19.2.0/24 (B).
var (
	Internet      = netip.MustParsePrefix("198.18.0.0/24")
	InternetGW    = netip.MustParseAddr("198.18.0.254")
	HubWAN        = netip.MustParseAddr("198.18.0.1")
	Overlay       = netip.MustParsePrefix("198.18.64.0/18")
	CloudPrefix   = netip.MustParsePrefix("198.19.100.0/24")
	CloudHost     = netip.MustParseAddr("198.19.100.10")
	LANA          = netip.MustParsePrefix("198.19.1.0/24")
	LANB          = netip.MustParsePrefix("198.19.2.0/24")
	LANAHost      = netip.MustParseAddr("198.19.1.10")
	LANBHost      = netip.MustParseAddr("198.19.2.10")
	benchmarkNets = netip.MustParsePrefix("198.18.0.0/15")
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// Default is the lab's topology: a hub with a cloud-side host, site A with an
// active and a standby device on one LAN, site B, all joined by an
// "internet" segment whose gateway is 198.18.0.254.
func Default() Topology {
	gw := InternetGW
	return Topology{
		Nodes: []Node{
			{Name: "internet", Kind: KindSwitch},
			{Name: "lansw-a", Kind: KindSwitch},
			{Name: "hub", Kind: KindHub, Forward: true, Gateway: gw},
			{Name: "cloud", Kind: KindHost, Gateway: netip.MustParseAddr("198.19.100.1")},
			{Name: "site-a", Kind: KindDevice, Forward: true, Gateway: gw},
			{Name: "site-a2", Kind: KindDevice, Forward: true, Gateway: gw},
			{Name: "site-b", Kind: KindDevice, Forward: true, Gateway: gw},
			{Name: "lan-a", Kind: KindHost, Gateway: netip.MustParseAddr("198.19.1.1")},
			{Name: "lan-b", Kind: KindHost, Gateway: netip.MustParseAddr("198.19.2.1")},
		},
		Links: []Link{
			{A: "hub", AIf: "wan0", AAddr: pfx("198.18.0.1/24"), B: "internet", BIf: "hub"},
			{A: "site-a", AIf: "wan0", AAddr: pfx("198.18.0.11/24"), B: "internet", BIf: "site-a"},
			{A: "site-b", AIf: "wan0", AAddr: pfx("198.18.0.12/24"), B: "internet", BIf: "site-b"},
			{A: "site-a2", AIf: "wan0", AAddr: pfx("198.18.0.21/24"), B: "internet", BIf: "site-a2"},
			{A: "hub", AIf: "cloud0", AAddr: pfx("198.19.100.1/24"), B: "cloud", BIf: "eth0", BAddr: pfx("198.19.100.10/24")},
			{A: "site-a", AIf: "lan0", AAddr: pfx("198.19.1.1/24"), B: "lansw-a", BIf: "site-a"},
			{A: "site-a2", AIf: "lan0", AAddr: pfx("198.19.1.2/24"), B: "lansw-a", BIf: "site-a2"},
			{A: "lan-a", AIf: "eth0", AAddr: pfx("198.19.1.10/24"), B: "lansw-a", BIf: "lan-a"},
			{A: "site-b", AIf: "lan0", AAddr: pfx("198.19.2.1/24"), B: "lan-b", BIf: "eth0", BAddr: pfx("198.19.2.10/24")},
		},
		BridgeAddr: []Addr{{Node: "internet", Addr: pfx("198.18.0.254/24")}},
	}
}
