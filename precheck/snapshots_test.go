package precheck

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// snapDir is the shared fixture directory (top-level testdata).
func snapDir(name string) string { return filepath.Join("..", "testdata", "snapshots", name) }

func loadFixture(t *testing.T, name string) *Snapshot {
	t.Helper()
	s, err := Load(snapDir(name))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return s
}

func statuses(r Report) map[CheckID]Status {
	m := map[CheckID]Status{}
	for _, c := range r.Checks {
		m[c.ID] = c.Status
	}
	return m
}

func result(t *testing.T, r Report, id CheckID) Result {
	t.Helper()
	for _, c := range r.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no result %s", id)
	return Result{}
}

// allPass is the verdict of a clean host judged offline.
func allPass() map[CheckID]Status {
	m := map[CheckID]Status{}
	for _, c := range Catalogue() {
		m[c.ID] = Pass
	}
	m["wan.internet"] = Skip
	return m
}

func with(base map[CheckID]Status, kv ...any) map[CheckID]Status {
	for i := 0; i < len(kv); i += 2 {
		base[CheckID(kv[i].(string))] = kv[i+1].(Status)
	}
	return base
}

// TestSnapshots judges every fixture snapshot and compares the full verdict,
// plus what the detail must say.
func TestSnapshots(t *testing.T) {
	tests := []struct {
		name   string
		want   map[CheckID]Status
		detail map[string][]string // id → substrings of Detail (and Fix)
	}{
		{"centos79-clean", allPass(), map[string][]string{
			"os.release": {"CentOS 7.9.2009"}, "kernel.version": {"3.10.0-1160.el7"},
			"perf.class": {"350 Mbit/s"}, "mem.total": {"4 GB class"}, "nic.wan": {"eth0", "198.18.0.11/24"},
			"remote.logon": {"sshd"}, "wan.internet": {"--root"},
		}},
		{"centos76-minimal", allPass(), map[string][]string{
			"os.release": {"7.6.1810"}, "kernel.version": {"957.21.3"}, "mem.total": {"2 GB class"}, "perf.class": {"200 Mbit/s"},
		}},
		{"centos75-small", with(allPass(), "os.release", Fail, "kernel.version", Fail, "mem.total", Fail, "perf.class", Warn), map[string][]string{
			"os.release": {"7.5.1804", "older", "yum update"}, "kernel.version": {"3.10.0-862.el7", "957.21.3"},
		}},
		{"ubuntu1804-docker", with(allPass(), "host.services", Warn, "ports.tcp", Fail), map[string][]string{
			"os.release": {"Ubuntu 18.04"}, "kernel.version": {"4.15.0-213-generic"},
			"host.services": {"nginx", "Docker"}, "ports.tcp": {"TCP 80", "nginx (pid 1200)", "kill 1200"},
		}},
		{"ubuntu1604-old", with(allPass(), "os.release", Fail), map[string][]string{"os.release": {"16.04", "do-release-upgrade"}}},
		{"rocky9-firewalled", with(allPass(), "ports.udp", Fail, "ports.tcp", Fail, "icmp.echo", Fail, "flood.icmp", Warn), map[string][]string{
			"os.release":   {"Rocky Linux 9.2"},
			"ports.udp":    {"UDP 53, 500, 789, 801, 4500, 10000-10100", "policy drop", "nft insert rule inet firewalld filter_INPUT udp dport {"},
			"ports.tcp":    {"8443", "tcp dport {"},
			"icmp.echo":    {"policy drop", "icmp type echo-request accept"},
			"flood.icmp":   {"limit rate 10/second", "nft delete rule inet firewalld filter_IN_public handle 21"},
			"remote.logon": {"sshd"},
		}},
		{"debian12-vm", with(allPass(), "os.release", Warn, "nic.wan", Warn, "host.services", Warn, "ports.udp", Fail,
			"icmp.echo", Fail, "flood.udp", Warn, "flood.icmp", Warn, "throttle.tc", Warn, "ip.forward", Warn), map[string][]string{
			"os.release":    {"Debian GNU/Linux 12", "debian"},
			"nic.wan":       {"veth0", "virtual interface (veth)"},
			"host.services": {"strongSwan"},
			"ports.udp":     {"UDP 500, 4500 bound by charon (pid 912)", "kill 912"},
			"icmp.echo":     {"icmp_echo_ignore_all is 1", "sysctl -w net.ipv4.icmp_echo_ignore_all=0"},
			"flood.udp":     {"hashlimit", "iptables -t filter -D INPUT -p udp -m hashlimit"},
			"flood.icmp":    {"icmp_ratemask=6169", "icmp_ratemask=6168"},
			"throttle.tc":   {"tbf", "police", "tc qdisc del dev veth0 root", "tc filter del dev veth0 parent ffff:0"},
			"remote.logon":  {"2222"},
			"ip.forward":    {"off"},
		}},
		{"alinux3-vcped", with(allPass(), "remote.logon", Warn, "ports.udp", Fail, "ports.tcp", Fail, "icmp.echo", Fail, "flood.udp", Warn), map[string][]string{
			"os.release":   {"Alibaba Cloud Linux 3"},
			"remote.logon": {"nothing listens on TCP 22", "systemctl enable --now sshd"},
			"ports.udp":    {"500, 27890 dropped by iptables -t raw", "33336, 43337 rejected by nft", "nft delete rule inet vcpe-test in handle 3"},
			"ports.tcp":    {"10000-10100 rejected", "-A IN_CHECK"},
			"icmp.echo":    {"--icmp-type 8 -j DROP"},
			"flood.udp":    {"ct count over 10"},
		}},
		{"anolis8-nonroot", with(allPass(), "ports.udp", Fail, "ports.tcp", Skip, "icmp.echo", Skip, "flood.udp", Skip, "flood.icmp", Skip), map[string][]string{
			"os.release": {"Anolis OS 8.8"},
			"ports.udp":  {"12345", "unknown process (run as root"},
			"ports.tcp":  {"not checked", "Permission denied"},
			"flood.udp":  {"not checked", "run as root"},
		}},
		{"centos79-noroute", with(allPass(), "nic.wan", Fail, "throttle.tc", Skip), map[string][]string{"nic.wan": {"no IPv4 default route", "ip route add default"}}},
		{"centos79-wandown", with(allPass(), "nic.wan", Fail), map[string][]string{"nic.wan": {"eth0 is down", "ip link set eth0 up"}}},
		{"centos79-noaddr", with(allPass(), "nic.wan", Fail), map[string][]string{"nic.wan": {"no IPv4 address"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Run(context.Background(), loadFixture(t, tt.name), Options{})
			if diff := cmp.Diff(tt.want, statuses(rep)); diff != "" {
				for _, c := range rep.Checks {
					t.Logf("%s %s: %s", c.Status, c.ID, c.Detail)
				}
				t.Fatalf("statuses (-want +got):\n%s", diff)
			}
			for id, subs := range tt.detail {
				r := result(t, rep, CheckID(id))
				for _, sub := range subs {
					if !strings.Contains(r.Detail+"\n"+r.Fix, sub) {
						t.Errorf("%s: detail %q / fix %q does not mention %q", id, r.Detail, r.Fix, sub)
					}
				}
			}
			wantOK := true
			for _, st := range tt.want {
				if st == Fail {
					wantOK = false
				}
			}
			if rep.OK != wantOK {
				t.Errorf("OK = %v; want %v", rep.OK, wantOK)
			}
			for _, c := range rep.Checks {
				if (c.Status == Warn || c.Status == Fail) && c.Fix == "" {
					t.Errorf("%s is %s without a fix", c.ID, c.Status)
				}
				if c.Status == Skip && !strings.HasPrefix(c.Detail, "not checked: ") {
					t.Errorf("%s skipped without a reason: %q", c.ID, c.Detail)
				}
			}
		})
	}
}

func TestPortFindingsNameProcess(t *testing.T) {
	rep := Run(context.Background(), loadFixture(t, "debian12-vm"), Options{})
	r := result(t, rep, "ports.udp")
	got := map[uint16]Finding{}
	for _, f := range r.Findings {
		got[f.Port] = f
	}
	for _, p := range []uint16{500, 4500} {
		f, ok := got[p]
		if !ok || f.Process != "charon" || f.PID != 912 || f.Proto != "udp" {
			t.Errorf("finding for UDP %d = %+v; want charon pid 912", p, f)
		}
	}
}

// copyFixture copies a fixture snapshot to a temporary directory.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	src := snapDir(name)
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestEditingSnapshotChangesVerdict is the --root contract: the same change
// to a saved snapshot file as to the live host changes the verdict.
func TestEditingSnapshotChangesVerdict(t *testing.T) {
	edits := []struct {
		name, file, content string
		appendTo            bool // also write FILE6 (proc/net/tcp6)
		id                  CheckID
		want                Status
	}{
		{"centos 7.5", "etc/centos-release", "CentOS Linux release 7.5.1804 (Core)\n", false, "os.release", Fail},
		{"centos 7.6", "etc/centos-release", "CentOS Linux release 7.6.1810 (Core)\n", false, "os.release", Pass},
		{"old kernel", "proc/sys/kernel/osrelease", "3.10.0-957.el7.x86_64\n", false, "kernel.version", Fail},
		{"echo ignored", "proc/sys/net/ipv4/icmp_echo_ignore_all", "1\n", false, "icmp.echo", Fail},
		{"forwarding off", "proc/sys/net/ipv4/ip_forward", "0\n", false, "ip.forward", Warn},
		{"drop udp 4500", "cmd/iptables-save.txt", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp -m udp --dport 4500 -j DROP\nCOMMIT\n", false, "ports.udp", Fail},
		{"limit udp", "cmd/iptables-save.txt", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp -m limit --limit 10/sec -j ACCEPT\nCOMMIT\n", false, "flood.udp", Warn},
		{"tbf", "vcpe/tc.json", `[{"dev":"eth0","kind":"tbf","parent":"root","handle":"1:0"}]`, false, "throttle.tc", Warn},
		{"ssh gone", "proc/net/tcp", "  sl  local_address rem_address   st\n", true, "remote.logon", Warn},
		{"no nic device", "sys/class/net/eth0/device", "", false, "nic.wan", Warn},
		{"memory 1.5 GiB", "proc/meminfo", "MemTotal: 1572864 kB\n", false, "mem.total", Fail},
		{"no cpus", "proc/cpuinfo", "", false, "cpu.cores", Fail},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			dir := copyFixture(t, "centos79-clean")
			p := filepath.Join(dir, filepath.FromSlash(e.file))
			before := result(t, Run(context.Background(), mustLoad(t, dir), Options{}), e.id).Status
			var err error
			if e.name == "no nic device" {
				err = os.Remove(p)
			} else {
				err = os.WriteFile(p, []byte(e.content), 0o644)
			}
			if err == nil && e.appendTo {
				// the IPv6 table as well
				err = os.WriteFile(p+"6", []byte(e.content), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := result(t, Run(context.Background(), mustLoad(t, dir), Options{}), e.id)
			if got.Status != e.want {
				t.Fatalf("after editing %s: %s = %s (%s); want %s", e.file, e.id, got.Status, got.Detail, e.want)
			}
			if e.want != Pass && before == e.want {
				t.Fatalf("%s was already %s before the edit: the edit proves nothing", e.id, before)
			}
		})
	}
}

func mustLoad(t *testing.T, dir string) *Snapshot {
	t.Helper()
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMissingFilesSkipWithReason(t *testing.T) {
	rep := Run(context.Background(), NewSnapshot(nil), Options{})
	for _, c := range rep.Checks {
		if c.Status != Skip {
			t.Errorf("%s on an empty snapshot = %s (%s); want skip", c.ID, c.Status, c.Detail)
		}
		if !strings.HasPrefix(c.Detail, "not checked: ") || len(c.Detail) < 20 {
			t.Errorf("%s: skip reason %q", c.ID, c.Detail)
		}
	}
	if !rep.OK {
		t.Error("an empty snapshot fails nothing; OK should be true")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s := loadFixture(t, "debian12-vm")
	s.setMissing(fileCentOSRelease, "not present on this host")
	dir := t.TempDir()
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	s2 := mustLoad(t, dir)
	if diff := cmp.Diff(s.Files(), s2.Files()); diff != "" {
		t.Fatalf("files (-saved +loaded):\n%s", diff)
	}
	for _, p := range s.Files() {
		a, _ := s.Read(p)
		b, _ := s2.Read(p)
		if string(a) != string(b) {
			t.Errorf("%s changed in the round trip", p)
		}
	}
	if diff := cmp.Diff(Run(context.Background(), s, Options{}), Run(context.Background(), s2, Options{})); diff != "" {
		t.Fatalf("report changed (-before +after):\n%s", diff)
	}
	_, err := s2.Read(fileCentOSRelease)
	if err == nil || !strings.Contains(err.Error(), "not present on this host") {
		t.Fatalf("missing reason lost in the round trip: %v", err)
	}
}

func TestLoadMissingDir(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil || !strings.Contains(err.Error(), ErrNoSnapshot.Error()) {
		t.Fatalf("Load(missing) = %v; want ErrNoSnapshot", err)
	}
}
