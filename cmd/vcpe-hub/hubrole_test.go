package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/controllertest"
	"github.com/openvcpe/vcpe/internal/device"
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

// TestRemoteHubRegistersItsOwnKey: a hub process given --hub-endpoint
// makes a WireGuard key of its own (0600 in its state directory, kept
// across restarts), registers it and takes its own view of the hub group;
// when the controller forgets it, it registers again by itself; with no
// controller up it starts from its saved configuration; a refused
// registration stops it with the controller's reason.
func TestRemoteHubRegistersItsOwnKey(t *testing.T) {
	h := controllertest.Serve(t, func(o *controller.Options) { o.EmbeddedHub = true })
	ctx := context.Background()
	credFile := func(name string) string {
		cred, err := h.Admin().CreateHubCredential(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "cred")
		if err := os.WriteFile(f, []byte(cred.Credential+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	site := netip.MustParseAddr("198.18.0.11")
	o := serveOptions{state: filepath.Join(t.TempDir(), "hub"), role: roleHub, hubEndpoint: "198.18.0.2:4500", remote: remoteOptions{
		controllers: []string{controllertest.URL}, fingerprint: h.Fingerprint, credentialFile: credFile("hub-b"),
		client: h.ClientOptions(site)}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := newRemoteHub(ctx, o, log)
	if err != nil {
		t.Fatal(err)
	}
	key := r.HubPrivateKey()
	if key.IsZero() || key == h.HubPrivateKey() {
		t.Fatal("the hub process uses the controller's hub key; want a key of its own")
	}
	keyPath := filepath.Join(o.state, hubKeyCache)
	fi, err := os.Stat(keyPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("hub key file: %v mode %v; want 0600", err, fi.Mode())
	}
	hubOf := func(name string) (controller.HubEntry, bool) {
		l, err := h.Admin().ListHubs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range l {
			if e.Name == name {
				return e, true
			}
		}
		return controller.HubEntry{}, false
	}
	e, ok := hubOf("hub-b")
	if !ok || !e.Registered || e.PublicKey != key.PublicKey() || e.Endpoint.String() != "198.18.0.2:4500" {
		t.Fatalf("hub list entry of the hub process: %+v, %v; want hub-b with its own public key and endpoint", e, ok)
	}
	first := r.HubConfig()
	if first.Name != "hub-b" || first.HubOverlayAddr != e.OverlayAddr || len(first.Hubs) != 1 || first.Hubs[0].Name != "hub" {
		t.Fatalf("the hub process's first configuration: name %q overlay %v hubs %+v; want hub-b at %v with the controller's hub", first.Name, first.HubOverlayAddr, first.Hubs, e.OverlayAddr)
	}

	// The controller forgets it: it registers again and gets its own view.
	updates, cancel := r.Subscribe()
	defer cancel()
	if err := h.Admin().RemoveHub(ctx, "hub-b"); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(15 * time.Second)
	for {
		var got api.HubConfig
		select {
		case got = <-updates:
		case <-deadline:
			t.Fatal("the hub process did not register again within 15 s of being forgotten")
		}
		if got.Name == "hub-b" {
			if e2, ok := hubOf("hub-b"); !ok || e2.PublicKey != key.PublicKey() {
				t.Fatalf("hub list after registering again: %+v, %v", e2, ok)
			}
			break
		}
		if got.Name != "" {
			t.Fatalf("a configuration named %q reached the dataplane; want only hub-b's", got.Name)
		}
		t.Fatal("a configuration not addressed to this hub reached the dataplane")
	}
	cancel()

	// A restart keeps the key; with no controller up it starts from the
	// saved configuration.
	h.Stop()
	r2, err := newRemoteHub(ctx, o, log)
	if err != nil {
		t.Fatalf("restart with the controller down: %v", err)
	}
	if r2.HubPrivateKey() != key || r2.HubConfig().Name != "hub-b" {
		t.Errorf("restarted hub: same key %v, configuration named %q; want the same key and hub-b's saved configuration", r2.HubPrivateKey() == key, r2.HubConfig().Name)
	}

	// A registration the controller refuses stops the process with why.
	h.Restart()
	bad := o
	bad.state = filepath.Join(t.TempDir(), "hub2")
	bad.remote.client = h.ClientOptions(site)
	bad.remote.credentialFile = credFile("hub") // the controller's own hub's name
	if _, err := newRemoteHub(ctx, bad, log); err == nil || !strings.Contains(err.Error(), "--hub-name") {
		t.Errorf("registering under the controller's hub's name: %v; want a refusal naming --hub-name", err)
	}
}

// pipeListener serves in-memory connections (no port is opened).
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 8443} }

// TestRemoteHubAgainstAControllerWithoutHubGroups: a hub given
// --hub-endpoint, facing a controller of a release before hub groups (no
// POST /v1/hub/register), runs on the controller's hub key as hubs did
// then instead of refusing to start.
func TestRemoteHubAgainstAControllerWithoutHubGroups(t *testing.T) {
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
	// The old controller: the same API and certificate, without the call.
	api1 := h.DeviceHandler()
	old := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/hub/register" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(api.Error{Code: api.CodeNotFound, Message: "no API at " + r.Method + " " + r.URL.Path})
			return
		}
		api1.ServeHTTP(w, r)
	})
	ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{Handler: old, TLSConfig: h.TLSConfig()}
	go srv.Serve(tls.NewListener(ln, srv.TLSConfig))
	t.Cleanup(func() { srv.Close() })
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		a, b := net.Pipe()
		select {
		case ln.conns <- b:
			return a, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	o := serveOptions{state: filepath.Join(t.TempDir(), "hub"), role: roleHub, hubEndpoint: "198.18.0.2:4500", remote: remoteOptions{
		controllers: []string{controllertest.URL}, fingerprint: h.Fingerprint, credentialFile: credFile,
		client: device.ClientOptions{Dial: dial}}}
	r, err := newRemoteHub(ctx, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start against a controller without hub groups: %v", err)
	}
	if r.HubPrivateKey() != h.HubPrivateKey() || r.endpoint.IsValid() {
		t.Errorf("hub key is the controller's: %v, still registering: %v; want the controller's key and no registration", r.HubPrivateKey() == h.HubPrivateKey(), r.endpoint.IsValid())
	}
	if l, _ := h.Admin().ListHubs(ctx); len(l) != 1 || l[0].Registered {
		t.Errorf("hub list: %+v; want only the controller's own hub", l)
	}
}
