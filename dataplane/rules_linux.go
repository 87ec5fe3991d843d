package dataplane

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// useTable puts the interface's routes into their own routing table,
// consulted through two policy rules the way wg-quick does it:
//
//	priority P:   lookup main suppress_prefixlength 0
//	priority P+1: not fwmark M lookup TABLE
//
// Every route of the main table except the default route wins over vcpe's
// (the host's addresses, connected networks, static routes: a device's
// prefix can never replace them), vcpe's routes win over the default route
// only, and WireGuard's own packets (marked M on its socket) never enter
// the tunnel. The rules carry protocol RouteProtocol, so leftovers of a
// crashed run are found and replaced. Call it before reconcileRoutes.
func (w *wgIface) useTable(table int, mark uint32, prio int) error {
	w.table = table
	if err := w.ipcSet(fmt.Sprintf("fwmark=%d\n", mark)); err != nil {
		return fmt.Errorf("set fwmark %d on %s: %w", mark, w.name, err)
	}
	w.removeRules()
	suppress := netlink.NewRule()
	suppress.Family, suppress.Priority, suppress.Table = unix.AF_INET, prio, unix.RT_TABLE_MAIN
	suppress.SuppressPrefixlen, suppress.Protocol = 0, RouteProtocol
	lookup := netlink.NewRule()
	lookup.Family, lookup.Priority, lookup.Table = unix.AF_INET, prio+1, table
	lookup.Mark, lookup.Invert, lookup.Protocol = mark, true, RouteProtocol
	for _, r := range []*netlink.Rule{suppress, lookup} {
		if err := w.nl.RuleAdd(r); err != nil {
			w.removeRules()
			return fmt.Errorf("add routing rule (priority %d, table %d): %w", r.Priority, r.Table, err)
		}
	}
	w.rules = true
	w.dropMainLeftovers()
	return nil
}

// dropMainLeftovers deletes vcpe-marked routes of the main table: earlier
// versions, or a crash, left them there, and now they would shadow the
// routes of vcpe's own table.
func (w *wgIface) dropMainLeftovers() {
	rs, err := vcpeRoutes(w.nl, unix.RT_TABLE_MAIN)
	if err != nil {
		return
	}
	for _, r := range rs {
		r := r
		if err := w.nl.RouteDel(&r); err == nil {
			w.c.log.Info("deleted stale route", "prefix", routePrefix(r), "table", "main")
		}
	}
}

// removeRules deletes the policy rules useTable added (any vcpe-marked
// IPv4 rule of this namespace).
func (w *wgIface) removeRules() {
	rs, err := w.nl.RuleList(unix.AF_INET)
	if err != nil {
		return
	}
	for _, r := range rs {
		if r.Protocol != RouteProtocol {
			continue
		}
		r := r
		if err := w.nl.RuleDel(&r); err != nil {
			w.c.log.Warn("delete routing rule", "rule", r.String(), "err", err)
		}
	}
	w.rules = false
}

// routeTable is the table vcpe's routes live in: its own (useTable) or
// main.
func (w *wgIface) routeTable() int {
	if w.table != 0 {
		return w.table
	}
	return unix.RT_TABLE_MAIN
}
