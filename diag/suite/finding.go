package suite

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/openvcpe/vcpe/precheck"
)

// Category groups findings in the report.
type Category string

// Categories of findings.
const (
	CatConfig  Category = "configuration"
	CatLink    Category = "service link"
	CatQuality Category = "internet quality"
	CatLAN     Category = "LAN side"
)

// Severity is how bad a finding is.
type Severity string

// Severities of findings.
const (
	SevError   Severity = "error"
	SevWarning Severity = "warning"
	SevOK      Severity = "ok"
)

// FindingID names a finding; the IDs are stable across releases (--json,
// scripts and the CausedBy links depend on them).
type FindingID string

// The findings' IDs. Two families are made from a value: a precheck
// result repeated by the suite (PrecheckFinding) and a probe target
// (TargetFinding).
const (
	FindDeviceState       FindingID = "device.state"
	FindRegistration      FindingID = "registration.valid"
	FindDaemon            FindingID = "daemon.running"
	FindTUN               FindingID = "tun.present"
	FindForwarding        FindingID = "ip.forward"
	FindHubUDP4500        FindingID = "hub.udp4500"
	FindRoutesMatch       FindingID = "routes.match"
	FindCCN               FindingID = "ccn.attached"
	FindPrefixOverlap     FindingID = "prefix.overlap"
	FindWANReachable      FindingID = "wan.reachable"
	FindHubDown           FindingID = "hub.down"
	FindHubICMP           FindingID = "hub.icmp"
	FindController        FindingID = "controller.reachable"
	FindHandshake         FindingID = "tunnel.handshake"
	FindTunnelHub         FindingID = "tunnel.hub"
	FindTunnelRoutes      FindingID = "tunnel.routes"
	FindHARole            FindingID = "ha.role"
	FindHALAN             FindingID = "ha.lan"
	FindOutsideIn         FindingID = "wan.outside_in"
	FindWANLoss           FindingID = "wan.loss"
	FindWANLatency        FindingID = "wan.latency"
	FindWANJitter         FindingID = "wan.jitter"
	FindTargetsUnprobed   FindingID = "targets.unprobed"
	FindTunnelMTU         FindingID = "tunnel.mtu"
	FindWANMTU            FindingID = "wan.mtu"
	FindLANLink           FindingID = "lan.link"
	FindLANAddr           FindingID = "lan.addr"
	FindTUNAddr           FindingID = "tun.addr"
	FindRoutePath         FindingID = "route.path"
	FindFwForward         FindingID = "fw.forward"
	FindFwOutput          FindingID = "fw.output"
	FindNATTunnel         FindingID = "nat.tunnel"
	FindConntrack         FindingID = "conntrack.full"
	FindHubSecondary      FindingID = "hub.secondary"
	FindPrecheckPortsUDP            = FindingID("precheck." + precheck.CheckPortsUDP)
	FindPrecheckPortsTCP            = FindingID("precheck." + precheck.CheckPortsTCP)
	FindPrecheckICMPEcho            = FindingID("precheck." + precheck.CheckICMPEcho)
	FindPrecheckFloodUDP            = FindingID("precheck." + precheck.CheckFloodUDP)
	FindPrecheckFloodICMP           = FindingID("precheck." + precheck.CheckFloodICMP)
	FindPrecheckThrottle            = FindingID("precheck." + precheck.CheckThrottle)
)

// PrecheckFinding is the ID of the suite's finding that repeats precheck
// result id.
func PrecheckFinding(id precheck.CheckID) FindingID { return FindingID("precheck." + id) }

// TargetFinding is the ID of the finding about probe target a.
func TargetFinding(a netip.Addr) FindingID { return FindingID(ProbeTargetPrefix + a.String()) }

// HubSessionPrefix starts the ID of the finding about one hub session of
// a device in a hub group (HubSessionFinding).
const HubSessionPrefix = "hub.session."

// HubSessionFinding is the ID of the finding about the device's session
// with hub name.
func HubSessionFinding(name string) FindingID { return FindingID(HubSessionPrefix + name) }

// Finding is one judgement of the suite.
type Finding struct {
	// ID is stable across releases: "wan.loss", "tunnel.handshake".
	ID       FindingID `json:"id"`
	Category Category  `json:"category"`
	Severity Severity  `json:"severity"`
	Title    string    `json:"title"`
	Evidence []string  `json:"evidence,omitempty"` // the measured facts
	Fix      string    `json:"fix,omitempty"`      // the exact command or action
	// Commands apply the fix on this host, one command line each (no
	// shell; run in order); empty when the fix is elsewhere or needs a
	// person's judgement.
	Commands []string `json:"commands,omitempty"`
	// CausedBy names the findings (present and not ok) this one follows
	// from; a finding without causes is a root cause.
	CausedBy []FindingID `json:"caused_by,omitempty"`
}

// Root reports whether f follows from no other finding.
func (f Finding) Root() bool { return len(f.CausedBy) == 0 }

// Failed reports whether any finding is an error.
func Failed(fs []Finding) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Severity == SevError })
}

func sevRank(s Severity) int {
	switch s {
	case SevError:
		return 0
	case SevWarning:
		return 1
	}
	return 2
}

// settle keeps in each finding's CausedBy only the causes that were found
// at least as severe as the finding itself (a warning does not explain an
// error) or that the rule named in weak as explaining it at any severity
// (loss that is only a warning can still make an exchange time out), then orders the findings causes first: root causes before the
// findings they explain, whatever their severity; among roots and among
// symptoms, errors before warnings before ok; then by the rule's priority
// (the order of the rules in Diagnose). The first finding is so the
// deepest, most severe cause the evidence supports.
func settle(fs []Finding, weak map[FindingID][]FindingID) []Finding {
	sev := map[FindingID]Severity{}
	for _, f := range fs {
		if f.Severity != SevOK {
			if s, ok := sev[f.ID]; !ok || sevRank(f.Severity) < sevRank(s) {
				sev[f.ID] = f.Severity
			}
		}
	}
	prio := map[FindingID]int{}
	for i := range fs {
		if _, ok := prio[fs[i].ID]; !ok {
			prio[fs[i].ID] = i
		}
		var keep []FindingID
		if fs[i].Severity != SevOK {
			for _, c := range fs[i].CausedBy {
				s, found := sev[c]
				strong := sevRank(s) <= sevRank(fs[i].Severity) || slices.Contains(weak[fs[i].ID], c)
				if found && strong && c != fs[i].ID && !slices.Contains(keep, c) {
					keep = append(keep, c)
				}
			}
		}
		fs[i].CausedBy = keep
	}
	slices.SortStableFunc(fs, func(a, b Finding) int {
		okA, okB := a.Severity == SevOK, b.Severity == SevOK
		if okA != okB {
			if okB {
				return -1
			}
			return 1
		}
		if a.Root() != b.Root() {
			if a.Root() {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(sevRank(a.Severity), sevRank(b.Severity)); c != 0 {
			return c
		}
		return cmp.Compare(prio[a.ID], prio[b.ID])
	})
	return fs
}
