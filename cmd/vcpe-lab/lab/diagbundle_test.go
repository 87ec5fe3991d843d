package lab

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/diag/bundle"
	"github.com/openvcpe/vcpe/diag/suite"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/internal/namespace"
	"github.com/openvcpe/vcpe/precheck"
	"github.com/openvcpe/vcpe/provision"
)

// restartVcped stops node's vcped (by the pid in its pid file) and starts
// it again with the same arguments, so a fresh handshake happens.
func restartVcped(t *testing.T, l *Lab, node string, n int) {
	t.Helper()
	startVcped(t, l, node, stopVcped(t, l, node), n)
}

// stopVcped stops node's vcped (by the pid in its pid file), waits until
// it is gone and returns its command line, for startVcped.
func stopVcped(t *testing.T, l *Lab, node string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.DeviceState(node), provision.PIDFile))
	if err != nil {
		t.Fatalf("vcped pid file of %s: %v", node, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 1 {
		t.Fatalf("vcped pid file of %s holds %q", node, b)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatalf("vcped %d on %s: %v", pid, node, err)
	}
	argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop vcped %d: %v", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("vcped %d on %s did not stop", pid, node)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return argv
}

// startVcped starts vcped on node with argv (stopVcped's) as the lab's
// daemon number n, and points the pid file at it as install would have.
func startVcped(t *testing.T, l *Lab, node string, argv []string, n int) {
	t.Helper()
	d, err := l.StartDaemon(node, fmt.Sprintf("vcped-restart-%d", n), argv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.DeviceState(node), provision.PIDFile), []byte(strconv.Itoa(d.PID)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

type captureJSON struct {
	Sent              map[string]int `json:"sent"`
	Received          map[string]int `json:"received"`
	InitiationsLeave  bool           `json:"initiations_leave"`
	ResponsesComeBack bool           `json:"responses_come_back"`
	Verdict           string         `json:"verdict"`
}

// captureAcrossRestart runs vcpe diag capture on node while its vcped
// restarts (and so handshakes).
func captureAcrossRestart(t *testing.T, ctx context.Context, l *Lab, b Binaries, node string, n int) (captureJSON, error) {
	t.Helper()
	cmd := l.Command(ctx, node, b.Vcpe, "diag", "capture", "--seconds", "4", "--json", "--state-dir", l.DeviceState(node))
	var out bytes.Buffer
	stderr := &namespace.Buffer{}
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// "capturing ..." is printed once the capture socket is open.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), "capturing"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("vcpe diag capture did not start: %s", stderr.String())
		}
	}
	restartVcped(t, l, node, n)
	err := cmd.Wait()
	var c captureJSON
	if jerr := json.Unmarshal(out.Bytes(), &c); jerr != nil {
		t.Fatalf("vcpe diag capture: %v (%v)\n%s\n%s", jerr, err, out.String(), stderr.String())
	}
	return c, err
}

// decodeFirst decodes the first JSON document in out (stderr may follow).
func decodeFirst(out string, v any) error {
	i := strings.Index(out, "{")
	if i < 0 {
		return fmt.Errorf("no JSON document in %q", out)
	}
	return json.NewDecoder(strings.NewReader(out[i:])).Decode(v)
}

type reachJSON struct {
	Target string `json:"target"`
	OK     bool   `json:"ok"`
	Ports  []struct {
		Proto  string `json:"proto"`
		Port   int    `json:"port"`
		Status string `json:"status"`
		Via    string `json:"via"`
		Fix    string `json:"fix"`
	} `json:"ports"`
}

func (r reachJSON) status(name string) string {
	for _, p := range r.Ports {
		if fmt.Sprintf("%s/%d", p.Proto, p.Port) == name {
			return p.Status + " via " + p.Via
		}
	}
	return "absent"
}

// TestDiagReachCaptureBundle runs the outside-in reach check, the
// WireGuard capture and the support bundle against the real system.
func TestDiagReachCaptureBundle(t *testing.T) {
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	plan := twoSites()
	defer func() {
		if t.Failed() {
			t.Logf("vcpe-hub:\n%s", l.DaemonLog("hub", "vcpe-hub"))
		}
	}()
	if err := l.StartSystem(ctx, b, plan); err != nil {
		t.Fatal(err)
	}
	fp, err := l.Run(ctx, "hub", b.Hub, "fingerprint", "--state", l.HubState())
	if err != nil {
		t.Fatal(err)
	}
	fp = strings.TrimSpace(fp)
	reachArgs := []string{b.Vcpe, "probe", "reach", "--controller", ControllerURL(), "--controller-fingerprint", fp, "--json"}

	t.Run("bundle holds every file and no secret", func(t *testing.T) {
		key, err := os.ReadFile(l.Path("site-a", "device.key"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := device.LoadState(l.DeviceState("site-a"))
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "site-a.tar.gz")
		cmd := l.Command(ctx, "site-a", b.Vcpe, "diag", "bundle", out, "--state-dir", l.DeviceState("site-a"))
		cmd.Env = append(os.Environ(), "VCPE_KEY="+strings.TrimSpace(string(key)))
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("vcpe diag bundle: %v\n%s", err, msg)
		}
		if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("bundle file mode: %v %v; want 0600", fi.Mode(), err)
		}
		dir := t.TempDir()
		if msg, err := exec.Command("tar", "-xzf", out, "-C", dir).CombinedOutput(); err != nil {
			t.Fatalf("tar -xzf: %v\n%s", err, msg)
		}
		secrets := map[string]string{
			"device key": strings.TrimSpace(string(key)), "private key": st.PrivateKey.String(),
			"private key (hex)": hex.EncodeToString(st.PrivateKey[:]), "credential": st.Credential,
		}
		n := 0
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			n++
			data, err := os.ReadFile(p)
			if err != nil {
				t.Error(err)
				return nil
			}
			for what, s := range secrets {
				if bytes.Contains(data, []byte(s)) {
					t.Errorf("%s contains the %s", p, what)
				}
			}
			return nil
		})
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files, m, err := bundle.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{bundle.FileManifest, bundle.FileStatus, bundle.FileState, bundle.FileConfig, bundle.FileProbes, bundle.FileLog, bundle.FileDiag} {
			if _, ok := files[want]; !ok {
				t.Errorf("bundle lacks %s", want)
			}
		}
		if len(m.Files)+1 != n {
			t.Errorf("manifest lists %d files; the archive holds %d besides it", len(m.Files), n-1)
		}
		var status struct{ State string }
		if json.Unmarshal(files[bundle.FileStatus], &status); status.State != "up" {
			t.Errorf("status.json state %q; want up:\n%s", status.State, files[bundle.FileStatus])
		}
		var cfg struct{ SN string }
		if json.Unmarshal(files[bundle.FileConfig], &cfg); cfg.SN != st.SN {
			t.Errorf("config.json is not the controller's config for %s:\n%s", st.SN, files[bundle.FileConfig])
		}
		var probes map[string]diag.Result
		if err := json.Unmarshal(files[bundle.FileProbes], &probes); err != nil || probes[suite.ProbeWANReflector].Stats.Received == 0 || probes[suite.ProbeTunnelHub].Stats.Received == 0 {
			t.Errorf("probes.json: %v\n%s", err, files[bundle.FileProbes])
		}
		var report struct {
			Findings []struct{ ID string } `json:"findings"`
		}
		if err := json.Unmarshal(files[bundle.FileDiag], &report); err != nil || len(report.Findings) == 0 {
			t.Errorf("diag.json holds no findings: %v\n%s", err, files[bundle.FileDiag])
		}
		if len(files[bundle.FileLog]) == 0 {
			t.Errorf("logs/vcped.log is empty; notes: %q", m.Notes)
		}
		snap, err := precheck.Load(filepath.Join(dir, bundle.DirSnapshot))
		if err != nil || len(snap.Interfaces()) == 0 {
			t.Errorf("precheck.Load of the bundle's snapshot: %v", err)
		}
	})

	t.Run("reach: open ports arrive, a port dropped on the site's input does not", func(t *testing.T) {
		out, err := l.Run(ctx, "site-b", reachArgs...)
		var r reachJSON
		if jerr := decodeFirst(out, &r); jerr != nil || err != nil {
			t.Fatalf("vcpe probe reach: %v %v\n%s", err, jerr, out)
		}
		for name, want := range map[string]string{"udp/4500": "arrived via capture", "udp/12345": "arrived via capture", "udp/10050": "arrived via listener", "tcp/10100": "arrived via listener"} {
			if got := r.status(name); got != want {
				t.Errorf("%s: %s; want %s", name, got, want)
			}
		}
		if r.Target != "198.18.0.12" || !r.OK {
			t.Errorf("target %s ok %v; want 198.18.0.12, ok", r.Target, r.OK)
		}
		l.Run(ctx, "site-b", "nft", "add table inet reachtest")
		l.Run(ctx, "site-b", "nft", "add chain inet reachtest in { type filter hook input priority 0 ; }")
		if _, err := l.Run(ctx, "site-b", "nft", "add rule inet reachtest in udp dport 10050 drop"); err != nil {
			t.Fatal(err)
		}
		defer l.Run(ctx, "site-b", "nft", "delete table inet reachtest")
		// A registered device needs no controller flags: its state names it.
		out, err = l.Run(ctx, "site-b", b.Vcpe, "probe", "reach", "--json", "--state-dir", l.DeviceState("site-b"))
		r = reachJSON{}
		decodeFirst(out, &r)
		if err == nil || r.OK || r.status("udp/10050") != "not_arrived via " || r.status("udp/10000") != "arrived via listener" {
			t.Errorf("with udp 10050 dropped: err %v ok %v udp/10050 %s udp/10000 %s; want exit 1, not arrived, the rest arrived\n%s", err, r.OK, r.status("udp/10050"), r.status("udp/10000"), out)
		}
	})

	t.Run("precheck wan.internet confirms UDP 4500 from outside", func(t *testing.T) {
		out, _ := l.Run(ctx, "site-a", b.Vcpe, "precheck", "--json", "--controller", ControllerURL(), "--controller-fingerprint", fp)
		var rep struct {
			Checks []struct{ ID, Status, Detail string }
		}
		decodeFirst(out, &rep)
		found := false
		for _, c := range rep.Checks {
			if c.ID == "wan.internet" {
				found = true
				if c.Status != "pass" || !strings.Contains(c.Detail, "confirmed") {
					t.Errorf("wan.internet: %s %q; want pass, confirmed from outside", c.Status, c.Detail)
				}
			}
		}
		if !found {
			t.Fatalf("no wan.internet in precheck output:\n%s", out)
		}
	})

	t.Run("the controller refuses a flood of reach requests", func(t *testing.T) {
		refused := 0
		for range 5 {
			out, err := l.Run(ctx, "site-a", reachArgs...)
			if err != nil && strings.Contains(out, "too many reach checks") {
				refused++
			}
		}
		if refused < 3 {
			t.Errorf("%d of 5 back-to-back reach requests refused; want at least 3", refused)
		}
	})

	t.Run("capture: initiations and responses on a healthy site", func(t *testing.T) {
		c, err := captureAcrossRestart(t, ctx, l, b, "site-a", 1)
		if err != nil || c.Sent["initiation"] == 0 || c.Received["response"] == 0 || !c.ResponsesComeBack {
			t.Errorf("healthy capture: %v sent %v received %v %q; want initiations out and responses in", err, c.Sent, c.Received, c.Verdict)
		}
		if _, err := l.WaitTunnel(ctx, b, "site-a"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("capture: only initiations when UDP 4500 is dropped at the hub", func(t *testing.T) {
		l.Run(ctx, "hub", "nft", "add table inet capturetest")
		l.Run(ctx, "hub", "nft", "add chain inet capturetest in { type filter hook input priority 0 ; }")
		if _, err := l.Run(ctx, "hub", "nft", "add rule inet capturetest in ip saddr 198.18.0.11 udp dport 4500 drop"); err != nil {
			t.Fatal(err)
		}
		defer l.Run(ctx, "hub", "nft", "delete table inet capturetest")
		c, err := captureAcrossRestart(t, ctx, l, b, "site-a", 2)
		if err == nil || c.Sent["initiation"] == 0 || c.Received["response"] != 0 || c.ResponsesComeBack || !strings.Contains(c.Verdict, "no response came back") {
			t.Errorf("blocked capture: exit %v sent %v received %v %q; want exit 1, initiations out, no response", err, c.Sent, c.Received, c.Verdict)
		}
	})
	// The production writer, then --from-bundle: the same findings as the
	// live run the bundle was made from (its diag.json), on a healthy
	// device, with vcped stopped, and with neither vcped nor a state. Last:
	// each bundle asks for an outside-in check, which the controller
	// rate-limits.
	roundTrip := func(t *testing.T, stateDir string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "b.tar.gz")
		if msg, err := l.Run(ctx, "site-a", b.Vcpe, "diag", "bundle", out, "--state-dir", stateDir); err != nil {
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
		var live suite.Report
		if err := json.Unmarshal(files[bundle.FileDiag], &live); err != nil || len(live.Findings) == 0 {
			t.Fatalf("diag.json holds no findings: %v\n%s", err, files[bundle.FileDiag])
		}
		r := runDiag(ctx, t, l, b, "site-a", "--from-bundle", out)
		if d := cmp.Diff(live.Findings, r.rep.Findings); d != "" {
			t.Errorf("--from-bundle findings differ from the live run's (-live +bundle):\n%s", d)
		}
		if r.rep.OK != live.OK || (r.code == 0) != live.OK {
			t.Errorf("--from-bundle: ok %v exit %d; live ok %v", r.rep.OK, r.code, live.OK)
		}
		t.Logf("top finding: %s %s (%d findings)", r.rep.Findings[0].ID, r.rep.Findings[0].Severity, len(r.rep.Findings))
	}
	t.Run("from-bundle gives the live findings: healthy", func(t *testing.T) {
		waitClean(ctx, t, l, b, "site-a", 40*time.Second)
		roundTrip(t, l.DeviceState("site-a"))
	})
	t.Run("from-bundle gives the live findings: vcped stopped", func(t *testing.T) {
		argv := stopVcped(t, l, "site-a")
		defer func() {
			startVcped(t, l, "site-a", argv, 9)
			if _, err := l.WaitTunnel(ctx, b, "site-a"); err != nil {
				t.Fatal(err)
			}
		}()
		roundTrip(t, l.DeviceState("site-a"))
		t.Run("and no state", func(t *testing.T) { roundTrip(t, t.TempDir()) })
	})
}
