package precheck_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/internal/namespace"
	"github.com/openvcpe/vcpe/precheck"
)

// holdEnv makes the test binary a helper process that holds a socket:
// "udp:PORT" (bound, silent), "udpecho:PORT" (answers), "tcp:PORT" (listens).
const holdEnv = "VCPE_PRECHECK_TEST_HOLD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(holdEnv); spec != "" {
		hold(spec)
		return
	}
	namespace.Main(m)
}

// hold runs the helper; it exits by itself after two minutes at the latest.
func hold(spec string) {
	mode, port, _ := strings.Cut(spec, ":")
	addr := "0.0.0.0:" + port
	go func() { time.Sleep(2 * time.Minute); os.Exit(0) }()
	switch mode {
	case "udp", "udpecho":
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				os.Exit(0)
			}
			if mode == "udpecho" {
				_, _ = c.WriteTo(buf[:n], from)
			}
		}
	case "tcp":
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(0)
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}
	os.Exit(2)
}

// startHolder starts a helper holding spec inside ns, running as the binary
// at path (so its process name is path's base name), and waits until the
// socket shows in the namespace's /proc/net table.
func startHolder(t *testing.T, ns *namespace.NS, path, spec string) {
	t.Helper()
	ns.Start("env", holdEnv+"="+spec, path, "-test.run=^$")
	mode, port, _ := strings.Cut(spec, ":")
	table, state := "/proc/net/udp", "07"
	if mode == "tcp" {
		table, state = "/proc/net/tcp", "0A"
	}
	var p int
	fmt.Sscan(port, &p)
	want := fmt.Sprintf(":%04X 00000000:0000 %s", p, state)
	for range 200 {
		if out, _ := ns.Try("cat", table); strings.Contains(out, want) {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("helper %s never bound in %s", spec, ns.Name)
}

// wanNS returns a namespace whose default route leaves via veth wan0 to a
// second namespace (the "hub" side, 198.18.0.1).
func wanNS(t *testing.T) (dev, hub *namespace.NS) {
	t.Helper()
	dev, hub = namespace.New(t), namespace.New(t)
	namespace.Veth(t, dev, "wan0", "198.18.0.11/24", hub, "hub0", "198.18.0.1/24")
	dev.Run("ip", "route", "add", "default", "via", "198.18.0.1", "dev", "wan0")
	return dev, hub
}

// precheckIn runs the real vcpe binary inside ns and decodes its --json.
func precheckIn(t *testing.T, ns *namespace.NS, args ...string) (int, precheck.Report) {
	t.Helper()
	bin := namespace.Binary(t, "cmd/vcpe")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := ns.Command(ctx, bin, append([]string{"precheck", "--json"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run vcpe precheck: %v", err)
	}
	var rep precheck.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("vcpe precheck --json (exit %d): %v\nstdout:\n%s\nstderr:\n%s", code, err, out.String(), errb.String())
	}
	return code, rep
}

func check(t *testing.T, rep precheck.Report, id precheck.CheckID, want precheck.Status, says ...string) precheck.Result {
	t.Helper()
	for _, r := range rep.Checks {
		if r.ID != id {
			continue
		}
		if r.Status != want {
			t.Errorf("%s = %s (%s); want %s", id, r.Status, r.Detail, want)
		}
		for _, s := range says {
			if !strings.Contains(r.Detail+"\n"+r.Fix, s) {
				t.Errorf("%s: %q / fix %q does not mention %q", id, r.Detail, r.Fix, s)
			}
		}
		return r
	}
	t.Fatalf("no %s in the report", id)
	return precheck.Result{}
}

// cleanChecks are the checks a bare namespace with a veth and a default
// route passes.
var cleanChecks = []precheck.CheckID{"ports.udp", "ports.tcp", "icmp.echo", "flood.udp", "flood.icmp", "throttle.tc", "host.services"}

func TestLiveCleanNamespace(t *testing.T) {
	dev, _ := wanNS(t)
	code, rep := precheckIn(t, dev)
	for _, id := range cleanChecks {
		check(t, rep, id, precheck.Pass)
	}
	check(t, rep, "nic.wan", precheck.Warn, "wan0", "veth")
	check(t, rep, "throttle.tc", precheck.Pass, "wan0")
	check(t, rep, "wan.internet", precheck.Skip, "--controller")
	if code != 0 && rep.OK {
		t.Errorf("exit %d with ok=true", code)
	}
}

func TestLiveIptablesRateLimitUDP(t *testing.T) {
	for name, rule := range map[string][]string{
		"hashlimit": {"-p", "udp", "-m", "hashlimit", "--hashlimit-above", "50/sec", "--hashlimit-name", "vcpet", "-j", "DROP"},
		"limit":     {"-p", "udp", "-m", "limit", "--limit", "10/sec", "-j", "ACCEPT"},
	} {
		t.Run(name, func(t *testing.T) {
			dev, _ := wanNS(t)
			dev.Run("iptables", append([]string{"-A", "INPUT"}, rule...)...)
			_, rep := precheckIn(t, dev)
			r := check(t, rep, "flood.udp", precheck.Warn, "-m "+name, "iptables -t filter -D INPUT -p udp -m "+name)
			if len(r.Findings) != 1 {
				t.Errorf("findings %+v; want the one rule once (not again from the nft view of iptables-nft)", r.Findings)
			}
			check(t, rep, "flood.icmp", precheck.Pass)
		})
	}
}

func TestLiveNftRateLimitUDP(t *testing.T) {
	dev, _ := wanNS(t)
	dev.Run("nft", "add table inet vcpet")
	dev.Run("nft", "add chain inet vcpet in { type filter hook input priority 0; policy accept; }")
	dev.Run("nft", "add rule inet vcpet in udp dport 4500 limit rate 10/second accept")
	_, rep := precheckIn(t, dev)
	check(t, rep, "flood.udp", precheck.Warn, "limit rate 10/second", "nft delete rule inet vcpet in handle")
	check(t, rep, "ports.udp", precheck.Pass)
}

func TestLiveDropUDP4500(t *testing.T) {
	for name, setup := range map[string][][]string{
		"iptables": {{"iptables", "-A", "INPUT", "-p", "udp", "--dport", "4500", "-j", "DROP"}},
		"nftables": {
			{"nft", "add table inet vcpet"},
			{"nft", "add chain inet vcpet in { type filter hook input priority 0; policy accept; }"},
			{"nft", "add rule inet vcpet in udp dport 4500 reject"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			dev, _ := wanNS(t)
			for _, c := range setup {
				dev.Run(c[0], c[1:]...)
			}
			code, rep := precheckIn(t, dev)
			r := check(t, rep, "ports.udp", precheck.Fail, "UDP 4500")
			if len(r.Findings) != 1 || r.Findings[0].Port != 4500 || r.Findings[0].Rule == "" || r.Findings[0].Fix == "" {
				t.Errorf("findings %+v; want UDP 4500 with the rule and its fix", r.Findings)
			}
			check(t, rep, "ports.tcp", precheck.Pass)
			if code != 1 || rep.OK {
				t.Errorf("exit %d ok=%v; want 1, false", code, rep.OK)
			}
		})
	}
}

func TestLiveICMPEcho(t *testing.T) {
	t.Run("icmp_echo_ignore_all", func(t *testing.T) {
		dev, _ := wanNS(t)
		dev.Run("sysctl", "-w", "net.ipv4.icmp_echo_ignore_all=1")
		_, rep := precheckIn(t, dev)
		check(t, rep, "icmp.echo", precheck.Fail, "icmp_echo_ignore_all is 1")
	})
	t.Run("iptables drop", func(t *testing.T) {
		dev, _ := wanNS(t)
		dev.Run("iptables", "-A", "INPUT", "-p", "icmp", "--icmp-type", "echo-request", "-j", "DROP")
		_, rep := precheckIn(t, dev)
		check(t, rep, "icmp.echo", precheck.Fail, "iptables -t filter -D INPUT -p icmp")
	})
	t.Run("icmp ratemask", func(t *testing.T) {
		dev, _ := wanNS(t)
		dev.Run("sysctl", "-w", "net.ipv4.icmp_ratemask=6169")
		_, rep := precheckIn(t, dev)
		check(t, rep, "flood.icmp", precheck.Warn, "icmp_ratemask=6168")
	})
}

func TestLiveSocketHoldsUDP4500(t *testing.T) {
	dev, _ := wanNS(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	startHolder(t, dev, self, "udp:4500")
	_, rep := precheckIn(t, dev)
	name := filepath.Base(self)
	r := check(t, rep, "ports.udp", precheck.Fail, "UDP 4500", name)
	if len(r.Findings) == 0 || r.Findings[0].Port != 4500 || r.Findings[0].Process != name || r.Findings[0].PID == 0 {
		t.Errorf("findings %+v; want UDP 4500 held by %s with its pid", r.Findings, name)
	}
}

func TestLiveOwnDaemonHoldsUDP4500(t *testing.T) {
	dev, _ := wanNS(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The same helper, named like vcpe's daemon.
	vcped := filepath.Join(t.TempDir(), "vcped")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vcped, b, 0o755); err != nil {
		t.Fatal(err)
	}
	startHolder(t, dev, vcped, "udp:4500")
	_, rep := precheckIn(t, dev)
	check(t, rep, "ports.udp", precheck.Pass)
}

func TestLiveTbfOnWAN(t *testing.T) {
	dev, _ := wanNS(t)
	dev.Run("tc", "qdisc", "add", "dev", "wan0", "root", "tbf", "rate", "10mbit", "burst", "32kbit", "latency", "400ms")
	_, rep := precheckIn(t, dev)
	check(t, rep, "throttle.tc", precheck.Warn, "tbf on wan0", "tc qdisc del dev wan0 root")
}

func TestLiveWANInternet(t *testing.T) {
	dev, hub := wanNS(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	startHolder(t, hub, self, "tcp:8443")
	const ctl = "https://198.18.0.1:8443"

	// Nothing on UDP 4500 at the hub: ICMP port unreachable.
	_, rep := precheckIn(t, dev, "--controller", ctl)
	check(t, rep, "wan.internet", precheck.Fail, "refused")

	startHolder(t, hub, self, "udp:4500")
	_, rep = precheckIn(t, dev, "--controller", ctl)
	check(t, rep, "wan.internet", precheck.Warn, "unconfirmed", "198.18.0.1:8443 reachable")

	_, rep = precheckIn(t, dev, "--controller", "https://198.18.0.1:9")
	check(t, rep, "wan.internet", precheck.Fail, "198.18.0.1:9")
}

func TestLiveWANInternetAnswered(t *testing.T) {
	dev, hub := wanNS(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	startHolder(t, hub, self, "tcp:8443")
	startHolder(t, hub, self, "udpecho:4500")
	_, rep := precheckIn(t, dev, "--controller", "https://198.18.0.1:8443")
	check(t, rep, "wan.internet", precheck.Pass, "answered")
}

// TestLiveSaveThenRoot: a snapshot saved live judges the same offline,
// except for the live-only check.
func TestLiveSaveThenRoot(t *testing.T) {
	dev, _ := wanNS(t)
	dev.Run("iptables", "-A", "INPUT", "-p", "udp", "--dport", "12345", "-j", "DROP")
	dev.Run("tc", "qdisc", "add", "dev", "wan0", "root", "handle", "1:", "htb", "default", "10")
	dir := t.TempDir()
	_, live := precheckIn(t, dev, "--save", dir)
	_, offline := precheckIn(t, dev, "--root", dir)
	for i, r := range live.Checks {
		if r.ID == "wan.internet" {
			continue
		}
		o := offline.Checks[i]
		if r.Status != o.Status || r.Detail != o.Detail {
			t.Errorf("%s: live %s %q; offline %s %q", r.ID, r.Status, r.Detail, o.Status, o.Detail)
		}
	}
	check(t, offline, "ports.udp", precheck.Fail, "12345")
	check(t, offline, "throttle.tc", precheck.Warn, "htb")
	for _, f := range []string{"proc/net/udp", "cmd/iptables-save.txt", "cmd/nft-ruleset.json", "vcpe/tc.json", "vcpe/sockets.json", "vcpe/addresses.json", "vcpe/links.json", "sys/class/net/wan0/operstate"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("saved snapshot lacks %s: %v", f, err)
		}
	}
}

// TestLiveNonRoot runs the precheck as nobody: what needs root is skipped
// with the reason, nothing crashes.
func TestLiveNonRoot(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		namespace.Skipf(t, "setpriv (util-linux) not installed")
	}
	dev, _ := wanNS(t)
	dev.Run("iptables", "-A", "INPUT", "-p", "udp", "--dport", "4500", "-j", "DROP")
	dir, err := os.MkdirTemp("", "vcpe-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(namespace.Binary(t, "cmd/vcpe"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "vcpe")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := dev.Try("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "precheck", "--json")
	var rep precheck.Report
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("non-root precheck (%v): not a JSON report: %v\n%s", err, jerr, out)
	}
	for _, id := range []precheck.CheckID{"ports.udp", "flood.udp", "flood.icmp", "icmp.echo"} {
		check(t, rep, id, precheck.Skip, "root")
	}
	check(t, rep, "throttle.tc", precheck.Pass)
	check(t, rep, "kernel.version", precheck.Pass)
}
