package precheck

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// ParseOSRelease parses os-release(5): KEY=value lines, values optionally
// quoted with " or ' and backslash-escaped. Comments and blank lines are
// skipped; malformed lines are ignored as the spec asks.
func ParseOSRelease(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		if n := len(v); n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n-1] == v[0] {
			v = v[1 : n-1]
			if strings.Contains(v, `\`) {
				var sb strings.Builder
				for i := 0; i < len(v); i++ {
					if v[i] == '\\' && i+1 < len(v) {
						i++
					}
					sb.WriteByte(v[i])
				}
				v = sb.String()
			}
		}
		out[k] = v
	}
	return out
}

// Version is a dotted release number such as 7.6 or 18.04.
type Version []int

// ParseVersion reads the leading dotted numbers of s ("7.6.1810" → 7.6.1810,
// "18.04 LTS" → 18.4). ok is false when s does not start with a number.
func ParseVersion(s string) (v Version, ok bool) {
	for part := range strings.SplitSeq(s, ".") {
		n := 0
		for n < len(part) && part[n] >= '0' && part[n] <= '9' {
			n++
		}
		if n == 0 || n > 9 {
			break
		}
		x, _ := strconv.Atoi(part[:n])
		v = append(v, x)
		if n < len(part) {
			break
		}
	}
	return v, len(v) > 0
}

// Compare returns -1, 0 or 1; missing components count as 0.
func (v Version) Compare(w Version) int {
	for i := range max(len(v), len(w)) {
		a, b := 0, 0
		if i < len(v) {
			a = v[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
	}
	return 0
}

var releaseFileRE = regexp.MustCompile(`release\s+([0-9]+(?:\.[0-9]+)*)`)

// ParseReleaseFile reads the version from a redhat-release/centos-release
// line ("CentOS Linux release 7.6.1810 (Core)").
func ParseReleaseFile(b []byte) (Version, bool) {
	m := releaseFileRE.FindSubmatch(b)
	if m == nil {
		return nil, false
	}
	return ParseVersion(string(m[1]))
}

// Kernel is a parsed kernel release string (uname -r).
type Kernel struct {
	Version Version // 3.10.0
	Release Version // the leading numbers after '-': 957.21.3 of 3.10.0-957.21.3.el7
	Raw     string
}

var kernelRE = regexp.MustCompile(`^([0-9]+)\.([0-9]+)(?:\.([0-9]+))?(?:-([0-9]+(?:\.[0-9]+)*))?`)

// ParseKernel parses a kernel release such as 3.10.0-957.21.3.el7.x86_64,
// 4.15.0-213-generic or 6.8.0.
func ParseKernel(s string) (Kernel, error) {
	s = strings.TrimSpace(s)
	m := kernelRE.FindStringSubmatch(s)
	if m == nil {
		return Kernel{}, fmt.Errorf("kernel release %q: want MAJOR.MINOR[.PATCH][-RELEASE]", s)
	}
	k := Kernel{Raw: s}
	for _, p := range m[1:4] {
		if p == "" {
			p = "0"
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return Kernel{}, fmt.Errorf("kernel release %q: %w", s, err)
		}
		k.Version = append(k.Version, n)
	}
	if m[4] != "" {
		k.Release, _ = ParseVersion(m[4])
	}
	return k, nil
}

// Socket is one line of /proc/net/{tcp,tcp6,udp,udp6}.
type Socket struct {
	Local  netip.AddrPort
	Remote netip.AddrPort
	State  uint8 // TCP state number; 0x0A is LISTEN, 0x07 (CLOSE) is an unconnected UDP socket
	UID    int
	Inode  uint64
}

// Socket states of interest.
const (
	stateEstablished = 0x01
	stateClose       = 0x07
	stateListen      = 0x0A
)

// ParseProcNet parses /proc/net/{tcp,tcp6,udp,udp6}.
func ParseProcNet(b []byte) ([]Socket, error) {
	var out []Socket
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	first := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if first {
			first = false
			if len(f) > 0 && f[0] == "sl" {
				continue
			}
		}
		if len(f) == 0 {
			continue
		}
		if len(f) < 10 {
			return nil, fmt.Errorf("proc/net line %q: want at least 10 fields", sc.Text())
		}
		local, err := parseHexAddrPort(f[1])
		if err != nil {
			return nil, err
		}
		remote, err := parseHexAddrPort(f[2])
		if err != nil {
			return nil, err
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("proc/net state %q: %w", f[3], err)
		}
		uid, _ := strconv.Atoi(f[7])
		inode, _ := strconv.ParseUint(f[9], 10, 64)
		out = append(out, Socket{Local: local, Remote: remote, State: uint8(st), UID: uid, Inode: inode})
	}
	return out, sc.Err()
}

// parseHexAddrPort decodes the kernel's "0100007F:1194" form: the address as
// host-endian 32-bit words, the port big-endian hex.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("proc/net address %q: want ADDR:PORT", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("proc/net port %q: %w", p, err)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("proc/net address %q: want 8 or 32 hex digits", a)
	}
	// Each 32-bit word is in host (little-endian on every supported arch) order.
	for i := 0; i < len(raw); i += 4 {
		w := binary.LittleEndian.Uint32(raw[i:])
		binary.BigEndian.PutUint32(raw[i:], w)
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// Route is one line of /proc/net/route.
type Route struct {
	Iface   string
	Dst     netip.Prefix
	Gateway netip.Addr
	Flags   uint32
	Metric  int
}

// Route flags.
const (
	rtfUp = 0x1
)

// ParseRoutes parses /proc/net/route.
func ParseRoutes(b []byte) ([]Route, error) {
	var out []Route
	sc := bufio.NewScanner(bytes.NewReader(b))
	first := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if first {
			first = false
			if len(f) > 0 && f[0] == "Iface" {
				continue
			}
		}
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("proc/net/route line %q: want 11 fields", sc.Text())
		}
		dst, err := parseHexAddr4(f[1])
		if err != nil {
			return nil, err
		}
		gw, err := parseHexAddr4(f[2])
		if err != nil {
			return nil, err
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil {
			return nil, fmt.Errorf("proc/net/route flags %q: %w", f[3], err)
		}
		metric, _ := strconv.Atoi(f[6])
		mask, err := parseHexAddr4(f[7])
		if err != nil {
			return nil, err
		}
		bits := 0
		for _, x := range mask.As4() {
			for ; x&0x80 != 0; x <<= 1 {
				bits++
			}
		}
		out = append(out, Route{Iface: f[0], Dst: netip.PrefixFrom(dst, bits).Masked(), Gateway: gw, Flags: uint32(flags), Metric: metric})
	}
	return out, sc.Err()
}

func parseHexAddr4(s string) (netip.Addr, error) {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil || len(s) != 8 {
		return netip.Addr{}, fmt.Errorf("proc/net/route address %q: want 8 hex digits", s)
	}
	var a [4]byte
	binary.LittleEndian.PutUint32(a[:], uint32(v))
	return netip.AddrFrom4(a), nil
}

// DefaultRoute returns the IPv4 default route with the lowest metric.
func DefaultRoute(routes []Route) (Route, bool) {
	var best Route
	found := false
	for _, r := range routes {
		if r.Dst.Bits() != 0 || r.Flags&rtfUp == 0 {
			continue
		}
		if !found || r.Metric < best.Metric {
			best, found = r, true
		}
	}
	return best, found
}

// ParseCPUCount counts the "processor" entries of /proc/cpuinfo.
func ParseCPUCount(b []byte) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, _, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "processor" {
			n++
		}
	}
	return n
}

// ParseMemTotalKiB returns MemTotal of /proc/meminfo in KiB.
func ParseMemTotalKiB(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("proc/meminfo MemTotal %q: want a number of kB", f[0])
		}
		return n, nil
	}
	return 0, fmt.Errorf("proc/meminfo: no MemTotal line")
}

// ParseSysctlInt reads a /proc/sys value holding one integer.
func ParseSysctlInt(b []byte) (int64, error) {
	s := strings.TrimSpace(string(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want an integer, got %q", s)
	}
	return n, nil
}

// ParseSSHDPorts returns the Port values of sshd_config (22 when none).
func ParseSSHDPorts(b []byte) []uint16 {
	var ports []uint16
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && strings.EqualFold(f[0], "Port") {
			if p, err := strconv.ParseUint(f[1], 10, 16); err == nil && p > 0 {
				ports = append(ports, uint16(p))
			}
		}
		if len(f) >= 1 && strings.EqualFold(f[0], "Match") {
			break // Port is not allowed in Match blocks
		}
	}
	if len(ports) == 0 {
		ports = []uint16{22}
	}
	return ports
}
