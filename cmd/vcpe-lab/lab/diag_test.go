package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/diag/bundle"
	"github.com/openvcpe/vcpe/diag/suite"
	"github.com/openvcpe/vcpe/internal/device"
)

type diagRun struct {
	code int
	rep  suite.Report
	out  string
	took time.Duration
}

// runDiag runs `vcpe diag --json` on node, with the default probe targets
// (one per learned prefix, from the controller) and any extra arguments.
func runDiag(ctx context.Context, t *testing.T, l *Lab, b Binaries, node string, extra ...string) diagRun {
	t.Helper()
	start := time.Now()
	argv := append([]string{b.Vcpe, "diag", "--json", "--state-dir", l.DeviceState(node)}, extra...)
	cmd := l.Command(ctx, node, argv...)
	out, err := cmd.Output()
	r := diagRun{out: string(out), took: time.Since(start)}
	var ee *exec.ExitError
	var stderr []byte
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		stderr = ee.Stderr
	case err != nil:
		t.Fatalf("vcpe diag on %s: %v", node, err)
	}
	if err := json.Unmarshal(out, &r.rep); err != nil {
		t.Fatalf("vcpe diag --json on %s: %v (exit %d)\nstdout:\n%s\nstderr:\n%s", node, err, r.code, out, stderr)
	}
	return r
}

func (r diagRun) top() suite.Finding {
	if len(r.rep.Findings) == 0 {
		return suite.Finding{}
	}
	return r.rep.Findings[0]
}

// summary lists the problems, and the WAN's own findings even when they
// are ok: the probe series they quote are what a loss verdict rests on.
func (r diagRun) summary() string {
	var s []string
	for _, f := range r.rep.Findings {
		if f.Severity != suite.SevOK || f.ID == suite.FindWANReachable || f.ID == suite.FindWANLoss {
			s = append(s, fmt.Sprintf("%s=%s (%s) caused by %v; evidence %q", f.ID, f.Severity, f.Title, f.CausedBy, f.Evidence))
		}
	}
	return strings.Join(s, "\n")
}

// clean: no finding is an error or a warning (an outside-in check the
// controller refused for its rate limit is not a problem of the device).
func (r diagRun) clean() bool {
	return r.code == 0 && !slices.ContainsFunc(r.rep.Findings, func(f suite.Finding) bool { return f.Severity != suite.SevOK })
}

// waitClean runs diag until it finds nothing, or fails the test.
func waitClean(ctx context.Context, t *testing.T, l *Lab, b Binaries, node string, within time.Duration) diagRun {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := runDiag(ctx, t, l, b, node)
		if r.clean() {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not clean within %v: exit %d\n%s", node, within, r.code, r.summary())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// fromBundle writes a support bundle on node and judges it offline; it
// returns the top finding of the bundle's own live run (diag.json) and
// of --from-bundle.
func fromBundle(ctx context.Context, t *testing.T, l *Lab, b Binaries, node string) (live []suite.Finding, offline suite.FindingID) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	if msg, err := l.Run(ctx, node, b.Vcpe, "diag", "bundle", out, "--state-dir", l.DeviceState(node)); err != nil {
		t.Fatalf("vcpe diag bundle: %v\n%s", err, msg)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	files, _, err := bundle.Read(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var rep suite.Report
	if err := json.Unmarshal(files[bundle.FileDiag], &rep); err != nil || len(rep.Findings) == 0 {
		t.Fatalf("diag.json: %v", err)
	}
	r := runDiag(ctx, t, l, b, node, "--from-bundle", out)
	return rep.Findings, r.top().ID
}

// fault is one planted fault: how it is planted, the top finding diag
// must name, and how its fix is applied. Fix nil runs the top finding's
// own commands on the device; a fix elsewhere (the hub, the remote site)
// does what the finding's fix says there, and the finding's fix must name
// it (fixSays).
type fault struct {
	family, name string
	plant        func() error
	top          suite.FindingID
	fixSays      string
	fix          func(top suite.Finding) error
	// undo removes whatever the fix leaves behind (test hygiene only:
	// the fix has already been judged by a clean diag).
	undo func() error
	// random: the fault is random loss, so the bundle's own diagnosis (a
	// second sample, seconds later) may measure less of it (a warning)
	// and put a symptom first (a rekey that did not get through the
	// loss); it must still name the planted finding as a problem, and
	// --from-bundle must give exactly the bundle's top.
	random bool
}

type faultResult struct {
	family, name string
	top          suite.FindingID
	title        string
	took         time.Duration
	bundleTop    suite.FindingID
	fixOK        bool
}

// TestDiagPlantedFaults plants one fault at a time in one lab (site-a and
// site-b in one CCN), the way they happen on real hosts (nftables and
// iptables rules, ip commands, stopped processes), and checks on site-a
// that `vcpe diag` names the planted fault as its top finding, that a
// support bundle judged with --from-bundle names the same, and that
// applying the fix the finding prints makes diag clean again. It logs a
// table of the faults, their top findings and run times.
func TestDiagPlantedFaults(t *testing.T) {
	t.Parallel() // waits on processes and the network, little CPU: runs beside the other long ones (see the Makefile's E2E_PARALLEL)
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	plan := twoSites()
	defer func() {
		if t.Failed() {
			t.Logf("vcped on site-a:\n%s", tail(l.DaemonLog("site-a", "vcped"), 4000))
			t.Logf("vcpe-hub:\n%s", tail(l.DaemonLog("hub", "vcpe-hub"), 4000))
		}
	}()
	if err := l.StartSystem(ctx, b, plan); err != nil {
		t.Fatal(err)
	}
	const node = "site-a"
	var healthy []time.Duration
	h := waitClean(ctx, t, l, b, node, 20*time.Second)
	healthy = append(healthy, h.took)
	for _, id := range []suite.FindingID{suite.FindTunnelHub, suite.FindWANLoss, suite.FindRoutesMatch, suite.FindTunnelMTU, suite.FindWANMTU,
		suite.FindController, suite.FindRoutePath, suite.FindLANLink, suite.FindLANAddr, suite.FindFwForward, suite.FindFwOutput, suite.FindTUNAddr} {
		if !slices.ContainsFunc(h.rep.Findings, func(f suite.Finding) bool { return f.ID == id && f.Severity == suite.SevOK }) {
			t.Errorf("healthy run: no ok %s finding:\n%s", id, h.out)
		}
	}
	hasOK := func(r diagRun, id suite.FindingID, prefix string) bool {
		return slices.ContainsFunc(r.rep.Findings, func(f suite.Finding) bool {
			return f.ID == id && f.Severity == suite.SevOK && strings.Contains(f.Title, prefix)
		})
	}
	for _, want := range [][2]string{{"target.198.19.2.1", LANB.String()}, {"target.198.19.100.1", CloudPrefix.String()}} {
		if !hasOK(h, suite.FindingID(want[0]), want[1]) {
			t.Errorf("healthy run: no ok %s finding naming %s:\n%s", want[0], want[1], h.out)
		}
	}
	t.Run("an explicit target replaces its prefix's default", func(t *testing.T) {
		r := runDiag(ctx, t, l, b, node, "--target", "198.19.2.10")
		if r.code != 0 || !hasOK(r, "target.198.19.2.10", LANB.String()) || !hasOK(r, "target.198.19.100.1", CloudPrefix.String()) ||
			slices.ContainsFunc(r.rep.Findings, func(f suite.Finding) bool { return f.ID == "target.198.19.2.1" }) {
			t.Errorf("exit %d; want ok target.198.19.2.10 and target.198.19.100.1 and no target.198.19.2.1:\n%s", r.code, r.out)
		}
	})

	run := func(n string, argv ...string) error {
		if out, err := l.Run(ctx, n, argv...); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
		}
		return nil
	}
	sh := func(n string, argv ...string) func() error { return func() error { return run(n, argv...) } }
	nft := func(n, script string) func() error {
		return func() error {
			c := l.Command(ctx, n, "nft", "-f", "-")
			c.Stdin = strings.NewReader(script)
			if out, err := c.CombinedOutput(); err != nil {
				return fmt.Errorf("nft: %w: %s", err, out)
			}
			return nil
		}
	}
	chain := func(family, table, hook, dev, rule string) string {
		hk := "hook " + hook
		if dev != "" {
			hk += ` device "` + dev + `"`
		}
		typ := "filter"
		if hook == "postrouting" && strings.Contains(rule, "snat") {
			typ = "nat"
		}
		return fmt.Sprintf("table %s %s {\nchain c {\ntype %s %s priority 0\n%s\n}\n}\n", family, table, typ, hk, rule)
	}
	delTable := func(n, family, table string) func() error {
		return func() error { return run(n, "nft", "delete", "table", family, table) }
	}
	var stoppedB []string
	sn := ""
	var newKey struct{ SN, Key string }
	var reRegister func() error
	faults := []fault{
		{family: "host", name: "forwarding off", plant: sh(node, "sysctl", "-qw", "net.ipv4.ip_forward=0"), top: suite.FindForwarding},
		{family: "host", name: "input firewall drops UDP 4500", plant: nft(node, chain("inet", "vcpetin", "input", "", "udp dport 4500 drop")), top: suite.FindHubUDP4500},
		{family: "host", name: "output firewall drops UDP 4500 on the WAN", plant: nft(node, chain("inet", "vcpetout", "output", "", `oifname "wan0" udp dport 4500 drop`)), top: suite.FindFwOutput},
		{family: "host", name: "forward firewall drops LAN to the tunnel", plant: nft(node, chain("inet", "vcpetfwd", "forward", "", `iifname "lan0" oifname "vcpe0" drop`)), top: suite.FindFwForward},
		{family: "host", name: "iptables FORWARD policy DROP", plant: sh(node, "iptables", "-P", "FORWARD", "DROP"), top: suite.FindFwForward,
			undo: func() error {
				return errors.Join(run(node, "iptables", "-P", "FORWARD", "ACCEPT"), run(node, "iptables", "-F", "FORWARD"))
			}},
		{family: "host", name: "TUN administratively down", plant: sh(node, "ip", "link", "set", "vcpe0", "down"), top: suite.FindTUN},
		{family: "host", name: "TUN deleted", plant: sh(node, "ip", "link", "del", "vcpe0"), top: suite.FindTUN, fixSays: "restart vcped",
			fix: func(suite.Finding) error { restartVcped(t, l, node, 8); return nil }},
		{family: "host", name: "TUN lost its overlay address", plant: sh(node, "ip", "addr", "flush", "dev", "vcpe0"), top: suite.FindTUNAddr},
		{family: "host", name: "TUN MTU set too small", plant: sh(node, "ip", "link", "set", "vcpe0", "mtu", "1200"), top: suite.FindTunnelMTU},
		{family: "host", name: "learned route deleted", plant: sh(node, "ip", "route", "del", LANB.String(), "proto", "118", "table", "51820"), top: suite.FindRoutesMatch},
		{family: "host", name: "learned route replaced via the WAN", plant: sh(node, "ip", "route", "replace", LANB.String(), "via", "198.18.0.254", "dev", "wan0", "table", "51820"), top: suite.FindRoutesMatch},
		{family: "host", name: "learned route shadowed by a more specific one", plant: sh(node, "ip", "route", "add", "198.19.2.0/25", "via", "198.18.0.254", "dev", "wan0"), top: suite.FindRoutePath},
		{family: "host", name: "learned route black-holed", plant: sh(node, "ip", "route", "add", "blackhole", "198.19.2.0/25"), top: suite.FindRoutePath},
		{family: "host", name: "policy rule prohibits LAN to a learned prefix", plant: sh(node, "ip", "rule", "add", "priority", "100", "from", LANA.String(), "to", LANB.String(), "prohibit"), top: suite.FindRoutePath},
		{family: "host", name: "source NAT into the tunnel", plant: nft(node, chain("ip", "vcpetnat", "postrouting", "", `oifname "vcpe0" snat to 198.18.0.11`)), top: suite.FindNATTunnel},
		{family: "lan", name: "LAN interface down", plant: sh(node, "ip", "link", "set", "lan0", "down"), top: suite.FindLANLink},
		{family: "lan", name: "LAN gateway address removed", plant: sh(node, "ip", "addr", "del", "198.19.1.1/24", "dev", "lan0"), top: suite.FindLANAddr},
		{family: "path", name: "loss 60% on the WAN", plant: nft(node, chain("netdev", "vcpetloss", "ingress", "wan0", "numgen random mod 100 < 60 drop")), random: true,
			top: suite.FindWANLoss, fixSays: "mtr -n 198.18.0.1", fix: func(suite.Finding) error { return delTable(node, "netdev", "vcpetloss")() }},
		{family: "path", name: "loss 35% on the WAN", plant: nft(node, chain("netdev", "vcpetloss", "ingress", "wan0", "numgen random mod 100 < 35 drop")), random: true,
			top: suite.FindWANLoss, fixSays: "mtr -n 198.18.0.1", fix: func(suite.Finding) error { return delTable(node, "netdev", "vcpetloss")() }},
		{family: "path", name: "MTU black hole on the WAN", plant: nft(node, chain("netdev", "vcpetmtu", "ingress", "wan0", "ip length > 1400 drop")),
			top: suite.FindWANMTU, undo: func() error {
				return errors.Join(delTable(node, "netdev", "vcpetmtu")(), run(node, "ip", "link", "set", "wan0", "mtu", "1500"), run(node, "ip", "link", "set", "vcpe0", "mtu", "1420"))
			}},
		{family: "path", name: "UDP 4500 dropped at the hub (device to hub)", plant: nft("hub", chain("inet", "vcpet4500", "input", "", "ip saddr 198.18.0.11 udp dport 4500 drop")),
			top: suite.FindHubUDP4500, fixSays: "allow UDP 4500", fix: func(suite.Finding) error { return delTable("hub", "inet", "vcpet4500")() }},
		{family: "path", name: "UDP 4500 dropped at the hub (hub to device)", plant: nft("hub", chain("inet", "vcpet4500", "output", "", "ip daddr 198.18.0.11 udp sport 4500 drop")),
			top: suite.FindHubUDP4500, fixSays: "allow UDP 4500", fix: func(suite.Finding) error { return delTable("hub", "inet", "vcpet4500")() }},
		{family: "path", name: "controller port dropped at the hub", plant: nft("hub", chain("inet", "vcpet8443", "input", "", "ip saddr 198.18.0.11 tcp dport 8443 drop")),
			top: suite.FindController, fixSays: "TCP 8443", fix: func(suite.Finding) error { return delTable("hub", "inet", "vcpet8443")() }},
		{family: "path", name: "remote site's device down", plant: func() error { stoppedB = stopVcped(t, l, "site-b"); return nil },
			top: "target.198.19.2.1", fixSays: "remote device 198.19.2.1", fix: func(suite.Finding) error { startVcped(t, l, "site-b", stoppedB, 7); return nil }},
		{family: "path", name: "hub down", plant: func() error { return l.StopDaemon("hub", "vcpe-hub", syscall.SIGTERM, 10*time.Second) },
			top: suite.FindHubDown, fixSays: "vcpe-hub", fix: func(suite.Finding) error { _, err := l.StartHub(ctx, b); return err }},
		{family: "control", name: "prefix conflict: a local address in a learned prefix", plant: sh(node, "ip", "addr", "add", "198.19.2.5/24", "dev", "lan0"),
			top: suite.FindPrefixOverlap, fixSays: "renumber", fix: func(suite.Finding) error { return run(node, "ip", "addr", "del", "198.19.2.5/24", "dev", "lan0") },
			undo: sh(node, "ip", "route", "replace", LANB.String(), "dev", "vcpe0", "proto", "118", "table", "51820")},
		{family: "control", name: "instance detached from its CCN", plant: func() error {
			if err := l.Hub(ctx, b, nil, "ccn", "detach", "corp", "site-a"); err != nil {
				return err
			}
			// The fault is the detached instance, not a device caught
			// applying it: diag starts once vcped has dropped the routes
			// (under load the long-poll's answer can take a moment) and
			// saved the new configuration, which it does after applying
			// it (diag reads the learned prefixes from the state file;
			// between the two it judged the old ones not routed).
			deadline := time.Now().Add(10 * time.Second)
			for {
				out, err := l.Run(ctx, node, "ip", "route", "show", "table", "51820", "proto", "118")
				if err == nil && strings.TrimSpace(out) == "" {
					st, serr := device.LoadState(l.DeviceState(node))
					if serr == nil && len(st.Config.Routes) == 0 {
						return nil
					}
					err, out = serr, "the state file still learns routes"
					if serr == nil {
						out += fmt.Sprintf(" %v", st.Config.Routes)
					}
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("vcped has not dropped and saved its learned routes 10s after the detach: %v\n%s", err, out)
				}
				time.Sleep(100 * time.Millisecond)
			}
		},
			top: suite.FindCCN, fixSays: "vcpe-hub ccn attach CCN site-a", fix: func(suite.Finding) error { return l.Hub(ctx, b, nil, "ccn", "attach", "corp", "site-a") }},
		{family: "control", name: "device key reset", plant: func() error {
			var err error
			if sn, err = l.RegisteredSN(ctx, b, "site-a"); err != nil {
				return err
			}
			return l.Hub(ctx, b, &newKey, "device", "reset-key", sn)
		}, top: suite.FindRegistration, fixSays: "register again with the new device key: vcpe uninstall",
			fix: func(suite.Finding) error { return reRegister() }},
		{family: "control", name: "device revoked", plant: func() error { return l.Hub(ctx, b, nil, "device", "revoke", sn) },
			top: suite.FindRegistration, fixSays: "vcpe-hub device reset-key",
			fix: func(suite.Finding) error {
				// The printed fix: a new key on the hub, then register again.
				if err := l.Hub(ctx, b, &newKey, "device", "reset-key", sn); err != nil {
					return err
				}
				return reRegister()
			}},
	}

	// reRegister is the fix a key reset prints: vcpe uninstall, then vcpe
	// install with the new key (in a 0600 file, never in argv).
	reRegister = func() error {
		if err := run(node, b.Vcpe, "uninstall", "--yes", "--state-dir", l.DeviceState(node)); err != nil {
			return err
		}
		keyFile := l.Path(node, "device-new.key")
		if err := os.WriteFile(keyFile, []byte(newKey.Key+"\n"), 0o600); err != nil {
			return err
		}
		fp, err := l.Run(ctx, "hub", b.Hub, "fingerprint", "--state", l.HubState())
		if err != nil {
			return err
		}
		if _, err := l.Install(ctx, b, strings.TrimSpace(fp), Issued{Node: node, SN: sn, KeyFile: keyFile}, []netip.Prefix{LANA}); err != nil {
			return err
		}
		_, err = l.WaitTunnel(ctx, b, node)
		return err
	}

	var results []faultResult
	for _, f := range faults {
		ok := t.Run(f.family+": "+f.name, func(t *testing.T) {
			res := faultResult{family: f.family, name: f.name}
			defer func() { results = append(results, res) }()
			if err := f.plant(); err != nil {
				t.Fatal(err)
			}
			r := runDiag(ctx, t, l, b, node)
			top := r.top()
			res.top, res.title, res.took = top.ID, top.Title, r.took
			if r.code != 1 && top.Severity == suite.SevError || top.ID != f.top || top.Severity == suite.SevOK {
				t.Errorf("exit %d, top finding %s (%s): %s\nwant top %s\nproblems, and the WAN findings:\n%s", r.code, top.ID, top.Severity, top.Title, f.top, r.summary())
			} else {
				t.Logf("top: %s: %s; evidence %q; fix: %s (run %v)", top.ID, top.Title, top.Evidence, top.Fix, r.took.Round(time.Millisecond))
			}
			if f.fixSays != "" && !strings.Contains(top.Fix, f.fixSays) {
				t.Errorf("fix %q; want it to say %q", top.Fix, f.fixSays)
			}
			live, offline := fromBundle(ctx, t, l, b, node)
			res.bundleTop = offline
			named := f.random && slices.ContainsFunc(live, func(x suite.Finding) bool { return x.ID == f.top && x.Severity != suite.SevOK })
			if offline != live[0].ID || (live[0].ID != f.top && !named) {
				var problems []string
				for _, x := range live {
					if x.Severity != suite.SevOK {
						problems = append(problems, fmt.Sprintf("%s=%s (%s)", x.ID, x.Severity, x.Title))
					}
				}
				t.Errorf("bundle: live top %s, --from-bundle top %s; want both %s\nthe bundle's problems: %s", live[0].ID, offline, f.top, strings.Join(problems, "; "))
			}
			if f.fix == nil && f.undo == nil && len(top.Commands) == 0 && f.top != suite.FindRegistration {
				t.Errorf("top finding %s prints no commands to apply on this host", top.ID)
			}
			// Apply the printed fix: the finding's own commands on this
			// host, or what it says to do elsewhere; then diag must be
			// clean. A fix can uncover the next fault (a link taken down
			// loses its routes): up to two more rounds of top fixes.
			defer func() {
				if f.undo != nil {
					if err := f.undo(); err != nil {
						t.Logf("undo: %v", err)
					}
				}
			}()
			applied := top
			for round := 0; ; round++ {
				var err error
				if f.fix != nil && round == 0 {
					err = f.fix(applied)
				} else {
					for _, c := range applied.Commands {
						if err = run(node, strings.Fields(c)...); err != nil {
							break
						}
					}
				}
				if err != nil {
					t.Fatalf("apply the fix of %s: %v", applied.ID, err)
				}
				deadline := time.Now().Add(20 * time.Second)
				var after diagRun
				for {
					after = runDiag(ctx, t, l, b, node)
					if after.clean() || time.Now().After(deadline) || (after.top().ID != applied.ID && len(after.top().Commands) > 0 && round < 2) {
						break
					}
					time.Sleep(time.Second)
				}
				if after.clean() {
					res.fixOK = true
					healthy = append(healthy, after.took)
					if round > 0 {
						t.Logf("clean after %d more round(s) of fixes", round)
					}
					return
				}
				if round >= 2 || after.top().ID == applied.ID || len(after.top().Commands) == 0 {
					t.Fatalf("after the fix of %s, diag is not clean:\n%s", applied.ID, after.summary())
				}
				applied = after.top()
			}
		})
		if !ok {
			// Leave a clean lab for the next fault, whatever happened.
			if f.undo != nil {
				f.undo()
			}
			waitClean(ctx, t, l, b, node, 40*time.Second)
		}
	}

	var tbl strings.Builder
	fmt.Fprintf(&tbl, "%-8s %-52s %-20s %-20s %-6s %s\n", "family", "fault", "top finding", "--from-bundle top", "fixed", "run")
	faulted := []time.Duration{}
	for _, r := range results {
		fmt.Fprintf(&tbl, "%-8s %-52s %-20s %-20s %-6v %v\n", r.family, r.name, r.top, r.bundleTop, r.fixOK, r.took.Round(10*time.Millisecond))
		faulted = append(faulted, r.took)
	}
	med := func(d []time.Duration) time.Duration {
		d = slices.Clone(d)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	t.Logf("planted faults:\n%s", tbl.String())
	t.Logf("vcpe diag wall time: healthy median %v max %v over %d runs; under faults median %v max %v over %d runs",
		med(healthy).Round(time.Millisecond), slices.Max(healthy).Round(time.Millisecond), len(healthy),
		med(faulted).Round(time.Millisecond), slices.Max(faulted).Round(time.Millisecond), len(faulted))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
