package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/internal/atomicfile"
	"github.com/openvcpe/vcpe/internal/device"
)

// Roles of serve.
const (
	roleAll        = "all"
	roleController = "controller"
	roleHub        = "hub"
)

// errNotRegistered stands for a poll not made: the hub registers first.
var errNotRegistered = errors.New("hub not registered")

// HubCredentialEnv holds the hub credential when --hub-credential-file is
// not given.
const HubCredentialEnv = "VCPE_HUB_CREDENTIAL"

// Files of a hub process's state directory: the last configuration and the
// hub key, so it forwards on them when no controller answers (static
// stability).
const (
	hubConfigCache = "hub-config.json"
	hubKeyCache    = "hub.key"
)

// remoteOptions are serve's flags for --role hub.
type remoteOptions struct {
	controllers    []string
	fingerprint    string
	credentialFile string
	client         device.ClientOptions // tests: in-memory connections
}

// remoteHub is a hubSource over the device API: it long-polls the hub
// configuration from the controller (any replica), keeps the last one in
// the state directory, and reports role switches.
type remoteHub struct {
	c     *device.Client
	dir   string
	key   api.Key
	log   *slog.Logger
	first api.HubConfig
	// endpoint is where devices and other hubs dial this hub; valid: the
	// hub registers its own key (hub groups), else it uses the key the
	// controller hands out (hubs of older releases).
	endpoint netip.AddrPort

	mu     sync.Mutex
	status string
	since  time.Time
	// self is what the controller recorded at the last registration;
	// zero until one succeeded, and again when the controller's answers
	// show it forgot this hub.
	self api.HubInfo
}

func newRemoteHub(ctx context.Context, o serveOptions, log *slog.Logger) (*remoteHub, error) {
	cred := os.Getenv(HubCredentialEnv)
	if o.remote.credentialFile != "" {
		b, err := os.ReadFile(o.remote.credentialFile)
		if err != nil {
			return nil, cli.Usagef("--hub-credential-file: %v", err)
		}
		cred = strings.TrimSpace(string(b))
	}
	if strings.ContainsAny(cred, " \t\r\n") {
		return nil, cli.Usagef("--hub-credential-file: the file holds more than one word; put only the credential vcpe-hub hub credential printed on stdout in it")
	}
	if cred == "" {
		return nil, cli.Usagef("--role hub needs a hub credential: issue one with vcpe-hub hub credential NAME on a controller and pass it with --hub-credential-file FILE or %s", HubCredentialEnv)
	}
	if o.remote.fingerprint == "" {
		return nil, cli.Usagef("--role hub needs --controller-fingerprint: the controller CA's fingerprint (vcpe-hub fingerprint on a controller)")
	}
	c, err := device.NewHubClient(o.remote.controllers, o.remote.fingerprint, cred, withTimeout(o.remote.client, 10*time.Second))
	if err != nil {
		var ie *api.InputError
		if errors.As(err, &ie) {
			return nil, &cli.UsageError{Err: err}
		}
		return nil, err
	}
	if err := os.MkdirAll(o.state, 0o700); err != nil {
		return nil, fmt.Errorf("create hub state directory: %w", err)
	}
	r := &remoteHub{c: c, dir: o.state, log: log}
	if o.hubEndpoint != "" {
		if r.endpoint, err = netip.ParseAddrPort(o.hubEndpoint); err != nil {
			return nil, cli.Usagef("--hub-endpoint %q: want ADDR:PORT, the address devices dial this hub on (for example 198.18.0.2:4500)", o.hubEndpoint)
		}
	}
	keyPath := filepath.Join(o.state, hubKeyCache)
	if b, err := os.ReadFile(keyPath); err == nil {
		if r.key, err = api.ParseKey(strings.TrimSpace(string(b))); err != nil {
			return nil, fmt.Errorf("hub key %s is corrupt (%v): remove it to make (or fetch) it again", keyPath, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read the hub key: %w", err)
	} else if r.endpoint.IsValid() {
		// A hub of a hub group: a key of its own, kept across restarts.
		if r.key, err = api.GeneratePrivateKey(); err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(keyPath, []byte(r.key.String()+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("store the hub key: %w", err)
		}
		log.Info("made the hub's own WireGuard key", "path", keyPath, "public_key", r.key.PublicKey())
	} else {
		log.Warn("no --hub-endpoint: this hub uses the controller's hub key and cannot join a hub group; pass --hub-endpoint ADDR:PORT to register a key of its own")
		id, err := c.HubIdentity(ctx)
		if err != nil {
			return nil, fmt.Errorf("fetch the hub key from the controller: %w", err)
		}
		r.key = id.PrivateKey
		if err := atomicfile.WriteFile(keyPath, []byte(r.key.String()+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("store the hub key: %w", err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fetch := func() (api.HubConfig, error) { return c.HubConfig(fctx, 0, 0) }
	if r.endpoint.IsValid() {
		err := r.register(fctx)
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.CodeNotFound {
			// A controller of a release before hub groups: this hub
			// ends the tunnels with its key, as hubs did then.
			log.Warn("the controller does not know hub groups (no /v1/hub/register): using its hub key until it is upgraded and this hub restarted", "err", err)
			id, ierr := c.HubIdentity(fctx)
			if ierr != nil {
				return nil, fmt.Errorf("fetch the hub key from the controller: %w", ierr)
			}
			r.key, r.endpoint, err = id.PrivateKey, netip.AddrPort{}, nil
		}
		if err != nil {
			if errors.As(err, &ae) && ae.Code != api.CodeInternal && ae.Code != api.CodeUnavailable && ae.Code != api.CodeRateLimited {
				// Refused: the answer names the field and the fix.
				return nil, fmt.Errorf("register the hub with the controller: %w", err)
			}
			// No controller answers: the saved configuration carries it,
			// and it registers when one does.
			fetch = func() (api.HubConfig, error) {
				return api.HubConfig{}, fmt.Errorf("register the hub with the controller: %w", err)
			}
		}
	}
	if hc, err := fetch(); err == nil {
		r.first = hc
		r.save(hc)
	} else if b, rerr := os.ReadFile(filepath.Join(o.state, hubConfigCache)); rerr == nil && json.Unmarshal(b, &r.first) == nil {
		log.Warn("controller unreachable: forwarding on the last configuration until it answers", "generation", r.first.Generation, "err", err)
		r.unreachable(err)
	} else {
		return nil, fmt.Errorf("fetch the hub configuration (and no saved one in %s): %w", o.state, err)
	}
	return r, nil
}

// register announces the hub's own key and endpoint to the controller.
func (r *remoteHub) register(ctx context.Context) error {
	info, err := r.c.RegisterHub(ctx, api.HubRegister{PublicKey: r.key.PublicKey(), Endpoint: r.endpoint})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.self = info
	r.mu.Unlock()
	r.log.Info("hub registered with the controller", "name", info.Name, "endpoint", info.Endpoint, "overlay_addr", info.OverlayAddr)
	return nil
}

// registered reports whether the hub registered (always true for a hub
// that does not register).
func (r *remoteHub) registered() bool {
	if !r.endpoint.IsValid() {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.self.Name != ""
}

// knownIn reports whether hc is addressed to this hub: a registered hub
// gets its own name; a configuration without it means the controller
// forgot the registration (its hub list was removed or restored), so the
// hub registers again before applying anything.
func (r *remoteHub) knownIn(hc api.HubConfig) bool {
	if !r.endpoint.IsValid() {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if hc.Name != "" && hc.Name == r.self.Name {
		return true
	}
	r.self = api.HubInfo{}
	return false
}

func withTimeout(o device.ClientOptions, d time.Duration) device.ClientOptions {
	if o.Timeout == 0 {
		o.Timeout = d
	}
	return o
}

func (r *remoteHub) save(hc api.HubConfig) {
	b, err := json.Marshal(hc)
	if err == nil {
		err = atomicfile.WriteFile(filepath.Join(r.dir, hubConfigCache), b, 0o600)
	}
	if err != nil {
		r.log.Error("save the hub configuration", "err", err)
	}
}

func (r *remoteHub) unreachable(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.since.IsZero() {
		r.since = time.Now()
	}
	r.status = err.Error()
}

func (r *remoteHub) HubConfig() api.HubConfig { return r.first }
func (r *remoteHub) HubPrivateKey() api.Key   { return r.key }

// Subscribe long-polls the controller until cancel, with latest-value
// delivery; while no controller answers it retries every 2 s and the
// dataplane keeps its last configuration.
func (r *remoteHub) Subscribe() (<-chan api.HubConfig, func()) {
	ch := make(chan api.HubConfig, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		gen := r.first.Generation
		for ctx.Err() == nil {
			var hc api.HubConfig
			err := errNotRegistered
			if r.registered() {
				hc, err = r.c.HubConfig(ctx, gen, 20*time.Second)
			}
			if errors.Is(err, errNotRegistered) {
				if err = r.register(ctx); err == nil {
					gen = 0 // fetch the configuration at once
					continue
				}
				r.log.Warn("register the hub with the controller", "err", err)
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				r.mu.Lock()
				first := r.since.IsZero()
				r.mu.Unlock()
				if first {
					r.log.Warn("controller unreachable: the hub keeps forwarding on its last configuration", "generation", gen, "err", err)
				}
				r.unreachable(err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(2 * time.Second):
				}
				continue
			}
			r.mu.Lock()
			if !r.since.IsZero() {
				r.log.Info("controller reachable again", "unreachable_since", r.since)
			}
			r.since, r.status = time.Time{}, ""
			r.mu.Unlock()
			if !r.knownIn(hc) {
				r.log.Warn("the controller does not know this hub (any more): registering again", "generation", hc.Generation)
				select { // never a busy loop, whatever the controller answers
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
				continue
			}
			if hc.Generation == gen {
				continue
			}
			gen = hc.Generation
			r.save(hc)
			select {
			case <-ch:
			default:
			}
			ch <- hc
		}
	}()
	return ch, cancel
}

// SetActive reports a role switch, retrying for a minute; the dataplane
// has already switched, so a lost report only delays what devices are
// told.
func (r *remoteHub) SetActive(ctx context.Context, instID, sn, reason string) {
	for i := range 30 {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := r.c.ReportActive(cctx, api.HubActive{InstanceID: instID, SN: sn, Reason: reason})
		cancel()
		if err == nil {
			return
		}
		if i == 0 {
			r.log.Warn("report the active device to the controller", "instance", instID, "sn", sn, "err", err)
		}
		time.Sleep(2 * time.Second)
	}
}

// serveHub runs --role hub: the tunnel end, the status socket and the
// reflector, configured by the controller over the device API, until ctx
// ends.
func serveHub(ctx context.Context, o serveOptions, log *slog.Logger) error {
	if o.hub.disabled {
		return cli.Usagef("--role hub runs only the dataplane: drop --no-dataplane")
	}
	r, err := newRemoteHub(ctx, o, log)
	if err != nil {
		return err
	}
	stop, err := startHub(ctx, r, o, log)
	if err != nil {
		return err
	}
	defer stop()
	log.Info("hub serving", "controllers", strings.Join(o.remote.controllers, ","), "generation", r.first.Generation, "peers", len(r.first.Peers))
	<-ctx.Done()
	return nil
}
