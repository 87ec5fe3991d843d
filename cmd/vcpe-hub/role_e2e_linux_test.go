package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// TestHubRoleProcess runs the real binaries split by role in a fresh
// namespace: vcpe-hub serve --role controller, and vcpe-hub serve --role
// hub configured over the pinned device API with a hub credential. A
// device registered with the controller becomes a peer of the hub; with
// the controller killed the hub keeps it, and a restarted hub starts from
// its saved configuration.
func TestHubRoleProcess(t *testing.T) {
	ns := namespace.New(t)
	hub := namespace.Binary(t, "cmd/vcpe-hub")
	vcpe := namespace.Binary(t, "cmd/vcpe")
	ctlState, hubState := filepath.Join(t.TempDir(), "ctl"), filepath.Join(t.TempDir(), "hub")
	ctl, _ := startServe(t, ns, hub, []string{"serve", "--role", "controller", "--state", ctlState, "--listen", "127.0.0.1:8443", "--hub-endpoint", "198.18.0.1:4500"})
	waitReady(t, ns, hub, ctlState)
	fp := strings.TrimSpace(ns.Run(hub, "fingerprint", "--state", ctlState))
	var issued controller.HubCredential
	if err := json.Unmarshal([]byte(ns.Run(hub, "hub", "credential", "hub-a", "--state", ctlState, "--json")), &issued); err != nil {
		t.Fatal(err)
	}
	cred := issued.Credential
	credFile := filepath.Join(t.TempDir(), "cred")
	if err := os.WriteFile(credFile, []byte(cred+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hubArgs := []string{"serve", "--role", "hub", "--state", hubState, "--controller", "https://127.0.0.1:8443", "--controller-fingerprint", fp,
		"--hub-credential-file", credFile, "--hub-endpoint", "198.18.0.1:4500", "--uapi-dir", t.TempDir(), "--reflector", ""}
	h1, _ := startServe(t, ns, hub, hubArgs)
	peers := func() int {
		out, err := ns.Try(hub, "status", "--state", hubState, "--json")
		if err != nil {
			return -1
		}
		var st dataplane.Status
		if json.Unmarshal([]byte(out), &st) != nil {
			return -1
		}
		return len(st.Peers)
	}
	wait := func(what string, f func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !f() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20 s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	wait("hub process up with no peers", func() bool { return peers() == 0 })
	// It registered a WireGuard key of its own, kept in its state
	// directory, not the controller's.
	b, err := os.ReadFile(filepath.Join(hubState, "hub.key"))
	if err != nil {
		t.Fatal(err)
	}
	own, err := api.ParseKey(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	var hubs []controller.HubEntry
	if err := json.Unmarshal([]byte(ns.Run(hub, "hub", "list", "--state", ctlState, "--json")), &hubs); err != nil {
		t.Fatal(err)
	}
	if len(hubs) != 1 || hubs[0].Name != "hub-a" || !hubs[0].Registered || hubs[0].PublicKey != own.PublicKey() || hubs[0].Endpoint.String() != "198.18.0.1:4500" {
		t.Fatalf("hub list: %+v; want hub-a registered with the key in its state directory", hubs)
	}
	if cb, err := os.ReadFile(filepath.Join(ctlState, controller.HubKeyFile)); err != nil || strings.TrimSpace(string(cb)) == own.String() {
		t.Fatalf("the hub process holds the controller's hub key (%v); want a key of its own", err)
	}

	var created controller.CreatedInstance
	if err := json.Unmarshal([]byte(ns.Run(hub, "instance", "create", "shop1", "--state", ctlState, "--json")), &created); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(created.Devices[0].Key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ns.Run(vcpe, "register", "--controller", "https://127.0.0.1:8443", "--controller-fingerprint", fp, "--sn", created.Devices[0].SN,
		"--advertise", "198.19.1.0/24", "--state-dir", filepath.Join(t.TempDir(), "dev"), "--key-file", keyFile)
	wait("the registered device becomes a peer of the hub process", func() bool { return peers() == 1 })
	if out, err := ns.Try(hub, "instance", "hubs", "shop1", "--state", ctlState); exitCode(err) != 2 || !strings.Contains(out, "--primary") {
		t.Errorf("instance hubs without --primary: exit %d\n%s\nwant 2 naming --primary", exitCode(err), out)
	}
	var in controller.InstanceInfo
	if err := json.Unmarshal([]byte(ns.Run(hub, "instance", "hubs", "shop1", "--primary", "hub-a", "--state", ctlState, "--json")), &in); err != nil {
		t.Fatal(err)
	}
	if len(in.Hubs) != 1 || in.Hubs[0] != "hub-a" {
		t.Errorf("instance hubs --json: %v; want [hub-a]", in.Hubs)
	}
	if out, err := ns.Try(hub, "instance", "hubs", "shop1", "--primary", "nope", "--state", ctlState); exitCode(err) != 2 || !strings.Contains(out, "primary") {
		t.Errorf("instance hubs --primary nope: exit %d\n%s\nwant 2 naming primary", exitCode(err), out)
	}

	// Every controller gone: the hub keeps its peer.
	ctl.Process.Signal(syscall.SIGKILL)
	ctl.Wait()
	time.Sleep(time.Second)
	if n := peers(); n != 1 {
		t.Fatalf("hub peers with the controller gone: %d; want 1", n)
	}
	// Restarted with no controller: it starts from its saved configuration.
	h1.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, h1); code != 0 {
		t.Fatalf("hub process exit %d on SIGTERM", code)
	}
	startServe(t, ns, hub, hubArgs)
	wait("the restarted hub process forwards its saved configuration", func() bool { return peers() == 1 })
}
