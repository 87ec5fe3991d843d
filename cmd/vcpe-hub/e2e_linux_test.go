package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/internal/namespace"
)

func TestMain(m *testing.M) { namespace.Main(m) }

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestEndToEnd runs the real vcpe-hub serve and vcpe register binaries on
// loopback inside a fresh network namespace.
func TestEndToEnd(t *testing.T) {
	ns := namespace.New(t)
	hub := namespace.Binary(t, "cmd/vcpe-hub")
	vcpe := namespace.Binary(t, "cmd/vcpe")
	state := filepath.Join(t.TempDir(), "hub")
	serveArgs := []string{"serve", "--state", state, "--listen", "127.0.0.1:8443", "--hub-endpoint", "198.18.0.1:4500", "--cloud-prefix", "198.19.100.0/24", "--uapi-dir", t.TempDir()}
	srv, srvOut := startServe(t, ns, hub, serveArgs)
	waitReady(t, ns, hub, state)

	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v, mode %v; want 0700", err, fi.Mode().Perm())
	}
	fp := strings.TrimSpace(ns.Run(hub, "fingerprint", "--state", state))
	if !strings.HasPrefix(fp, "sha256:") || len(fp) != 7+64 {
		t.Fatalf("fingerprint %q", fp)
	}

	var created controller.CreatedInstance
	if err := json.Unmarshal([]byte(ns.Run(hub, "instance", "create", "shop1", "--state", state, "--json")), &created); err != nil {
		t.Fatalf("instance create --json: %v", err)
	}
	if len(created.Devices) != 2 || created.Devices[0].SN == "" || created.Devices[0].Key == "" {
		t.Fatalf("instance create gave %+v; want 2 devices with sn and key", created.Devices)
	}
	ns.Run(hub, "ccn", "create", "corp", "--state", state)
	ns.Run(hub, "ccn", "attach", "corp", "shop1", "--state", state)

	dev := created.Devices[0]
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(dev.Key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	devState := filepath.Join(t.TempDir(), "dev1")
	reg := func(extra ...string) []string {
		return append([]string{"register", "--controller", "https://127.0.0.1:8443", "--controller-fingerprint", fp,
			"--sn", dev.SN, "--advertise", "198.19.1.0/24", "--state-dir", devState}, extra...)
	}

	// Refusals first: a wrong fingerprint (1), a /33 (2), a wrong key (1).
	wrongFP := "sha256:" + strings.Repeat("0", 64)
	out, err := ns.Try(vcpe, "register", "--controller", "https://127.0.0.1:8443", "--controller-fingerprint", wrongFP,
		"--sn", dev.SN, "--advertise", "198.19.1.0/24", "--state-dir", devState, "--key-file", keyFile)
	if exitCode(err) != 1 || !strings.Contains(out, "--controller-fingerprint") {
		t.Errorf("wrong fingerprint: exit %d, %s; want 1 naming --controller-fingerprint", exitCode(err), out)
	}
	out, err = ns.Try(vcpe, "register", "--controller", "https://127.0.0.1:8443", "--controller-fingerprint", fp,
		"--sn", dev.SN, "--advertise", "198.19.1.0/33", "--state-dir", devState, "--key-file", keyFile)
	if exitCode(err) != 2 || !strings.Contains(out, "--advertise") {
		t.Errorf("/33: exit %d, %s; want 2 naming --advertise", exitCode(err), out)
	}
	wrongKey := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrongKey, []byte("wrong-key"), 0o600)
	out, err = ns.Try(vcpe, reg("--key-file", wrongKey)...)
	if exitCode(err) != 1 || !strings.Contains(out, "SN or the key is wrong") {
		t.Errorf("wrong key: exit %d, %s; want 1, SN or key wrong", exitCode(err), out)
	}
	out, err = ns.Try(vcpe, "register", "--controller", "https://127.0.0.1:9", "--controller-fingerprint", fp,
		"--sn", dev.SN, "--state-dir", devState, "--key-file", keyFile)
	if exitCode(err) != 1 || !strings.Contains(out, "unreachable") {
		t.Errorf("unreachable controller: exit %d, %s; want 1, unreachable", exitCode(err), out)
	}
	if _, err := os.Stat(filepath.Join(devState, device.StateFile)); err == nil {
		t.Fatal("a refused registration wrote device state")
	}

	var res struct {
		StateFile string           `json:"state_file"`
		Config    api.DeviceConfig `json:"config"`
	}
	if err := json.Unmarshal([]byte(ns.Run(vcpe, reg("--key-file", keyFile, "--json")...)), &res); err != nil {
		t.Fatalf("register --json: %v", err)
	}
	if res.Config.Role != api.RoleActive || res.Config.HubEndpoint.String() != "198.18.0.1:4500" || len(res.Config.Routes) != 1 || res.Config.Routes[0].String() != "198.19.100.0/24" {
		t.Errorf("registered config %+v", res.Config)
	}
	st, err := device.LoadState(devState)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(res.StateFile); fi == nil || fi.Mode().Perm() != 0o600 || st.Credential == "" {
		t.Errorf("state file %s: mode %v, credential set %v; want 0600 with a credential", res.StateFile, fi.Mode().Perm(), st.Credential != "")
	}

	// The second device reads its key from VCPE_KEY.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := ns.Command(ctx, vcpe, "register", "--controller", "https://127.0.0.1:8443", "--controller-fingerprint", fp,
		"--sn", created.Devices[1].SN, "--advertise", "198.19.1.0/24", "--state-dir", filepath.Join(t.TempDir(), "dev2"))
	c.Env = append(os.Environ(), "VCPE_KEY="+created.Devices[1].Key)
	if b, err := c.CombinedOutput(); err != nil || !strings.Contains(string(b), "standby") {
		t.Errorf("register with VCPE_KEY: %v\n%s", err, b)
	}

	var rep controller.RoutesReport
	if err := json.Unmarshal([]byte(ns.Run(hub, "routes", "list", "--ccn", "corp", "--state", state, "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Instances) != 1 || rep.Instances[0].Active != dev.SN || rep.Instances[0].Prefixes[0].String() != "198.19.1.0/24" {
		t.Errorf("routes list %+v", rep)
	}
	if out, err := ns.Try(hub, "instance", "show", "nope", "--state", state); exitCode(err) != 1 || !strings.Contains(out, "no instance") {
		t.Errorf("instance show nope: exit %d %s", exitCode(err), out)
	}
	if out, err := ns.Try(hub, "instance", "create", "bad name", "--state", state); exitCode(err) != 2 {
		t.Errorf("instance create 'bad name': exit %d %s; want 2", exitCode(err), out)
	}

	// The human tables show who is active.
	for _, args := range [][]string{{"instance", "list"}, {"instance", "show", "shop1"}, {"routes", "list"}, {"device", "list"}, {"ccn", "list"}} {
		out := ns.Run(hub, append(args, "--state", state)...)
		if !strings.Contains(out, "shop1") || (args[0] != "ccn" && !strings.Contains(out, dev.SN)) {
			t.Errorf("vcpe-hub %v:\n%s", args, out)
		}
	}
	if out := ns.Run(hub, "instance", "show", "shop1", "--state", state); !strings.Contains(out, "active:      "+dev.SN) {
		t.Errorf("instance show does not name the active device:\n%s", out)
	}

	var audit []controller.AuditEntry
	json.Unmarshal([]byte(ns.Run(hub, "audit", "--state", state, "--json", "--last", "100")), &audit)
	results := map[string]int{}
	for _, e := range audit {
		results[e.Action+"="+e.Result]++
		if strings.Contains(e.Detail+e.Target+e.Who, dev.Key) {
			t.Errorf("audit entry holds a key: %+v", e)
		}
	}
	if results["instance.create=ok"] != 1 || results["device.register=unauthorized"] != 1 || results["device.register=ok"] != 2 || results["ccn.attach=ok"] != 1 {
		t.Errorf("audit log %v", results)
	}

	// Graceful stop, restart: same identity, same records.
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, srv); code != 0 || !strings.Contains(srvOut.String(), "controller stopped") {
		t.Fatalf("serve exited %d after SIGTERM; want 0 after a graceful stop:\n%s", code, srvOut.String())
	}
	if strings.Contains(srvOut.String(), created.Devices[0].Key) || strings.Contains(srvOut.String(), st.Credential) {
		t.Error("the server's log holds a device key or credential")
	}
	startServe(t, ns, hub, serveArgs)
	waitReady(t, ns, hub, state)
	if fp2 := strings.TrimSpace(ns.Run(hub, "fingerprint", "--state", state)); fp2 != fp {
		t.Fatalf("fingerprint changed on restart: %s → %s", fp, fp2)
	}
	var devs []controller.DeviceInfo
	json.Unmarshal([]byte(ns.Run(hub, "device", "list", "--state", state, "--json")), &devs)
	if len(devs) != 2 || devs[0].Status != "registered" || devs[1].Status != "registered" {
		t.Fatalf("devices after restart: %+v", devs)
	}
	// The device re-registers idempotently after the restart.
	if err := json.Unmarshal([]byte(ns.Run(vcpe, reg("--key-file", keyFile, "--json")...)), &res); err != nil {
		t.Fatal(err)
	}
	if res.Config.OverlayAddr != st.Config.OverlayAddr {
		t.Errorf("overlay after restart %v; want %v", res.Config.OverlayAddr, st.Config.OverlayAddr)
	}
}

func waitReady(t *testing.T, ns *namespace.NS, hub, state string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := ns.Try(hub, "instance", "list", "--state", state)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("vcpe-hub serve is not answering: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startServe starts vcpe-hub serve in ns; unlike ns.Start it lets the test
// wait for the process itself.
func startServe(t *testing.T, ns *namespace.NS, hub string, args []string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	var buf lockedBuffer
	c := ns.Command(context.Background(), hub, args...)
	c.Stdout, c.Stderr = &buf, &buf
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.ProcessState == nil {
			c.Process.Kill()
			c.Wait()
		}
		if t.Failed() {
			t.Logf("vcpe-hub serve output:\n%s", buf.String())
		}
	})
	return c, &buf
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitExit(t *testing.T, c *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return exitCode(err)
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15 s of SIGTERM")
		return -1
	}
}
