package controller_test

import (
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller/controllertest"
	"github.com/openvcpe/vcpe/internal/device"
)

// TestHubChannel: a hub process authenticates with a hub credential over
// the pinned device API, gets the hub key and long-polls its
// configuration, and its role switches reach the controller; a device
// credential or a wrong one is refused.
func TestHubChannel(t *testing.T) {
	h := controllertest.Serve(t)
	cred, err := h.Admin().CreateHubCredential(ctx(t), "hub-a")
	if err != nil {
		t.Fatal(err)
	}
	opts := h.ClientOptions(site1)
	hub, err := device.NewHubClient([]string{controllertest.URL}, h.Fingerprint, cred.Credential, opts)
	if err != nil {
		t.Fatal(err)
	}
	id, err := hub.HubIdentity(ctx(t))
	if err != nil || id.PrivateKey != h.HubPrivateKey() {
		t.Fatalf("hub identity: %v; want the controller's hub key", err)
	}
	in := newInstance(t, h, "shop1")
	hc, err := hub.HubConfig(ctx(t), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan api.HubConfig, 1)
	go func() {
		c, err := hub.HubConfig(ctx(t), hc.Generation, 20*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	r1, err := register(t, h, site1, in.Devices[0].SN, in.Devices[0].Key, wgKey(t).PublicKey(), lan1)
	if err != nil {
		t.Fatal(err)
	}
	var next api.HubConfig
	select {
	case next = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("hub long-poll did not answer a registration within 10 s")
	}
	if next.Generation <= hc.Generation || len(next.Peers) != 1 || !next.Peers[0].Active {
		t.Fatalf("hub config after a registration: %+v", next)
	}
	if _, err := register(t, h, site2, in.Devices[1].SN, in.Devices[1].Key, wgKey(t).PublicKey(), lan1); err != nil {
		t.Fatal(err)
	}
	if err := hub.ReportActive(ctx(t), api.HubActive{InstanceID: in.Instance.ID, SN: in.Devices[1].SN, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if info, _ := h.Admin().ShowInstance(ctx(t), "shop1"); info.Active != in.Devices[1].SN {
		t.Errorf("active device after the hub's report: %s; want %s", info.Active, in.Devices[1].SN)
	}
	for name, c := range map[string]string{"wrong": "vch_nope", "device": r1.Credential, "empty": ""} {
		bad, _ := device.NewHubClient([]string{controllertest.URL}, h.Fingerprint, c, opts)
		if _, err := bad.HubConfig(ctx(t), 0, 0); apiCode(err) != api.CodeUnauthorized {
			t.Errorf("%s credential: %v; want %s", name, err, api.CodeUnauthorized)
		}
	}
	// The hub credential survives a restart (it is in the store).
	h.Restart()
	hub2, _ := device.NewHubClient([]string{controllertest.URL}, h.Fingerprint, cred.Credential, h.ClientOptions(site1))
	if _, err := hub2.HubConfig(ctx(t), 0, 0); err != nil {
		t.Errorf("hub credential after restart: %v", err)
	}
}
