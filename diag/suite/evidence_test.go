package suite

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/precheck"
)

func plantedEvidence(t *testing.T) Evidence {
	e := healthy()
	e.Host.Routes = e.Host.Routes[1:] // 198.19.2.0/24 deleted
	k, err := api.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	e.State.PrivateKey = k
	e.State.Credential = "cred-0123456789abcdef"
	e.Snapshot = precheck.NewSnapshot(map[string][]byte{"proc/sys/net/ipv4/ip_forward": []byte("1\n")})
	return e
}

// TestSaveLoadGivesTheSameFindings: Diagnose on evidence read back from a
// saved directory judges exactly as it did live, and the directory holds
// no secret.
func TestSaveLoadGivesTheSameFindings(t *testing.T) {
	e := plantedEvidence(t)
	dir := t.TempDir()
	if err := e.Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"status.json", "state.json", "config.json", "probes.json", "evidence.json", "snapshot"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("saved evidence lacks %s: %v", name, err)
		}
	}
	secrets := []string{e.State.PrivateKey.String(), e.State.Credential}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a secret", p)
			}
		}
		return nil
	})
	got, err := LoadEvidence(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Diagnose(e), Diagnose(*got)); d != "" {
		t.Errorf("findings from the saved evidence differ (-live +loaded):\n%s", d)
	}
	if got.Snapshot == nil || !got.Snapshot.Has("proc/sys/net/ipv4/ip_forward") {
		t.Error("snapshot not read back")
	}
}

func TestLoadBundle(t *testing.T) {
	e := plantedEvidence(t)
	dir := t.TempDir()
	if err := e.Save(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	for _, top := range []string{"", "vcpe-bundle-x/"} {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		filepath.WalkDir(filepath.Join(dir, "b"), func(p string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(filepath.Join(dir, "b"), p)
			if d.IsDir() || err != nil {
				return err
			}
			b, _ := os.ReadFile(p)
			tw.WriteHeader(&tar.Header{Name: top + filepath.ToSlash(rel), Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg})
			tw.Write(b)
			return nil
		})
		tw.Close()
		zw.Close()
		f := filepath.Join(dir, "bundle.tar.gz")
		os.WriteFile(f, buf.Bytes(), 0o600)
		got, err := LoadBundle(f)
		if err != nil {
			t.Fatalf("top %q: %v", top, err)
		}
		fs := Diagnose(*got)
		if fs[0].ID != "routes.match" {
			t.Errorf("top %q: top finding %s; want routes.match", top, fs[0].ID)
		}
	}
}

func TestLoadBundleRefusesEscapes(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "../evil", Mode: 0o600, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	zw.Close()
	f := filepath.Join(t.TempDir(), "b.tar.gz")
	os.WriteFile(f, buf.Bytes(), 0o600)
	if _, err := LoadBundle(f); err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Errorf("LoadBundle with ../evil: %v; want an escape error", err)
	}
	os.WriteFile(f, []byte("not gzip"), 0o600)
	if _, err := LoadBundle(f); err == nil {
		t.Error("LoadBundle of a non-gzip file: no error")
	}
}

func TestTextNamesTopFindingAndNoColourWithoutTTY(t *testing.T) {
	e := healthy()
	e.Host.Routes = nil
	rep := NewReport(Diagnose(e), t0, 0, "live")
	var b strings.Builder
	if err := rep.WriteText(&b, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, "TOP FINDING: Learned routes missing") || !strings.Contains(out, "ip route replace 198.19.2.0/24 dev vcpe0 proto 118 table 51820") {
		t.Errorf("text output:\n%s", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour codes without colour")
	}
	for _, h := range []string{"Configuration\n", "Service link\n", "Internet quality\n"} {
		if !strings.Contains(out, h) {
			t.Errorf("no %q group", h)
		}
	}
}
