package dataplane

import (
	"bufio"
	"encoding/binary"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Protected is an address a device's tunnel routes must never capture:
// sending it into the tunnel would cut the device off (the hub endpoint,
// the controller) or the operator (the SSH client).
type Protected struct {
	Addr netip.Addr `json:"addr"`
	What string     `json:"what"` // "the hub endpoint", "the SSH client", …
}

// GuardedRoute is a learned route the device dropped because it would
// capture a protected address.
type GuardedRoute struct {
	Prefix    netip.Prefix `json:"prefix"`
	Protected Protected    `json:"protected"`
}

// guardRoutes splits routes into those that capture none of protect and
// those dropped (each with the first address it would capture).
func guardRoutes(routes []netip.Prefix, protect []Protected) (kept []netip.Prefix, dropped []GuardedRoute) {
	for _, r := range routes {
		hit := -1
		for i, p := range protect {
			if p.Addr.IsValid() && r.Contains(p.Addr.Unmap()) {
				hit = i
				break
			}
		}
		if hit < 0 {
			kept = append(kept, r)
			continue
		}
		dropped = append(dropped, GuardedRoute{Prefix: r, Protected: protect[hit]})
	}
	return kept, dropped
}

// parseProcNetTCP returns the remote IPv4 addresses of the established
// connections in /proc/net/tcp whose local port is one of ports.
func parseProcNetTCP(r io.Reader, ports map[uint16]bool) []netip.Addr {
	var out []netip.Addr
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "01" { // TCP_ESTABLISHED
			continue
		}
		_, lport, ok1 := hexAddrPort(f[1])
		raddr, _, ok2 := hexAddrPort(f[2])
		if ok1 && ok2 && ports[lport] {
			out = append(out, raddr)
		}
	}
	return out
}

// hexAddrPort parses "0100007F:0016": the kernel prints the address's
// network-order bytes as one host-order number.
func hexAddrPort(s string) (netip.Addr, uint16, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || len(a) != 8 {
		return netip.Addr{}, 0, false
	}
	v, err := strconv.ParseUint(a, 16, 32)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(v))
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	return netip.AddrFrom4(b), uint16(port), true
}
