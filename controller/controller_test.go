package controller_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netns"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/controllertest"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/internal/namespace"
)

var (
	site1 = netip.MustParseAddr("198.18.0.11")
	site2 = netip.MustParseAddr("198.18.0.12")
	evil  = netip.MustParseAddr("198.18.0.99")
	lan1  = netip.MustParsePrefix("198.19.1.0/24")
	lan2  = netip.MustParsePrefix("198.19.2.0/24")
	lan3  = netip.MustParsePrefix("198.19.3.0/24")
	cloud = netip.MustParsePrefix("198.19.100.0/24")
)

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func newInstance(t testing.TB, h *controllertest.Harness, name string) *controller.CreatedInstance {
	t.Helper()
	res, err := h.Admin().CreateInstance(ctx(t), controller.CreateInstanceRequest{Name: name})
	if err != nil {
		t.Fatalf("instance create %s: %v", name, err)
	}
	return res
}

// attach puts instance inst into CCN ccn, creating the CCN when needed.
func attach(t *testing.T, h *controllertest.Harness, ccn, inst string) {
	t.Helper()
	a := h.Admin()
	if _, err := a.CreateCCN(ctx(t), ccn); err != nil && !strings.Contains(err.Error(), "exists") {
		t.Fatalf("ccn create %s: %v", ccn, err)
	}
	if _, err := a.Attach(ctx(t), ccn, inst); err != nil {
		t.Fatalf("ccn attach %s %s: %v", ccn, inst, err)
	}
}

func wgKey(t testing.TB) api.Key {
	t.Helper()
	k, err := api.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func register(t testing.TB, h *controllertest.Harness, from netip.Addr, sn, key string, pub api.Key, adv ...netip.Prefix) (api.RegisterResponse, error) {
	t.Helper()
	return h.Client(from).Register(ctx(t), device.RegisterRequest{SN: sn, Key: key, PublicKey: pub, Advertise: adv})
}

func apiCode(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return fmt.Sprintf("not an api.Error: %v", err)
}

func TestRegisterWritesStateAndConfig(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	if len(inst.Devices) != 2 {
		t.Fatalf("instance create gave %d devices; want 2 (default slots)", len(inst.Devices))
	}
	if len(inst.Devices[0].Key) < 26 { // 128 bits in base32
		t.Fatalf("device key %d characters; want at least 128 bits", len(inst.Devices[0].Key))
	}
	dir := filepath.Join(t.TempDir(), "dev")
	st, err := device.Register(ctx(t), device.RegisterParams{
		StateDir: dir, Controller: controllertest.URL, Fingerprint: h.Fingerprint,
		SN: inst.Devices[0].SN, Key: inst.Devices[0].Key, Advertise: []netip.Prefix{lan1},
		Client: h.ClientOptions(site1),
	})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	cfg := st.Config
	if cfg.Role != api.RoleActive || cfg.HubPublicKey != h.HubPublicKey() || cfg.HubEndpoint.String() != "198.18.0.1:4500" ||
		cfg.OverlayAddr.Bits() != 18 || !controller.DefaultOverlay.Contains(cfg.OverlayAddr.Addr()) || cfg.HubOverlayAddr.String() != "198.18.64.1" {
		t.Errorf("config = %+v", cfg)
	}
	if !slices.Equal(cfg.Advertised, []netip.Prefix{lan1}) || len(cfg.Routes) != 0 {
		t.Errorf("advertised %v routes %v; want [%v] and none (no CCN)", cfg.Advertised, cfg.Routes, lan1)
	}
	fi, err := os.Stat(filepath.Join(dir, device.StateFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v mode %v; want 0600", err, fi.Mode())
	}
	loaded, err := device.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.PrivateKey.IsZero() || loaded.Credential == "" || loaded.ControllerFingerprint != h.Fingerprint {
		t.Errorf("state lacks identity: %+v", loaded)
	}
	// The device key never reaches the state file.
	raw, _ := os.ReadFile(filepath.Join(dir, device.StateFile))
	if bytes.Contains(raw, []byte(inst.Devices[0].Key)) {
		t.Error("the device key is in the state file")
	}
	// The credential works for config sync.
	c, err := device.NewClientFromState(loaded, h.ClientOptions(site1))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.DeviceConfig(ctx(t))
	if err != nil {
		t.Fatalf("device config: %v", err)
	}
	if got.OverlayAddr != cfg.OverlayAddr || got.Generation < cfg.Generation {
		t.Errorf("synced config %+v; want overlay %v", got, cfg.OverlayAddr)
	}
	// Registering again from the same state dir is idempotent.
	st2, err := device.Register(ctx(t), device.RegisterParams{
		StateDir: dir, Controller: controllertest.URL, Fingerprint: h.Fingerprint,
		SN: inst.Devices[0].SN, Key: inst.Devices[0].Key, Advertise: []netip.Prefix{lan1},
		Client: h.ClientOptions(site1),
	})
	if err != nil {
		t.Fatalf("register again: %v", err)
	}
	if st2.PrivateKey != st.PrivateKey || st2.Config.OverlayAddr != cfg.OverlayAddr || st2.Config.Role != api.RoleActive {
		t.Errorf("second registration changed identity: %+v", st2.Config)
	}
	// The audit log holds the registration, never the key.
	db, _ := os.ReadFile(filepath.Join(h.StateDir, controller.StoreFile))
	if bytes.Contains(db, []byte(inst.Devices[0].Key)) {
		t.Error("the device key is in the store")
	}
}

func TestWrongKeyAndUnknownSNAnswerAlike(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	_, errWrong := register(t, h, site1, inst.Devices[0].SN, "not-the-key", wgKey(t).PublicKey(), lan1)
	_, errUnknown := register(t, h, site2, "VCNOSUCHDEVICE00", inst.Devices[0].Key, wgKey(t).PublicKey(), lan1)
	var a, b *api.Error
	if !errors.As(errWrong, &a) || !errors.As(errUnknown, &b) {
		t.Fatalf("errors %v / %v; want *api.Error", errWrong, errUnknown)
	}
	if diff := cmp.Diff(a, b); diff != "" || a.Code != api.CodeUnauthorized {
		t.Errorf("wrong key and unknown SN differ (-wrong +unknown):\n%s (code %s)", diff, a.Code)
	}
}

// raw posts JSON to the device API without the pinned client, to send
// what a well-behaved client would not.
func raw(t *testing.T, h *controllertest.Harness, from netip.Addr, path string, body any, out any) (int, *api.Error) {
	t.Helper()
	opts := h.ClientOptions(from)
	hc := &http.Client{Transport: &http.Transport{DialContext: opts.Dial, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	b, _ := json.Marshal(body)
	resp, err := hc.Post(controllertest.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e api.Error
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatalf("POST %s: %s: %s", path, resp.Status, data)
		}
		return resp.StatusCode, &e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, nil
}

func TestReplayedNonceIsRefused(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	d := inst.Devices[0]
	pub := wgKey(t).PublicKey()
	var ch api.Challenge
	if code, e := raw(t, h, site1, "/v1/register/challenge", api.ChallengeRequest{SN: d.SN}, &ch); e != nil {
		t.Fatalf("challenge: %d %v", code, e)
	}
	req := api.RegisterRequest{SN: d.SN, Nonce: ch.Nonce, PublicKey: pub, Advertise: []netip.Prefix{lan1},
		Proof: api.RegistrationProof(api.DeviceKeySecret(d.Key), ch.Nonce, d.SN, pub, []netip.Prefix{lan1})}
	if code, e := raw(t, h, site1, "/v1/register", req, nil); e != nil {
		t.Fatalf("first answer: %d %v", code, e)
	}
	code, e := raw(t, h, site1, "/v1/register", req, nil)
	if e == nil || code != http.StatusUnauthorized || e.Code != api.CodeUnauthorized {
		t.Fatalf("replay answered %d %+v; want 401 unauthorized", code, e)
	}
	// An expired nonce is refused too.
	raw(t, h, site1, "/v1/register/challenge", api.ChallengeRequest{SN: d.SN}, &ch)
	h.Clock.Advance(controller.NonceTTL + time.Second)
	req.Nonce = ch.Nonce
	req.Proof = api.RegistrationProof(api.DeviceKeySecret(d.Key), ch.Nonce, d.SN, pub, []netip.Prefix{lan1})
	if code, e := raw(t, h, site1, "/v1/register", req, nil); e == nil || e.Code != api.CodeUnauthorized {
		t.Fatalf("expired nonce answered %d %+v; want unauthorized", code, e)
	}
	// A proof over other prefixes than those sent is wrong.
	raw(t, h, site1, "/v1/register/challenge", api.ChallengeRequest{SN: d.SN}, &ch)
	req.Nonce = ch.Nonce
	req.Proof = api.RegistrationProof(api.DeviceKeySecret(d.Key), ch.Nonce, d.SN, pub, []netip.Prefix{lan2})
	if code, e := raw(t, h, site1, "/v1/register", req, nil); e == nil || e.Code != api.CodeUnauthorized {
		t.Fatalf("tampered prefixes answered %d %+v; want unauthorized", code, e)
	}
}

func TestConcurrentRegistrationsNeverExceedSlots(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, taken := 0, 0
	var other []error
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := inst.Devices[i%2]
			from := netip.AddrFrom4([4]byte{198, 18, 1, byte(i)})
			_, err := register(t, h, from, d.SN, d.Key, wgKey(t).PublicKey(), lan1)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case apiCode(err) == api.CodeSlotTaken:
				taken++
			default:
				other = append(other, err)
			}
		}()
	}
	wg.Wait()
	if ok != 2 || taken != 98 || len(other) > 0 {
		t.Fatalf("%d registered, %d slot_taken, other errors %v; want 2, 98, none", ok, taken, other)
	}
	info, err := h.Admin().ShowInstance(ctx(t), "shop1")
	if err != nil {
		t.Fatal(err)
	}
	if info.Active == "" || len(h.HubConfig().Peers) != 2 {
		t.Errorf("instance %+v, %d hub peers; want an active device and 2 peers", info, len(h.HubConfig().Peers))
	}
}

func TestWrongKeysAreThrottledAndTheRightKeyStillWorks(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	d := inst.Devices[0]
	attacker := h.Client(evil)
	counts := map[string]int{}
	for i := range 1000 {
		_, err := attacker.Register(ctx(t), device.RegisterRequest{SN: d.SN, Key: fmt.Sprintf("guess-%d", i), PublicKey: wgKey(t).PublicKey()})
		counts[apiCode(err)]++
		if i%100 == 99 {
			h.Clock.Advance(time.Second) // the attack goes on for 10 s
		}
	}
	if counts[api.CodeUnauthorized]+counts[api.CodeRateLimited] != 1000 || counts[api.CodeRateLimited] < 980 {
		t.Fatalf("answers to 1000 wrong keys: %v; want nearly all rate_limited", counts)
	}
	// The attacker's address is throttled beyond the SN backoff.
	_, err := attacker.Register(ctx(t), device.RegisterRequest{SN: d.SN, Key: "again", PublicKey: wgKey(t).PublicKey()})
	if apiCode(err) != api.CodeRateLimited {
		t.Errorf("attacker after the attack: %v; want rate_limited", err)
	}
	// The real device, from its own address, is delayed at most by the SN
	// backoff, never locked out.
	dev := wgKey(t).PublicKey()
	_, err = register(t, h, site1, d.SN, d.Key, dev, lan1)
	var ae *api.Error
	if err != nil {
		if !errors.As(err, &ae) || ae.Code != api.CodeRateLimited || ae.RetryAfter < 1 || ae.RetryAfter > 30 {
			t.Fatalf("right key during the attack: %v; want success or rate_limited with retry_after ≤ 30 s", err)
		}
		h.Clock.Advance(time.Duration(ae.RetryAfter) * time.Second)
		if _, err = register(t, h, site1, d.SN, d.Key, dev, lan1); err != nil {
			t.Fatalf("right key after the backoff: %v", err)
		}
	}
	// ... but not forever.
	h.Clock.Advance(6 * time.Minute)
	_, err = attacker.Register(ctx(t), device.RegisterRequest{SN: d.SN, Key: "again", PublicKey: wgKey(t).PublicKey()})
	if apiCode(err) != api.CodeUnauthorized {
		t.Errorf("attacker 6 minutes later: %v; want unauthorized (no permanent lockout)", err)
	}
}

func TestResetKeyInvalidatesOldKeyAndCredential(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	d := inst.Devices[0]
	priv := wgKey(t)
	res, err := register(t, h, site1, d.SN, d.Key, priv.PublicKey(), lan1)
	if err != nil {
		t.Fatal(err)
	}
	overlay := res.Config.OverlayAddr
	newKey, err := h.Admin().ResetKey(ctx(t), d.SN)
	if err != nil || newKey.Key == d.Key {
		t.Fatalf("reset-key: %v (same key: %v)", err, newKey.Key == d.Key)
	}
	c, _ := device.NewClientFromState(&device.State{Controller: controllertest.URL, ControllerFingerprint: h.Fingerprint, Credential: res.Credential}, h.ClientOptions(site1))
	if _, err := c.DeviceConfig(ctx(t)); apiCode(err) != api.CodeKeyReset {
		t.Errorf("old credential after reset: %v; want key_reset", err)
	}
	if _, err := register(t, h, site1, d.SN, d.Key, priv.PublicKey(), lan1); apiCode(err) != api.CodeUnauthorized {
		t.Errorf("old key after reset: %v; want unauthorized", err)
	}
	if len(h.HubConfig().Peers) != 0 {
		t.Errorf("hub still peers with the reset device: %+v", h.HubConfig().Peers)
	}
	// The new key works, from a new WireGuard key too, and the device keeps
	// its overlay address.
	res2, err := register(t, h, site1, d.SN, newKey.Key, wgKey(t).PublicKey(), lan1)
	if err != nil {
		t.Fatalf("new key: %v", err)
	}
	if res2.Config.OverlayAddr != overlay {
		t.Errorf("overlay after reset %v; want %v", res2.Config.OverlayAddr, overlay)
	}
}

func TestRevokedDevice(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	d := inst.Devices[0]
	pub := wgKey(t).PublicKey()
	res, err := register(t, h, site1, d.SN, d.Key, pub, lan1)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Admin().Revoke(ctx(t), d.SN); err != nil {
		t.Fatal(err)
	}
	c, _ := device.NewClientFromState(&device.State{Controller: controllertest.URL, ControllerFingerprint: h.Fingerprint, Credential: res.Credential}, h.ClientOptions(site1))
	if _, err := c.DeviceConfig(ctx(t)); apiCode(err) != api.CodeRevoked {
		t.Errorf("credential after revoke: %v; want revoked", err)
	}
	if _, err := register(t, h, site1, d.SN, d.Key, pub, lan1); apiCode(err) != api.CodeRevoked {
		t.Errorf("register after revoke: %v; want revoked", err)
	}
	if len(h.HubConfig().Peers) != 0 {
		t.Errorf("hub still peers with the revoked device")
	}
}

func TestActiveStandbyAndSubscribe(t *testing.T) {
	h := controllertest.Serve(t)
	ch, cancel := h.Subscribe()
	defer cancel()
	first := <-ch
	if len(first.Peers) != 0 || first.HubOverlayAddr.String() != "198.18.64.1" {
		t.Fatalf("first hub config %+v", first)
	}
	inst := newInstance(t, h, "shop1")
	attach(t, h, "corp", "shop1") // an instance in no CCN gets nothing routed
	a, err := register(t, h, site1, inst.Devices[0].SN, inst.Devices[0].Key, wgKey(t).PublicKey(), lan1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := register(t, h, site2, inst.Devices[1].SN, inst.Devices[1].Key, wgKey(t).PublicKey(), lan2); apiCode(err) != api.CodePrefixConflict {
		t.Errorf("standby advertising other prefixes: %v; want prefix_conflict", err)
	}
	b, err := register(t, h, site2, inst.Devices[1].SN, inst.Devices[1].Key, wgKey(t).PublicKey(), lan1)
	if err != nil {
		t.Fatal(err)
	}
	if a.Config.Role != api.RoleActive || b.Config.Role != api.RoleStandby {
		t.Errorf("roles %s/%s; want active/standby", a.Config.Role, b.Config.Role)
	}
	want := h.HubConfig()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case hc := <-ch:
			if hc.Generation < want.Generation {
				continue
			}
			if diff := cmp.Diff(want, hc, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{}, netip.AddrPort{})); diff != "" {
				t.Fatalf("published hub config differs (-want +got):\n%s", diff)
			}
			if len(hc.Peers) != 2 {
				t.Fatalf("peers %+v; want 2", hc.Peers)
			}
			for _, p := range hc.Peers {
				wantIPs := []netip.Prefix{netip.PrefixFrom(p.OverlayAddr, 32)}
				if p.SN == inst.Devices[0].SN {
					wantIPs = append(wantIPs, lan1)
				}
				if p.Active != (p.SN == inst.Devices[0].SN) || !slices.Equal(p.AllowedIPs, wantIPs) {
					t.Errorf("peer %+v; want allowed IPs %v", p, wantIPs)
				}
			}
			return
		case <-deadline:
			t.Fatal("no hub config published after the registrations")
		}
	}
}

func TestRoutesAreValidated(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	d := inst.Devices[0]
	six := []netip.Prefix{}
	for i := range 6 {
		six = append(six, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(10 + i), 0}), 24))
	}
	for _, tc := range []struct {
		name  string
		adv   []netip.Prefix
		code  string
		field string
	}{
		{"quota", six, api.CodeQuota, "advertise"},
		{"overlay", []netip.Prefix{netip.MustParsePrefix("198.18.64.0/24")}, api.CodePrefixConflict, "advertise[0]"},
		{"cloud", []netip.Prefix{lan1, netip.MustParsePrefix("198.19.100.128/25")}, api.CodePrefixConflict, "advertise[1]"},
		{"short mask", []netip.Prefix{netip.MustParsePrefix("198.0.0.0/7")}, api.CodeInvalidInput, "advertise[0]"},
		{"host bits", []netip.Prefix{netip.MustParsePrefix("198.19.1.1/24")}, api.CodeInvalidInput, "advertise[0]"},
		{"self overlap", []netip.Prefix{lan1, netip.MustParsePrefix("198.19.1.0/25")}, api.CodeInvalidInput, "advertise[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := register(t, h, site1, d.SN, d.Key, wgKey(t).PublicKey(), tc.adv...)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != tc.code || ae.Field != tc.field {
				t.Fatalf("register %v: %v; want %s on %s", tc.adv, err, tc.code, tc.field)
			}
		})
	}
	// Five prefixes are fine, and route sync replaces them.
	res, err := register(t, h, site1, d.SN, d.Key, wgKey(t).PublicKey(), six[:5]...)
	if err != nil {
		t.Fatalf("5 prefixes: %v", err)
	}
	c, _ := device.NewClientFromState(&device.State{Controller: controllertest.URL, ControllerFingerprint: h.Fingerprint, Credential: res.Credential}, h.ClientOptions(site1))
	cfg, err := c.AdvertiseRoutes(ctx(t), []netip.Prefix{lan1})
	if err != nil || !slices.Equal(cfg.Advertised, []netip.Prefix{lan1}) || cfg.Generation <= res.Config.Generation {
		t.Fatalf("advertise routes: %v, %+v", err, cfg)
	}
	if _, err := c.AdvertiseRoutes(ctx(t), six); apiCode(err) != api.CodeQuota {
		t.Errorf("advertise 6: %v; want quota_exceeded", err)
	}
}

func TestCCNIsolation(t *testing.T) {
	h := controllertest.Serve(t)
	a := h.Admin()
	c := ctx(t)
	for _, n := range []string{"red", "blue"} {
		if _, err := a.CreateCCN(c, n); err != nil {
			t.Fatal(err)
		}
	}
	creds := map[string]string{}
	for _, s := range []struct {
		inst, ccn string
		lan       netip.Prefix
	}{{"shop1", "red", lan1}, {"shop2", "red", lan2}, {"shop3", "blue", lan3}} {
		inst := newInstance(t, h, s.inst)
		if _, err := a.Attach(c, s.ccn, s.inst); err != nil {
			t.Fatalf("attach %s %s: %v", s.ccn, s.inst, err)
		}
		res, err := register(t, h, site1, inst.Devices[0].SN, inst.Devices[0].Key, wgKey(t).PublicKey(), s.lan)
		if err != nil {
			t.Fatalf("register %s: %v", s.inst, err)
		}
		creds[s.inst] = res.Credential
	}
	want := map[string][]netip.Prefix{
		"shop1": {lan2, cloud},
		"shop2": {lan1, cloud},
		"shop3": {cloud},
	}
	for inst, w := range want {
		cfg, err := h.DeviceConfig(creds[inst])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cfg.Routes, w) {
			t.Errorf("%s learns %v; want %v", inst, cfg.Routes, w)
		}
	}
	// An overlapping instance cannot join red, nor register into it.
	inst4 := newInstance(t, h, "shop4")
	if _, err := a.Attach(c, "red", "shop4"); err != nil {
		t.Fatal(err)
	}
	_, err := register(t, h, site2, inst4.Devices[0].SN, inst4.Devices[0].Key, wgKey(t).PublicKey(), netip.MustParsePrefix("198.19.1.128/25"))
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodePrefixConflict || ae.Field != "advertise[0]" {
		t.Fatalf("overlapping registration: %v; want prefix_conflict on advertise[0]", err)
	}
	// Moving shop3 (198.19.3.0/24) to red: allowed, and then red learns it.
	if _, err := a.Detach(c, "blue", "shop3"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Attach(c, "red", "shop3"); err != nil {
		t.Fatal(err)
	}
	cfg, _ := h.DeviceConfig(creds["shop1"])
	if !slices.Equal(cfg.Routes, []netip.Prefix{lan2, lan3, cloud}) {
		t.Errorf("shop1 after shop3 joined red learns %v", cfg.Routes)
	}
	rep, err := a.Routes(c, "red")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rep.Instances {
		if e.Instance == "shop1" && !slices.Equal(e.LearnedBy, []string{"shop2", "shop3", "shop4"}) {
			t.Errorf("routes list: shop1 learned by %v", e.LearnedBy)
		}
	}
}

func TestRestartKeepsStateAndIdentity(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	d := inst.Devices[0]
	pub := wgKey(t).PublicKey()
	res, err := register(t, h, site1, d.SN, d.Key, pub, lan1)
	if err != nil {
		t.Fatal(err)
	}
	fp, hub, gen := h.Fingerprint, h.HubPublicKey(), h.HubConfig().Generation
	h.Restart()
	if h.Fingerprint != fp || h.HubPublicKey() != hub {
		t.Fatalf("identity changed on restart: %s/%s → %s/%s", fp, hub, h.Fingerprint, h.HubPublicKey())
	}
	if g := h.HubConfig().Generation; g < gen {
		t.Errorf("generation went back from %d to %d", gen, g)
	}
	cfg, err := h.DeviceConfig(res.Credential)
	if err != nil {
		t.Fatalf("credential after restart: %v", err)
	}
	if cfg.OverlayAddr != res.Config.OverlayAddr || cfg.Role != api.RoleActive || !slices.Equal(cfg.Advertised, []netip.Prefix{lan1}) {
		t.Errorf("config after restart %+v", cfg)
	}
	// The slot is still bound to the WireGuard key.
	if _, err := register(t, h, site1, d.SN, d.Key, wgKey(t).PublicKey(), lan1); apiCode(err) != api.CodeSlotTaken {
		t.Errorf("other WireGuard key after restart: %v; want slot_taken", err)
	}
	res2, err := register(t, h, site1, d.SN, d.Key, pub, lan1)
	if err != nil || res2.Config.OverlayAddr != res.Config.OverlayAddr {
		t.Fatalf("re-register after restart: %v %v", err, res2.Config.OverlayAddr)
	}
	// New slots do not reuse taken addresses.
	inst2 := newInstance(t, h, "shop2")
	for _, dv := range inst2.Instance.Devices {
		if dv.OverlayAddr == res.Config.OverlayAddr.Addr() {
			t.Errorf("new device %s got the taken address %v", dv.SN, dv.OverlayAddr)
		}
	}
}

func TestPinnedFingerprint(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	wrong := "sha256:" + fmt.Sprintf("%064x", 1)
	c, err := device.NewClient(controllertest.URL, wrong, h.ClientOptions(site1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Register(ctx(t), device.RegisterRequest{SN: inst.Devices[0].SN, Key: inst.Devices[0].Key, PublicKey: wgKey(t).PublicKey()})
	var fe *device.FingerprintError
	if !errors.As(err, &fe) || len(fe.Got) == 0 {
		t.Fatalf("wrong fingerprint: %v; want a FingerprintError naming what was presented", err)
	}
}

func TestAdminErrors(t *testing.T) {
	h := controllertest.Serve(t)
	a := h.Admin()
	inst := newInstance(t, h, "shop1")
	for name, err := range map[string]error{
		"duplicate": func() error {
			_, err := a.CreateInstance(ctx(t), controller.CreateInstanceRequest{Name: "shop1"})
			return err
		}(),
		"bad name": func() error {
			_, err := a.CreateInstance(ctx(t), controller.CreateInstanceRequest{Name: "a b"})
			return err
		}(),
		"slots": func() error {
			_, err := a.CreateInstance(ctx(t), controller.CreateInstanceRequest{Name: "x", Slots: 99})
			return err
		}(),
	} {
		if apiCode(err) != api.CodeInvalidInput {
			t.Errorf("%s: %v; want invalid_input", name, err)
		}
	}
	if _, err := a.ShowInstance(ctx(t), "nope"); apiCode(err) != api.CodeNotFound {
		t.Errorf("show nope: %v", err)
	}
	res, err := register(t, h, site1, inst.Devices[0].SN, inst.Devices[0].Key, wgKey(t).PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteInstance(ctx(t), "shop1"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.DeviceConfig(res.Credential); apiCode(err) != api.CodeRevoked {
		t.Errorf("credential of a deleted instance's device: %v; want revoked", err)
	}
	if len(h.HubConfig().Peers) != 0 {
		t.Error("hub still peers with a deleted instance's device")
	}
	if l, _ := a.ListInstances(ctx(t)); len(l) != 0 {
		t.Errorf("instances after delete: %+v", l)
	}
}

func TestStateFilesArePrivate(t *testing.T) {
	h := controllertest.Serve(t)
	newInstance(t, h, "shop1")
	fi, err := os.Stat(h.StateDir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	for _, f := range []string{"ca.key", "server.key", controller.HubKeyFile, controller.StoreFile, controller.AdminSocket} {
		fi, err := os.Stat(filepath.Join(h.StateDir, f))
		if err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, %v; want no group or other access", f, fi.Mode().Perm(), err)
		}
	}
	if fp, err := controller.ReadFingerprint(h.StateDir); err != nil || fp != h.Fingerprint {
		t.Errorf("ReadFingerprint = %s, %v; want %s", fp, err, h.Fingerprint)
	}
}

func TestSlowSubscriberNeverBlocksTheAPI(t *testing.T) {
	h := controllertest.Serve(t)
	_, cancel := h.Subscribe() // never read
	defer cancel()
	for i := range 20 {
		newInstance(t, h, fmt.Sprintf("shop%d", i))
	}
	// A reader that comes late gets the latest state, not a backlog.
	ch, cancel2 := h.Subscribe()
	defer cancel2()
	want := h.HubConfig().Generation
	deadline := time.After(10 * time.Second)
	for {
		select {
		case hc := <-ch:
			if hc.Generation == want {
				return
			}
			if hc.Generation > want {
				t.Fatalf("generation %d beyond %d", hc.Generation, want)
			}
		case <-deadline:
			t.Fatalf("latest generation %d never arrived", want)
		}
	}
}

// TestServeOnRealListener registers over a real TCP socket on loopback
// inside a fresh network namespace.
func TestServeOnRealListener(t *testing.T) {
	ns := namespace.New(t)
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	var ln net.Listener
	var err error
	inNS(t, ns.Name, func() { ln, err = net.Listen("tcp", "127.0.0.1:0") })
	if err != nil {
		t.Fatal(err)
	}
	url := h.ServeOn(ln)
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		inNS(t, ns.Name, func() { c, err = (&net.Dialer{}).DialContext(ctx, network, addr) })
		return c, err
	}
	c, err := device.NewClient(url, h.Fingerprint, device.ClientOptions{Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx(t), device.RegisterRequest{SN: inst.Devices[0].SN, Key: inst.Devices[0].Key, PublicKey: wgKey(t).PublicKey()}); err != nil {
		t.Fatalf("register over TCP: %v", err)
	}
}

// inNS runs f on a thread inside the named namespace; sockets made there
// stay in it.
func inNS(t *testing.T, name string, f func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			done <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			done <- err
			return
		}
		f()
		if err := netns.Set(orig); err != nil {
			done <- err // the thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("in namespace %s: %v", name, err)
	}
}

func TestReleaseFreesTheSlotForTheSameKey(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	d := inst.Devices[0]
	res, err := register(t, h, site1, d.SN, d.Key, wgKey(t).PublicKey(), lan1)
	if err != nil {
		t.Fatal(err)
	}
	// Before the release, another WireGuard key is refused for this SN.
	if _, err := register(t, h, site1, d.SN, d.Key, wgKey(t).PublicKey(), lan1); apiCode(err) != api.CodeSlotTaken {
		t.Fatalf("second WireGuard key before release: %v; want slot_taken", err)
	}
	c, _ := device.NewClientFromState(&device.State{Controller: controllertest.URL, ControllerFingerprint: h.Fingerprint, Credential: res.Credential}, h.ClientOptions(site1))
	if err := c.Release(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeviceConfig(ctx(t)); apiCode(err) != api.CodeReleased {
		t.Errorf("credential after release: %v; want released", err)
	}
	if len(h.HubConfig().Peers) != 0 {
		t.Errorf("hub still peers with the released device: %+v", h.HubConfig().Peers)
	}
	if err := c.Release(ctx(t)); apiCode(err) != api.CodeReleased {
		t.Errorf("second release: %v; want released", err)
	}
	// The same SN and key register again, from a new WireGuard key, and
	// keep the overlay address.
	res2, err := register(t, h, site1, d.SN, d.Key, wgKey(t).PublicKey(), lan1)
	if err != nil {
		t.Fatalf("register after release: %v", err)
	}
	if res2.Config.OverlayAddr != res.Config.OverlayAddr {
		t.Errorf("overlay after release %v; want %v", res2.Config.OverlayAddr, res.Config.OverlayAddr)
	}
}
