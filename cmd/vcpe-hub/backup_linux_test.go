package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// TestBackupRestoreCommands runs vcpe-hub backup against a running serve
// with a registered device, then vcpe-hub restore into an empty directory
// and serve on it: same CA, same hub key, the device still registered.
// It also checks serve's sd_notify messages (READY, WATCHDOG, STOPPING).
func TestBackupRestoreCommands(t *testing.T) {
	ns := namespace.New(t)
	hub := namespace.Binary(t, "cmd/vcpe-hub")
	vcpe := namespace.Binary(t, "cmd/vcpe")
	state := filepath.Join(t.TempDir(), "hub")

	notify := filepath.Join(t.TempDir(), "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := make(chan string, 256)
	go func() {
		b := make([]byte, 4096)
		for {
			n, _, err := nc.ReadFromUnix(b)
			if err != nil {
				return
			}
			msgs <- string(b[:n])
		}
	}()
	os.Setenv("NOTIFY_SOCKET", notify)
	os.Setenv("WATCHDOG_USEC", "200000")
	serveArgs := []string{"serve", "--state", state, "--listen", "127.0.0.1:8443", "--hub-endpoint", "198.18.0.1:4500", "--uapi-dir", t.TempDir()}
	srv, srvOut := startServe(t, ns, hub, serveArgs)
	os.Unsetenv("NOTIFY_SOCKET")
	os.Unsetenv("WATCHDOG_USEC")
	waitNotify(t, msgs, "READY=1")
	waitNotify(t, msgs, "WATCHDOG=1")

	var created controller.CreatedInstance
	if err := json.Unmarshal([]byte(ns.Run(hub, "instance", "create", "shop1", "--state", state, "--json")), &created); err != nil {
		t.Fatal(err)
	}
	fp := strings.TrimSpace(ns.Run(hub, "fingerprint", "--state", state))
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte(created.Devices[0].Key), 0o600)
	ns.Run(vcpe, "register", "--controller", "https://127.0.0.1:8443", "--controller-fingerprint", fp,
		"--sn", created.Devices[0].SN, "--advertise", "198.19.1.0/24", "--state-dir", filepath.Join(t.TempDir(), "dev"), "--key-file", keyFile)
	hubKey, err := os.ReadFile(filepath.Join(state, controller.HubKeyFile))
	if err != nil {
		t.Fatal(err)
	}

	backup := filepath.Join(t.TempDir(), "hub.backup")
	var m controller.BackupManifest
	if err := json.Unmarshal([]byte(ns.Run(hub, "backup", backup, "--state", state, "--json")), &m); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 || m.Fingerprint != fp {
		t.Fatalf("backup file: %v, mode %v, manifest %+v; want 0600 with fingerprint %s", err, fi.Mode().Perm(), m, fp)
	}
	if out, err := ns.Try(hub, "restore", backup, "--state", state); exitCode(err) != 1 || !strings.Contains(out, "not empty") {
		t.Errorf("restore over the running hub's state: exit %d %s; want 1, not empty", exitCode(err), out)
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, srv); code != 0 {
		t.Fatalf("serve exit %d:\n%s", code, srvOut.String())
	}
	waitNotify(t, msgs, "STOPPING=1")

	restored := filepath.Join(t.TempDir(), "restored")
	os.Mkdir(restored, 0o700)
	ns.Run(hub, "restore", backup, "--state", restored)
	serveArgs[2] = restored
	startServe(t, ns, hub, serveArgs)
	waitReady(t, ns, hub, restored)
	if fp2 := strings.TrimSpace(ns.Run(hub, "fingerprint", "--state", restored)); fp2 != fp {
		t.Errorf("restored fingerprint %s; want %s", fp2, fp)
	}
	if k, _ := os.ReadFile(filepath.Join(restored, controller.HubKeyFile)); string(k) != string(hubKey) {
		t.Error("restored hub key differs")
	}
	var devs []controller.DeviceInfo
	json.Unmarshal([]byte(ns.Run(hub, "device", "list", "--state", restored, "--json")), &devs)
	if len(devs) != 2 || devs[0].SN != created.Devices[0].SN || devs[0].Status != "registered" {
		t.Errorf("devices on the restored hub: %+v; want %s registered", devs, created.Devices[0].SN)
	}
}

func waitNotify(t *testing.T, msgs <-chan string, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m := <-msgs:
			if strings.Contains(m, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s from serve on NOTIFY_SOCKET", want)
		}
	}
}
