package profile

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
)

func TestStartCPU(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cpu.pprof")
	stop, err := StartCPU(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("profile at %s before stop: %v", path, err)
	}
	sum := sha256.Sum256(nil)
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
		sum = sha256.Sum256(sum[:])
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("profile is not gzip'd protobuf: starts % x", b[:min(len(b), 4)])
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("dir holds %d files, want the profile alone", len(ents))
	}
}

func TestStartCPUBadPath(t *testing.T) {
	_, err := StartCPU(filepath.Join(t.TempDir(), "missing", "cpu.pprof"))
	if err == nil || !strings.Contains(err.Error(), "cpu profile") {
		t.Fatalf("err = %v, want one naming the cpu profile", err)
	}
}

func TestStartCPUTwice(t *testing.T) {
	dir := t.TempDir()
	stop, err := StartCPU(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := StartCPU(filepath.Join(dir, "b")); err == nil {
		t.Fatal("a second profile started while one runs")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the failed start left %d files, want only the running one's", len(ents))
	}
}

func TestFlag(t *testing.T) {
	stop, err := Flag("", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("no --cpu-profile: %v", err)
	}
	stop()
	_, err = Flag(filepath.Join(t.TempDir(), "missing", "cpu.pprof"), slog.New(slog.DiscardHandler))
	var ue *cli.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--cpu-profile") {
		t.Fatalf("bad path: err = %v; want a usage error naming --cpu-profile", err)
	}
}
