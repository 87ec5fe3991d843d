package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/diag/suite"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
)

const (
	testCred   = "cred-0123456789abcdef"
	testDevKey = "devkey-ABCDEFGHIJ"
)

var (
	t0         = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	hubWAN     = netip.MustParseAddr("198.18.0.1")
	hubOverlay = netip.MustParseAddr("198.18.64.1")
	lanA       = netip.MustParsePrefix("198.19.1.0/24")
	lanB       = netip.MustParsePrefix("198.19.2.0/24")
	siteB      = netip.MustParseAddr("198.19.2.1")
)

func series(proto string, target netip.Addr, lost int) diag.Result {
	r := diag.Result{Protocol: proto, Target: target}
	for i := range 20 {
		s := diag.Sample{Seq: i, Sent: t0.Add(time.Duration(i) * 50 * time.Millisecond), Size: 84}
		if i >= lost {
			s.RTT = time.Millisecond
			s.Received = s.Sent.Add(s.RTT)
		}
		r.Samples = append(r.Samples, s)
	}
	r.Stats = diag.Summarize(r.Samples)
	return r
}

// healthyEvidence is what Collect gathers on a working device of the lab,
// with real secrets in its state and a host snapshot.
func healthyEvidence(t *testing.T) *suite.Evidence {
	k, err := api.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.DeviceConfig{Generation: 3, SN: "SN-A", InstanceName: "site-a", CCN: "corp",
		OverlayAddr: netip.MustParsePrefix("198.18.64.11/18"), HubOverlayAddr: hubOverlay,
		HubEndpoint: netip.AddrPortFrom(hubWAN, 4500), Routes: []netip.Prefix{lanB}, Advertised: []netip.Prefix{lanA},
		Targets: []api.ProbeTarget{{Prefix: lanB, Addr: siteB, SN: "SN-B"}}}
	st := &device.State{Version: 1, Controller: "https://198.18.0.1:8443", SN: "SN-A", PrivateKey: k, Credential: testCred,
		Advertise: []netip.Prefix{lanA}, Config: cfg}
	c := cfg
	snap := precheck.NewSnapshot(map[string][]byte{"proc/sys/net/ipv4/ip_forward": []byte("1\n"), "proc/version": []byte("Linux version 6.1\n")})
	rep := precheck.Run(t.Context(), snap, precheck.Options{})
	return &suite.Evidence{
		Time: t0, StateDir: "/var/lib/vcpe", State: st, Config: &c, Snapshot: snap, Precheck: &rep,
		Status: &dataplane.Status{Role: "active", State: dataplane.StateUp, Interface: "vcpe0", PublicKey: k.PublicKey(),
			Routes: []netip.Prefix{lanB}, Source: "daemon", Time: t0,
			Peers: []dataplane.PeerStatus{{Name: "hub", Endpoint: "198.18.0.1:4500", LastHandshake: t0.Add(-30 * time.Second)}}},
		Controller: &suite.Dial{Addr: netip.MustParseAddrPort("198.18.0.1:8443"), OK: true},
		Host: &suite.Host{TUN: "vcpe0", TUNPresent: true, TUNUp: true, TUNMTU: 1420, Routes: []netip.Prefix{lanB},
			Addresses: []suite.IfAddr{{Interface: "wan0", Prefix: netip.MustParsePrefix("198.18.0.11/24")}}},
		Probes: map[string]diag.Result{
			suite.ProbeWANICMP: series("icmp", hubWAN, 0), suite.ProbeWANReflector: series("udp", hubWAN, 0),
			suite.ProbeTunnelHub: series("udp", hubOverlay, 0), suite.ProbeTargetPrefix + siteB.String(): series("udp", siteB, 0),
		},
		ProbeErrors: map[string]string{},
		Targets:     cfg.Targets,
		MTU:         &diag.MTUResult{Protocol: "udp", Target: hubOverlay, MTU: 1420, RouteMTU: 1420, Verdict: diag.MTUFull},
	}
}

// roundTrip writes ev as the production writer does and reads it back.
func roundTrip(t *testing.T, ev *suite.Evidence) (*suite.Evidence, map[string][]byte) {
	t.Helper()
	rep := suite.NewReport(suite.Diagnose(*ev), ev.Time, 0, "live")
	b, secrets, err := FromEvidence(ev, Extras{Host: "site-a", Now: func() time.Time { return t0 }, Report: rep,
		Log: []byte("level=INFO device key " + testDevKey + "\n"), DeviceKey: testDevKey})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := b.WriteFile(p, secrets); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bundle mode = %v (%v); want 0600", fi.Mode(), err)
	}
	back, _, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	files, _, err := Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return back, files
}

// TestRoundTripGivesTheSameFindings: the production writer, then Load,
// then Diagnose give the live run's findings, on a healthy device and on
// broken ones; no secret is in any file.
func TestRoundTripGivesTheSameFindings(t *testing.T) {
	cases := map[string]func(e *suite.Evidence){
		"healthy": func(*suite.Evidence) {},
		"route deleted": func(e *suite.Evidence) {
			e.Host.Routes = nil
		},
		"daemon down": func(e *suite.Evidence) {
			e.Status, e.StatusError = nil, "connect to control socket /var/lib/vcpe/vcped.sock: no such file"
			e.Probes[suite.ProbeTunnelHub] = series("udp", hubOverlay, 20)
		},
		"no daemon, no state": func(e *suite.Evidence) {
			*e = suite.Evidence{Time: t0, StateDir: "/var/lib/vcpe", Snapshot: e.Snapshot, Precheck: e.Precheck, Host: e.Host,
				StateError: "read /var/lib/vcpe/device.json: no device state", StatusError: "connect: no such file"}
		},
		"revoked": func(e *suite.Evidence) {
			e.Config, e.ConfigError = nil, &api.Error{Code: api.CodeRevoked, Message: "device revoked"}
		},
		"controller unreachable": func(e *suite.Evidence) {
			e.Config, e.ControllerError = nil, "dial tcp 198.18.0.1:8443: connect: connection refused"
			e.Controller = &suite.Dial{Addr: netip.MustParseAddrPort("198.18.0.1:8443"), Refused: true, Error: "refused"}
		},
	}
	for name, plant := range cases {
		t.Run(name, func(t *testing.T) {
			ev := healthyEvidence(t)
			var secrets []string
			if ev.State != nil {
				secrets = append(Secrets(ev.State), testDevKey)
			}
			plant(ev)
			back, files := roundTrip(t, ev)
			if d := cmp.Diff(suite.Diagnose(*ev), suite.Diagnose(*back)); d != "" {
				t.Errorf("findings from the bundle differ (-live +bundle):\n%s", d)
			}
			for n, data := range files {
				for _, s := range secrets {
					if bytes.Contains(data, []byte(s)) {
						t.Errorf("%s holds the secret %q", n, s)
					}
				}
			}
			var live suite.Report
			if err := json.Unmarshal(files[FileDiag], &live); err != nil || len(live.Findings) == 0 {
				t.Errorf("diag.json holds no findings: %v", err)
			}
		})
	}
}

func TestStateIsRedactedAndReadBack(t *testing.T) {
	ev := healthyEvidence(t)
	back, files := roundTrip(t, ev)
	var sm map[string]any
	if err := json.Unmarshal(files[FileState], &sm); err != nil || sm["private_key"] != Redacted || sm["credential"] != Redacted || sm["sn"] != "SN-A" {
		t.Errorf("state.json = %s (%v)", files[FileState], err)
	}
	if back.State == nil || back.State.SN != "SN-A" || !back.State.PrivateKey.IsZero() || back.State.Credential != "" {
		t.Errorf("state read back = %+v; want SN-A without its secrets", back.State)
	}
	if !bytes.Contains(files[FileLog], []byte(Redacted)) {
		t.Errorf("the device key is not scrubbed from the log:\n%s", files[FileLog])
	}
	if back.Snapshot == nil || !back.Snapshot.Has("proc/sys/net/ipv4/ip_forward") {
		t.Error("snapshot not read back")
	}
}

func TestErrorDocuments(t *testing.T) {
	ev := healthyEvidence(t)
	ev.Status, ev.StatusError = nil, "vcped does not answer"
	ev.Config, ev.ControllerError = nil, "connection refused"
	back, files := roundTrip(t, ev)
	for _, name := range []string{FileStatus, FileConfig} {
		var doc map[string]string
		if err := json.Unmarshal(files[name], &doc); err != nil || doc["error"] == "" {
			t.Errorf("%s = %s; want an error document", name, files[name])
		}
	}
	if back.Status != nil || back.StatusError != "vcped does not answer" || back.Config != nil || back.ControllerError != "connection refused" {
		t.Errorf("read back status %v %q config %v %q; want the errors and no records", back.Status, back.StatusError, back.Config, back.ControllerError)
	}
}

func rawTarGz(t *testing.T, files map[string][]byte) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for n, d := range files {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o600, Size: int64(len(d)), Typeflag: tar.TypeReg})
		tw.Write(d)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestReadRejectsTampering(t *testing.T) {
	b := New("h", time.Unix(0, 0))
	b.Add(FileStatus, []byte("{}"))
	var buf bytes.Buffer
	if err := b.WriteTo(&buf, nil); err != nil {
		t.Fatal(err)
	}
	files, _, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		files map[string][]byte
		want  string
	}{
		"tampered": {map[string][]byte{FileManifest: files[FileManifest], FileStatus: []byte(`{"x":1}`)}, "SHA-256"},
		"missing":  {map[string][]byte{FileManifest: files[FileManifest]}, "missing"},
		"escape":   {map[string][]byte{FileManifest: files[FileManifest], FileStatus: []byte("{}"), "../evil": nil}, "escapes"},
		"unlisted": {map[string][]byte{FileManifest: files[FileManifest], FileStatus: []byte("{}"), "extra.json": []byte("{}")}, "not in the manifest"},
	} {
		if _, _, err := Read(bytes.NewReader(rawTarGz(t, c.files))); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Read: %v; want an error naming %q", name, err, c.want)
		}
	}
	if _, _, err := Read(bytes.NewReader([]byte("not gzip"))); err == nil {
		t.Error("Read accepted garbage")
	}
}

func TestReadBoundsEntries(t *testing.T) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for i := range MaxEntries + 1 {
		tw.WriteHeader(&tar.Header{Name: "d" + strings.Repeat("x", i%7) + "/", Typeflag: tar.TypeDir, Mode: 0o700})
	}
	tw.Close()
	gz.Close()
	if _, _, err := Read(&buf); err == nil || !strings.Contains(err.Error(), "entries") {
		t.Errorf("Read of %d entries: %v; want refused", MaxEntries+1, err)
	}
}

func TestLoadWithoutEvidenceFile(t *testing.T) {
	b := New("h", t0)
	b.Add(FileStatus, []byte("{}"))
	p := filepath.Join(t.TempDir(), "old.tar.gz")
	if err := b.WriteFile(p, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(p); err == nil || !strings.Contains(err.Error(), FileEvidence) {
		t.Errorf("Load of a bundle without %s: %v; want it named", FileEvidence, err)
	}
}

func FuzzRead(f *testing.F) {
	b := New("h", time.Unix(0, 0))
	b.Add(FileStatus, []byte("{}"))
	var buf bytes.Buffer
	b.WriteTo(&buf, nil)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		files, m, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, e := range m.Files {
			if _, ok := files[e.Name]; !ok {
				t.Fatalf("Read accepted a manifest listing missing %s", e.Name)
			}
		}
		Evidence(files) // must not panic
	})
}
