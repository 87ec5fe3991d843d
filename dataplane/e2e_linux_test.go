package dataplane_test

import (
	"bufio"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/internal/namespace"
)

var (
	overlay  = netip.MustParsePrefix("198.18.64.0/18")
	hubOver  = netip.MustParseAddr("198.18.64.1")
	hubWAN   = netip.MustParseAddrPort("198.18.0.1:4500")
	cloudNet = netip.MustParsePrefix("198.19.100.0/24")
)

func mustKey(t testing.TB) api.Key {
	t.Helper()
	k, err := api.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pfx(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, x := range s {
		out[i] = netip.MustParsePrefix(x)
	}
	return out
}

// site is one device namespace running a real vcped.
type site struct {
	name     string
	ns       *namespace.NS
	lan      *namespace.NS // LAN host, nil for WAN-only sites
	dir      string        // state dir
	uapiDir  string
	key      api.Key
	overlay  netip.Addr
	lanNet   string // "198.19.1"
	cmd      *exec.Cmd
	hubKey   api.Key // the hub key in its config
	extraArg []string
	env      []string // environment for vcped (NAME=VALUE)
}

type lab struct {
	t       *testing.T
	hub     *namespace.NS
	cloud   *namespace.NS
	hubKey  api.Key
	hubFile string
	hubCtl  string
	hubCmd  *exec.Cmd
	vcped   string
	vcpe    string
	self    string
	sitesN  int
}

func newLab(t *testing.T) *lab {
	l := &lab{t: t, hub: namespace.New(t), cloud: namespace.New(t), hubKey: mustKey(t)}
	l.vcped = namespace.Binary(t, "cmd/vcped")
	l.vcpe = namespace.Binary(t, "cmd/vcpe")
	var err error
	if l.self, err = os.Executable(); err != nil {
		t.Fatal(err)
	}
	l.hub.Run("ip", "link", "add", "br0", "type", "bridge")
	l.hub.Run("ip", "addr", "add", "198.18.0.1/24", "dev", "br0")
	l.hub.Run("ip", "link", "set", "br0", "up")
	namespace.Veth(t, l.hub, "cloud0", "198.19.100.1/24", l.cloud, "eth0", "198.19.100.10/24")
	l.cloud.Run("ip", "route", "add", "198.18.64.0/18", "via", "198.19.100.1")
	l.cloud.Run("ip", "route", "add", "198.19.0.0/16", "via", "198.19.100.1")
	dir := t.TempDir()
	l.hubFile, l.hubCtl = filepath.Join(dir, "hub.json"), filepath.Join(dir, "hub.sock")
	return l
}

// addSite creates a site namespace on the WAN bridge (and a LAN host when
// lanNet is set) and writes its state file.
func (l *lab) addSite(name, wanIP, lanNet string, ov netip.Addr) *site {
	t := l.t
	l.sitesN++
	s := &site{name: name, ns: namespace.New(t), dir: t.TempDir(), uapiDir: t.TempDir(), key: mustKey(t), overlay: ov, lanNet: lanNet}
	port := "wan" + strconv.Itoa(l.sitesN)
	namespace.Veth(t, s.ns, "wan", wanIP+"/24", l.hub, port, "")
	l.hub.Run("ip", "link", "set", port, "master", "br0")
	if lanNet != "" {
		s.lan = namespace.New(t)
		namespace.Veth(t, s.ns, "lan", lanNet+".1/24", s.lan, "eth0", lanNet+".10/24")
		s.lan.Run("ip", "route", "add", "default", "via", lanNet+".1")
	}
	return s
}

func (s *site) writeState(t *testing.T, cfg api.DeviceConfig) {
	t.Helper()
	s.hubKey = cfg.HubPublicKey
	st := &device.State{SN: s.name, PrivateKey: s.key, Config: cfg}
	if err := device.SaveState(s.dir, st); err != nil {
		t.Fatal(err)
	}
}

func (l *lab) deviceConfig(s *site, routes ...string) api.DeviceConfig {
	return api.DeviceConfig{Generation: 1, SN: s.name, OverlayAddr: netip.PrefixFrom(s.overlay, overlay.Bits()),
		HubOverlayAddr: hubOver, HubPublicKey: l.hubKey.PublicKey(), HubEndpoint: hubWAN, Routes: pfx(routes...), Role: api.RoleActive}
}

func (l *lab) startVcped(s *site) {
	args := append([]string{"--state-dir", s.dir, "--uapi-dir", s.uapiDir}, s.extraArg...)
	if len(s.env) > 0 {
		s.cmd = s.ns.Start("env", append(append(append([]string{}, s.env...), l.vcped), args...)...)
		return
	}
	s.cmd = s.ns.Start(l.vcped, args...)
}

func (l *lab) writeHub(cfg api.HubConfig) {
	b, _ := json.Marshal(hubFile{PrivateKey: l.hubKey, UAPIDir: l.t.TempDir(), Control: l.hubCtl, Config: cfg})
	if err := os.WriteFile(l.hubFile, b, 0o600); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) startHub() {
	l.hubCmd = l.hub.Start("env", helperEnv+"=hub", l.self, l.hubFile)
	waitFor(l.t, 10*time.Second, "hub control socket", func() bool {
		_, err := dataplane.ReadStatus(l.hubCtl)
		return err == nil
	})
}

// kill sends SIGKILL to a process started with NS.Start (ip netns exec and
// env exec, so the PID is the daemon's) and waits until it is gone.
func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	waitFor(t, 5*time.Second, "process exit", func() bool {
		return syscall.Kill(cmd.Process.Pid, 0) != nil || isDead(cmd.Process.Pid)
	})
}

// isDead reports whether pid is a zombie whose threads have all exited:
// only then are its files (sockets) closed. The leader turns zombie while
// other threads may still be tearing down.
func isDead(pid int) bool {
	p := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(p + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	tasks, _ := os.ReadDir(p + "/task")
	return len(f) > 2 && f[2] == "Z" && len(tasks) <= 1
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if ok() {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
	return 0
}

func (s *site) status(t *testing.T) dataplane.Status {
	t.Helper()
	st, err := dataplane.ReadStatus(filepath.Join(s.dir, dataplane.ControlSocket))
	if err != nil {
		return dataplane.Status{State: "unreachable: " + err.Error()}
	}
	return st
}

func ping(ns *namespace.NS, dst string) bool {
	_, err := ns.Try("ping", "-c", "1", "-W", "1", "-q", dst)
	return err == nil
}

func (l *lab) udp(ns *namespace.NS, dst string) bool {
	_, err := ns.Try("env", helperEnv+"=udpsend", l.self, dst)
	return err == nil
}

// counter returns the packets matched by the rule of table ip vcpetest
// chain c, created by addCounter.
func addCounter(ns *namespace.NS, match string) {
	ns.Run("nft", "add table ip vcpetest")
	ns.Run("nft", "add chain ip vcpetest c { type filter hook prerouting priority -300 ; }")
	ns.Run("nft", "add rule ip vcpetest c "+match+" counter")
}

var counterRE = regexp.MustCompile(`counter packets (\d+)`)

func counter(t *testing.T, ns *namespace.NS) int {
	t.Helper()
	out := ns.Run("nft", "list chain ip vcpetest c")
	m := counterRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no counter in:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// hubDrops sums the packets counted by the hub's drop rules.
func hubDrops(t *testing.T, hub *namespace.NS) int {
	t.Helper()
	out := hub.Run("nft", "list chain ip vcpe forward")
	total := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, "drop") {
			if m := counterRE.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				total += n
			}
		}
	}
	return total
}

type vcpeRoute struct {
	Dst      string `json:"dst"`
	Dev      string `json:"dev"`
	Protocol string `json:"protocol"`
}

func vcpeRoutes(t *testing.T, ns *namespace.NS) []string {
	t.Helper()
	var rs []vcpeRoute
	out := ns.Run("ip", "-j", "route", "show", "table", "all", "proto", strconv.Itoa(dataplane.RouteProtocol))
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("ip -j route: %v: %s", err, out)
	}
	var s []string
	for _, r := range rs {
		s = append(s, r.Dst+" dev "+r.Dev)
	}
	return s
}

func uapiGet(t *testing.T, path string) string {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("uapi: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("get=1\n\n")); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if sc.Text() == "" {
			break
		}
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}
