package dataplane

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/openvcpe/vcpe/api"
)

// normalize masks, sorts and deduplicates prefixes.
func normalize(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if p.IsValid() {
			out = append(out, p.Masked())
		}
	}
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// DiffPrefixes returns what must be added to have to reach want, and what
// must be removed. Both inputs may be unsorted and hold duplicates.
func DiffPrefixes(have, want []netip.Prefix) (add, del []netip.Prefix) {
	h, w := normalize(have), normalize(want)
	for _, p := range w {
		if _, found := slices.BinarySearchFunc(h, p, comparePrefix); !found {
			add = append(add, p)
		}
	}
	for _, p := range h {
		if _, found := slices.BinarySearchFunc(w, p, comparePrefix); !found {
			del = append(del, p)
		}
	}
	return add, del
}

// routedPrefixes are the prefixes that need a kernel route into the TUN:
// everything not already covered by the on-link overlay.
func routedPrefixes(overlay netip.Prefix, ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range normalize(ps) {
		if overlay.IsValid() && overlay.Bits() <= p.Bits() && overlay.Contains(p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// PeerChange is one step of a HubPeerDiff.
type PeerChange struct {
	Op   string // "add", "remove", "update"
	Peer api.HubPeer
}

// HubPeerDiff compares the peers the hub runs with the peers it should run,
// matched by public key. A peer whose AllowedIPs, CCN or role changed is an
// "update" (applied in place: its session is kept).
func HubPeerDiff(have, want []api.HubPeer) []PeerChange {
	hm := map[api.Key]api.HubPeer{}
	for _, p := range have {
		hm[p.PublicKey] = p
	}
	wm := map[api.Key]bool{}
	var out []PeerChange
	for _, p := range want {
		wm[p.PublicKey] = true
		old, ok := hm[p.PublicKey]
		switch {
		case !ok:
			out = append(out, PeerChange{Op: "add", Peer: p})
		case !samePeer(old, p):
			out = append(out, PeerChange{Op: "update", Peer: p})
		}
	}
	for _, p := range have {
		if !wm[p.PublicKey] {
			out = append(out, PeerChange{Op: "remove", Peer: p})
		}
	}
	return append(out, refreshOwners(hm, want, out)...)
}

// refreshOwners returns an "update" for every unchanged peer that holds a
// prefix one of the changes touches. WireGuard keeps one owner per prefix
// in its AllowedIPs trie: when a prefix was moved to another peer and is
// now moved away (a withdrawal, a failover, a re-advertisement), the
// unchanged peer that still should own it has lost it in the trie. Giving
// it its AllowedIPs again, after the other changes, puts it back.
func refreshOwners(have map[api.Key]api.HubPeer, want []api.HubPeer, changes []PeerChange) []PeerChange {
	touched := map[netip.Prefix]bool{}
	changed := map[api.Key]bool{}
	for _, c := range changes {
		changed[c.Peer.PublicKey] = true
		for _, p := range c.Peer.AllowedIPs {
			touched[p.Masked()] = true
		}
		if old, ok := have[c.Peer.PublicKey]; ok {
			for _, p := range old.AllowedIPs {
				touched[p.Masked()] = true
			}
		}
	}
	var out []PeerChange
	for _, p := range want {
		if changed[p.PublicKey] {
			continue
		}
		for _, a := range p.AllowedIPs {
			if touched[a.Masked()] {
				out = append(out, PeerChange{Op: "update", Peer: p})
				break
			}
		}
	}
	return out
}

func samePeer(a, b api.HubPeer) bool {
	return a.SN == b.SN && a.InstanceID == b.InstanceID && a.CCN == b.CCN && a.OverlayAddr == b.OverlayAddr &&
		a.Active == b.Active && slices.Equal(normalize(a.AllowedIPs), normalize(b.AllowedIPs))
}

func hexKey(k api.Key) string { return hex.EncodeToString(k[:]) }

// hubPeerUAPI renders the UAPI set operations for a list of peer changes.
func hubPeerUAPI(changes []PeerChange) string { return groupPeerUAPI(changes, nil) }

// groupPeerUAPI is hubPeerUAPI for a hub of a hub group: the peers of the
// other hubs (hubs) also get their endpoint and a persistent keepalive.
func groupPeerUAPI(changes []PeerChange, hubs []api.HubInfo) string {
	var b strings.Builder
	for _, c := range changes {
		fmt.Fprintf(&b, "public_key=%s\n", hexKey(c.Peer.PublicKey))
		switch c.Op {
		case "remove":
			b.WriteString("remove=true\n")
			continue
		case "update":
			b.WriteString("update_only=true\n")
		}
		for _, h := range hubs {
			if h.PublicKey == c.Peer.PublicKey {
				if h.Endpoint.IsValid() {
					fmt.Fprintf(&b, "endpoint=%s\n", h.Endpoint)
				}
				fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", DefaultKeepalive)
			}
		}
		b.WriteString("replace_allowed_ips=true\n")
		for _, p := range normalize(c.Peer.AllowedIPs) {
			fmt.Fprintf(&b, "allowed_ip=%s\n", p)
		}
	}
	return b.String()
}

// edgePeerUAPI renders the hub peers of an edge (one per hub of its
// group, edgeHubs), replacing everything about them; carrying is the index
// of the hub that carries the traffic. Peers of old's hubs that c no
// longer has are removed. The carrying hub's peer is written first, so a
// prefix moving to it from another hub's peer changes owner in one step.
func edgePeerUAPI(old *api.DeviceConfig, c api.DeviceConfig, carrying int) string {
	var b strings.Builder
	hubs := edgeHubs(c)
	if old != nil {
		for _, o := range edgeHubs(*old) {
			if !slices.ContainsFunc(hubs, func(h api.HubInfo) bool { return h.PublicKey == o.PublicKey }) {
				fmt.Fprintf(&b, "public_key=%s\nremove=true\n", hexKey(o.PublicKey))
			}
		}
	}
	carrying = min(max(carrying, 0), len(hubs)-1)
	order := []int{carrying}
	for i := range hubs {
		if i != carrying {
			order = append(order, i)
		}
	}
	for _, i := range order {
		fmt.Fprintf(&b, "public_key=%s\n", hexKey(hubs[i].PublicKey))
		fmt.Fprintf(&b, "endpoint=%s\n", hubs[i].Endpoint)
		fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", keepaliveOf(c))
		b.WriteString("replace_allowed_ips=true\n")
		for _, p := range hubAllowedIPs(c, hubs, i, carrying) {
			fmt.Fprintf(&b, "allowed_ip=%s\n", p)
		}
	}
	return b.String()
}

// hubSwitchUAPI moves the routed AllowedIPs (overlay prefix and learned
// routes) from hub from's peer to hub to's in one UAPI write: to's peer
// first (each prefix changes owner in one step, nothing is unrouted in
// between), then from's peer keeps only its overlay /32. Endpoints,
// keepalives and sessions are untouched.
func hubSwitchUAPI(c api.DeviceConfig, hubs []api.HubInfo, from, to int) string {
	var b strings.Builder
	for _, i := range []int{to, from} {
		fmt.Fprintf(&b, "public_key=%s\nupdate_only=true\nreplace_allowed_ips=true\n", hexKey(hubs[i].PublicKey))
		for _, p := range hubAllowedIPs(c, hubs, i, to) {
			fmt.Fprintf(&b, "allowed_ip=%s\n", p)
		}
	}
	return b.String()
}
