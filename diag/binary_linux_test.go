package diag

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/internal/namespace"
)

// TestProbeBinary runs the real `vcpe probe` commands in the client
// namespace against the real reflector binary behind a router with a
// 1,300-byte link.
func TestProbeBinary(t *testing.T) {
	cl, _, srv := routed(t, 1300)
	startReflector(t, srv, cloudSrv)
	bin := namespace.Binary(t, "cmd/vcpe")
	vcpe := func(args ...string) (string, int) {
		out, err := cl.Try(bin, args...)
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out, 0
		case errors.As(err, &ee):
			return out, ee.ExitCode()
		}
		t.Fatalf("vcpe %v: %v", args, err)
		return "", -1
	}

	out, code := vcpe("probe", "udp", cloudSrv.String(), "-c", "3", "-i", "50ms", "--json")
	var res Result
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("probe udp --json: exit %d\n%s", code, out)
	}
	if res.Protocol != "udp" || res.Port != ReflectorPort || res.Stats.Sent != 3 || res.Stats.Received != 3 || len(res.Samples) != 3 {
		t.Errorf("probe udp --json: %+v", res)
	}

	out, code = vcpe("probe", "icmp", cloudSrv.String(), "-c", "2", "-i", "50ms", "--size", "200")
	if code != 0 || strings.Count(out, "200 bytes from 198.19.100.10: seq=") != 2 || !strings.Contains(out, "2 sent, 2 received, 0.0% loss") || !strings.Contains(out, "rtt min/avg/max/p50/p95") {
		t.Errorf("probe icmp: exit %d\n%s", code, out)
	}

	out, code = vcpe("probe", "udp", cloudSrv.String()+":9", "-c", "2", "-i", "50ms", "-W", "500ms")
	if code != 1 || !strings.Contains(out, "from 198.19.100.10: seq=0 port unreachable") || !strings.Contains(out, "nothing listens on UDP 9") {
		t.Errorf("probe udp to a closed port: exit %d; want 1 with port unreachable and the fix\n%s", code, out)
	}

	out, code = vcpe("probe", "icmp", cloudSrv.String(), "-c", "1", "--size", "1400", "--df")
	if code != 1 || !strings.Contains(out, "fragmentation needed (next-hop MTU 1300)") || !strings.Contains(out, "from 198.18.0.1") {
		t.Errorf("probe icmp --df --size 1400: exit %d\n%s", code, out)
	}

	out, code = vcpe("probe", "mtu", cloudSrv.String(), "--timeout", "500ms", "--json")
	var mr MTUResult
	if code != 0 || json.Unmarshal([]byte(out), &mr) != nil || mr.MTU != 1300 || mr.Verdict != MTUFragNeeded {
		t.Errorf("probe mtu --json: exit %d %+v\n%s", code, mr, out)
	}

	out, code = vcpe("probe", "mtu", cloudSrv.String(), "--udp", "--timeout", "500ms")
	if code != 0 || !strings.Contains(out, "path MTU to 198.19.100.10: 1300 (frag-needed)") || !strings.Contains(out, "router 198.18.0.1") {
		t.Errorf("probe mtu --udp: exit %d\n%s", code, out)
	}

	for _, args := range [][]string{
		{"probe", "icmp", "198.19.100.10", "-c", "0"},
		{"probe", "udp", "198.19.100.10", "--size", "20"},
		{"probe", "udp", "198.19.100.10:99999"},
		{"probe", "icmp", "2001:db8::1"},
		{"probe", "icmp", "198.19.100.10", "--source", "nonsense"},
		{"probe", "reflect", "--listen", "nonsense"},
	} {
		if out, code := vcpe(args...); code != 2 {
			t.Errorf("vcpe %v: exit %d; want 2 (usage)\n%s", args, code, out)
		}
	}
}

// TestProbeBinaryUnprivileged runs `vcpe probe` as an unprivileged user
// (nobody, no capabilities): ICMP falls back to the unprivileged ICMP
// socket when net.ipv4.ping_group_range allows it and otherwise fails with
// the sysctl to set; UDP probes and their ICMP errors need no privilege.
func TestProbeBinaryUnprivileged(t *testing.T) {
	cl, srv := pair(t)
	startReflector(t, srv, wanHub)
	// The test binary directory is private to root: copy vcpe where nobody
	// can run it.
	dir, err := os.MkdirTemp("", "vcpe-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "vcpe")
	data, err := os.ReadFile(namespace.Binary(t, "cmd/vcpe"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	nobody := func(args ...string) (string, int) {
		out, err := cl.Try("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", bin}, args...)...)
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out, 0
		case errors.As(err, &ee):
			return out, ee.ExitCode()
		}
		t.Fatalf("vcpe %v as nobody: %v", args, err)
		return "", -1
	}

	out, code := nobody("probe", "icmp", wanHub.String(), "-c", "1")
	if code != 1 || !strings.Contains(out, `sysctl -w net.ipv4.ping_group_range="65534 65534"`) {
		t.Errorf("ICMP as nobody without ping_group_range: exit %d; want 1 naming the sysctl\n%s", code, out)
	}
	cl.Run("sysctl", "-qw", "net.ipv4.ping_group_range=65534 65534")
	out, code = nobody("probe", "icmp", wanHub.String(), "-c", "2", "-i", "50ms")
	if code != 0 || !strings.Contains(out, "2 sent, 2 received") {
		t.Errorf("ICMP as nobody with ping_group_range: exit %d\n%s", code, out)
	}
	out, code = nobody("probe", "udp", wanHub.String(), "-c", "2", "-i", "50ms")
	if code != 0 || !strings.Contains(out, "2 sent, 2 received") {
		t.Errorf("UDP as nobody: exit %d\n%s", code, out)
	}
	out, code = nobody("probe", "udp", wanHub.String()+":9", "-c", "1")
	if code != 1 || !strings.Contains(out, "port unreachable") {
		t.Errorf("UDP to a closed port as nobody: exit %d\n%s", code, out)
	}
}
