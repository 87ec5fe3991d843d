// Package loadgen loads a controller the way a large fleet would, for the
// benchmarks and cmd/vcpe-load: it starts one or several controller
// replicas in this process (on SQLite, or on one PostgreSQL database with
// a store handle, a LISTEN connection and a cache each, as separate
// processes would have), fills them with simulated devices, and measures
// registrations per second and how fast one change reaches many
// long-polling devices.
//
// Devices are simulated by calling each replica's API methods directly
// (challenge, register, long-poll): no tunnels, no TLS, no sockets, so
// the figures are the controller's and the store's, and nothing leaves
// the process but the database connections. Every run is bounded by its
// sizes; the prefixes it makes up are data only (198.19.0.0/16, /29 per
// instance).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/store"
)

// Options describe a cluster to load.
type Options struct {
	// Database is a postgres:// URL; empty runs one controller on SQLite
	// in a temporary directory.
	Database string
	Replicas int // controller replicas on Database; default 1
	Devices  int // device slots to create (2 per instance); default 1,000
	Logger   *slog.Logger
}

// Device is one simulated device.
type Device struct {
	SN, Key    string
	Pub        api.Key
	Instance   string
	Advertise  []netip.Prefix
	Credential string // after registration
}

// Cluster is a running set of replicas with its devices.
type Cluster struct {
	Servers []*controller.Server
	Devices []*Device
	dirs    []string
}

// Start starts the replicas and creates the device slots (round-robin
// over the replicas).
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.Devices < 2 {
		o.Devices = 1000
	}
	if o.Devices > 2*8192 {
		return nil, fmt.Errorf("loadgen: %d devices: at most 16,384 (the /29s of 198.19.0.0/16)", o.Devices)
	}
	if o.Database == "" && o.Replicas > 1 {
		return nil, errors.New("loadgen: replicas need a PostgreSQL database (--database postgres://…)")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Cluster{}
	for range o.Replicas {
		dir, err := os.MkdirTemp("", "vcpe-load-")
		if err != nil {
			c.Close()
			return nil, err
		}
		c.dirs = append(c.dirs, dir)
		opts := controller.Options{StateDir: dir, HubEndpoint: netip.MustParseAddrPort("198.18.0.1:4500"), Logger: o.Logger}
		if o.Database != "" {
			s, err := store.OpenPostgres(ctx, o.Database, store.PostgresOptions{})
			if err != nil {
				c.Close()
				return nil, err
			}
			opts.Store = s
		}
		srv, err := controller.New(ctx, opts)
		if err != nil {
			if opts.Store != nil {
				opts.Store.Close()
			}
			c.Close()
			return nil, err
		}
		c.Servers = append(c.Servers, srv)
	}
	for i := range o.Devices / 2 {
		srv := c.Servers[i%len(c.Servers)]
		res, err := srv.CreateInstance(ctx, "loadgen", controller.CreateInstanceRequest{Name: fmt.Sprintf("load%05d", i)})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("loadgen: create instance %d: %w", i, err)
		}
		adv := []netip.Prefix{prefix(i)}
		for _, d := range res.Devices {
			k, err := api.GeneratePrivateKey()
			if err != nil {
				c.Close()
				return nil, err
			}
			c.Devices = append(c.Devices, &Device{SN: d.SN, Key: d.Key, Pub: k.PublicKey(), Instance: res.Instance.Name, Advertise: adv})
		}
	}
	return c, nil
}

// prefix is instance i's LAN: the i-th /29 of 198.19.0.0/16.
func prefix(i int) netip.Prefix {
	n := uint32(i) * 8
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(n >> 8), byte(n)}), 29)
}

// Close stops the replicas and removes their state directories.
func (c *Cluster) Close() {
	for _, s := range c.Servers {
		s.Close()
	}
	for _, d := range c.dirs {
		os.RemoveAll(d)
	}
}

var from = netip.MustParseAddr("198.18.0.11")

// Register registers d through srv (challenge and answer on the same
// replica, as a device behind a load balancer with keep-alive would).
func Register(ctx context.Context, srv *controller.Server, d *Device) error {
	ch, err := srv.Challenge(from, d.SN)
	if err != nil {
		return err
	}
	res, err := srv.Register(ctx, from, api.RegisterRequest{SN: d.SN, Nonce: ch.Nonce, PublicKey: d.Pub, Advertise: d.Advertise,
		Proof: api.RegistrationProof(api.DeviceKeySecret(d.Key), ch.Nonce, d.SN, d.Pub, d.Advertise)})
	if err != nil {
		return err
	}
	d.Credential = res.Credential
	return nil
}

// RegisterAll registers n devices (cycling over the cluster's devices;
// again means the same work and the same write) with workers concurrent
// clients spread over the replicas, and returns registrations per second.
func (c *Cluster) RegisterAll(ctx context.Context, n, workers int) (float64, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := c.Servers[w%len(c.Servers)]
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := Register(ctx, srv, c.Devices[i%len(c.Devices)]); err != nil {
					errc <- fmt.Errorf("register %s: %w", c.Devices[i%len(c.Devices)].SN, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// FanOut is how long one change took to reach every long-polling device.
type FanOut struct {
	Devices       int
	P50, P99, Max time.Duration
}

// FanOut attaches every instance to one CCN, registers every device, has
// each long-poll its configuration on replica i mod R, makes one prefix
// change through replica 0, and measures when each device's long-poll
// answered with the new generation.
func (c *Cluster) FanOut(ctx context.Context) (FanOut, error) {
	srv0 := c.Servers[0]
	if _, err := srv0.CreateCCN(ctx, "loadgen", "fanout"); err != nil {
		return FanOut{}, err
	}
	seen := map[string]bool{}
	for _, d := range c.Devices {
		if !seen[d.Instance] {
			seen[d.Instance] = true
			if _, err := srv0.Attach(ctx, "loadgen", "fanout", d.Instance); err != nil {
				return FanOut{}, err
			}
		}
	}
	for i, d := range c.Devices {
		if d.Credential == "" {
			if err := Register(ctx, c.Servers[i%len(c.Servers)], d); err != nil {
				return FanOut{}, err
			}
		}
	}
	// Every replica current before the long-polls start.
	var gen uint64
	deadline := time.Now().Add(30 * time.Second)
	for {
		cfg, err := c.Servers[0].DeviceConfig(c.Devices[0].Credential)
		if err != nil {
			return FanOut{}, err
		}
		gen = cfg.Generation
		same := true
		for _, s := range c.Servers {
			if cfg, err := s.DeviceConfig(c.Devices[0].Credential); err != nil || cfg.Generation != gen {
				same = false
			}
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			return FanOut{}, errors.New("loadgen: replicas did not agree on a generation within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	lat := make([]time.Duration, len(c.Devices))
	var ready, wg sync.WaitGroup
	var changed atomic.Int64 // UnixNano of the change
	errc := make(chan error, len(c.Devices))
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for i, d := range c.Devices {
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := c.Servers[i%len(c.Servers)]
			first := true
			for {
				if first {
					ready.Done()
					first = false
				}
				cfg, err := srv.WaitDeviceConfig(wctx, d.Credential, gen)
				if err != nil {
					errc <- err
					return
				}
				if cfg.Generation != gen {
					lat[i] = time.Since(time.Unix(0, changed.Load()))
					return
				}
				if wctx.Err() != nil {
					errc <- fmt.Errorf("device %s saw no change within 60 s", d.SN)
					return
				}
			}
		}()
	}
	ready.Wait()
	time.Sleep(200 * time.Millisecond) // every long-poll is waiting
	d0 := c.Devices[0]
	changed.Store(time.Now().UnixNano())
	if _, err := srv0.Advertise(ctx, d0.Credential, append(slices.Clone(d0.Advertise), netip.MustParsePrefix("198.18.128.0/29")), nil); err != nil {
		return FanOut{}, fmt.Errorf("loadgen: the prefix change: %w", err)
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return FanOut{}, err
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return FanOut{Devices: len(lat), P50: q(0.50), P99: q(0.99), Max: lat[len(lat)-1]}, nil
}
