package provision

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openvcpe/vcpe/internal/command"
)

func TestUnitPassesSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze not found (make deps installs systemd): %v", err)
	}
	dir := t.TempDir()
	exe, _ := filepath.EvalSymlinks("/bin/true")
	unit, err := Unit(UnitOptions{Vcped: exe, StateDir: "/var/lib/vcpe"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "Restart=always", "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW", "ProtectSystem=strict", "NoNewPrivileges=yes"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	verify := func(content []byte) (string, error) {
		p := filepath.Join(dir, UnitName)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", p).CombinedOutput()
		return string(out), err
	}
	if out, err := verify(unit); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The check is not vacuous: a broken unit is reported.
	broken := strings.Replace(string(unit), "Type=notify", "Type=bogus", 1)
	if out, err := verify([]byte(broken)); err == nil && !strings.Contains(out, "bogus") {
		t.Errorf("systemd-analyze verify accepted Type=bogus: %s", out)
	}
}

func TestUnitRejectsUnsafePaths(t *testing.T) {
	for _, o := range []UnitOptions{
		{Vcped: "vcped", StateDir: "/var/lib/vcpe"},
		{Vcped: "/usr/bin/vcped", StateDir: "/var/lib/my vcpe"},
		{Vcped: "/usr/bin/vcped", StateDir: "/var/lib/%n"},
	} {
		if _, err := Unit(o); err == nil {
			t.Errorf("Unit(%+v) accepted an unsafe path", o)
		}
	}
}

type fakeSystemctl struct {
	mu     sync.Mutex
	calls  []string
	active bool
}

func (f *fakeSystemctl) run(_ context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := name + " " + strings.Join(args, " ")
	f.calls = append(f.calls, call)
	switch {
	case strings.Contains(call, "is-active"):
		if !f.active {
			return nil, fmt.Errorf("inactive")
		}
	case strings.Contains(call, "restart"):
		f.active = true
	case strings.Contains(call, "disable --now"):
		f.active = false
	}
	return nil, nil
}

func TestInstallUnitRecordsAndUndoes(t *testing.T) {
	root := t.TempDir()
	sc := &fakeSystemctl{}
	j, _ := OpenJournal(filepath.Join(root, "state"), fakeSysctl{}, fixedNow)
	j.Run = command.Func(sc.run)
	path := filepath.Join(root, UnitName)
	unit := []byte("[Unit]\n")
	if changed, err := j.InstallUnit(context.Background(), path, unit); err != nil || !changed {
		t.Fatalf("install: changed=%v err=%v", changed, err)
	}
	if changed, err := j.InstallUnit(context.Background(), path, unit); err != nil || changed {
		t.Fatalf("second install of an identical active unit: changed=%v err=%v; want unchanged", changed, err)
	}
	if err := j.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("unit file left after undo: %v", err)
	}
	want := []string{"systemctl daemon-reload", "systemctl enable vcped.service", "systemctl restart vcped.service",
		"systemctl is-active --quiet vcped.service", "systemctl disable --now vcped.service", "systemctl daemon-reload"}
	if strings.Join(sc.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("systemctl calls:\n%s\nwant:\n%s", strings.Join(sc.calls, "\n"), strings.Join(want, "\n"))
	}
}
