package dataplane

import (
	"os"
	"slices"

	"github.com/openvcpe/vcpe/api"
)

// sshPorts are the local ports whose established connections are SSH
// sessions to protect.
var sshPorts = map[uint16]bool{22: true}

// sshClients returns the addresses of the SSH sessions connected now, as
// seen from the engine's namespace.
func (w *wgIface) sshClients() []Protected {
	var out []Protected
	_ = w.inNS(func() error {
		f, err := os.Open("/proc/thread-self/net/tcp") // this thread's namespace, not the process's
		if err != nil {
			return err
		}
		defer f.Close()
		for _, a := range parseProcNetTCP(f, sshPorts) {
			out = append(out, Protected{Addr: a, What: "the SSH client " + a.String()})
		}
		return nil
	})
	return out
}

// guardLocked drops from cfg's routes those that would capture the hub
// endpoint, the SSH clients or what EdgeOptions.Protect names, logs each
// newly dropped one, and returns the config to apply.
func (e *Engine) guardLocked(w *wgIface, cfg api.DeviceConfig) api.DeviceConfig {
	protect := []Protected{{Addr: cfg.HubEndpoint.Addr().Unmap(), What: "the hub endpoint " + cfg.HubEndpoint.Addr().Unmap().String()}}
	for _, h := range cfg.Hubs {
		if a := h.Endpoint.Addr().Unmap(); a != cfg.HubEndpoint.Addr().Unmap() {
			protect = append(protect, Protected{Addr: a, What: "the endpoint of hub " + h.Name + " " + a.String()})
		}
	}
	protect = append(protect, w.sshClients()...)
	if e.protect != nil {
		protect = append(protect, e.protect()...)
	}
	kept, dropped := guardRoutes(cfg.Routes, protect)
	for _, d := range dropped {
		if !slices.Contains(e.dropped, d) {
			e.c.log.Warn("learned route dropped: it would capture "+d.Protected.What, "prefix", d.Prefix, "protected", d.Protected.Addr)
		}
	}
	e.dropped = dropped
	cfg = cloneDeviceConfig(cfg)
	cfg.Routes = kept
	return cfg
}
