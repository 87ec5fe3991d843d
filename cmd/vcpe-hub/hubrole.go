package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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

	mu     sync.Mutex
	status string
	since  time.Time
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
	keyPath := filepath.Join(o.state, hubKeyCache)
	if b, err := os.ReadFile(keyPath); err == nil {
		if r.key, err = api.ParseKey(strings.TrimSpace(string(b))); err != nil {
			return nil, fmt.Errorf("hub key %s is corrupt (%v): remove it to fetch it again", keyPath, err)
		}
	} else {
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
	if hc, err := c.HubConfig(fctx, 0, 0); err == nil {
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
			hc, err := r.c.HubConfig(ctx, gen, 20*time.Second)
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
