package diag

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/dataplane/netnstest"
)

// TestProbeBinary runs the real `vcpe probe` commands in the client
// namespace against the real reflector binary behind a router with a
// 1,300-byte link.
func TestProbeBinary(t *testing.T) {
	cl, _, srv := routed(t, 1300)
	startReflector(t, srv, cloudSrv)
	bin := netnstest.Binary(t, "cmd/vcpe")
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
