package lab

import (
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/internal/namespace"
)

// requireTools skips (fails under VCPE_REQUIRE_PRIVILEGED) without the
// commands; make deps installs them.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			namespace.Skipf(t, "%s not found (make deps installs it)", n)
		}
	}
}

// hostPaths are what the packages own or create on the host. The test
// refuses to run where any exists: it installs into the real root file
// system and purges afterwards.
var hostPaths = []string{"/usr/bin/vcpe", "/usr/bin/vcped", "/usr/bin/vcpe-hub", "/var/lib/vcpe", "/var/lib/vcpe-hub",
	"/etc/vcpe-hub", "/usr/lib/systemd/system/vcped.service", "/usr/lib/systemd/system/vcpe-hub.service"}

func requireCleanHost(t *testing.T) {
	t.Helper()
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); err == nil {
			namespace.Skipf(t, "%s exists: this host has vcpe installed; the package test would replace and purge it", p)
		}
	}
	for _, pkg := range []string{"vcpe", "vcpe-hub"} {
		if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output(); err == nil && strings.Contains(string(out), "installed") {
			namespace.Skipf(t, "package %s is installed on this host (%s)", pkg, out)
		}
	}
}

// buildPackages runs make packages for this machine's architecture into a
// temporary directory and returns the paths of the four packages.
func buildPackages(t *testing.T) (debs, rpms map[string]string) {
	t.Helper()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("make", "-C", filepath.Dir(strings.TrimSpace(string(root))), "packages", "PKG_ARCHS="+runtime.GOARCH, "DIST="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make packages: %v\n%s", err, out)
	}
	debs, rpms = map[string]string{}, map[string]string{}
	for _, pkg := range []string{"vcpe", "vcpe-hub"} {
		d, _ := filepath.Glob(filepath.Join(dir, pkg+"_*_"+runtime.GOARCH+".deb"))
		r, _ := filepath.Glob(filepath.Join(dir, pkg+"-[0-9]*.rpm"))
		if len(d) != 1 || len(r) != 1 {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("packages of %s: deb %v rpm %v; dist has %v", pkg, d, r, entries)
		}
		debs[pkg], rpms[pkg] = d[0], r[0]
	}
	return debs, rpms
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPackages builds the packages, installs the debs with dpkg on this
// host, checks what they hold, removes them (state kept) and purges them
// (nothing left); it inspects the rpms with rpm and rpmlint; and it runs
// the Ansible device role inside a lab node against the lab's hub.
func TestPackages(t *testing.T) {
	t.Parallel() // waits on processes and the network, little CPU: runs beside the other long ones (see the Makefile's E2E_PARALLEL)
	namespace.RequireRoot(t)
	requireTools(t, "make", "dpkg", "rpm", "rpmlint", "systemd-analyze", "ansible-playbook")
	requireCleanHost(t)
	debs, rpms := buildPackages(t)
	t.Run("deb", func(t *testing.T) { testDebs(t, debs) })
	t.Run("rpm", func(t *testing.T) { testRpms(t, rpms) })
	t.Run("ansible device role", func(t *testing.T) { testAnsibleDevice(t, debs["vcpe"]) })
	t.Run("ansible hub role", func(t *testing.T) { testAnsibleHub(t, debs["vcpe-hub"]) })
}

// ansiblePlay runs playbook with vars (a 0600 file) and extra -e
// arguments, in node's namespace when node is set, and returns the
// play's changed count.
func ansiblePlay(t *testing.T, ctx context.Context, l *Lab, node, playbook, varsFile string, extra ...string) (changed int, out string) {
	t.Helper()
	root, _ := exec.Command("go", "env", "GOMOD").Output()
	roles := filepath.Join(filepath.Dir(strings.TrimSpace(string(root))), "deploy", "ansible", "roles")
	argv := append([]string{"ansible-playbook", "-i", "localhost,", "-c", "local", playbook, "-e", "@" + varsFile}, extra...)
	var cmd *exec.Cmd
	if node != "" {
		cmd = l.Command(ctx, node, argv...)
	} else {
		cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	}
	tmp := filepath.Join(filepath.Dir(varsFile), "ansible-tmp")
	cmd.Env = append(os.Environ(), "ANSIBLE_ROLES_PATH="+roles, "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCAL_TEMP="+tmp, "ANSIBLE_REMOTE_TEMP="+tmp)
	b, err := cmd.CombinedOutput()
	out = string(b)
	m := recap.FindStringSubmatch(out)
	if err != nil || m == nil || m[4] != "0" {
		t.Fatalf("ansible-playbook %v: %v\n%s", extra, err, out)
	}
	fmt.Sscan(m[2], &changed)
	return changed, out
}

// testAnsibleHub runs the vcpe_hub role (no systemd here: the service is
// not managed) twice and with state: absent and purge.
func testAnsibleHub(t *testing.T, deb string) {
	t.Cleanup(func() { exec.Command("dpkg", "--purge", "vcpe-hub").Run() })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	work := t.TempDir()
	vars, _ := json.Marshal(map[string]any{
		"vcpe_hub_package_file":      deb,
		"vcpe_hub_endpoint":          "198.18.0.1:4500",
		"vcpe_hub_cloud_prefixes":    []string{"198.19.100.0/24"},
		"vcpe_hub_manage_service":    false,
		"ansible_python_interpreter": "/usr/bin/python3",
	})
	varsFile := filepath.Join(work, "vars.json")
	os.WriteFile(varsFile, vars, 0o600)
	playbook := filepath.Join(work, "hub.yml")
	os.WriteFile(playbook, []byte("- hosts: localhost\n  roles: [vcpe_hub]\n"), 0o600)
	if c, out := ansiblePlay(t, ctx, nil, "", playbook, varsFile, "-e", "vcpe_hub_state=present"); c == 0 {
		t.Errorf("first run reported no change:\n%s", out)
	}
	conf, err := os.ReadFile("/etc/vcpe-hub/vcpe-hub.conf")
	if err != nil || !strings.Contains(string(conf), `VCPE_HUB_SERVE_ARGS="--listen :8443 --hub-endpoint 198.18.0.1:4500 --cloud-prefix 198.19.100.0/24"`) {
		t.Errorf("hub configuration: %v\n%s", err, conf)
	}
	if c, out := ansiblePlay(t, ctx, nil, "", playbook, varsFile, "-e", "vcpe_hub_state=present"); c != 0 {
		t.Errorf("second run: changed=%d; want 0\n%s", c, out)
	}
	if c, out := ansiblePlay(t, ctx, nil, "", playbook, varsFile, "-e", "vcpe_hub_state=absent", "-e", "vcpe_hub_purge=true"); c == 0 {
		t.Errorf("state: absent reported no change:\n%s", out)
	}
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is left after state: absent with purge", p)
		}
	}
}

func testDebs(t *testing.T, debs map[string]string) {
	t.Cleanup(func() { exec.Command("dpkg", "--purge", "vcpe", "vcpe-hub").Run() })
	run(t, "dpkg", "-i", debs["vcpe"], debs["vcpe-hub"])
	files := map[string][]string{}
	for _, pkg := range []string{"vcpe", "vcpe-hub"} {
		for _, p := range strings.Split(strings.TrimSpace(run(t, "dpkg", "-L", pkg)), "\n") {
			fi, err := os.Lstat(p)
			if err != nil {
				t.Errorf("%s lists %s: %v", pkg, p, err)
				continue
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != 0 || st.Gid != 0 {
				t.Errorf("%s: owner %d:%d; want root:root", p, st.Uid, st.Gid)
			}
			want := os.FileMode(0o644)
			switch {
			case fi.IsDir():
				want = 0o755 | os.ModeDir
			case strings.HasPrefix(p, "/usr/bin/"):
				want = 0o755
			}
			if fi.Mode() != want {
				t.Errorf("%s: mode %v; want %v", p, fi.Mode(), want)
			}
			if !fi.IsDir() {
				files[pkg] = append(files[pkg], p)
			}
		}
	}
	for _, want := range []string{"/usr/bin/vcpe", "/usr/bin/vcped", "/usr/lib/systemd/system/vcped.service",
		"/usr/share/man/man8/vcpe-install.8.gz", "/usr/share/man/man8/vcped.8.gz", "/usr/share/bash-completion/completions/vcpe",
		"/usr/share/zsh/vendor-completions/_vcpe", "/usr/share/fish/vendor_completions.d/vcpe.fish"} {
		if !contains(files["vcpe"], want) {
			t.Errorf("package vcpe lacks %s", want)
		}
	}
	for _, want := range []string{"/usr/bin/vcpe-hub", "/usr/lib/systemd/system/vcpe-hub.service", "/etc/vcpe-hub/vcpe-hub.conf.example",
		"/usr/share/man/man8/vcpe-hub-serve.8.gz", "/usr/share/man/man8/vcpe-hub-backup.8.gz", "/usr/share/bash-completion/completions/vcpe-hub"} {
		if !contains(files["vcpe-hub"], want) {
			t.Errorf("package vcpe-hub lacks %s", want)
		}
	}
	for _, unit := range []string{"vcped.service", "vcpe-hub.service"} {
		out, _ := exec.Command("systemd-analyze", "verify", "--man=no", "/usr/lib/systemd/system/"+unit).CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, unit) {
				t.Errorf("systemd-analyze verify %s: %s", unit, line)
			}
		}
	}
	for _, bin := range []string{"/usr/bin/vcpe", "/usr/bin/vcped", "/usr/bin/vcpe-hub"} {
		if out := run(t, bin, "--version"); !strings.Contains(out, "version") {
			t.Errorf("%s --version: %q", bin, out)
		}
		// Static: no program interpreter and no shared libraries, so any
		// glibc (CentOS 7 and later) runs it.
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		libs, _ := f.ImportedLibraries()
		if f.Section(".interp") != nil || len(libs) > 0 {
			t.Errorf("%s is dynamically linked (libraries %v)", bin, libs)
		}
		f.Close()
	}
	// Nothing starts on install: no daemon, no state.
	for _, p := range []string{"/var/lib/vcpe", "/var/lib/vcpe-hub"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists right after install; nothing should run before vcpe install or configuration", p)
		}
	}

	// State made by the daemons, and the operator's hub configuration.
	for _, p := range []string{"/var/lib/vcpe/device.json", "/var/lib/vcpe-hub/controller.db", "/etc/vcpe-hub/vcpe-hub.conf"} {
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte("state\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "dpkg", "--remove", "vcpe", "vcpe-hub")
	for _, p := range []string{"/usr/bin/vcpe", "/usr/bin/vcpe-hub", "/usr/lib/systemd/system/vcped.service"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is left after dpkg --remove", p)
		}
	}
	for _, p := range []string{"/var/lib/vcpe/device.json", "/var/lib/vcpe-hub/controller.db", "/etc/vcpe-hub/vcpe-hub.conf"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("dpkg --remove did not keep %s: %v", p, err)
		}
	}
	run(t, "dpkg", "--purge", "vcpe", "vcpe-hub")
	for _, pkg := range []string{"vcpe", "vcpe-hub"} {
		for _, p := range files[pkg] {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s is left after purge", p)
			}
		}
		if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).CombinedOutput(); err == nil && strings.TrimSpace(string(out)) != "" && !strings.Contains(string(out), "not-installed") {
			t.Errorf("dpkg still knows %s after purge: %s", pkg, out)
		}
	}
	for _, p := range []string{"/var/lib/vcpe", "/var/lib/vcpe-hub", "/etc/vcpe-hub", "/usr/share/doc/vcpe", "/usr/share/doc/vcpe-hub"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is left after purge", p)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func testRpms(t *testing.T, rpms map[string]string) {
	want := map[string][]string{
		"vcpe": {"/usr/bin/vcpe", "/usr/bin/vcped", "/usr/lib/systemd/system/vcped.service", "/usr/share/man/man8/vcpe-install.8.gz",
			"/usr/share/zsh/site-functions/_vcpe", "/usr/share/licenses/vcpe/LICENSE"},
		"vcpe-hub": {"/usr/bin/vcpe-hub", "/usr/lib/systemd/system/vcpe-hub.service", "/etc/vcpe-hub/vcpe-hub.conf.example",
			"/usr/share/man/man8/vcpe-hub-serve.8.gz"},
	}
	for pkg, path := range rpms {
		list := strings.Split(strings.TrimSpace(run(t, "rpm", "-qlp", path)), "\n")
		for _, w := range want[pkg] {
			if !contains(list, w) {
				t.Errorf("rpm %s lacks %s", pkg, w)
			}
		}
		scripts := run(t, "rpm", "-qp", "--scripts", path)
		for _, s := range []string{"preuninstall scriptlet", "postinstall scriptlet", "systemctl"} {
			if !strings.Contains(scripts, s) {
				t.Errorf("rpm %s scripts lack %q:\n%s", pkg, s, scripts)
			}
		}
		docs := run(t, "rpm", "-qdp", path)
		if !strings.Contains(docs, "/usr/share/man/man8/") {
			t.Errorf("rpm %s marks no man page as documentation:\n%s", pkg, docs)
		}
	}
	root, _ := exec.Command("go", "env", "GOMOD").Output()
	cfg := filepath.Join(filepath.Dir(strings.TrimSpace(string(root))), "deploy", "rpmlint.toml")
	if out, err := exec.Command("rpmlint", "-c", cfg, rpms["vcpe"], rpms["vcpe-hub"]).CombinedOutput(); err != nil || !strings.Contains(string(out), " 0 errors") {
		t.Errorf("rpmlint: %v\n%s", err, out)
	}
}

var recap = regexp.MustCompile(`localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

// testAnsibleDevice runs the vcpe_device role with a local connection
// inside a lab node: install against the lab's hub, again (no change),
// then state: absent; nothing of vcpe is left.
func testAnsibleDevice(t *testing.T, deb string) {
	t.Cleanup(func() { exec.Command("dpkg", "--purge", "vcpe").Run() })
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	fp, issued, err := l.StartControlPlane(ctx, b, twoSites())
	if err != nil {
		t.Fatal(err)
	}
	a := issued[0]
	key, err := os.ReadFile(a.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	before := settledHostState(t, l, a.Node)
	work := t.TempDir()
	uapi := l.Path(a.Node, "uapi")
	os.MkdirAll(uapi, 0o700)
	vars := map[string]any{
		"vcpe_package_file":           deb,
		"vcpe_controller":             ControllerURL(),
		"vcpe_controller_fingerprint": fp,
		"vcpe_sn":                     a.SN,
		"vcpe_device_key":             strings.TrimSpace(string(key)),
		"vcpe_advertise":              []string{LANA.String()},
		"vcpe_state_dir":              l.DeviceState(a.Node),
		"vcpe_config_dir":             filepath.Join(work, "etc-vcpe"),
		"vcpe_install_args":           []string{"--service", "process", "--uapi-dir", uapi},
		"ansible_python_interpreter":  "/usr/bin/python3",
	}
	varsFile := filepath.Join(work, "vars.json")
	bv, _ := json.Marshal(vars)
	if err := os.WriteFile(varsFile, bv, 0o600); err != nil {
		t.Fatal(err)
	}
	playbook := filepath.Join(work, "device.yml")
	os.WriteFile(playbook, []byte("- hosts: localhost\n  roles: [vcpe_device]\n"), 0o600)
	play := func(state string) (int, string) {
		t.Helper()
		c, out := ansiblePlay(t, ctx, l, a.Node, playbook, varsFile, "-e", "vcpe_state="+state)
		if strings.Contains(out, strings.TrimSpace(string(key))) {
			t.Errorf("the device key appears in ansible-playbook's output")
		}
		return c, out
	}
	if c, out := play("present"); c == 0 {
		t.Errorf("first run reported no change:\n%s", out)
	}
	if err := reach(ctx, l, "lan-a", "198.19.100.1", 10*time.Second); err != nil {
		t.Errorf("lan-a → cloud after the role installed site-a: %v", err)
	}
	if c, out := play("present"); c != 0 {
		t.Errorf("second run: changed=%d; want 0\n%s", c, out)
	}
	if _, err := os.Stat("/usr/bin/vcpe"); err != nil {
		t.Errorf("the role did not install the package: %v", err)
	}
	if c, out := play("absent"); c == 0 {
		t.Errorf("state: absent reported no change:\n%s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && hostState(t, l, a.Node)["pids"] != before["pids"] {
		time.Sleep(100 * time.Millisecond)
	}
	assertHostUnchanged(t, "ansible state: absent", before, hostState(t, l, a.Node))
	for _, p := range []string{"/usr/bin/vcpe", "/usr/bin/vcped", filepath.Join(work, "etc-vcpe"), l.DeviceState(a.Node)} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is left after state: absent", p)
		}
	}
}
