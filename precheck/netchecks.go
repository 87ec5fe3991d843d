package precheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func checkNICWAN(_ context.Context, s *Snapshot, o Options) Result {
	name, def, err := wanIface(s, o)
	if err != nil {
		return skip(err)
	}
	if def == nil {
		return Result{Status: Fail, Interface: name, Detail: "no IPv4 default route: the device cannot reach the Internet",
			Fix: "add one: ip route add default via GATEWAY dev IF (and make it persistent in the network configuration)"}
	}
	r := Result{Interface: name}
	if !slices.Contains(s.Interfaces(), name) {
		r.Status, r.Detail = Fail, fmt.Sprintf("interface %s (of the default route) is not under sys/class/net", name)
		r.Fix = "pick the Internet-facing interface with --wan-if IF (see: ip -4 route show default)"
		return r
	}
	state := "unknown"
	if b, err := s.Read(ifPath(name, "operstate")); err == nil {
		state = strings.TrimSpace(string(b))
	}
	if state != "up" && state != "unknown" {
		r.Status, r.Detail = Fail, fmt.Sprintf("WAN interface %s is %s", name, state)
		r.Fix = fmt.Sprintf("bring it up: ip link set %s up (and check the cable or the instance's network attachment)", name)
		return r
	}
	addrs, err := addresses(s)
	if err != nil {
		r2 := skip(err)
		r2.Interface = name
		return r2
	}
	var v4 []string
	for _, p := range addrs[name] {
		if p.Addr().Is4() {
			v4 = append(v4, p.String())
		}
	}
	if len(v4) == 0 {
		r.Status, r.Detail = Fail, fmt.Sprintf("WAN interface %s has no IPv4 address", name)
		r.Fix = fmt.Sprintf("give it one: ip addr add ADDRESS/PREFIX dev %s (or fix DHCP)", name)
		return r
	}
	via := ""
	if def.Iface != name {
		via = fmt.Sprintf(" (the default route leaves via %s)", def.Iface)
	}
	if !s.Has(ifPath(name, "device")) {
		kind := ifaceKind(s, name)
		r.Status = Warn
		r.Detail = fmt.Sprintf("WAN interface %s (%s)%s is a virtual interface (%s), not an independent NIC", name, strings.Join(v4, ", "), via, kind)
		r.Fix = "run vcpe on the host's own NIC (the instance's primary network interface), or name it with --wan-if IF"
		return r
	}
	if via != "" {
		r.Status, r.Detail = Warn, fmt.Sprintf("WAN interface %s (%s)%s", name, strings.Join(v4, ", "), via)
		r.Fix = fmt.Sprintf("route the Internet through %s, or drop --wan-if to use %s", name, def.Iface)
		return r
	}
	r.Status, r.Detail = Pass, fmt.Sprintf("default route via %s on %s (%s), a NIC, state %s", def.Gateway, name, strings.Join(v4, ", "), state)
	return r
}

func checkWANInternet(ctx context.Context, s *Snapshot, o Options) Result {
	if !s.Live {
		return skipf("live only: the controller is not reached when judging a saved snapshot (--root)")
	}
	if o.Controller == nil {
		return skipf("no controller given: pass --controller https://HOST:8443 to check it")
	}
	u := o.Controller
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80"}[u.Scheme]
		if port == "" {
			port = "443"
		}
	}
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	tcpAddr := net.JoinHostPort(host, port)
	udpAddrs := []string{net.JoinHostPort(host, "4500")}
	if len(o.HubEndpoints) > 0 {
		udpAddrs = udpAddrs[:0]
		for _, ep := range o.HubEndpoints {
			udpAddrs = append(udpAddrs, ep.String())
		}
	}
	var tcpErr error
	udpResults := make([]Result, len(udpAddrs))
	var wg sync.WaitGroup
	wg.Go(func() {
		c, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		conn, err := d.DialContext(c, "tcp", tcpAddr)
		if err == nil {
			conn.Close()
		}
		tcpErr = err
	})
	for i, a := range udpAddrs {
		wg.Go(func() { udpResults[i] = probeUDP(ctx, d, a, timeout) })
	}
	wg.Wait()
	udpRes := anyHub(udpResults)
	if tcpErr != nil {
		return Result{Status: Fail, Detail: fmt.Sprintf("controller TCP %s: %v", tcpAddr, tcpErr),
			Fix: fmt.Sprintf("allow outbound TCP to %s in the firewall and security group, and check --controller", tcpAddr)}
	}
	if o.OutsideIn != nil && udpRes.Status != Fail {
		udpRes = outsideIn(ctx, o, udpRes)
	}
	udpRes.Detail = fmt.Sprintf("controller TCP %s reachable; %s", tcpAddr, udpRes.Detail)
	return udpRes
}

// anyHub folds the UDP probes of the hubs into one verdict: the tunnel
// needs one hub, so one hub that is not refused is enough to go on, but a
// hub that refuses costs the group its redundancy (warn, naming it); all
// refused fails.
func anyHub(rs []Result) Result {
	if len(rs) == 1 {
		return rs[0]
	}
	out := Result{Status: Fail}
	var details []string
	var failed []Result
	for _, r := range rs {
		details = append(details, r.Detail)
		switch {
		case r.Status == Fail:
			failed = append(failed, r)
		case r.Status == Warn && out.Status != Pass, r.Status == Pass:
			out.Status, out.Fix = r.Status, r.Fix
		}
	}
	out.Detail = strings.Join(details, "; ")
	switch {
	case out.Status == Fail:
		out.Fix = failed[0].Fix
	case len(failed) > 0:
		out.Status = Warn
		out.Fix = failed[0].Fix + " (the tunnel can start through another hub of the group, without a spare)"
	}
	return out
}

// outsideIn replaces the outbound UDP 4500 probe's verdict by the
// controller's outside-in answer; when the check itself cannot run, the
// probe's verdict stands with the reason added.
func outsideIn(ctx context.Context, o Options, probe Result) Result {
	a, err := o.OutsideIn(ctx)
	switch {
	case err != nil:
		probe.Detail += fmt.Sprintf("; outside-in check not done: %v", err)
		return probe
	case !a.Checked:
		probe.Detail += fmt.Sprintf("; outside-in check: UDP 4500 not checked: %s", a.Detail)
		return probe
	case a.Arrived:
		return Result{Status: Pass, Detail: "UDP 4500 from outside confirmed: " + a.Detail}
	}
	return Result{Status: Fail, Detail: "UDP 4500 does not arrive from outside: " + a.Detail, Fix: a.Fix}
}

// probeUDP sends one datagram on a connected UDP socket: an ICMP port
// unreachable comes back as ECONNREFUSED (fail); silence cannot be told from
// a filter (warn: unconfirmed); an answer passes.
func probeUDP(ctx context.Context, d Dialer, addr string, timeout time.Duration) Result {
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return Result{Status: Fail, Detail: fmt.Sprintf("UDP %s: %v", addr, err),
			Fix: "check the controller address given with --controller"}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	refused := Result{Status: Fail, Detail: fmt.Sprintf("UDP %s: refused (ICMP port unreachable)", addr),
		Fix: fmt.Sprintf("make sure the hub listens on UDP 4500 and nothing between here and %s rejects UDP 4500", addr)}
	if _, err := conn.Write([]byte("vcpe-precheck\n")); err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return refused
		}
		return Result{Status: Fail, Detail: fmt.Sprintf("UDP %s: %v", addr, err), Fix: "allow outbound UDP 4500"}
	}
	buf := make([]byte, 512)
	_, err = conn.Read(buf)
	var ne net.Error
	switch {
	case err == nil:
		return Result{Status: Pass, Detail: fmt.Sprintf("UDP %s answered", addr)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return refused
	case errors.As(err, &ne) && ne.Timeout():
		return Result{Status: Warn, Detail: fmt.Sprintf("UDP %s: no answer and no rejection in %s, unconfirmed (the controller's outside-in check confirms it)", addr, timeout),
			Fix: "allow outbound UDP 4500 to the hub; once registered, the controller's outside-in check confirms the path"}
	default:
		return Result{Status: Fail, Detail: fmt.Sprintf("UDP %s: %v", addr, err), Fix: "allow outbound UDP 4500"}
	}
}

func checkRemoteLogon(_ context.Context, s *Snapshot, _ Options) Result {
	ports := []uint16{22}
	note := ""
	if b, err := s.Read(fileSSHDConfig); err == nil {
		ports = ParseSSHDPorts(b)
		if !slices.Contains(ports, 22) {
			ports = append(ports, 22)
		}
	} else {
		note = " (no etc/ssh/sshd_config)"
	}
	socks, err := bound(s, "tcp")
	if err != nil {
		return skip(err)
	}
	for _, b := range socks {
		if slices.Contains(ports, b.Local.Port()) {
			return Result{Status: Pass, Detail: fmt.Sprintf("%s listens on TCP %s", ownerName(b), b.Local)}
		}
	}
	return Result{Status: Warn, Detail: fmt.Sprintf("nothing listens on TCP %s%s: remote logon for support will not work", joinPorts(ports), note),
		Fix: "start the SSH server: systemctl enable --now sshd (ssh on Ubuntu)"}
}

func ownerName(b boundSocket) string {
	if b.Owner != nil && b.Owner.Process != "" {
		return b.Owner.Process
	}
	return "a process"
}

func joinPorts(ps []uint16) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

// vpnProcesses are other IPsec/VPN daemons, by process name.
var vpnProcesses = map[string]string{
	"charon": "strongSwan", "charon-systemd": "strongSwan", "starter": "strongSwan",
	"pluto": "Libreswan", "openvpn": "OpenVPN", "wg-quick": "WireGuard", "wireguard-go": "WireGuard",
}

// containerTables maps nftables table name prefixes to the runtime owning them.
var containerTables = []struct{ prefix, runtime string }{
	{"docker", "Docker"}, {"kube-proxy", "Kubernetes (kube-proxy)"}, {"cni", "CNI (Kubernetes/Podman)"},
	{"netavark", "Podman (netavark)"}, {"cilium", "Cilium"}, {"calico", "Calico"},
}

// containerChains maps iptables chain prefixes to the runtime owning them.
var containerChains = []struct{ prefix, runtime string }{
	{"DOCKER", "Docker"}, {"KUBE-", "Kubernetes (kube-proxy)"}, {"CNI-", "CNI (Kubernetes/Podman)"},
	{"NETAVARK", "Podman (netavark)"}, {"CILIUM", "Cilium"}, {"cali-", "Calico"},
}

func checkHostServices(_ context.Context, s *Snapshot, _ Options) Result {
	var found []Finding
	add := func(f Finding) {
		for _, g := range found {
			if g.Service == f.Service && g.Process == f.Process && g.Port == f.Port {
				return
			}
		}
		found = append(found, f)
	}
	var owners []SocketOwner
	_ = readJSON(s, fileSockets, &owners)
	for _, o := range owners {
		if svc, ok := vpnProcesses[o.Process]; ok {
			add(Finding{Service: svc, Process: o.Process, PID: o.PID, Reason: "VPN daemon running",
				Fix: fmt.Sprintf("stop and disable it: systemctl disable --now %s (or kill %d)", serviceUnit(svc), o.PID)})
		}
	}
	for _, ifc := range s.Interfaces() {
		if ifaceKind(s, ifc) == "wireguard" {
			add(Finding{Service: "WireGuard", Reason: "WireGuard interface " + ifc,
				Fix: fmt.Sprintf("remove it if it is not needed: ip link del %s (wg-quick down %s)", ifc, ifc)})
		}
	}
	checked := []string{}
	for _, proto := range []string{"udp", "tcp"} {
		socks, err := bound(s, proto)
		if err != nil {
			continue
		}
		checked = append(checked, proto)
		for _, b := range socks {
			port := b.Local.Port()
			if b.Local.Addr().IsLoopback() {
				continue
			}
			svc := ""
			switch {
			case port == 53:
				svc = "DNS server"
			case proto == "tcp" && (port == 80 || port == 443):
				svc = "web server"
			}
			if svc == "" {
				continue
			}
			f := Finding{Service: svc, Proto: proto, Port: port, Reason: fmt.Sprintf("%s listens on %s %s", b.who(), strings.ToUpper(proto), b.Local)}
			if b.Owner != nil {
				f.PID, f.Process = b.Owner.PID, b.Owner.Process
			}
			f.Fix = fmt.Sprintf("stop it or move it off %s %d: systemctl disable --now %s", strings.ToUpper(proto), port, orUnit(f.Process))
			add(f)
		}
	}
	if rs, err := iptables(s, fileIptables); err == nil {
		for _, t := range rs.Tables {
			for _, c := range t.Chains {
				for _, cc := range containerChains {
					if strings.HasPrefix(c.Name, cc.prefix) {
						add(Finding{Service: cc.runtime, Rule: fmt.Sprintf("iptables -t %s chain %s", t.Name, c.Name),
							Reason: "container runtime owns firewall chains",
							Fix:    "run vcpe on a host without a container runtime, or make sure its chains do not drop vcpe's ports"})
						break
					}
				}
			}
		}
	}
	if rs, err := nftables(s); err == nil {
		for _, tb := range rs.Tables {
			for _, ct := range containerTables {
				if strings.HasPrefix(strings.ToLower(tb.Name), ct.prefix) {
					add(Finding{Service: ct.runtime, Rule: fmt.Sprintf("nft table %s %s", tb.Family, tb.Name),
						Reason: "container runtime owns firewall chains",
						Fix:    "run vcpe on a host without a container runtime, or make sure its chains do not drop vcpe's ports"})
					break
				}
			}
		}
	}
	// One finding per runtime is enough.
	found = dedupRuntimes(found)
	if len(checked) == 0 {
		return skip(&MissingError{Path: fileUDP + " and " + fileTCP, Reason: "socket tables not gathered"})
	}
	if len(found) == 0 {
		return Result{Status: Pass, Detail: "no other VPN daemon, WireGuard interface, DNS or web server, or container runtime firewall chains"}
	}
	var d, fx []string
	for _, f := range found {
		d = append(d, f.Service+": "+f.Reason)
		fx = append(fx, f.Fix)
	}
	return Result{Status: Warn, Findings: found, Detail: strings.Join(d, "; "), Fix: strings.Join(uniq(fx), "; ")}
}

func dedupRuntimes(fs []Finding) []Finding {
	seen := map[string]bool{}
	var out []Finding
	for _, f := range fs {
		if f.Reason == "container runtime owns firewall chains" {
			if seen[f.Service] {
				continue
			}
			seen[f.Service] = true
		}
		out = append(out, f)
	}
	return out
}

func uniq(ss []string) []string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func serviceUnit(svc string) string {
	switch svc {
	case "strongSwan":
		return "strongswan"
	case "Libreswan":
		return "ipsec"
	case "OpenVPN":
		return "openvpn"
	}
	return "wg-quick@IF"
}

func orUnit(p string) string {
	if p == "" {
		return "SERVICE"
	}
	return p
}

func checkIPForward(_ context.Context, s *Snapshot, _ Options) Result {
	b, err := s.Read(fileIPForward)
	if err != nil {
		return skip(err)
	}
	v, err := ParseSysctlInt(b)
	if err != nil {
		return skipf(fileIPForward + ": " + err.Error())
	}
	if v == 0 {
		return Result{Status: Warn, Detail: "IPv4 forwarding is off (vcpe install turns it on)",
			Fix: "nothing to do before install; to turn it on now: sysctl -w net.ipv4.ip_forward=1"}
	}
	return Result{Status: Pass, Detail: "IPv4 forwarding is on"}
}

// shapingKinds are qdiscs that shape or delay traffic, and tc's policer.
var shapingKinds = map[string]bool{"tbf": true, "htb": true, "hfsc": true, "cake": true, "netem": true, "police": true, "cbq": true}

func checkThrottle(_ context.Context, s *Snapshot, o Options) Result {
	name, _, err := wanIface(s, o)
	if err != nil {
		return skip(err)
	}
	if name == "" {
		return skipf("no WAN interface: no IPv4 default route (see nic.wan)")
	}
	var tc []TCEntry
	if err := readJSON(s, fileTC, &tc); err != nil {
		r := skip(err)
		r.Interface = name
		return r
	}
	var found []Finding
	var fixes []string
	for _, e := range tc {
		if e.Dev != name || !shapingKinds[e.Kind] {
			continue
		}
		f := Finding{Service: e.Kind, Reason: fmt.Sprintf("%s on %s parent %s", e.Kind, name, e.Parent)}
		switch {
		case e.Kind == "police":
			f.Fix = fmt.Sprintf("tc filter del dev %s parent %s", name, e.Parent)
		case e.Parent == "root":
			f.Fix = fmt.Sprintf("tc qdisc del dev %s root", name)
		default:
			f.Fix = fmt.Sprintf("tc qdisc del dev %s parent %s", name, e.Parent)
		}
		found = append(found, f)
		fixes = append(fixes, f.Fix)
	}
	if len(found) == 0 {
		return Result{Status: Pass, Interface: name, Detail: fmt.Sprintf("no shaping qdisc or policer on %s", name)}
	}
	var d []string
	for _, f := range found {
		d = append(d, f.Reason)
	}
	return Result{Status: Warn, Interface: name, Findings: found,
		Detail: "traffic on the WAN interface is shaped: " + strings.Join(d, "; "),
		Fix:    strings.Join(uniq(fixes), "; ")}
}
