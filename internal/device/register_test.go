package device_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/controllertest"
	"github.com/openvcpe/vcpe/internal/device"
)

func TestParseFingerprintAndURL(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		"sha256:" + hex:                              "sha256:" + hex,
		"SHA256:" + strings.ToUpper(hex):             "sha256:" + hex,
		"sha256:" + strings.Repeat("AB:", 31) + "AB": "sha256:" + hex,
	} {
		if got, err := device.ParseFingerprint(in); err != nil || got != want {
			t.Errorf("ParseFingerprint(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", hex, "sha256:" + hex[:62], "md5:" + hex, "sha256:" + strings.Repeat("zz", 32)} {
		if _, err := device.ParseFingerprint(bad); err == nil {
			t.Errorf("ParseFingerprint(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"http://198.18.0.1:8443", "198.18.0.1:8443", "https://", "https://h:1/path", "https://u:p@h:1"} {
		if _, err := device.ParseControllerURL(bad); err == nil || !strings.Contains(err.Error(), "--controller") {
			t.Errorf("ParseControllerURL(%q): %v", bad, err)
		}
	}
}

func TestRegisterRefusesAnotherDevicesState(t *testing.T) {
	h := controllertest.Serve(t)
	inst, err := h.Admin().CreateInstance(context.Background(), controller.CreateInstanceRequest{Name: "shop1"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := device.RegisterParams{StateDir: dir, Controller: controllertest.URL, Fingerprint: h.Fingerprint,
		SN: inst.Devices[0].SN, Key: inst.Devices[0].Key, Advertise: []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")},
		Client: h.ClientOptions(netip.MustParseAddr("198.18.0.11"))}
	if _, err := device.Register(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	p.SN, p.Key = inst.Devices[1].SN, inst.Devices[1].Key
	if _, err := device.Register(context.Background(), p); !errors.Is(err, device.ErrStateMismatch) {
		t.Errorf("second device in the same state dir: %v; want ErrStateMismatch", err)
	}
	// A corrupt state file is reported, never replaced.
	path := filepath.Join(dir, device.StateFile)
	os.WriteFile(path, []byte("{not json"), 0o600)
	p.SN, p.Key = inst.Devices[0].SN, inst.Devices[0].Key
	if _, err := device.Register(context.Background(), p); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt state: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{not json" {
		t.Error("the corrupt state file was replaced")
	}
}

func TestProofBindsEveryField(t *testing.T) {
	secret := api.DeviceKeySecret("k")
	pub := api.Key{1}
	adv := []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")}
	base := api.RegistrationProof(secret, "n", "SN", pub, adv)
	if !api.CheckProof(api.DeviceKeySecret(" k\n"), "n", "SN", pub, adv, base) {
		t.Error("white space around the key changed the proof")
	}
	for name, p := range map[string][]byte{
		"key":       api.RegistrationProof(api.DeviceKeySecret("k2"), "n", "SN", pub, adv),
		"nonce":     api.RegistrationProof(secret, "n2", "SN", pub, adv),
		"sn":        api.RegistrationProof(secret, "n", "SN2", pub, adv),
		"pub":       api.RegistrationProof(secret, "n", "SN", api.Key{2}, adv),
		"advertise": api.RegistrationProof(secret, "n", "SN", pub, nil),
		"shift":     api.RegistrationProof(secret, "nS", "N", pub, adv),
	} {
		if api.CheckProof(secret, "n", "SN", pub, adv, p) {
			t.Errorf("changing the %s kept the proof", name)
		}
	}
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("ab", 32))
	f.Add("sha256:ab:cd")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := device.ParseFingerprint(s)
		if err != nil {
			return
		}
		if len(fp) != 7+64 || !strings.HasPrefix(fp, "sha256:") {
			t.Fatalf("accepted %q as %q", s, fp)
		}
	})
}

func TestRegisterRepeatsWithTheSameKeyAfterALostAnswer(t *testing.T) {
	h := controllertest.Serve(t)
	inst, err := h.Admin().CreateInstance(context.Background(), controller.CreateInstanceRequest{Name: "shop1"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := device.RegisterParams{StateDir: dir, Controller: controllertest.URL, Fingerprint: h.Fingerprint,
		SN: inst.Devices[0].SN, Key: inst.Devices[0].Key, Client: h.ClientOptions(netip.MustParseAddr("198.18.0.11"))}
	// A first attempt made the pending key and the controller bound it,
	// but the answer never arrived.
	priv, _ := api.GeneratePrivateKey()
	if err := os.WriteFile(filepath.Join(dir, ".pending-wireguard.key"), []byte(priv.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Client(netip.MustParseAddr("198.18.0.11")).Register(context.Background(), device.RegisterRequest{SN: p.SN, Key: p.Key, PublicKey: priv.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	st, err := device.Register(context.Background(), p)
	if err != nil {
		t.Fatalf("repeated registration: %v (want the pending WireGuard key, accepted)", err)
	}
	if st.PrivateKey != priv {
		t.Error("the repeated registration made a new WireGuard key")
	}
	if _, err := os.Stat(filepath.Join(dir, ".pending-wireguard.key")); err == nil {
		t.Error("the pending key file is left after success")
	}
	if peers := h.HubConfig().Peers; len(peers) != 1 || peers[0].PublicKey != st.PrivateKey.PublicKey() {
		t.Errorf("hub peers %+v", peers)
	}
}

// TestReleaseWithKey: a device that lost its credential (the registration
// answer never arrived, the state file is gone) gives its slot back by
// proving it holds the WireGuard key; a wrong key releases nothing.
func TestReleaseWithKey(t *testing.T) {
	h := controllertest.Serve(t)
	inst, err := h.Admin().CreateInstance(context.Background(), controller.CreateInstanceRequest{Name: "shop1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sn, key := inst.Devices[0].SN, inst.Devices[0].Key
	c := h.Client(netip.MustParseAddr("198.18.0.11"))
	priv, _ := api.GeneratePrivateKey()
	other, _ := api.GeneratePrivateKey()
	if rel, err := c.ReleaseWithKey(ctx, sn, priv); err != nil || rel {
		t.Fatalf("release of an unbound SN: released %v, %v; want false, nil", rel, err)
	}
	if _, err := c.Register(ctx, device.RegisterRequest{SN: sn, Key: key, PublicKey: priv.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	if rel, err := c.ReleaseWithKey(ctx, sn, other); err != nil || rel {
		t.Fatalf("release with another WireGuard key: released %v, %v; want false, nil", rel, err)
	}
	if len(h.HubConfig().Peers) != 1 {
		t.Fatal("a release with the wrong key unbound the device")
	}
	if rel, err := c.ReleaseWithKey(ctx, sn, priv); err != nil || !rel {
		t.Fatalf("release with the bound key: released %v, %v; want true", rel, err)
	}
	if len(h.HubConfig().Peers) != 0 {
		t.Errorf("hub peers after release: %+v", h.HubConfig().Peers)
	}
	// The slot is free: the same SN and key register from a new key.
	if _, err := c.Register(ctx, device.RegisterRequest{SN: sn, Key: key, PublicKey: other.PublicKey()}); err != nil {
		t.Errorf("register after release: %v", err)
	}
}
