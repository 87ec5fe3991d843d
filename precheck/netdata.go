package precheck

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// SocketOwner is one entry of vcpe/sockets.json.
type SocketOwner struct {
	Proto   string `json:"proto"` // tcp or udp
	Local   string `json:"local"` // netip.AddrPort
	PID     int    `json:"pid"`
	Process string `json:"process,omitempty"`
}

// TCEntry is one entry of vcpe/tc.json: a qdisc, or a "police" action of a
// tc filter.
type TCEntry struct {
	Dev    string `json:"dev"`
	Kind   string `json:"kind"`
	Parent string `json:"parent"`
	Handle string `json:"handle,omitempty"`
}

func readJSON(s *Snapshot, p string, v any) error {
	b, err := s.Read(p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", p, err)
	}
	return nil
}

// addresses returns vcpe/addresses.json parsed.
func addresses(s *Snapshot) (map[string][]netip.Prefix, error) {
	var raw map[string][]string
	if err := readJSON(s, fileAddresses, &raw); err != nil {
		return nil, err
	}
	out := map[string][]netip.Prefix{}
	for ifc, list := range raw {
		for _, a := range list {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return nil, fmt.Errorf("parse %s: interface %s: %w", fileAddresses, ifc, err)
			}
			out[ifc] = append(out[ifc], p)
		}
	}
	return out, nil
}

// boundSocket is a socket holding a local port, with its owner when known.
type boundSocket struct {
	Proto string
	Local netip.AddrPort
	Owner *SocketOwner
}

// bound returns the sockets holding a port: unconnected UDP sockets and
// listening TCP sockets, IPv4 and IPv6. err is set when the IPv4 file is
// missing (the IPv6 one is optional: IPv6 may be disabled).
func bound(s *Snapshot, proto string) ([]boundSocket, error) {
	files := map[string][2]string{"udp": {fileUDP, fileUDP6}, "tcp": {fileTCP, fileTCP6}}[proto]
	var owners []SocketOwner
	_ = readJSON(s, fileSockets, &owners) // names are a bonus
	var out []boundSocket
	for i, f := range files {
		b, err := s.Read(f)
		if err != nil {
			if i == 0 {
				return nil, err
			}
			continue
		}
		socks, err := ParseProcNet(b)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", f, err)
		}
		for _, so := range socks {
			if (proto == "udp" && so.State != stateClose) || (proto == "tcp" && so.State != stateListen) {
				continue
			}
			out = append(out, boundSocket{Proto: proto, Local: so.Local, Owner: findOwner(owners, proto, so.Local)})
		}
	}
	return out, nil
}

func findOwner(owners []SocketOwner, proto string, local netip.AddrPort) *SocketOwner {
	var byPort *SocketOwner
	for i := range owners {
		o := &owners[i]
		if o.Proto != proto {
			continue
		}
		ap, err := netip.ParseAddrPort(o.Local)
		if err != nil || ap.Port() != local.Port() {
			continue
		}
		if ap.Addr().Unmap() == local.Addr() && o.PID != 0 {
			return o
		}
		if byPort == nil && o.PID != 0 {
			byPort = o
		}
	}
	return byPort
}

// ownDaemons are vcpe's own processes: a port they hold is in use by vcpe.
var ownDaemons = map[string]bool{"vcped": true, "vcpe-hub": true}

func (b boundSocket) who() string {
	if b.Owner == nil || b.Owner.PID == 0 {
		return "an unknown process (run as root to name it)"
	}
	return fmt.Sprintf("%s (pid %d)", b.Owner.Process, b.Owner.PID)
}

// wanIface returns the WAN interface: the --wan-if override or the interface
// of the IPv4 default route (empty when there is none).
func wanIface(s *Snapshot, o Options) (string, *Route, error) {
	b, err := s.Read(fileRoute)
	if err != nil {
		if o.WANInterface != "" {
			return o.WANInterface, nil, nil
		}
		return "", nil, err
	}
	routes, err := ParseRoutes(b)
	if err != nil {
		return "", nil, fmt.Errorf("parse %s: %w", fileRoute, err)
	}
	r, ok := DefaultRoute(routes)
	name := o.WANInterface
	if name == "" && ok {
		name = r.Iface
	}
	if !ok {
		return name, nil, nil
	}
	return name, &r, nil
}

// ifaceKind names what kind of virtual interface a device is, from its
// uevent DEVTYPE or its name.
func ifaceKind(s *Snapshot, name string) string {
	var kinds map[string]string
	if readJSON(s, fileLinks, &kinds) == nil && kinds[name] != "" && kinds[name] != "device" {
		return kinds[name]
	}
	if b, err := s.Read(ifPath(name, "uevent")); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "DEVTYPE="); ok && v != "" {
				return v
			}
		}
	}
	for _, p := range []string{"veth", "docker", "br-", "virbr", "tun", "tap", "wg", "vxlan", "bond", "team", "lo"} {
		if strings.HasPrefix(name, p) {
			return strings.TrimSuffix(p, "-")
		}
	}
	if b, err := s.Read(ifPath(name, "type")); err == nil && strings.TrimSpace(string(b)) == "65534" {
		return "tun"
	}
	return "virtual"
}

// Addresses returns the addresses of every interface in the snapshot.
func (s *Snapshot) Addresses() (map[string][]netip.Prefix, error) { return addresses(s) }

// WANInterface returns the Internet-facing interface: override when set,
// otherwise the interface of the IPv4 default route ("" when there is none).
func (s *Snapshot) WANInterface(override string) string {
	name, _, _ := wanIface(s, Options{WANInterface: override})
	return name
}
