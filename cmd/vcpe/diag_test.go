package main

import (
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/diag/bundle"
	"github.com/openvcpe/vcpe/diag/suite"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
)

// writeBundle writes e as vcpe diag bundle does.
func writeBundle(t *testing.T, e *suite.Evidence) string {
	t.Helper()
	b, secrets, err := bundle.FromEvidence(e, bundle.Extras{Host: "site-a"})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "bundle.tar.gz")
	if err := b.WriteFile(file, secrets); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestDiagFromBundle(t *testing.T) {
	lanB := netip.MustParsePrefix("198.19.2.0/24")
	cfg := api.DeviceConfig{SN: "SN-A", InstanceName: "site-a", CCN: "corp", OverlayAddr: netip.MustParsePrefix("198.18.64.11/18"),
		HubOverlayAddr: netip.MustParseAddr("198.18.64.1"), HubEndpoint: netip.MustParseAddrPort("198.18.0.1:4500"), Routes: []netip.Prefix{lanB}}
	broken := &suite.Evidence{Time: time.Now(), StateDir: "/var/lib/vcpe",
		State:       &device.State{Version: 1, SN: "SN-A", Controller: "https://198.18.0.1:8443", Credential: "do-not-leak", Config: cfg},
		Config:      &cfg,
		Host:        &suite.Host{TUN: "vcpe0", TUNPresent: true, TUNUp: true},
		Precheck:    &precheck.Report{OK: true},
		StatusError: "connect to control socket: no such file",
	}
	code, out, errOut := runCaptured("diag", "--from-bundle", writeBundle(t, broken), "--json")
	var rep suite.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s%s", err, out, errOut)
	}
	if code != 1 || rep.OK || len(rep.Findings) == 0 || rep.Findings[0].ID != "daemon.running" {
		t.Errorf("broken bundle: exit %d, ok %v, findings %+v; want exit 1 with daemon.running first", code, rep.OK, rep.Findings)
	}
	if strings.Contains(out, "do-not-leak") {
		t.Error("the credential appears in the output")
	}

	fine := &suite.Evidence{Time: time.Now(), Precheck: &precheck.Report{OK: true, Checks: []precheck.Result{{ID: "ip.forward", Status: precheck.Pass, Title: "IPv4 forwarding"}}}}
	code, out, _ = runCaptured("diag", "--from-bundle", writeBundle(t, fine))
	if code != 0 || !strings.Contains(out, "No problem found") || !strings.Contains(out, "IPv4 forwarding on") {
		t.Errorf("healthy bundle: exit %d:\n%s", code, out)
	}
}

func TestDiagUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"diag", "--target", "lan-b"}, "--target"},
		{[]string{"diag", "--target", "2001:db8::1"}, "--target"},
		{[]string{"diag", "--timeout", "1ms"}, "--timeout"},
		{[]string{"diag", "--from-bundle", filepath.Join(t.TempDir(), "none.tar.gz")}, "no such file"},
		{[]string{"diag", "--tui", "--from-bundle", "x.tar.gz"}, "--tui"},
		{[]string{"diag", "--tui"}, "needs a terminal"},
	} {
		code, _, errOut := runCaptured(c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("vcpe %s: exit %d, stderr %q; want exit 2 naming %s", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
}
