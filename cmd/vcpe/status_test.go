package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/device"
)

func runStatus(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newStatusCmd()
	var out bytes.Buffer
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestStatusFallsBackToStateFile(t *testing.T) {
	dir := t.TempDir()
	key, _ := api.GeneratePrivateKey()
	hub, _ := api.GeneratePrivateKey()
	st := &device.State{SN: "sn-1", PrivateKey: key, Config: api.DeviceConfig{Generation: 7,
		OverlayAddr: netip.MustParsePrefix("198.18.64.2/18"), HubPublicKey: hub.PublicKey(),
		HubEndpoint: netip.MustParseAddrPort("198.18.0.1:4500"), Routes: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}}}
	if err := device.SaveState(dir, st); err != nil {
		t.Fatal(err)
	}
	out, err := runStatus(t, "--state-dir", dir, "--json")
	if cli.ExitCode(err) != cli.ExitFailed {
		t.Errorf("exit %d; want %d with vcped not running", cli.ExitCode(err), cli.ExitFailed)
	}
	var got dataplane.Status
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Source != "state file" || got.State != dataplane.StateStopped || got.Generation != 7 ||
		!strings.Contains(got.Reason, "vcped is not running") || len(got.Peers) != 1 || got.Peers[0].PublicKey != hub.PublicKey() {
		t.Errorf("fallback status = %+v", got)
	}
	if strings.Contains(out, key.String()) {
		t.Errorf("status shows the private key")
	}
	text, _ := runStatus(t, "--state-dir", dir)
	if !strings.Contains(text, "from the state file (vcped is not running)") || !strings.Contains(text, "198.19.2.0/24") {
		t.Errorf("text:\n%s", text)
	}
}

// TestStatusHubGroupFromStateFile: with vcped stopped, a device in a hub
// group still shows both hubs of its configuration (table and --json).
func TestStatusHubGroupFromStateFile(t *testing.T) {
	dir := t.TempDir()
	key, _ := api.GeneratePrivateKey()
	h1, _ := api.GeneratePrivateKey()
	h2, _ := api.GeneratePrivateKey()
	hubs := []api.HubInfo{
		{Name: "hub1", PublicKey: h1.PublicKey(), Endpoint: netip.MustParseAddrPort("198.18.0.1:4500"), OverlayAddr: netip.MustParseAddr("198.18.64.1")},
		{Name: "hub2", PublicKey: h2.PublicKey(), Endpoint: netip.MustParseAddrPort("198.18.0.2:4500"), OverlayAddr: netip.MustParseAddr("198.18.127.250")},
	}
	st := &device.State{SN: "sn-1", PrivateKey: key, Config: api.DeviceConfig{Generation: 7, OverlayAddr: netip.MustParsePrefix("198.18.64.2/18"),
		HubPublicKey: h1.PublicKey(), HubEndpoint: hubs[0].Endpoint, HubOverlayAddr: hubs[0].OverlayAddr, Hubs: hubs}}
	if err := device.SaveState(dir, st); err != nil {
		t.Fatal(err)
	}
	out, _ := runStatus(t, "--state-dir", dir, "--json")
	var got dataplane.Status
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got.Hubs) != 2 || got.Hubs[0].Name != "hub1" || !got.Hubs[0].Primary || got.Hubs[1].Endpoint != "198.18.0.2:4500" || got.Hubs[1].Primary {
		t.Errorf("hubs = %+v", got.Hubs)
	}
	text, _ := runStatus(t, "--state-dir", dir)
	if !strings.Contains(text, "hubs:      2 in the group") || !strings.Contains(text, "hub2  secondary") {
		t.Errorf("text:\n%s", text)
	}
}

func TestStatusWithoutStateIsUsageError(t *testing.T) {
	_, err := runStatus(t, "--state-dir", t.TempDir())
	var ue *cli.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--state-dir") {
		t.Errorf("err = %v; want a usage error naming --state-dir", err)
	}
}
