package lab

import (
	"fmt"
	"net/netip"
)

// Validate checks a topology before anything is created: unique node
// names, links between known nodes, interface names the kernel accepts, and
// every address inside 198.18.0.0/15.
func (t Topology) Validate() error {
	nodes := map[string]Node{}
	for _, n := range t.Nodes {
		if n.Name == "" || len(n.Name) > 12 {
			return fmt.Errorf("node %q: name must be 1 to 12 characters", n.Name)
		}
		if _, dup := nodes[n.Name]; dup {
			return fmt.Errorf("node %q: defined twice", n.Name)
		}
		switch n.Kind {
		case KindHub, KindDevice, KindHost, KindSwitch:
		default:
			return fmt.Errorf("node %q: kind %q is not one of hub, device, host, switch", n.Name, n.Kind)
		}
		if n.Gateway.IsValid() && !benchmarkNets.Contains(n.Gateway) {
			return fmt.Errorf("node %q: gateway %s is outside 198.18.0.0/15", n.Name, n.Gateway)
		}
		nodes[n.Name] = n
	}
	checkAddr := func(where string, p netip.Prefix) error {
		if p.IsValid() && !benchmarkNets.Contains(p.Addr()) {
			return fmt.Errorf("%s: address %s is outside 198.18.0.0/15", where, p)
		}
		return nil
	}
	ifs := map[string]bool{}
	for i, l := range t.Links {
		where := fmt.Sprintf("link %d (%s-%s)", i, l.A, l.B)
		for _, end := range []struct {
			node, ifname string
			addr         netip.Prefix
		}{{l.A, l.AIf, l.AAddr}, {l.B, l.BIf, l.BAddr}} {
			n, ok := nodes[end.node]
			if !ok {
				return fmt.Errorf("%s: unknown node %q", where, end.node)
			}
			if end.ifname == "" || len(end.ifname) > 15 || end.ifname == "br0" {
				return fmt.Errorf("%s: interface name %q must be 1 to 15 characters and not br0", where, end.ifname)
			}
			if ifs[end.node+"/"+end.ifname] {
				return fmt.Errorf("%s: interface %s on %s used twice", where, end.ifname, end.node)
			}
			ifs[end.node+"/"+end.ifname] = true
			if n.Kind == KindSwitch && end.addr.IsValid() {
				return fmt.Errorf("%s: a switch port takes no address (use bridge_addrs)", where)
			}
			if err := checkAddr(where, end.addr); err != nil {
				return err
			}
		}
		if nodes[l.A].Kind == KindSwitch {
			return fmt.Errorf("%s: put the switch on the B side", where)
		}
	}
	for _, a := range t.BridgeAddr {
		if nodes[a.Node].Kind != KindSwitch {
			return fmt.Errorf("bridge address %s: node %q is not a switch", a.Addr, a.Node)
		}
		if err := checkAddr("bridge address", a.Addr); err != nil {
			return err
		}
	}
	return nil
}
