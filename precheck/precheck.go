package precheck

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"
)

// Status is the verdict of one check.
type Status string

// The statuses. Skip means "not checked"; its Detail says why.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// CheckID names a check of the catalogue; the IDs are a contract (--json,
// the diagnosis suite's precheck findings).
type CheckID string

// The checks' IDs.
const (
	CheckOSRelease    CheckID = "os.release"
	CheckKernel       CheckID = "kernel.version"
	CheckCPU          CheckID = "cpu.cores"
	CheckMem          CheckID = "mem.total"
	CheckPerfClass    CheckID = "perf.class"
	CheckNICWAN       CheckID = "nic.wan"
	CheckWANInternet  CheckID = "wan.internet"
	CheckRemoteLogon  CheckID = "remote.logon"
	CheckHostServices CheckID = "host.services"
	CheckPortsUDP     CheckID = "ports.udp"
	CheckPortsTCP     CheckID = "ports.tcp"
	CheckICMPEcho     CheckID = "icmp.echo"
	CheckFloodUDP     CheckID = "flood.udp"
	CheckFloodICMP    CheckID = "flood.icmp"
	CheckThrottle     CheckID = "throttle.tc"
	CheckIPForward    CheckID = "ip.forward"
)

// Result is the outcome of one check. Fix is the exact command or file edit
// that resolves a warn or fail; it is empty for pass and skip.
type Result struct {
	ID     CheckID `json:"id"`
	Status Status  `json:"status"`
	Title  string  `json:"title"`
	Detail string  `json:"detail"`
	Fix    string  `json:"fix"`

	// Extra fields, present when a check has them.
	Interface    string    `json:"interface,omitempty"`
	ExpectedMbps *int      `json:"expected_mbps,omitempty"`
	Findings     []Finding `json:"findings,omitempty"`
}

// Finding is one concrete thing a check found: a bound or filtered port, a
// conflicting service, a rate-limit rule.
type Finding struct {
	Proto   string `json:"proto,omitempty"`
	Port    uint16 `json:"port,omitempty"`
	PortEnd uint16 `json:"port_end,omitempty"` // last port of a range of identical findings
	PID     int    `json:"pid,omitempty"`
	Process string `json:"process,omitempty"`
	Service string `json:"service,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Reason  string `json:"reason"`
	Fix     string `json:"fix,omitempty"`
}

// Report is the outcome of a precheck run: the --json document.
type Report struct {
	OK     bool     `json:"ok"`
	Checks []Result `json:"checks"`
}

// Counts returns how many results have each status.
func (r Report) Counts() map[Status]int {
	c := map[Status]int{}
	for _, res := range r.Checks {
		c[res.Status]++
	}
	return c
}

// Dialer opens network connections; *net.Dialer satisfies it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Options tune a run. The zero value is valid.
type Options struct {
	// WANInterface overrides the interface of the IPv4 default route.
	WANInterface string
	// Controller is the controller URL wan.internet reaches; nil skips it.
	Controller *url.URL
	// HubEndpoints are where wan.internet probes UDP (the hubs the
	// controller names, every hub of a hub group); empty: UDP 4500 on the
	// controller's host, where the hub runs in a one-host set-up.
	HubEndpoints []netip.AddrPort
	// Dialer is used by wan.internet; nil means a net.Dialer.
	Dialer Dialer
	// Timeout bounds each wan.internet probe; 0 means 2s.
	Timeout time.Duration
	// OutsideIn, when set, asks the controller to probe this host's
	// public address (its outside-in reach check); wan.internet then
	// reports whether UDP 4500 arrives from outside instead of calling an
	// unanswered probe unconfirmed. Live runs only.
	OutsideIn func(ctx context.Context) (OutsideInAnswer, error)
}

// OutsideInAnswer is the outside-in check's verdict on UDP 4500.
type OutsideInAnswer struct {
	Checked bool   // false: the port could not be watched (Detail says why)
	Arrived bool   // the controller's probe to UDP 4500 arrived
	Detail  string // what was seen
	Fix     string // when it did not arrive: what blocks it
}

// Check is one entry of the catalogue.
type Check struct {
	ID    CheckID
	Title string
	Run   func(ctx context.Context, s *Snapshot, o Options) Result
}

// Catalogue returns the checks in report order. The IDs are a contract.
func Catalogue() []Check {
	return []Check{
		{CheckOSRelease, "Operating system release", checkOSRelease},
		{CheckKernel, "Kernel version", checkKernel},
		{CheckCPU, "CPU cores", checkCPU},
		{CheckMem, "Memory", checkMem},
		{CheckPerfClass, "Throughput class", checkPerfClass},
		{CheckNICWAN, "Internet-facing NIC", checkNICWAN},
		{CheckWANInternet, "Reach the controller", checkWANInternet},
		{CheckRemoteLogon, "Remote logon (SSH)", checkRemoteLogon},
		{CheckHostServices, "Conflicting services", checkHostServices},
		{CheckPortsUDP, "Required UDP ports free and unfiltered", checkPortsUDP},
		{CheckPortsTCP, "Required TCP ports free and unfiltered", checkPortsTCP},
		{CheckICMPEcho, "ICMP echo allowed", checkICMPEcho},
		{CheckFloodUDP, "No UDP flood protection", checkFloodUDP},
		{CheckFloodICMP, "No ICMP flood protection", checkFloodICMP},
		{CheckThrottle, "No traffic shaping on the WAN interface", checkThrottle},
		{CheckIPForward, "IPv4 forwarding", checkIPForward},
	}
}

// Run runs every check of the catalogue on s concurrently and returns the
// results in catalogue order. OK is false when any check fails.
func Run(ctx context.Context, s *Snapshot, o Options) Report {
	checks := Catalogue()
	results := make([]Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			r := c.Run(ctx, s, o)
			r.ID, r.Title = c.ID, c.Title
			if r.Status == "" {
				r.Status = Skip
			}
			results[i] = r
		})
	}
	wg.Wait()
	rep := Report{OK: true, Checks: results}
	for _, r := range results {
		if r.Status == Fail {
			rep.OK = false
		}
	}
	return rep
}

// skip builds a skip result from the reason a file is missing.
func skip(err error) Result {
	var me *MissingError
	if errors.As(err, &me) {
		return Result{Status: Skip, Detail: "not checked: " + me.Error()}
	}
	return Result{Status: Skip, Detail: "not checked: " + err.Error()}
}

func skipf(detail string) Result { return Result{Status: Skip, Detail: "not checked: " + detail} }
