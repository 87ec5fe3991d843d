package precheck

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// overlay returns the fixture with some files replaced (nil content removes).
func overlay(t *testing.T, name string, files map[string]string) *Snapshot {
	t.Helper()
	base := loadFixture(t, name)
	m := map[string][]byte{}
	for _, p := range base.Files() {
		b, _ := base.Read(p)
		m[p] = b
	}
	for p, c := range files {
		if c == "\x00" {
			delete(m, p)
			continue
		}
		m[p] = []byte(c)
	}
	return NewSnapshot(m)
}

const gone = "\x00"

func TestOSRelease(t *testing.T) {
	osr := func(id, ver string) string {
		return "ID=\"" + id + "\"\nVERSION_ID=\"" + ver + "\"\nPRETTY_NAME=\"" + id + " " + ver + "\"\n"
	}
	tests := []struct {
		name  string
		files map[string]string
		want  Status
		say   string
	}{
		{"centos 7.4", map[string]string{fileCentOSRelease: "CentOS Linux release 7.4.1708 (Core)\n"}, Fail, "7.4.1708"},
		{"centos 7.5", map[string]string{fileCentOSRelease: "CentOS Linux release 7.5.1804 (Core)\n"}, Fail, "older"},
		{"centos 7.6", map[string]string{fileCentOSRelease: "CentOS Linux release 7.6.1810 (Core)\n"}, Pass, "7.6.1810"},
		{"centos 7.9", map[string]string{fileCentOSRelease: "CentOS Linux release 7.9.2009 (Core)\n"}, Pass, "7.9.2009"},
		{"centos 7 minor from redhat-release", map[string]string{fileCentOSRelease: gone, fileRedhatRelease: "CentOS Linux release 7.5.1804 (Core)\n"}, Fail, "7.5"},
		{"centos 7 minor unknown", map[string]string{fileCentOSRelease: gone, fileRedhatRelease: gone}, Warn, "minor release is unknown"},
		{"centos 6", map[string]string{fileOSRelease: osr("centos", "6.10")}, Fail, "6.10"},
		{"centos 8", map[string]string{fileOSRelease: osr("centos", "8")}, Pass, "CentOS 8"},
		{"rhel 7.6", map[string]string{fileOSRelease: osr("rhel", "7.6"), fileCentOSRelease: gone}, Pass, "RHEL 7.6"},
		{"rhel 7.5", map[string]string{fileOSRelease: osr("rhel", "7.5")}, Fail, "RHEL 7.5"},
		{"rocky 8.8", map[string]string{fileOSRelease: osr("rocky", "8.8")}, Pass, "Rocky"},
		{"almalinux 9.3", map[string]string{fileOSRelease: osr("almalinux", "9.3")}, Pass, "AlmaLinux 9.3"},
		{"anolis 7.9", map[string]string{fileOSRelease: osr("anolis", "7.9")}, Pass, "Anolis OS 7.9"},
		{"anolis 7.2", map[string]string{fileOSRelease: osr("anolis", "7.2")}, Fail, "Anolis OS 7.2"},
		{"alinux 2.1903", map[string]string{fileOSRelease: osr("alinux", "2.1903")}, Pass, "Alibaba Cloud Linux 2.1903"},
		{"ubuntu 18.04", map[string]string{fileOSRelease: osr("ubuntu", "18.04")}, Pass, "Ubuntu 18.04"},
		{"ubuntu 22.04", map[string]string{fileOSRelease: osr("ubuntu", "22.04")}, Pass, "Ubuntu 22.04"},
		{"ubuntu 17.10", map[string]string{fileOSRelease: osr("ubuntu", "17.10")}, Fail, "Ubuntu 17.10"},
		{"debian", map[string]string{fileOSRelease: osr("debian", "12")}, Warn, "debian"},
		{"no ID", map[string]string{fileOSRelease: "NAME=Linux\n"}, Warn, "unknown"},
		{"ubuntu garbage version", map[string]string{fileOSRelease: osr("ubuntu", "bionic")}, Warn, "VERSION_ID"},
		{"missing", map[string]string{fileOSRelease: gone}, Skip, "etc/os-release"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := checkOSRelease(context.Background(), overlay(t, "centos79-clean", tt.files), Options{})
			if r.Status != tt.want || !strings.Contains(r.Detail, tt.say) {
				t.Fatalf("got %s %q; want %s mentioning %q", r.Status, r.Detail, tt.want, tt.say)
			}
		})
	}
}

func TestKernelVersion(t *testing.T) {
	tests := []struct {
		release string
		want    Status
	}{
		{"3.10.0-957.21.3.el7.x86_64", Pass},
		{"3.10.0-957.21.2.el7.x86_64", Fail},
		{"3.10.0-957.27.2.el7.x86_64", Pass},
		{"3.10.0-957.el7.x86_64", Fail},
		{"3.10.0-862.el7.x86_64", Fail},
		{"3.10.0-862.14.4.el7.x86_64", Fail},
		{"3.10.0-1062.el7.x86_64", Pass},
		{"3.10.0-1160.el7.x86_64", Pass},
		{"3.10.0-1160.119.1.el7.x86_64", Pass},
		{"3.10.0", Fail},
		{"3.10.108", Fail},
		{"3.9.0-1.el7", Fail},
		{"2.6.32-754.el6.x86_64", Fail},
		{"4.15.0-213-generic", Pass},
		{"4.19.91-27.an8.x86_64", Pass},
		{"5.14.0-362.el9.x86_64", Pass},
		{"6.8.0-45-generic", Pass},
		{"6.18.44", Pass},
		{"not-a-kernel", Skip},
	}
	for _, tt := range tests {
		t.Run(tt.release, func(t *testing.T) {
			r := checkKernel(context.Background(), NewSnapshot(map[string][]byte{fileOSReleaseK: []byte(tt.release + "\n")}), Options{})
			if r.Status != tt.want {
				t.Fatalf("%s: got %s (%s); want %s", tt.release, r.Status, r.Detail, tt.want)
			}
		})
	}
}

func TestMemoryAndPerfClass(t *testing.T) {
	const gib = 1 << 20 // KiB
	tests := []struct {
		name    string
		cpus    int
		kib     int64
		mem     Status
		perf    Status
		mbps    int
		memSays string
	}{
		{"2 GB instance reporting 1.7 GiB", 1, 17 * gib / 10, Pass, Pass, 200, "2 GB class"},
		{"2 GB instance reporting 1.9 GiB", 1, 19 * gib / 10, Pass, Pass, 200, "2 GB class"},
		{"1.6 GiB is not 2 GB", 1, 16 * gib / 10, Fail, Warn, 0, "below the 2 GB"},
		{"1 GB", 1, 1 * gib, Fail, Warn, 0, "below"},
		{"4 GB instance reporting 3.4 GiB, 2 vCPU", 2, 34 * gib / 10, Pass, Pass, 350, "4 GB class"},
		{"4 GB instance, 1 vCPU", 1, 36 * gib / 10, Pass, Pass, 200, "4 GB class"},
		{"3.3 GiB is the 2 GB class", 2, 33 * gib / 10, Pass, Pass, 200, "2 GB class"},
		{"8 GB, 4 vCPU", 4, 78 * gib / 10, Pass, Pass, 350, "8 GB class"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := overlay(t, "centos79-clean", map[string]string{
				fileCPUInfo: strings.Repeat("processor\t: 0\n\n", tt.cpus),
				fileMemInfo: "MemTotal:       " + itoa(int(tt.kib)) + " kB\n",
			})
			m := checkMem(context.Background(), s, Options{})
			if m.Status != tt.mem || !strings.Contains(m.Detail, tt.memSays) {
				t.Errorf("mem.total: %s %q; want %s mentioning %q", m.Status, m.Detail, tt.mem, tt.memSays)
			}
			p := checkPerfClass(context.Background(), s, Options{})
			if p.Status != tt.perf || p.ExpectedMbps == nil || *p.ExpectedMbps != tt.mbps {
				t.Errorf("perf.class: %s %v; want %s expected_mbps %d", p.Status, p.ExpectedMbps, tt.perf, tt.mbps)
			}
		})
	}
}

func TestWANInterfaceOverride(t *testing.T) {
	s := loadFixture(t, "centos79-clean")
	r := checkNICWAN(context.Background(), s, Options{WANInterface: "lo"})
	if r.Status != Warn || r.Interface != "lo" || !strings.Contains(r.Detail, "leaves via eth0") {
		t.Fatalf("--wan-if lo: %s %q; want warn naming the default route's eth0", r.Status, r.Detail)
	}
}

func TestICMPEchoFirewallAllowedBeforeDrop(t *testing.T) {
	// An accept for echo requests before a catch-all drop passes.
	ipt := "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n" +
		"-A INPUT -p icmp -m icmp --icmp-type echo-request -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n"
	s := overlay(t, "centos79-clean", map[string]string{fileIptables: ipt})
	if r := checkICMPEcho(context.Background(), s, Options{}); r.Status != Pass {
		t.Fatalf("icmp.echo = %s (%s); want pass", r.Status, r.Detail)
	}
	r := checkPortsUDP(context.Background(), s, Options{})
	if r.Status != Fail || !strings.Contains(r.Fix, "iptables -t filter -I INPUT -p udp -m multiport --dports 4500,12345,10000:10100,53,") &&
		!strings.Contains(r.Fix, "-m multiport --dports 53,500,789,801,4500,10000:10100,12345,27890,33336,43337,56543,62345 -j ACCEPT") {
		t.Fatalf("ports.udp under INPUT policy DROP: %s, fix %q", r.Status, r.Fix)
	}
	// The WAN interface matters: an accept on eth0 lets everything in.
	s = overlay(t, "centos79-clean", map[string]string{fileIptables: "*filter\n:INPUT DROP [0:0]\n-A INPUT -i eth+ -j ACCEPT\nCOMMIT\n"})
	if r := checkPortsUDP(context.Background(), s, Options{}); r.Status != Pass {
		t.Fatalf("ports.udp with -i eth+ ACCEPT: %s (%s); want pass", r.Status, r.Detail)
	}
	if r := checkPortsUDP(context.Background(), s, Options{WANInterface: "lo"}); r.Status != Fail {
		t.Fatalf("ports.udp with WAN lo and -i eth+ ACCEPT only: %s; want fail", r.Status)
	}
}

func TestOwnDaemonHoldsPortPasses(t *testing.T) {
	r := checkPortsUDP(context.Background(), loadFixture(t, "alinux3-vcped"), Options{})
	for _, f := range r.Findings {
		if f.Port == 4500 || f.Port == 12345 {
			t.Fatalf("vcped's own port reported: %+v", f)
		}
	}
	// The same socket owned by something else fails.
	s := overlay(t, "alinux3-vcped", map[string]string{fileSockets: `[{"proto":"udp","local":"0.0.0.0:4500","pid":55,"process":"socat"}]`,
		fileIptables: gone, fileNft: gone})
	r = checkPortsUDP(context.Background(), s, Options{})
	if r.Status != Fail || !strings.Contains(r.Detail, "socat (pid 55)") {
		t.Fatalf("socat on 4500: %s %q", r.Status, r.Detail)
	}
	// With no firewall view and nothing bound it is "not checked", not pass.
	s = overlay(t, "centos79-clean", map[string]string{fileIptables: gone, fileNft: gone})
	if r := checkPortsUDP(context.Background(), s, Options{}); r.Status != Skip {
		t.Fatalf("no firewall view: %s; want skip", r.Status)
	}
}

func TestLoopbackReservedPortIgnored(t *testing.T) {
	// systemd-resolved on 127.0.0.53:53 does not take UDP 53 from outside,
	// but a loopback socket on vcpe's own UDP 4500 does conflict.
	udp := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 1 2 0\n"
	s := overlay(t, "centos79-clean", map[string]string{fileUDP: udp})
	if r := checkPortsUDP(context.Background(), s, Options{}); r.Status != Pass {
		t.Fatalf("127.0.0.53:53: %s (%s); want pass", r.Status, r.Detail)
	}
	udp = strings.Replace(udp, "3500007F:0035", "0100007F:1194", 1)
	s = overlay(t, "centos79-clean", map[string]string{fileUDP: udp})
	if r := checkPortsUDP(context.Background(), s, Options{}); r.Status != Fail || !strings.Contains(r.Detail, "UDP 4500") {
		t.Fatalf("127.0.0.1:4500: %s (%s); want fail", r.Status, r.Detail)
	}
}

func TestHostServicesWireGuardAndDNS(t *testing.T) {
	udp := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0B0012C6:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 1 2 0\n"
	s := overlay(t, "centos79-clean", map[string]string{
		"sys/class/net/wg0/uevent":    "DEVTYPE=wireguard\nINTERFACE=wg0\n",
		"sys/class/net/wg0/operstate": "unknown\n",
		fileUDP:                       udp,
		fileSockets:                   `[{"proto":"udp","local":"198.18.0.11:53","pid":77,"process":"named"},{"proto":"udp","local":"0.0.0.0:1194","pid":78,"process":"openvpn"}]`,
	})
	r := checkHostServices(context.Background(), s, Options{})
	for _, want := range []string{"WireGuard", "wg0", "DNS server", "named (pid 77)", "OpenVPN"} {
		if !strings.Contains(r.Detail+r.Fix, want) {
			t.Errorf("host.services %q does not mention %q", r.Detail, want)
		}
	}
	if r.Status != Warn || len(r.Findings) != 3 {
		t.Fatalf("host.services: %s with %d findings; want warn with 3", r.Status, len(r.Findings))
	}
}

// fakeDialer hands out connections with a scripted behaviour.
type fakeDialer struct {
	tcpErr  error
	readErr error
	reply   bool
}

func (d fakeDialer) DialContext(_ context.Context, network, _ string) (net.Conn, error) {
	if network == "tcp" {
		if d.tcpErr != nil {
			return nil, d.tcpErr
		}
		a, b := net.Pipe()
		b.Close()
		return a, nil
	}
	return &fakeUDP{readErr: d.readErr, reply: d.reply}, nil
}

type fakeUDP struct {
	net.Conn
	readErr error
	reply   bool
}

func (c *fakeUDP) Write(b []byte) (int, error) { return len(b), nil }
func (c *fakeUDP) SetDeadline(time.Time) error { return nil }
func (c *fakeUDP) Close() error                { return nil }
func (c *fakeUDP) Read(b []byte) (int, error) {
	if c.reply {
		return copy(b, "ok"), nil
	}
	return 0, c.readErr
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestWANInternet(t *testing.T) {
	u, _ := url.Parse("https://198.18.0.1:8443")
	live := loadFixture(t, "centos79-clean")
	live.Live = true
	tests := []struct {
		name string
		snap *Snapshot
		o    Options
		want Status
		say  string
	}{
		{"root mode", loadFixture(t, "centos79-clean"), Options{Controller: u}, Skip, "--root"},
		{"no controller", live, Options{}, Skip, "--controller"},
		{"tcp refused", live, Options{Controller: u, Dialer: fakeDialer{tcpErr: syscall.ECONNREFUSED}}, Fail, "198.18.0.1:8443"},
		{"udp port unreachable", live, Options{Controller: u, Dialer: fakeDialer{readErr: &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNREFUSED)}}}, Fail, "port unreachable"},
		{"udp silence", live, Options{Controller: u, Dialer: fakeDialer{readErr: timeoutErr{}}}, Warn, "unconfirmed"},
		{"udp answer", live, Options{Controller: u, Dialer: fakeDialer{reply: true}}, Pass, "answered"},
		{"udp other error", live, Options{Controller: u, Dialer: fakeDialer{readErr: errors.New("boom")}}, Fail, "boom"},
		{"outside-in arrived", live, Options{Controller: u, Dialer: fakeDialer{readErr: timeoutErr{}}, OutsideIn: outsideInFake(OutsideInAnswer{Checked: true, Arrived: true, Detail: "probe from 198.18.0.1 arrived"}, nil)}, Pass, "confirmed"},
		{"outside-in blocked", live, Options{Controller: u, Dialer: fakeDialer{readErr: timeoutErr{}}, OutsideIn: outsideInFake(OutsideInAnswer{Checked: true, Detail: "never arrived", Fix: "allow inbound UDP 4500 in the security group"}, nil)}, Fail, "security group"},
		{"outside-in unchecked", live, Options{Controller: u, Dialer: fakeDialer{readErr: timeoutErr{}}, OutsideIn: outsideInFake(OutsideInAnswer{Detail: "in use; not root"}, nil)}, Warn, "not checked"},
		{"outside-in error", live, Options{Controller: u, Dialer: fakeDialer{readErr: timeoutErr{}}, OutsideIn: outsideInFake(OutsideInAnswer{}, errors.New("rate limited"))}, Warn, "rate limited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := checkWANInternet(context.Background(), tt.snap, tt.o)
			if r.Status != tt.want || !strings.Contains(r.Detail+r.Fix, tt.say) {
				t.Fatalf("got %s %q; want %s mentioning %q", r.Status, r.Detail, tt.want, tt.say)
			}
		})
	}
}

func outsideInFake(a OutsideInAnswer, err error) func(context.Context) (OutsideInAnswer, error) {
	return func(context.Context) (OutsideInAnswer, error) { return a, err }
}

// TestBranches covers the remaining branches, each by one edit of a fixture.
func TestBranches(t *testing.T) {
	ipt := func(rules ...string) string {
		return "*filter\n:INPUT ACCEPT [0:0]\n" + strings.Join(rules, "\n") + "\nCOMMIT\n"
	}
	nft := func(expr string) string {
		return `{"nftables":[{"table":{"family":"inet","name":"t"}},` +
			`{"chain":{"family":"inet","table":"t","name":"c","type":"filter","hook":"input","prio":0,"policy":"accept"}},` +
			`{"rule":{"family":"inet","table":"t","chain":"c","handle":7,"expr":` + expr + `}}]}`
	}
	tests := []struct {
		name  string
		files map[string]string
		o     Options
		id    CheckID
		want  Status
		say   string
	}{
		{"wan interface not under sys/class/net", map[string]string{"sys/class/net/eth0/operstate": gone, "sys/class/net/eth0/type": gone,
			"sys/class/net/eth0/mtu": gone, "sys/class/net/eth0/address": gone, "sys/class/net/eth0/uevent": gone, "sys/class/net/eth0/device": gone},
			Options{}, "nic.wan", Fail, "not under sys/class/net"},
		{"--wan-if another NIC", map[string]string{"sys/class/net/eth1/device": "x", "sys/class/net/eth1/operstate": "up\n",
			fileAddresses: `{"eth0":["198.18.0.11/24"],"eth1":["198.18.1.11/24"]}`}, Options{WANInterface: "eth1"}, "nic.wan", Warn, "leaves via eth0"},
		{"operstate unknown counts as up", map[string]string{"sys/class/net/eth0/operstate": "unknown\n"}, Options{}, "nic.wan", Pass, "state unknown"},
		{"no addresses file", map[string]string{fileAddresses: gone}, Options{}, "nic.wan", Skip, fileAddresses},
		{"no route file", map[string]string{fileRoute: gone}, Options{}, "nic.wan", Skip, fileRoute},
		{"iptables limit on icmp", map[string]string{fileIptables: ipt("-A INPUT -p icmp -m limit --limit 1/sec -j ACCEPT")}, Options{}, "flood.icmp", Warn, "-m limit"},
		{"iptables limit on icmp is not udp", map[string]string{fileIptables: ipt("-A INPUT -p icmp -m limit --limit 1/sec -j ACCEPT")}, Options{}, "flood.udp", Pass, "no rate limit"},
		{"ip6tables limit on icmpv6", map[string]string{fileIp6tables: "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p ipv6-icmp -m limit --limit 1/sec -j ACCEPT\nCOMMIT\n"}, Options{}, "flood.icmp", Warn, "ip6tables -t filter -D INPUT"},
		{"iptables connlimit on all protocols", map[string]string{fileIptables: ipt("-A INPUT -m connlimit --connlimit-above 100 -j DROP")}, Options{}, "flood.udp", Warn, "connlimit"},
		{"iptables recent on udp", map[string]string{fileIptables: ipt("-A INPUT -p udp -m recent --update --seconds 1 --hitcount 20 -j DROP")}, Options{}, "flood.udp", Warn, "recent"},
		{"tcp syn limit is not udp", map[string]string{fileIptables: ipt("-A INPUT -p tcp --syn -m limit --limit 10/sec -j ACCEPT")}, Options{}, "flood.udp", Pass, ""},
		{"nft quota on udp", map[string]string{fileNft: nft(`[{"match":{"op":"==","left":{"meta":{"key":"l4proto"}},"right":"udp"}},{"quota":{"val":100,"val_unit":"mbytes"}},{"accept":null}]`)}, Options{}, "flood.udp", Warn, "quota"},
		{"nft meter on icmp", map[string]string{fileNft: nft(`[{"match":{"op":"==","left":{"payload":{"protocol":"icmp","field":"type"}},"right":"echo-request"}},{"meter":{"name":"m","key":{"payload":{"protocol":"ip","field":"saddr"}},"stmt":{"limit":{"rate":5,"per":"second"}}}},{"accept":null}]`)}, Options{}, "flood.icmp", Warn, "meter"},
		{"nft dynamic set with limit", map[string]string{fileNft: nft(`[{"match":{"op":"==","left":{"payload":{"protocol":"udp","field":"dport"}},"right":4500}},{"set":{"op":"update","elem":{"payload":{"protocol":"ip","field":"saddr"}},"set":"@flood","stmt":[{"limit":{"rate":10,"per":"second","inv":true}}]}},{"drop":null}]`)}, Options{}, "flood.udp", Warn, "set"},
		{"nft goto chain that drops", map[string]string{fileNft: `{"nftables":[` +
			`{"chain":{"family":"ip","table":"t","name":"in","type":"filter","hook":"input","prio":0,"policy":"accept"}},` +
			`{"chain":{"family":"ip","table":"t","name":"udpin"}},` +
			`{"rule":{"family":"ip","table":"t","chain":"in","handle":2,"expr":[{"match":{"op":"==","left":{"meta":{"key":"l4proto"}},"right":"udp"}},{"goto":{"target":"udpin"}}]}},` +
			`{"rule":{"family":"ip","table":"t","chain":"udpin","handle":3,"expr":[{"match":{"op":"!=","left":{"payload":{"protocol":"udp","field":"dport"}},"right":{"set":[53,123]}}},{"drop":null}]}}]}`},
			Options{}, "ports.udp", Fail, "nft delete rule ip t udpin handle 3"},
		{"nft drop on another interface only", map[string]string{fileNft: nft(`[{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"eth1"}},{"drop":null}]`)}, Options{}, "ports.udp", Pass, ""},
		{"nft table of a container runtime", map[string]string{fileNft: `{"nftables":[{"table":{"family":"ip","name":"netavark"}}]}`}, Options{}, "host.services", Warn, "Podman"},
		{"no tc data", map[string]string{fileTC: gone}, Options{}, "throttle.tc", Skip, fileTC},
		{"ip_forward garbage", map[string]string{fileIPForward: "yes\n"}, Options{}, "ip.forward", Skip, "integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := overlay(t, "centos79-clean", tt.files)
			var r Result
			for _, c := range Catalogue() {
				if c.ID == tt.id {
					r = c.Run(context.Background(), s, tt.o)
				}
			}
			if r.Status != tt.want || !strings.Contains(r.Detail+"\n"+r.Fix, tt.say) {
				t.Fatalf("%s: got %s %q (fix %q); want %s mentioning %q", tt.id, r.Status, r.Detail, r.Fix, tt.want, tt.say)
			}
		})
	}
}

// byAddr dials each address with its own scripted behaviour, and records
// which addresses were dialled.
type byAddr struct {
	mu     *sync.Mutex
	dials  *[]string
	script map[string]fakeDialer
}

func (d byAddr) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	*d.dials = append(*d.dials, network+" "+addr)
	d.mu.Unlock()
	return d.script[addr].DialContext(ctx, network, addr)
}

// TestWANInternetHubGroup: with the hubs the controller names, wan.internet
// probes each of them instead of the controller's host (which may run no
// hub); one hub is enough to go on, a refusing hub is named.
func TestWANInternetHubGroup(t *testing.T) {
	u, _ := url.Parse("https://198.18.0.1:8443")
	live := loadFixture(t, "centos79-clean")
	live.Live = true
	refused := fakeDialer{readErr: &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNREFUSED)}}
	hubs := []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:4500"), netip.MustParseAddrPort("198.18.0.3:51820")}
	tests := []struct {
		name   string
		script map[string]fakeDialer
		want   Status
		say    string
	}{
		{"both answer", map[string]fakeDialer{"198.18.0.2:4500": {reply: true}, "198.18.0.3:51820": {reply: true}}, Pass, "198.18.0.3:51820 answered"},
		{"one refuses", map[string]fakeDialer{"198.18.0.2:4500": refused, "198.18.0.3:51820": {reply: true}}, Warn, "without a spare"},
		{"one silent, one refuses", map[string]fakeDialer{"198.18.0.2:4500": {readErr: timeoutErr{}}, "198.18.0.3:51820": refused}, Warn, "UDP 198.18.0.3:51820: refused"},
		{"both refuse", map[string]fakeDialer{"198.18.0.2:4500": refused, "198.18.0.3:51820": refused}, Fail, "UDP 198.18.0.2:4500: refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var dials []string
			tt.script["198.18.0.1:8443"] = fakeDialer{}
			o := Options{Controller: u, HubEndpoints: hubs, Dialer: byAddr{mu: &mu, dials: &dials, script: tt.script}}
			r := checkWANInternet(context.Background(), live, o)
			if r.Status != tt.want || !strings.Contains(r.Detail+r.Fix, tt.say) {
				t.Fatalf("got %s %q (fix %q); want %s mentioning %q", r.Status, r.Detail, r.Fix, tt.want, tt.say)
			}
			slices.Sort(dials)
			if want := []string{"tcp 198.18.0.1:8443", "udp 198.18.0.2:4500", "udp 198.18.0.3:51820"}; !slices.Equal(dials, want) {
				t.Errorf("dialled %v; want %v (no UDP to the controller's host)", dials, want)
			}
		})
	}
}
