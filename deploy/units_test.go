package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/internal/namespace"
	"github.com/openvcpe/vcpe/provision"
)

// TestVcpedUnitIsTheInstallUnit: the unit the vcpe package ships is the
// one vcpe install writes, for the package's paths.
func TestVcpedUnitIsTheInstallUnit(t *testing.T) {
	want, err := provision.Unit(provision.UnitOptions{Vcped: "/usr/bin/vcped", StateDir: "/var/lib/vcpe"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("systemd/vcped.service")
	if err != nil {
		t.Fatal(err)
	}
	body := func(b []byte) string { // without the leading comment lines
		lines := strings.Split(string(b), "\n")
		for len(lines) > 0 && strings.HasPrefix(lines[0], "#") {
			lines = lines[1:]
		}
		return strings.Join(lines, "\n")
	}
	if body(got) != body(want) {
		t.Errorf("deploy/systemd/vcped.service differs from provision.Unit: regenerate it from provision.Unit\n got:\n%s\nwant:\n%s", body(got), body(want))
	}
}

// TestHubUnit checks the directives the hub's unit promises.
func TestHubUnit(t *testing.T) {
	b, err := os.ReadFile("systemd/vcpe-hub.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, d := range []string{
		"Type=notify", "WatchdogSec=", "Restart=on-failure", "CapabilityBoundingSet=CAP_NET_ADMIN\n",
		"AmbientCapabilities=CAP_NET_ADMIN\n", "ProtectSystem=strict", "StateDirectory=vcpe-hub",
		"StateDirectoryMode=0700", "ConditionPathExists=/etc/vcpe-hub/vcpe-hub.conf",
		"EnvironmentFile=/etc/vcpe-hub/vcpe-hub.conf", "NoNewPrivileges=yes",
	} {
		if !strings.Contains(unit, d) {
			t.Errorf("vcpe-hub.service lacks %q", strings.TrimSpace(d))
		}
	}
}

// TestUnitsVerify runs systemd-analyze verify on both units, with the
// binaries they name stood in by the test binary.
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		namespace.Skipf(t, "systemd-analyze not found (make deps installs it)")
	}
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vcped.service", "vcpe-hub.service"} {
		b, err := os.ReadFile(filepath.Join("systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		unit := strings.ReplaceAll(string(b), "/usr/bin/vcpe-hub ", self+" ")
		unit = strings.ReplaceAll(unit, "/usr/bin/vcped ", self+" ")
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(unit), 0o644)
		out, err := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput()
		// Only findings about this unit count (the host's own units may
		// have their own).
		var ours []string
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, name) {
				ours = append(ours, line)
			}
		}
		if err != nil || len(ours) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, strings.Join(ours, "\n"))
		}
	}
}

// TestMaintainerScriptsParse runs sh -n on every maintainer script.
func TestMaintainerScriptsParse(t *testing.T) {
	scripts, _ := filepath.Glob("scripts/*/*.sh")
	if len(scripts) != 6 {
		t.Fatalf("maintainer scripts %v; want 3 per package", scripts)
	}
	for _, s := range scripts {
		if out, err := exec.Command("sh", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", s, err, out)
		}
	}
}
