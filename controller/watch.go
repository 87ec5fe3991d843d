package controller

import (
	"context"
	"sync"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// MaxWait bounds a device's long-poll (GET /v1/device/config?wait=GEN):
// under the device API's 30 s write timeout, and short enough that a
// device notices a dead connection quickly.
const MaxWait = 25 * time.Second

// genWatch wakes everyone waiting for the next generation: a channel
// closed and replaced on every change.
type genWatch struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *genWatch) init() { w.ch = make(chan struct{}) }

// next returns a channel closed at the next change.
func (w *genWatch) next() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

func (w *genWatch) notify() {
	w.mu.Lock()
	close(w.ch)
	w.ch = make(chan struct{})
	w.mu.Unlock()
}

// WaitDeviceConfig is DeviceConfig as a long-poll: it answers at once when
// the configuration's generation is not wait, else as soon as it changes
// (on this replica or, through the store's announcements, any other), or
// with the unchanged configuration when ctx ends.
func (s *Server) WaitDeviceConfig(ctx context.Context, credential string, wait uint64) (api.DeviceConfig, error) {
	for {
		next := s.watch.next()
		cfg, err := s.DeviceConfig(credential)
		if err != nil || cfg.Generation != wait {
			return cfg, err
		}
		select {
		case <-next:
		case <-ctx.Done():
			return cfg, nil
		}
	}
}

// WaitHubConfigFor is HubConfigFor as a long-poll, like
// WaitDeviceConfig: the hub called name waits for its next configuration.
func (s *Server) WaitHubConfigFor(ctx context.Context, name string, wait uint64) api.HubConfig {
	for {
		next := s.watch.next()
		hc := s.HubConfigFor(name)
		if hc.Generation != wait {
			return hc
		}
		select {
		case <-next:
		case <-ctx.Done():
			return hc
		}
	}
}
