package main

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/controllertest"
)

// TestRemoteHubStaticStability: a hub process (--role hub) takes its key
// and configuration from the controller, follows changes by long-poll,
// keeps its configuration while the controller is down, and starts again
// from the saved one with no controller up.
func TestRemoteHubStaticStability(t *testing.T) {
	h := controllertest.Serve(t)
	ctx := context.Background()
	cred, err := h.Admin().CreateHubCredential(ctx, "hub-a")
	if err != nil {
		t.Fatal(err)
	}
	credFile := filepath.Join(t.TempDir(), "cred")
	if err := os.WriteFile(credFile, []byte(cred.Credential+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	site := netip.MustParseAddr("198.18.0.11")
	o := serveOptions{state: filepath.Join(t.TempDir(), "hub"), role: roleHub, remote: remoteOptions{
		controllers: []string{controllertest.URL}, fingerprint: h.Fingerprint, credentialFile: credFile,
		client: h.ClientOptions(site)}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := newRemoteHub(ctx, o, log)
	if err != nil {
		t.Fatal(err)
	}
	if r.HubPrivateKey() != h.HubPrivateKey() {
		t.Fatal("the hub process did not get the controller's hub key")
	}
	updates, cancel := r.Subscribe()
	res, err := h.CreateInstance(ctx, "test", controller.CreateInstanceRequest{Name: "shop1"})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := api.GeneratePrivateKey()
	adv := []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")}
	d := res.Devices[0]
	ch, _ := h.Challenge(site, d.SN)
	if _, err := h.Register(ctx, site, api.RegisterRequest{SN: d.SN, Nonce: ch.Nonce, PublicKey: k.PublicKey(), Advertise: adv,
		Proof: api.RegistrationProof(api.DeviceKeySecret(d.Key), ch.Nonce, d.SN, k.PublicKey(), adv)}); err != nil {
		t.Fatal(err)
	}
	var got api.HubConfig
	deadline := time.After(10 * time.Second)
	for len(got.Peers) == 0 {
		select {
		case got = <-updates:
		case <-deadline:
			t.Fatal("the hub process did not receive the new peer within 10 s")
		}
	}
	// The controller goes away: no update, the status says unreachable.
	h.Stop()
	within := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		since := r.since
		r.mu.Unlock()
		if !since.IsZero() {
			break
		}
		if time.Now().After(within) {
			t.Fatal("the hub process did not notice the controller is gone within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	// A restart with no controller: it forwards on the saved configuration.
	r2, err := newRemoteHub(ctx, o, log)
	if err != nil {
		t.Fatalf("restart with the controller down: %v", err)
	}
	if first := r2.HubConfig(); first.Generation != got.Generation || len(first.Peers) != 1 || r2.HubPrivateKey() != h.HubPrivateKey() {
		t.Errorf("restarted hub config generation %d with %d peers; want the saved generation %d with 1 peer and the same key", first.Generation, len(first.Peers), got.Generation)
	}
}
