package lab

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/provision"
)

// waitScreen waits until cond holds for the wizard's screen.
func (w *tmuxWizard) waitScreen(what string, within time.Duration, cond func(screen string) bool) string {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := w.screen()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) || strings.Contains(s, "VCPE-EXIT=") {
			w.t.Fatalf("waiting for %s; screen:\n%s", what, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func titled(page string) func(string) bool {
	return func(s string) bool { return strings.Contains(strings.SplitN(s, "\n", 2)[0], "· "+page) }
}

// TestWizardSecondDeviceOfPairAndFleetConfig: the wizard on site-b (a
// one-device site of a two-slot instance) saves its answers; `vcpe install
// --yes --config` installs site-a from them (plus its own SN, key, LAN and
// multi-attach flags); the wizard on site-a2, the second device of site-a's
// pair, is told site-a is active, proposes its shared gateway and installs
// the standby with it; killing site-a then moves the gateway to site-a2 and
// lan-a still reaches lan-b.
func TestWizardSecondDeviceOfPairAndFleetConfig(t *testing.T) {
	l := testLab(t)
	b := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	plan := Plan{Instances: []Instance{
		{Name: "site-a", CCN: "corp", Devices: []string{"site-a", "site-a2"}, Advertise: []netip.Prefix{LANA}},
		{Name: "site-b", CCN: "corp", Devices: []string{"site-b"}, Advertise: []netip.Prefix{LANB}},
	}}
	fp, issued, err := l.StartControlPlane(ctx, b, plan)
	if err != nil {
		t.Fatal(err)
	}
	h := &haLab{l: l, b: b, fp: fp, dev: map[string]Issued{}}
	for _, d := range issued {
		h.dev[d.Node] = d
	}
	saved := filepath.Join(t.TempDir(), "fleet.yaml")

	if !t.Run("wizard on site-b saves its answers", func(t *testing.T) {
		d := h.dev["site-b"]
		w := startWizard(t, l, b, "site-b", "--controller", ControllerURL(), "--controller-fingerprint", fp,
			"--sn", d.SN, "--advertise", LANB.String(), "--key-file", d.KeyFile)
		var attach string
		slots := false
		w.drive(ctx, func(s string) bool {
			if titled("Multi-attach")(s) {
				attach = s
				// A capture may catch a frame half drawn: any full one counts.
				slots = slots || strings.Contains(s, "site-b has room for 2 devices")
			}
			return titled("Done")(s)
		})
		if !slots {
			t.Errorf("the multi-attach page did not say the instance has two slots:\n%s", attach)
		}
		w.keys("s")
		w.waitScreen("the save field", 10*time.Second, func(s string) bool { return strings.Contains(s, "Save the answers to") })
		w.keys("C-u")
		w.keys("-l", saved)
		w.keys("Enter")
		w.waitScreen("saved", 10*time.Second, func(s string) bool { return strings.Contains(s, "saved to "+saved) })
		w.keys("Enter")
		if s := w.waitScreen("exit", 20*time.Second, func(s string) bool { return strings.Contains(s, "VCPE-EXIT=") }); !strings.Contains(s, "VCPE-EXIT=0") {
			t.Fatalf("wizard on site-b did not exit 0:\n%s", s)
		}
		fi, err := os.Stat(saved)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("saved answers: %v %v; want a 0600 file", err, fi)
		}
		raw, _ := os.ReadFile(saved)
		key, _ := os.ReadFile(d.KeyFile)
		if k := strings.TrimSpace(string(key)); k == "" || strings.Contains(string(raw), k) {
			t.Errorf("the device key is in the saved answers (or the key file is empty):\n%s", raw)
		}
		in, err := provision.LoadInstallConfig(saved)
		if err != nil {
			t.Fatal(err)
		}
		if in.Controller != ControllerURL() || in.ControllerFingerprint != fp || in.WANInterface != "wan0" || in.LANInterface != "lan0" || in.LANGateway != "" {
			t.Errorf("saved answers %+v; want the controller, wan0, lan0 and no gateway\n%s", in, raw)
		}
	}) {
		return
	}

	if !t.Run("--yes --config installs site-a from the saved answers", func(t *testing.T) {
		d := h.dev["site-a"]
		uapi := l.Path("site-a", "uapi")
		os.MkdirAll(uapi, 0o700)
		out, err := l.Run(ctx, "site-a", b.Vcpe, "install", "--yes", "--config", saved, "--sn", d.SN, "--key-file", d.KeyFile,
			"--advertise", LANA.String(), "--lan-gateway", haVIP.String(), "--lan-target", LANAHost.String(),
			"--state-dir", l.DeviceState("site-a"), "--uapi-dir", uapi, "--service", "process", "--vcped", b.Vcped)
		if err != nil {
			t.Fatalf("vcpe install --yes --config: %v\n%s", err, out)
		}
		if _, err := l.WaitTunnel(ctx, b, "site-a"); err != nil {
			t.Fatal(err)
		}
	}) {
		return
	}

	if !t.Run("wizard installs site-a2 as the standby with site-a's gateway", func(t *testing.T) {
		d := h.dev["site-a2"]
		w := startWizard(t, l, b, "site-a2", "--controller", ControllerURL(), "--controller-fingerprint", fp,
			"--sn", d.SN, "--advertise", LANA.String(), "--key-file", d.KeyFile)
		w.drive(ctx, titled("Multi-attach"))
		wants := []string{"site-a already has an active device, " + h.dev["site-a"].SN, haVIP.String(), "keep the same gateway"}
		w.waitScreen("the proposal of site-a's gateway", 10*time.Second, func(s string) bool {
			s = strings.Join(strings.Fields(s), " ")
			return !slices.ContainsFunc(wants, func(w string) bool { return !strings.Contains(s, w) })
		})
		w.keys("Enter") // two devices: yes (proposed)
		w.keys("Enter") // the proposed gateway
		w.waitScreen("the targets field", 10*time.Second, func(s string) bool { return strings.Contains(s, "┃ LAN hosts to watch") })
		w.keys("-l", LANAHost.String())
		w.keys("Enter")
		var review string
		s := w.drive(ctx, func(s string) bool {
			if titled("Review the plan")(s) && strings.Contains(s, "via ") {
				review = s
			}
			return titled("Done")(s)
		})
		if !strings.Contains(review, "via "+haVIP.Addr().String()) {
			t.Errorf("the review page does not route the LAN via the shared gateway %s:\n%s", haVIP.Addr(), review)
		}
		if !strings.Contains(s, "Installed") {
			t.Fatalf("wizard did not install site-a2:\n%s", s)
		}
		w.keys("Enter")
		if s := w.waitScreen("exit", 20*time.Second, func(s string) bool { return strings.Contains(s, "VCPE-EXIT=") }); !strings.Contains(s, "VCPE-EXIT=0") {
			t.Fatalf("wizard on site-a2 did not exit 0:\n%s", s)
		}
	}) {
		return
	}

	t.Run("failover still works", func(t *testing.T) {
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		for _, n := range []string{"site-a", "site-a2", "site-b"} {
			if _, err := l.WaitTunnel(wctx, b, n); err != nil {
				t.Fatal(err)
			}
			if err := l.waitRoutes(wctx, b, n, plan.learnedBy(n)); err != nil {
				t.Fatal(err)
			}
		}
		st, err := h.status("site-a2")
		if err != nil || st.HA == nil || st.HA.LANGateway != haVIP {
			t.Fatalf("site-a2 status %+v (%v); want multi-attach with gateway %s", st.HA, err, haVIP)
		}
		// The gateway chosen in the wizard reached the controller, which
		// tells the other device of the pair (vcped keeps its config).
		deadline := time.Now().Add(20 * time.Second)
		for {
			ds, err := device.LoadState(l.DeviceState("site-a"))
			if err == nil && slices.Contains(ds.Config.Peers, api.InstancePeer{SN: h.dev["site-a2"].SN, LANGateway: haVIP}) {
				break
			}
			if time.Now().After(deadline) {
				var peers []api.InstancePeer
				if ds != nil {
					peers = ds.Config.Peers
				}
				t.Fatalf("site-a's config names peers %+v (%v); want site-a2 with the gateway %s", peers, err, haVIP)
			}
			time.Sleep(200 * time.Millisecond)
		}
		h.waitRole(t, "site-a", api.RoleActive, 10*time.Second)
		h.waitRole(t, "site-a2", api.RoleStandby, 10*time.Second)
		if out, err := l.Run(ctx, "lan-a", "ip", "route", "replace", "default", "via", haVIP.Addr().String()); err != nil {
			t.Fatalf("lan-a default route: %v\n%s", err, out)
		}
		if err := reach(ctx, l, "lan-a", "198.19.2.10", 10*time.Second); err != nil {
			t.Fatalf("lan-a → lan-b through site-a: %v", err)
		}
		h.kill(t, "site-a")
		h.waitRole(t, "site-a2", api.RoleActive, 15*time.Second)
		if err := reach(ctx, l, "lan-a", "198.19.2.10", 15*time.Second); err != nil {
			t.Errorf("lan-a → lan-b after the failover to the wizard-installed site-a2: %v", err)
		}
	})
}
