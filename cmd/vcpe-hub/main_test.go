package main

import (
	"path/filepath"
	"testing"
)

func TestUsageErrorsExitTwo(t *testing.T) {
	state := filepath.Join(t.TempDir(), "hub")
	for _, args := range [][]string{
		{"no-such-command"},
		{"--no-such-flag"},
		{"instance", "create"},
		{"serve", "--state", state, "--listen", ":8443"},            // no hub endpoint
		{"serve", "--state", state, "--hub-endpoint", "198.18.0.1"}, // no port
		{"serve", "--state", state, "--hub-endpoint", "198.18.0.1:4500", "--overlay", "x"},      // bad overlay
		{"serve", "--state", state, "--hub-endpoint", "198.18.0.1:4500", "--route-quota", "51"}, // over the cap
		{"serve", "--state", state, "--hub-endpoint", "198.18.0.1:4500", "--cloud-prefix", "198.18.64.0/24"},
		{"serve", "--state", state, "--hub-endpoint", "198.18.0.1:4500", "--role", "both"},
		{"serve", "--state", state, "--hub-endpoint", "198.18.0.1:4500", "--cloud-gateway", "198.19.100.1"},                                    // no prefix length
		{"serve", "--state", state, "--hub-endpoint", "198.18.0.1:4500", "--cloud-target", "cloud.example"},                                    // not an address
		{"serve", "--state", state, "--hub-endpoint", "198.18.0.1:4500", "--cloud-interface", "eth1"},                                          // without --cloud-gateway
		{"serve", "--state", state, "--hub-endpoint", "198.18.0.1:4500", "--metrics-listen", "198.18.0.1:9587"},                                // not loopback
		{"serve", "--state", state, "--hub-endpoint", "198.18.0.1:4500", "--database", "postgres://u:secret@db.test/vcpe"},                     // password in argv
		{"serve", "--state", state, "--hub-endpoint", "198.18.0.1:4500", "--database", "mysql://db.test/vcpe"},                                 // not PostgreSQL
		{"serve", "--state", state, "--role", "hub", "--controller", "https://198.18.0.1:8443", "--controller-fingerprint", "x"},               // no credential
		{"serve", "--state", state, "--hub-endpoint", "198.18.0.1:4500", "--no-dataplane", "--hub-name", "no spaces"},                          // bad hub name
		{"serve", "--state", state, "--hub-endpoint", "198.18.0.1:4500", "--no-dataplane", "--cpu-profile", filepath.Join(state, "no", "dir")}, // profile dir missing
		{"instance", "hubs", "shop1", "--state", state},                                                                                        // no --primary
	} {
		if code := run(args); code != 2 {
			t.Errorf("vcpe-hub %v: exit %d; want 2", args, code)
		}
	}
	if code := run([]string{"--version"}); code != 0 {
		t.Errorf("vcpe-hub --version: exit %d; want 0", code)
	}
	// Admin commands without a running server fail (1) and say how to fix it.
	if code := run([]string{"instance", "list", "--state", state}); code != 1 {
		t.Errorf("instance list without a server: exit %d; want 1", code)
	}
}

// TestServeHubGroupOptions: the controller's own hub is a member of the
// hub group when it runs one (--role all with the dataplane), under
// --hub-name; --hub-failback is the group's setting.
func TestServeHubGroupOptions(t *testing.T) {
	for _, tc := range []struct {
		role     string
		disabled bool
		embedded bool
	}{{roleAll, false, true}, {"", false, true}, {roleAll, true, false}, {roleController, false, false}} {
		o := serveOptions{state: t.TempDir(), listen: ":8443", hubEndpoint: "198.18.0.1:4500", overlay: "198.18.64.0/18", role: tc.role,
			hubName: "hub1", failback: true}
		o.hub.disabled = tc.disabled
		opts, err := o.controllerOptions()
		if err != nil {
			t.Fatal(err)
		}
		if opts.EmbeddedHub != tc.embedded || opts.HubName != "hub1" || !opts.Failback {
			t.Errorf("--role %q --no-dataplane=%v: embedded %v name %q failback %v; want embedded %v, hub1, failback", tc.role, tc.disabled,
				opts.EmbeddedHub, opts.HubName, opts.Failback, tc.embedded)
		}
	}
}
