package dataplane

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/openvcpe/vcpe/api"
)

// isolation writes the hub's CCN isolation table in one atomic batch:
//
//	tun → tun:    accept when source and destination are in the same CCN
//	tun → other:  accept from CCN members to the cloud prefixes
//	other → tun:  accept from the cloud prefixes to CCN members
//	tun → tun:    in a hub group, also from the cloud prefixes to CCN
//	              members (the gateway holder forwarding to another hub)
//	anything else entering or leaving the tun: drop (counted)
//
// Traffic to and from the hub itself (input/output) is not filtered. The
// sets hold every device of cfg, also the devices of a hub group this hub
// has no session with: traffic that another hub forwards here (or that
// this hub forwards to another) is held to the same CCN rules.
func writeIsolation(c *nftables.Conn, table, tunName string, cfg api.HubConfig) error {
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}
	// add+delete+add in one batch: replaces a table a crashed run left,
	// atomically, without failing when there is none.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})

	byCCN := map[string][]netip.Prefix{}
	var members []netip.Prefix
	for _, p := range cfg.Peers {
		if p.CCN == "" {
			continue
		}
		ps := append([]netip.Prefix{netip.PrefixFrom(p.OverlayAddr, 32)}, p.AllowedIPs...)
		byCCN[p.CCN] = append(byCCN[p.CCN], ps...)
		members = append(members, ps...)
	}
	ccns := make([]string, 0, len(byCCN))
	for k := range byCCN {
		ccns = append(ccns, k)
	}
	sort.Strings(ccns)

	addSet := func(name string, ps []netip.Prefix) (*nftables.Set, error) {
		s := &nftables.Set{Table: t, Name: name, KeyType: nftables.TypeIPAddr, Interval: true}
		var elems []nftables.SetElement
		for _, r := range mergeRanges(ps) {
			elems = append(elems, nftables.SetElement{Key: r.Start.AsSlice()})
			if end := r.End.Next(); end.IsValid() {
				elems = append(elems, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
			}
		}
		if err := c.AddSet(s, elems); err != nil {
			return nil, fmt.Errorf("nftables set %s: %w", name, err)
		}
		return s, nil
	}
	cloud, err := addSet("cloud", cfg.CloudPrefixes)
	if err != nil {
		return err
	}
	all, err := addSet("members", members)
	if err != nil {
		return err
	}
	ifname := func(key expr.MetaKey, op expr.CmpOp) []expr.Any {
		b := make([]byte, unix.IFNAMSIZ)
		copy(b, tunName)
		return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: b}}
	}
	lookup := func(off uint32, s *nftables.Set) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
		}
	}
	const saddr, daddr = 12, 16
	rule := func(parts ...[]expr.Any) {
		var ex []expr.Any
		for _, p := range parts {
			ex = append(ex, p...)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: ex})
	}
	verdict := func(k expr.VerdictKind) []expr.Any {
		return []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: k}}
	}
	inTun, outTun := ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq)
	notOutTun, notInTun := ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq), ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq)
	for i, name := range ccns {
		s, err := addSet(fmt.Sprintf("ccn%d", i), byCCN[name])
		if err != nil {
			return err
		}
		rule(inTun, outTun, lookup(saddr, s), lookup(daddr, s), verdict(expr.VerdictAccept))
	}
	rule(inTun, notOutTun, lookup(saddr, all), lookup(daddr, cloud), verdict(expr.VerdictAccept))
	rule(notInTun, outTun, lookup(saddr, cloud), lookup(daddr, all), verdict(expr.VerdictAccept))
	if len(cfg.Hubs) > 0 {
		// In a hub group the hub holding the cloud gateway forwards the
		// cloud's answers to devices another hub carries through the
		// hub-to-hub tunnel (WireGuard accepts cloud sources only from the
		// holder's peer).
		rule(inTun, outTun, lookup(saddr, cloud), lookup(daddr, all), verdict(expr.VerdictAccept))
	}
	rule(inTun, verdict(expr.VerdictDrop))
	rule(outTun, verdict(expr.VerdictDrop))
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write nftables table %s: %w", table, err)
	}
	return nil
}

func deleteIsolation(c *nftables.Conn, table string) error {
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nftables table %s: %w", table, err)
	}
	return nil
}
