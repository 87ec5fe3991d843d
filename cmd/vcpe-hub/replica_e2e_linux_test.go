package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/internal/namespace"
	"github.com/openvcpe/vcpe/internal/pgtest"
)

// TestReplicaKilledDuringRegistrations runs two real vcpe-hub serve
// --role controller processes on one PostgreSQL database (a real server
// started for the test), kill -9s one in the middle of a burst of real
// vcpe register runs that list both URLs, and checks that every
// registration succeeded through the survivor, that the store is
// consistent, and that the killed replica, restarted, sees it all.
func TestReplicaKilledDuringRegistrations(t *testing.T) {
	ns := namespace.New(t)
	hub := namespace.Binary(t, "cmd/vcpe-hub")
	vcpe := namespace.Binary(t, "cmd/vcpe")
	db := pgtest.Start(t).NewDB(t)
	states := []string{filepath.Join(t.TempDir(), "r1"), filepath.Join(t.TempDir(), "r2")}
	args := func(i int) []string {
		return []string{"serve", "--role", "controller", "--state", states[i], "--listen", fmt.Sprintf("127.0.0.1:%d", 8443+i),
			"--hub-endpoint", "198.18.0.1:4500", "--database", db}
	}
	// Both start at once: they agree on one CA and one hub key.
	r1, _ := startServe(t, ns, hub, args(0))
	startServe(t, ns, hub, args(1))
	waitReady(t, ns, hub, states[0])
	waitReady(t, ns, hub, states[1])
	fp := strings.TrimSpace(ns.Run(hub, "fingerprint", "--state", states[0]))
	if fp2 := strings.TrimSpace(ns.Run(hub, "fingerprint", "--state", states[1])); fp2 != fp {
		t.Fatalf("replicas present CAs %s and %s; want one", fp, fp2)
	}
	const n = 10
	var devs []controller.IssuedDevice
	for i := range n {
		var created controller.CreatedInstance
		// Admin commands go to either replica.
		if err := json.Unmarshal([]byte(ns.Run(hub, "instance", "create", fmt.Sprintf("shop%d", i), "--state", states[i%2], "--json")), &created); err != nil {
			t.Fatal(err)
		}
		devs = append(devs, created.Devices[0])
	}
	urls := "https://127.0.0.1:8443,https://127.0.0.1:8444"
	for i, d := range devs {
		if i == n/2 {
			if err := r1.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			r1.Wait()
		}
		keyFile := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(keyFile, []byte(d.Key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := ns.Try(vcpe, "register", "--controller", urls, "--controller-fingerprint", fp, "--sn", d.SN,
			"--advertise", fmt.Sprintf("198.19.%d.0/24", i+1), "--state-dir", filepath.Join(t.TempDir(), "dev"), "--key-file", keyFile)
		if err != nil {
			t.Fatalf("registration %d (replica 1 killed after %d): %v\n%s", i, n/2, err, out)
		}
	}
	// The store is consistent: every device registered once, keys unique.
	check := func(state string) {
		t.Helper()
		var list []controller.DeviceInfo
		if err := json.Unmarshal([]byte(ns.Run(hub, "device", "list", "--state", state, "--json")), &list); err != nil {
			t.Fatal(err)
		}
		keys, registered := map[string]bool{}, 0
		for _, d := range list {
			if d.Status == "registered" {
				registered++
				if keys[d.PublicKey.String()] {
					t.Errorf("key %s bound twice", d.PublicKey)
				}
				keys[d.PublicKey.String()] = true
			}
		}
		if registered != n {
			t.Errorf("replica %s: %d devices registered; want %d", filepath.Base(state), registered, n)
		}
	}
	check(states[1])
	// The killed replica comes back and sees everything.
	startServe(t, ns, hub, args(0))
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := ns.Try(hub, "instance", "list", "--state", states[0]); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the restarted replica does not answer")
		}
		time.Sleep(100 * time.Millisecond)
	}
	check(states[0])
}
