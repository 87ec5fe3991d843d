package controller_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/controllertest"
	"github.com/openvcpe/vcpe/internal/device"
)

// The attack suite of the controller: each test is what an attacker
// holding one registered device (its key and credential, nothing more)
// tries, and checks that the write does not happen, not only the status.

// peerOf returns the hub peer of sn in the controller's HubConfig.
func peerOf(t *testing.T, h *controllertest.Harness, sn string) api.HubPeer {
	t.Helper()
	for _, p := range h.HubConfig().Peers {
		if p.SN == sn {
			return p
		}
	}
	t.Fatalf("no hub peer %s", sn)
	return api.HubPeer{}
}

// TestAttackCrossTenantHijack: a device of another CCN, or of no CCN,
// advertises the victim's LAN (at registration and later by route sync).
// It is refused without naming the victim, the hub keeps routing the
// prefix to the victim only, and an instance in no CCN has nothing routed
// at all.
func TestAttackCrossTenantHijack(t *testing.T) {
	h := controllertest.Serve(t)
	victim := newInstance(t, h, "bank-branch")
	attach(t, h, "bankccn", "bank-branch")
	if _, err := register(t, h, site1, victim.Devices[0].SN, victim.Devices[0].Key, wgKey(t).PublicKey(), lan1); err != nil {
		t.Fatal(err)
	}
	other := newInstance(t, h, "evil-shop")
	attach(t, h, "evilccn", "evil-shop")
	loner := newInstance(t, h, "loner")

	secret := []string{"bank-branch", "bankccn", victim.Devices[0].SN}
	refused := func(what string, err error) {
		t.Helper()
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodePrefixConflict || ae.Field != "advertise[0]" || ae.Fix == "" {
			t.Fatalf("%s: %v; want prefix_conflict on advertise[0] with a fix", what, err)
		}
		for _, s := range secret {
			if strings.Contains(ae.Message+ae.Fix, s) {
				t.Errorf("%s: the refusal reveals %q: %s / %s", what, s, ae.Message, ae.Fix)
			}
		}
	}
	for _, inst := range []*controller.CreatedInstance{other, loner} {
		_, err := register(t, h, evil, inst.Devices[0].SN, inst.Devices[0].Key, wgKey(t).PublicKey(), netip.MustParsePrefix("198.19.1.128/25"))
		refused("register "+inst.Instance.Name+" with part of the victim's LAN", err)
	}
	// Registered with its own LAN, the attacker tries route sync.
	res, err := register(t, h, evil, other.Devices[0].SN, other.Devices[0].Key, wgKey(t).PublicKey(), lan2)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := device.NewClientFromState(&device.State{Controller: controllertest.URL, ControllerFingerprint: h.Fingerprint, Credential: res.Credential}, h.ClientOptions(evil))
	_, err = c.AdvertiseRoutes(ctx(t), []netip.Prefix{lan1})
	refused("route sync to the victim's LAN", err)
	if got := peerOf(t, h, other.Devices[0].SN).AllowedIPs; slices.Contains(got, lan1) || !slices.Contains(got, lan2) {
		t.Errorf("attacker's hub peer after the refused sync: %v", got)
	}
	if got := peerOf(t, h, victim.Devices[0].SN).AllowedIPs; !slices.Contains(got, lan1) {
		t.Errorf("victim's hub peer: %v; want %v", got, lan1)
	}
	// An instance in no CCN: its device registers, but nothing it
	// advertises is routed, and it learns nothing.
	lres, err := register(t, h, evil, loner.Devices[0].SN, loner.Devices[0].Key, wgKey(t).PublicKey(), lan3)
	if err != nil {
		t.Fatal(err)
	}
	p := peerOf(t, h, loner.Devices[0].SN)
	if len(p.AllowedIPs) != 1 || p.AllowedIPs[0] != netip.PrefixFrom(p.OverlayAddr, 32) {
		t.Errorf("hub peer of an instance in no CCN: %v; want only its overlay address", p.AllowedIPs)
	}
	if len(lres.Config.Routes) != 0 {
		t.Errorf("instance in no CCN learns %v; want nothing", lres.Config.Routes)
	}
	// Peer SNs are not handed to other instances: TestProbeTargets
	// (targets_test.go) checks a CCN member's targets carry none.
}

// TestAttackHubSteering: prefixes that would capture the hub's own
// addresses, connected networks, gateway, endpoint, controller address,
// a deny-listed prefix or anything outside the allowed LAN pools are
// refused with the field, the reason and the fix, and not routed.
func TestAttackHubSteering(t *testing.T) {
	h := controllertest.Serve(t, func(o *controller.Options) {
		o.HostNetworks = []controller.HostNetwork{
			{Prefix: netip.MustParsePrefix("198.18.200.0/24"), What: "the connected network 198.18.200.0/24 on eth1"},
			{Prefix: netip.MustParsePrefix("198.18.201.1/32"), What: "the default gateway 198.18.201.1"},
		}
		o.ControllerAddr = netip.MustParseAddr("198.18.202.5")
		o.DenyPrefixes = []netip.Prefix{netip.MustParsePrefix("198.19.250.0/24")}
	})
	inst := newInstance(t, h, "shop1")
	attach(t, h, "corp", "shop1")
	d := inst.Devices[0]
	for _, tc := range []struct{ prefix, code, why string }{
		{"198.18.0.0/24", api.CodePrefixConflict, "hub endpoint"},
		{"198.18.200.128/25", api.CodePrefixConflict, "connected network"},
		{"198.18.201.0/24", api.CodePrefixConflict, "default gateway"},
		{"198.18.202.0/24", api.CodePrefixConflict, "controller address"},
		{"198.19.250.0/25", api.CodePrefixConflict, "deny-listed"},
		{"8.0.0.0/8", api.CodeInvalidInput, "LAN pools"},
		{"203.0.113.0/24", api.CodeInvalidInput, "LAN pools"},
	} {
		_, err := register(t, h, site1, d.SN, d.Key, wgKey(t).PublicKey(), netip.MustParsePrefix(tc.prefix))
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != tc.code || ae.Field != "advertise[0]" || !strings.Contains(ae.Message, tc.why) || ae.Fix == "" {
			t.Errorf("advertise %s: %v; want %s on advertise[0] naming %q, with a fix", tc.prefix, err, tc.code, tc.why)
		}
	}
	if p := h.HubConfig().Peers; len(p) != 0 {
		t.Errorf("hub peers after refused registrations: %+v", p)
	}

	// --lan-pool narrows what is accepted.
	h2 := controllertest.Serve(t, func(o *controller.Options) { o.LANPools = []netip.Prefix{netip.MustParsePrefix("198.19.0.0/20")} })
	inst2 := newInstance(t, h2, "shop1")
	if _, err := register(t, h2, site1, inst2.Devices[0].SN, inst2.Devices[0].Key, wgKey(t).PublicKey(), netip.MustParsePrefix("198.19.16.0/24")); apiCode(err) != api.CodeInvalidInput {
		t.Errorf("advertise outside --lan-pool: %v; want invalid_input", err)
	}
	if _, err := register(t, h2, site1, inst2.Devices[0].SN, inst2.Devices[0].Key, wgKey(t).PublicKey(), lan1); err != nil {
		t.Errorf("advertise inside --lan-pool: %v", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rawReq sends one request to the device API without the pinned client
// and returns the status and the API error code.
func rawReq(t *testing.T, h *controllertest.Harness, from netip.Addr, method, path, credential string, body []byte) (int, string) {
	t.Helper()
	opts := h.ClientOptions(from)
	hc := &http.Client{Transport: &http.Transport{DialContext: opts.Dial, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	req, _ := http.NewRequest(method, controllertest.URL+path, bytes.NewReader(body))
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var e api.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Code
}

func auditRows(t *testing.T, h *controllertest.Harness) []controller.AuditEntry {
	t.Helper()
	rows, err := h.AuditLog(ctx(t), 100_000)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestAttackAuditFlood: oversized SNs, SNs with terminal escapes and a
// flood of wrong answers from one network are refused before anything is
// stored in full: a handful of capped rows, escape codes never stored.
func TestAttackAuditFlood(t *testing.T) {
	h := controllertest.Serve(t)
	before := len(auditRows(t, h))
	db := filepath.Join(h.StateDir, controller.StoreFile)
	size := func() int64 { // the database and its write-ahead log
		var n int64
		for _, f := range []string{db, db + "-wal"} {
			if st, err := os.Stat(f); err == nil {
				n += st.Size()
			}
		}
		return n
	}
	size0 := size()
	huge := strings.Repeat("A", 60_000)
	codes := map[string]int{}
	for i := range 300 {
		sn := huge
		if i%2 == 1 {
			sn = "VC\x1b[2J\x1b]0;pwned\x07" + strconv.Itoa(i)
		}
		body, _ := json.Marshal(api.RegisterRequest{SN: sn, Nonce: "x", PublicKey: wgKey(t).PublicKey()})
		_, code := rawReq(t, h, evil, "POST", "/v1/register", "", body)
		codes[code]++
	}
	if codes[api.CodeInvalidInput] == 0 || codes[api.CodeRateLimited] == 0 {
		t.Errorf("answers %v; want invalid_input, then rate_limited", codes)
	}
	rows := auditRows(t, h)[before:]
	if len(rows) > 10 {
		t.Errorf("%d audit rows for 300 bad requests from one network; want a sampled few", len(rows))
	}
	for _, r := range rows {
		for _, f := range []string{r.Who, r.Action, r.Target, r.Result, r.Detail} {
			if len(f) > 300 || strings.ContainsAny(f, "\x1b\x07") {
				t.Errorf("audit row field of %d bytes, escapes %v: %.80q", len(f), strings.ContainsAny(f, "\x1b\x07"), f)
			}
		}
	}
	grow := size() - size0
	t.Logf("300 bad requests: answers %v, %d audit rows, store grew %d bytes", codes, len(rows), grow)
	if grow > 256<<10 {
		t.Errorf("store grew by %d bytes under the flood; want under 256 KiB", grow)
	}
}

// TestAttackLockout: wrong proofs from an attacker's network never refuse
// the real device's right proof; the attacker's whole IPv6 /64 is
// throttled as one.
func TestAttackLockout(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	d := inst.Devices[0]
	attacker := h.Client(netip.MustParseAddr("2001:db8:66:1::1"))
	for i := range 200 {
		_, _ = attacker.Register(ctx(t), device.RegisterRequest{SN: d.SN, Key: "guess" + strconv.Itoa(i), PublicKey: wgKey(t).PublicKey()})
	}
	// Another address of the same /64 is throttled too.
	_, err := h.Client(netip.MustParseAddr("2001:db8:66:1:dead::2")).Register(ctx(t), device.RegisterRequest{SN: d.SN, Key: "more", PublicKey: wgKey(t).PublicKey()})
	if apiCode(err) != api.CodeRateLimited {
		t.Errorf("same /64, another address: %v; want rate_limited", err)
	}
	// The real device, elsewhere, at once.
	if _, err := register(t, h, site1, d.SN, d.Key, wgKey(t).PublicKey(), lan1); err != nil {
		t.Errorf("right key during the attack: %v; want success at once", err)
	}
}

// TestAttackReleasedCredential: a released credential answers 401 with
// its code, not 500.
func TestAttackReleasedCredential(t *testing.T) {
	h := controllertest.Serve(t)
	inst := newInstance(t, h, "shop1")
	res, err := register(t, h, site1, inst.Devices[0].SN, inst.Devices[0].Key, wgKey(t).PublicKey(), lan1)
	if err != nil {
		t.Fatal(err)
	}
	if st, code := rawReq(t, h, site1, "POST", "/v1/device/release", res.Credential, nil); st != http.StatusOK {
		t.Fatalf("release: %d %s", st, code)
	}
	if st, code := rawReq(t, h, site1, "GET", "/v1/device/config", res.Credential, nil); st != http.StatusUnauthorized || code != api.CodeReleased {
		t.Errorf("config with a released credential: %d %s; want 401 released", st, code)
	}
}

// TestAuditIsPruned: the audit log keeps at most AuditMaxRows rows and
// nothing older than AuditMaxAge.
func TestAuditIsPruned(t *testing.T) {
	h := controllertest.Serve(t, func(o *controller.Options) { o.AuditMaxRows = 100; o.AuditMaxAge = 24 * time.Hour })
	for i := range 300 {
		if _, err := h.Admin().CreateCCN(ctx(t), "c"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(auditRows(t, h)); n > 110 || n < 90 {
		t.Errorf("%d audit rows after 300 actions; want about the 100 kept", n)
	}
	h.Clock.Advance(25 * time.Hour)
	h.Restart() // prunes at start
	if n := len(auditRows(t, h)); n != 0 {
		t.Errorf("%d audit rows older than a day after a restart; want 0", n)
	}
}

// TestAttackConnectionFlood: one source holding many idle connections gets
// at most MaxConnsPerSource of them; the others are closed at once, and a
// device elsewhere is still served.
func TestAttackConnectionFlood(t *testing.T) {
	h := controllertest.Serve(t)
	dial := h.ClientOptions(evil).Dial
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	closed := 0
	for range controller.MaxConnsPerSource + 8 {
		c, err := dial(ctx(t), "tcp", "controller.test:8443")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// A refused connection was closed by the server before any TLS byte:
	// writing to it fails at once; an accepted one takes the byte (the
	// server waits for the rest of a ClientHello).
	for _, c := range held {
		_ = c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c.Write([]byte{0x16}); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			closed++
		}
	}
	if closed != 8 {
		t.Errorf("%d of %d idle connections from one source closed; want the 8 beyond %d", closed, controller.MaxConnsPerSource+8, controller.MaxConnsPerSource)
	}
	inst := newInstance(t, h, "shop1")
	if _, err := register(t, h, site1, inst.Devices[0].SN, inst.Devices[0].Key, wgKey(t).PublicKey(), lan1); err != nil {
		t.Errorf("a device elsewhere during the flood: %v", err)
	}
}
