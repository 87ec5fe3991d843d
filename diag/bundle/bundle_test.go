package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
)

const (
	testCred   = "cred-0123456789abcdef"
	testDevKey = "devkey-ABCDEFGHIJ"
)

func testState(t *testing.T) (string, *device.State) {
	dir := t.TempDir()
	k, err := api.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	st := &device.State{Controller: "https://198.18.0.1:8443", ControllerFingerprint: "sha256:00", SN: "SN1",
		PrivateKey: k, Credential: testCred,
		Config: api.DeviceConfig{SN: "SN1", HubEndpoint: netip.MustParseAddrPort("198.18.0.1:4500")}}
	if err := device.SaveState(dir, st); err != nil {
		t.Fatal(err)
	}
	return dir, st
}

func fakeSources(dir string, st *device.State) Sources {
	return Sources{
		StateDir: dir, Host: "site-a", Now: func() time.Time { return time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC) },
		Gather: func(context.Context) (*precheck.Snapshot, error) {
			return precheck.NewSnapshot(map[string][]byte{"proc/version": []byte("Linux version 6.1\n")}), nil
		},
		Status: func(string) (dataplane.Status, error) {
			return dataplane.Status{Role: "edge", State: dataplane.StateUp, PublicKey: st.PrivateKey.PublicKey()}, nil
		},
		Config: func(context.Context, *device.State) (api.DeviceConfig, error) {
			return api.DeviceConfig{}, errors.New("controller said 401 for credential " + testCred)
		},
		Probes: func(_ context.Context, c api.DeviceConfig) (map[string]diag.Result, map[string]error) {
			return map[string]diag.Result{"hub_wan_icmp": {Protocol: "icmp", Target: c.HubEndpoint.Addr()}}, map[string]error{"hub_overlay_icmp": errors.New("timeout")}
		},
		Logs: func(context.Context, string) ([]byte, error) {
			return []byte("level=INFO msg=up key=" + st.PrivateKey.String() + " device key " + testDevKey + "\n"), nil
		},
		DeviceKey: testDevKey,
	}
}

func TestCollectWriteReadScrubs(t *testing.T) {
	dir, st := testState(t)
	b, secrets, err := Collect(context.Background(), fakeSources(dir, st))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := b.WriteTo(&buf, secrets); err != nil {
		t.Fatal(err)
	}
	files, m, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{FileManifest, FileStatus, FileState, FileConfig, FileProbes, FileLog, FileDiag, DirSnapshot + "/proc/version"} {
		if _, ok := files[want]; !ok {
			t.Errorf("bundle lacks %s; has %v", want, b.Files())
		}
	}
	if len(m.Files) != len(files)-1 || m.Host != "site-a" || m.Version != Version {
		t.Errorf("manifest = %+v; want every file but itself, host site-a", m)
	}
	for name, data := range files {
		for _, s := range []string{st.PrivateKey.String(), testCred, testDevKey} {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s contains the secret %q", name, s)
			}
		}
	}
	if !bytes.Contains(files[FileLog], []byte(Redacted)) || !bytes.Contains(files[FileConfig], []byte(`"error"`)) {
		t.Errorf("log or config not as expected:\n%s\n%s", files[FileLog], files[FileConfig])
	}
	if strings.TrimSpace(string(files[FileDiag])) != "null" {
		t.Errorf("diag.json = %s; want null without a suite", files[FileDiag])
	}
	var sm map[string]any
	if err := json.Unmarshal(files[FileState], &sm); err != nil || sm["private_key"] != Redacted || sm["credential"] != Redacted || sm["sn"] != "SN1" {
		t.Errorf("state.json = %s (%v)", files[FileState], err)
	}
	var probes map[string]diag.Result
	if err := json.Unmarshal(files[FileProbes], &probes); err != nil || probes["hub_wan_icmp"].Target != netip.MustParseAddr("198.18.0.1") {
		t.Errorf("probes.json = %s (%v)", files[FileProbes], err)
	}
	if !strings.Contains(strings.Join(m.Notes, "\n"), "hub_overlay_icmp: timeout") {
		t.Errorf("notes %q do not record the failed probe", m.Notes)
	}
	// The snapshot loads with precheck.Load.
	snapDir := t.TempDir()
	for name, data := range files {
		if rel, ok := strings.CutPrefix(name, DirSnapshot+"/"); ok {
			p := filepath.Join(snapDir, filepath.FromSlash(rel))
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, data, 0o644)
		}
	}
	snap, err := precheck.Load(snapDir)
	if err != nil || !snap.Has("proc/version") {
		t.Fatalf("precheck.Load of the bundle's snapshot: %v", err)
	}
}

func TestWriteFileMode(t *testing.T) {
	dir, st := testState(t)
	b, secrets, err := Collect(context.Background(), fakeSources(dir, st))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := b.WriteFile(p, secrets); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bundle mode = %v (%v); want 0600", fi.Mode(), err)
	}
}

func TestCollectWithoutState(t *testing.T) {
	s := fakeSources(t.TempDir(), &device.State{})
	b, _, err := Collect(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b.files[FileConfig], []byte("no device state")) {
		t.Errorf("config.json = %s; want the missing state named", b.files[FileConfig])
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
	tampered := map[string][]byte{FileManifest: files[FileManifest], FileStatus: []byte(`{"x":1}`)}
	if _, _, err := Read(bytes.NewReader(rawTarGz(t, tampered))); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("Read of a tampered file: %v; want a SHA-256 mismatch", err)
	}
	missing := map[string][]byte{FileManifest: files[FileManifest]}
	if _, _, err := Read(bytes.NewReader(rawTarGz(t, missing))); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Read of a bundle lacking a listed file: %v; want it named missing", err)
	}
	escape := map[string][]byte{FileManifest: files[FileManifest], FileStatus: []byte("{}"), "../evil": nil}
	if _, _, err := Read(bytes.NewReader(rawTarGz(t, escape))); err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Errorf("Read of ../evil: %v; want refused", err)
	}
	if _, _, err := Read(bytes.NewReader([]byte("not gzip"))); err == nil {
		t.Error("Read accepted garbage")
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
	})
}

// TestReadCapsEntriesAndTotal: a bundle file from anyone cannot make Read
// hold more than maxEntries entries or maxTotalBytes in all.
func TestReadCapsEntriesAndTotal(t *testing.T) {
	many := map[string][]byte{}
	for i := range maxEntries + 1 {
		many[fmt.Sprintf("f%d", i)] = nil
	}
	if _, _, err := Read(bytes.NewReader(rawTarGz(t, many))); err == nil || !strings.Contains(err.Error(), "entries") {
		t.Errorf("Read of %d entries: %v; want refused", len(many), err)
	}
	// Three files just under the per-file cap, of zeros (gzip makes them
	// small on disk), exceed the total.
	big := make([]byte, maxFileSize)
	huge := map[string][]byte{"a": big, "b": big, "c": big}
	if _, _, err := Read(bytes.NewReader(rawTarGz(t, huge))); err == nil || !strings.Contains(err.Error(), "in all") {
		t.Errorf("Read of %d MiB: %v; want refused", 3*maxFileSize>>20, err)
	}
}
