package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// captureStderr runs f with os.Stderr redirected and returns what it wrote.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	f()
	os.Stderr = old
	w.Close()
	var b bytes.Buffer
	b.ReadFrom(r)
	return b.String()
}

func TestInstallWithoutTerminalPointsAtYes(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	var code int
	msg := captureStderr(t, func() {
		code = run([]string{"install", "--vcped", "/bin/true", "--state-dir", state})
	})
	if code != 2 || !strings.Contains(msg, "--yes") {
		t.Errorf("vcpe install with no terminal: exit %d, %q; want 2 and a pointer to --yes", code, msg)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state dir created by a refused install: %v", err)
	}
}

func TestInstallYesBadInputExitsTwo(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("sn: X\nadvertize: [198.19.1.0/24]\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--advertise", "198.19.1.0/33"}, "--advertise"},
		{[]string{"--config", cfg}, `unknown key "advertize"`},
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, "--config"},
		{[]string{"--service", "upstart", "--advertise", "198.19.1.0/24", "--key-file", cfg}, "--service"},
	} {
		var code int
		msg := captureStderr(t, func() {
			code = run(append([]string{"install", "--yes", "--vcped", "/bin/true", "--state-dir", filepath.Join(dir, "s")}, c.args...))
		})
		if code != 2 || !strings.Contains(msg, c.want) {
			t.Errorf("install --yes %v: exit %d, %q; want 2 naming %q", c.args, code, msg, c.want)
		}
	}
}
