package suite

import (
	"fmt"
	"net/netip"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/diag"
)

// TunnelTarget is one probe series through the tunnel: the same list for
// `vcpe diag` and the install's connectivity test.
type TunnelTarget struct {
	Name  string         // the series' name in Evidence.Probes
	Label string         // for people: "hub", "learned 198.19.2.0/24 (device SN-B)"
	Addr  netip.AddrPort // a reflector
}

// TunnelTargets are the hub's reflector on its overlay address, then the
// controller's default target of every learned prefix (the active device
// of the site advertising it, or the hub's own address in a cloud-side
// prefix), except in prefixes holding one of the explicit addresses.
func TunnelTargets(cfg api.DeviceConfig, explicit []netip.Addr) []TunnelTarget {
	var out []TunnelTarget
	if cfg.HubOverlayAddr.IsValid() {
		out = append(out, TunnelTarget{Name: ProbeTunnelHub, Label: "hub", Addr: netip.AddrPortFrom(cfg.HubOverlayAddr, diag.ReflectorPort)})
	}
	for _, t := range defaultTargets(cfg.Targets, explicit) {
		label := fmt.Sprintf("learned %s (hub)", t.Prefix)
		if t.SN != "" {
			label = fmt.Sprintf("learned %s (device %s)", t.Prefix, t.SN)
		}
		out = append(out, TunnelTarget{Name: ProbeTargetPrefix + t.Addr.String(), Label: label, Addr: netip.AddrPortFrom(t.Addr, diag.ReflectorPort)})
	}
	return out
}
