package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
)

// HubSocket is the hub dataplane's status socket inside the state dir.
const HubSocket = "hub.sock"

// hubOptions are serve's dataplane flags.
type hubOptions struct {
	disabled  bool
	tun       string
	uapiDir   string
	reflector string
	check     dataplane.HealthCheck
	preempt   bool
	// reflectorEndpoint lets the reflector answer on the hub endpoint's
	// address too (devices measure WAN loss with it).
	reflectorEndpoint bool
	// Hub groups: cloud-side health targets (gray failure) and the cloud
	// gateway address this hub holds while it is the group's holder.
	cloudTargets   []string
	cloudGateway   string
	cloudInterface string
	// metricsListen serves the hub dataplane's Prometheus metrics on a
	// loopback address.
	metricsListen string
}

// addGroupFlags adds serve's hub-group flags of the hub's tunnel end.
func (o *hubOptions) addGroupFlags(f *pflag.FlagSet) {
	f.StringArrayVar(&o.cloudTargets, "cloud-target", nil, "hub groups: cloud-side address pinged every --ha-interval (repeatable); when none answers the hub is degraded and devices carry through another hub")
	f.StringVar(&o.cloudGateway, "cloud-gateway", "", "hub groups: the cloud hosts' gateway address with its prefix length, ADDR/LEN (e.g. 198.19.100.1/24): one live, non-degraded hub of the group holds it and announces it with gratuitous ARP")
	f.StringVar(&o.cloudInterface, "cloud-interface", "", "interface of --cloud-gateway (default: the one with an address in its prefix)")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "serve the hub dataplane's Prometheus metrics (peers, hub group) on this loopback address, e.g. 127.0.0.1:9587")
}

// metricsAddr parses --metrics-listen (invalid: no metrics).
func (o hubOptions) metricsAddr() (netip.AddrPort, error) {
	if o.metricsListen == "" {
		return netip.AddrPort{}, nil
	}
	a, err := netip.ParseAddrPort(o.metricsListen)
	if err != nil || !a.Addr().IsLoopback() {
		return netip.AddrPort{}, cli.Usagef("--metrics-listen %q must be a loopback address and port, e.g. 127.0.0.1:9587", o.metricsListen)
	}
	return a, nil
}

// checkFlags checks the hub's dataplane flags before anything starts.
func (o hubOptions) checkFlags() error {
	if _, _, err := o.groupOptions(); err != nil {
		return err
	}
	_, err := o.metricsAddr()
	return err
}

// groupOptions parses the hub-group flags.
func (o hubOptions) groupOptions() (targets []netip.Addr, gw netip.Prefix, err error) {
	for _, s := range o.cloudTargets {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return nil, gw, cli.Usagef("--cloud-target %q: want an IPv4 address on the cloud side, such as 198.19.100.10", s)
		}
		targets = append(targets, a)
	}
	if o.cloudGateway != "" {
		if gw, err = netip.ParsePrefix(o.cloudGateway); err != nil || !gw.Addr().Is4() || gw.Bits() == 0 || gw.Bits() >= 32 {
			return nil, netip.Prefix{}, cli.Usagef("--cloud-gateway %q: want the gateway address with the cloud network's prefix length, such as 198.19.100.1/24", o.cloudGateway)
		}
	} else if o.cloudInterface != "" {
		return nil, gw, cli.Usagef("--cloud-interface %q needs --cloud-gateway ADDR/LEN", o.cloudInterface)
	}
	return targets, gw, nil
}

// reflectorScope is where the hub's reflector answers: the overlay, the
// cloud-side prefixes, loopback and, unless turned off, the hub
// endpoint's address; never any other address of the host.
func (o serveOptions) reflectorScope(cfg api.HubConfig, ep netip.AddrPort) func(netip.Addr) bool {
	ps := append([]netip.Prefix{cfg.Overlay, netip.MustParsePrefix("127.0.0.0/8")}, cfg.CloudPrefixes...)
	if o.hub.reflectorEndpoint && ep.Addr().IsValid() {
		ps = append(ps, netip.PrefixFrom(ep.Addr().Unmap(), 32))
	}
	return func(a netip.Addr) bool {
		for _, p := range ps {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
}

// hubSource is where the hub's tunnel end gets its desired state and
// reports role switches: the controller in the same process
// (*controller.Server, --role all), or one reached over the device API
// (remoteHub, --role hub).
type hubSource interface {
	HubConfig() api.HubConfig
	HubPrivateKey() api.Key
	Subscribe() (<-chan api.HubConfig, func())
	SetActive(ctx context.Context, instID, sn, reason string)
}

// startHub runs the hub's tunnel end next to the controller: the
// WireGuard endpoint all devices peer with, configured from the
// controller's HubConfig and updated live on every change, the status
// socket, and the probe reflector. stop undoes all of it.
func startHub(ctx context.Context, srv hubSource, o serveOptions, log *slog.Logger) (stop func(), err error) {
	if o.role == roleController {
		log.Info("role controller: no tunnel ends here; hubs run vcpe-hub serve --role hub")
		return func() {}, nil
	}
	if o.hub.disabled {
		log.Warn("hub dataplane disabled (--no-dataplane): devices register but no tunnel ends here")
		return func() {}, nil
	}
	targets, gateway, err := o.hub.groupOptions()
	if err != nil {
		return nil, err
	}
	metricsAddr, err := o.hub.metricsAddr()
	if err != nil {
		return nil, err
	}
	cfg := srv.HubConfig()
	switches := make(chan dataplane.RoleEvent, 64)
	go func() {
		for ev := range switches {
			srv.SetActive(context.Background(), ev.Instance, ev.SN, ev.Reason)
		}
	}()
	// A hub of its own (--role hub) may not know the endpoint devices use
	// (it is the controller's --hub-endpoint): it listens on 4500 then.
	port := uint16(4500)
	ep, epErr := o.endpoint()
	if epErr == nil {
		port = ep.Port()
	} else if o.role != roleHub {
		return nil, epErr
	}
	h, err := dataplane.NewHub(dataplane.HubOptions{
		PrivateKey: srv.HubPrivateKey(),
		TUN:        o.hub.tun,
		ListenPort: port,
		UAPIDir:    o.hub.uapiDir,
		Check:      o.hub.check,
		Preempt:    o.hub.preempt,
		Logger:     log,

		CloudTargets:   targets,
		CloudGateway:   gateway,
		CloudInterface: o.hub.cloudInterface,
		// Switches go to the controller in order, off the hub's lock.
		OnSwitch: func(ev dataplane.RoleEvent) {
			select {
			case switches <- ev:
			default:
				log.Warn("role switch not reported to the controller: queue full", "instance", ev.Instance, "sn", ev.SN)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("hub dataplane: %w", err)
	}
	if err := h.Start(cfg); err != nil {
		return nil, fmt.Errorf("start hub dataplane: %w", err)
	}
	ctl, err := dataplane.ListenControl(filepath.Join(o.state, HubSocket), h.Status, log)
	if err != nil {
		h.Close()
		return nil, err
	}
	// Subscribe's cancel stops deliveries but does not close the channel:
	// quit ends the loop.
	updates, unsubscribe := srv.Subscribe()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case c := <-updates:
				if err := h.Apply(c); err != nil {
					log.Error("apply hub config", "generation", c.Generation, "err", err)
					continue
				}
				log.Info("hub config applied", "generation", c.Generation, "peers", len(c.Peers))
			}
		}
	}()
	stopUpdates := func() {
		unsubscribe()
		close(quit)
		<-done
	}
	var metrics *http.Server
	if metricsAddr.IsValid() {
		reg := prometheus.NewRegistry()
		reg.MustRegister(dataplane.NewCollector(h.Status))
		ln, err := net.Listen("tcp", metricsAddr.String())
		if err != nil {
			stopUpdates()
			ctl.Close()
			h.Close()
			return nil, fmt.Errorf("metrics listener %s: %w", metricsAddr, err)
		}
		metrics = &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = metrics.Serve(ln) }()
		log.Info("serving hub metrics", "addr", metricsAddr)
	}
	closeMetrics := func() {
		if metrics != nil {
			metrics.Close()
		}
	}
	rctx, cancelReflector := context.WithCancel(ctx)
	var pc net.PacketConn
	if o.hub.reflector != "" {
		if pc, err = net.ListenPacket("udp4", o.hub.reflector); err != nil {
			cancelReflector()
			closeMetrics()
			stopUpdates()
			ctl.Close()
			h.Close()
			return nil, fmt.Errorf("probe reflector on %s: %w (choose another --reflector address, or empty to disable)", o.hub.reflector, err)
		}
		go func() {
			r := &diag.Reflector{AllowDst: o.reflectorScope(cfg, ep)}
			if err := r.Serve(rctx, pc); err != nil && rctx.Err() == nil {
				log.Error("probe reflector stopped", "err", err)
			}
		}()
	}
	return func() {
		cancelReflector()
		if pc != nil {
			pc.Close()
		}
		closeMetrics()
		stopUpdates()
		ctl.Close()
		if err := h.Close(); err != nil {
			log.Error("stop hub dataplane", "err", err)
		}
	}, nil
}
