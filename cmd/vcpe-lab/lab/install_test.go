package lab

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// settledHostState is node's host state once its IPv6 link-local
// addresses have left duplicate address detection ("tentative"), which
// would otherwise differ from any later snapshot.
func settledHostState(t *testing.T, l *Lab, node string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := hostState(t, l, node)
		if !strings.Contains(st["addrs"], "tentative") || time.Now().After(deadline) {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hostState is what an install may change on a device node: links,
// addresses, routes, forwarding, firewall, processes and the state dir.
func hostState(t *testing.T, l *Lab, node string) map[string]string {
	t.Helper()
	ctx := context.Background()
	st := map[string]string{}
	for name, argv := range map[string][]string{
		"links":   {"ip", "-br", "link", "show"},
		"addrs":   {"ip", "-o", "addr", "show"},
		"routes":  {"ip", "route", "show", "table", "all"},
		"forward": {"sysctl", "-n", "net.ipv4.ip_forward"},
		"nft":     {"nft", "list", "ruleset"},
	} {
		out, err := l.Run(ctx, node, argv...)
		if err != nil {
			t.Fatal(err)
		}
		// Keep each link's name (without the @peer part, which names the
		// peer's index) and flags.
		if name == "links" {
			var names []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				f := strings.Fields(line)
				if len(f) > 1 {
					n, _, _ := strings.Cut(f[0], "@")
					names = append(names, n+f[len(f)-1])
				}
			}
			out = strings.Join(names, " ")
		}
		// The kernel adds an IPv6 link-local address's local route only
		// when the address leaves duplicate address detection, at a time
		// of its own; vcpe never touches them, so they are left out.
		if name == "routes" {
			var keep []string
			for _, line := range strings.Split(out, "\n") {
				if !strings.HasPrefix(line, "local fe80::") {
					keep = append(keep, line)
				}
			}
			out = strings.Join(keep, "\n")
		}
		st[name] = out
	}
	st["pids"] = strings.Join(strings.Fields(string(must(exec.Command("ip", "netns", "pids", l.NS(node)).Output()))), " ")
	if _, err := os.Stat(l.DeviceState(node)); err == nil {
		entries, _ := os.ReadDir(l.DeviceState(node))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		st["state dir"] = strings.Join(names, " ")
	} else {
		st["state dir"] = "absent"
	}
	return st
}

func must(b []byte, _ error) []byte { return b }

func assertHostUnchanged(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed %s:\nbefore:\n%s\nafter:\n%s", what, k, v, after[k])
		}
	}
}

type installRun struct {
	code int
	res  installDoc
	out  string
	err  string
}

type installDoc struct {
	OK         bool   `json:"ok"`
	Result     string `json:"result"`
	Error      string `json:"error"`
	RolledBack bool   `json:"rolled_back"`
}

// vcpeInstall runs vcpe install --yes --json in node with the lab's
// defaults plus args, and env added to the environment.
func vcpeInstall(t *testing.T, l *Lab, b Binaries, node string, env []string, args ...string) installRun {
	t.Helper()
	argv := append([]string{b.Vcpe, "install", "--yes", "--json", "--state-dir", l.DeviceState(node),
		"--uapi-dir", l.Path(node, "uapi"), "--service", "process", "--vcped", b.Vcped, "--tunnel-timeout", "5s"}, args...)
	os.MkdirAll(l.Path(node, "uapi"), 0o700)
	cmd := l.Command(context.Background(), node, argv...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	r := installRun{out: string(out), err: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(out, &r.res)
	return r
}

// TestInstallYes runs vcpe install --yes and vcpe uninstall --yes for real
// in the lab: bad inputs fail clearly and leave the host as it was; a
// config file works; a second run changes nothing; uninstall restores the
// host exactly; a failure at the tunnel step rolls back and gives the
// registration back, so the next install works; the lockout guard refuses
// a route that captures the SSH client.
func TestInstallYes(t *testing.T) {
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	fp, issued, err := l.StartControlPlane(ctx, b, twoSites())
	if err != nil {
		t.Fatal(err)
	}
	a, bDev := issued[0], issued[1]
	if _, err := l.Install(ctx, b, fp, bDev, []netip.Prefix{LANB}); err != nil {
		t.Fatal(err)
	}
	base := []string{"--controller", ControllerURL(), "--controller-fingerprint", fp, "--sn", a.SN}
	good := append(append([]string{}, base...), "--advertise", LANA.String(), "--key-file", a.KeyFile)
	before := settledHostState(t, l, "site-a")
	defer func() {
		if t.Failed() {
			t.Logf("vcpe-hub:\n%s", l.DaemonLog("hub", "vcpe-hub"))
		}
	}()

	wrongKey := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrongKey, []byte("not-the-key\n"), 0o600)
	badConfig := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badConfig, []byte("controller: "+ControllerURL()+"\nadvertize: [198.19.1.0/24]\n"), 0o600)
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"wrong key", append(append([]string{}, base...), "--advertise", LANA.String(), "--key-file", wrongKey), 1, "SN or the key is wrong"},
		{"bad prefix", append(append([]string{}, base...), "--advertise", "198.19.1.0/33", "--key-file", a.KeyFile), 2, "--advertise"},
		{"unknown config key", append([]string{"--config", badConfig}, good...), 2, `unknown key "advertize"`},
		{"unreachable controller", []string{"--controller", "https://198.18.0.99:8443", "--controller-fingerprint", fp, "--sn", a.SN, "--advertise", LANA.String(), "--key-file", a.KeyFile}, 1, "198.18.0.99"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := vcpeInstall(t, l, b, "site-a", nil, c.args...)
			if r.code != c.code || !strings.Contains(r.err+r.res.Error, c.want) {
				t.Errorf("exit %d, error %q; want exit %d and an error containing %q\nstderr:\n%s", r.code, r.res.Error, c.code, c.want, r.err)
			}
			assertHostUnchanged(t, c.name, before, hostState(t, l, "site-a"))
		})
	}

	t.Run("lockout guard", func(t *testing.T) {
		// The operator's SSH session comes from LAN B's range, which this
		// device would send into the tunnel.
		r := vcpeInstall(t, l, b, "site-a", []string{"SSH_CONNECTION=198.19.2.50 52311 198.18.0.11 22"}, good...)
		if r.code != 1 || !strings.Contains(r.res.Error, "SSH client") || !r.res.RolledBack {
			t.Errorf("exit %d, %+v; want 1, an SSH-client lockout error and a rollback\n%s", r.code, r.res, r.err)
		}
		assertHostUnchanged(t, "refused install", before, hostState(t, l, "site-a"))
	})

	t.Run("tunnel failure rolls back and releases the registration", func(t *testing.T) {
		l.Run(ctx, "hub", "nft", "add table inet labblock")
		l.Run(ctx, "hub", "nft", "add chain inet labblock in { type filter hook input priority -10 ; }")
		l.Run(ctx, "hub", "nft", "add rule inet labblock in udp dport 4500 drop")
		r := vcpeInstall(t, l, b, "site-a", nil, good...)
		l.Run(ctx, "hub", "nft", "delete table inet labblock")
		if r.code != 1 || !strings.Contains(r.res.Error, "tunnel not up") || !r.res.RolledBack {
			t.Errorf("exit %d, %+v; want 1, 'tunnel not up' and a rollback\n%s", r.code, r.res, r.err)
		}
		assertHostUnchanged(t, "failed install", before, hostState(t, l, "site-a"))
	})

	configFile := filepath.Join(t.TempDir(), "vcpe.yaml")
	os.WriteFile(configFile, []byte(strings.Join([]string{
		"controller: " + ControllerURL(), "controller_fingerprint: " + fp, "sn: " + a.SN,
		"advertise: [" + LANA.String() + "]", "key_file: " + a.KeyFile, ""}, "\n")), 0o600)
	t.Run("config file installs; a second run changes nothing", func(t *testing.T) {
		r := vcpeInstall(t, l, b, "site-a", nil, "--config", configFile)
		if r.code != 0 || r.res.Result != "changed" {
			t.Fatalf("install from config: exit %d, %+v\n%s", r.code, r.res, r.err)
		}
		if err := reach(ctx, l, "lan-a", "198.19.2.10", 5*time.Second); err != nil {
			t.Errorf("lan-a → lan-b after install: %v", err)
		}
		r = vcpeInstall(t, l, b, "site-a", nil, "--config", configFile)
		if r.code != 0 || r.res.Result != "unchanged" {
			t.Errorf("second install: exit %d, %+v; want 0 and unchanged\n%s", r.code, r.res, r.err)
		}
	})

	t.Run("uninstall restores the host exactly", func(t *testing.T) {
		out, err := l.Run(ctx, "site-a", b.Vcpe, "uninstall", "--yes", "--json", "--state-dir", l.DeviceState("site-a"))
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && hostState(t, l, "site-a")["pids"] != before["pids"] {
			time.Sleep(50 * time.Millisecond)
		}
		assertHostUnchanged(t, "uninstall", before, hostState(t, l, "site-a"))
		// The registration was given back: the same SN and key install again.
		r := vcpeInstall(t, l, b, "site-a", nil, good...)
		if r.code != 0 || r.res.Result != "changed" {
			t.Errorf("install after uninstall: exit %d, %+v\n%s", r.code, r.res, r.err)
		}
	})
}
