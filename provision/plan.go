package provision

import (
	"fmt"
	"net/netip"
	"strings"
)

// Protected is an address the plan must never route into the tunnel,
// because doing so would cut the operator or the device off.
type Protected struct {
	Addr netip.Addr
	What string // "the SSH client (SSH_CONNECTION)", "the controller", …
}

// LockoutError is a route that would capture a protected address.
type LockoutError struct {
	Route     netip.Prefix
	Protected Protected
}

func (e *LockoutError) Error() string {
	return fmt.Sprintf("route %s would send %s (%s) into the tunnel and cut it off; "+
		"remove %s from the advertised or learned prefixes, or pass --force if the path really is meant to move",
		e.Route, e.Protected.What, e.Protected.Addr, e.Route)
}

// CheckLockout refuses a set of tunnel routes that would capture any
// protected address.
func CheckLockout(routes []netip.Prefix, protect []Protected) error {
	for _, r := range routes {
		for _, p := range protect {
			if p.Addr.IsValid() && r.Contains(p.Addr.Unmap()) {
				return &LockoutError{Route: r, Protected: p}
			}
		}
	}
	return nil
}

// SSHClient returns the SSH client's address from the value of
// SSH_CONNECTION ("client_ip client_port server_ip server_port").
func SSHClient(sshConnection string) (netip.Addr, bool) {
	f := strings.Fields(sshConnection)
	if len(f) != 4 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(f[0])
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// LANCommands tells the operator how LAN hosts (or the LAN's router) send
// each learned prefix to this device: one command per prefix for a Linux
// router or host, gateway being this device's LAN address.
func LANCommands(learned []netip.Prefix, gateway netip.Addr) []string {
	out := make([]string, 0, len(learned))
	for _, p := range learned {
		out = append(out, fmt.Sprintf("ip route replace %s via %s", p.Masked(), gateway))
	}
	return out
}
