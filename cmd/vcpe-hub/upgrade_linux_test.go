package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// TestServeMigratesThePreviousStore starts vcpe-hub serve on a state
// directory whose store the previous release wrote (the fixture of
// controller/store): it migrates it and serves its records.
func TestServeMigratesThePreviousStore(t *testing.T) {
	ns := namespace.New(t)
	hub := namespace.Binary(t, "cmd/vcpe-hub")
	state := filepath.Join(t.TempDir(), "hub")
	os.MkdirAll(state, 0o700)
	fixture, err := os.ReadFile("../../controller/store/testdata/schema1.db")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(state, controller.StoreFile), fixture, 0o600)
	startServe(t, ns, hub, []string{"serve", "--state", state, "--listen", "127.0.0.1:8443", "--hub-endpoint", "198.18.0.1:4500", "--uapi-dir", t.TempDir()})
	waitReady(t, ns, hub, state)
	var devs []controller.DeviceInfo
	if err := json.Unmarshal([]byte(ns.Run(hub, "device", "list", "--state", state, "--json")), &devs); err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 || devs[0].SN != "SN1" || devs[0].Status != "registered" {
		t.Errorf("devices from the previous store: %+v", devs)
	}
}

// TestServeRefusesANewerStore: a store a newer vcpe-hub wrote stops serve
// with an error that says so (exit 1), and the store is left as it was.
func TestServeRefusesANewerStore(t *testing.T) {
	ns := namespace.New(t)
	hub := namespace.Binary(t, "cmd/vcpe-hub")
	state := filepath.Join(t.TempDir(), "hub")
	args := []string{"serve", "--state", state, "--listen", "127.0.0.1:8443", "--hub-endpoint", "198.18.0.1:4500", "--no-dataplane"}
	srv, _ := startServe(t, ns, hub, args)
	waitReady(t, ns, hub, state)
	srv.Process.Signal(os.Interrupt)
	waitExit(t, srv)
	db := filepath.Join(state, controller.StoreFile)
	// What a newer vcpe-hub leaves: a higher user_version (offset 60 of
	// the SQLite header, big-endian).
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	b[60], b[61], b[62], b[63] = 0, 0, 0, 99
	os.WriteFile(db, b, 0o600)
	out, err := ns.Try(hub, args...)
	if exitCode(err) != 1 || !strings.Contains(out, "schema version 99") || !strings.Contains(out, "left unchanged") {
		t.Errorf("serve on a newer store: exit %d\n%s\nwant 1 and an error naming schema version 99", exitCode(err), out)
	}
	if after, _ := os.ReadFile(db); string(after) != string(b) {
		t.Error("serve changed the newer store")
	}
}
