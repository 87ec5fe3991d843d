//go:build !linux

package dataplane

import "github.com/openvcpe/vcpe/api"

// Engine is the edge dataplane; it runs on Linux only.
type Engine struct{}

// New returns ErrUnsupported outside Linux.
func New(EdgeOptions) (*Engine, error) { return nil, ErrUnsupported }

// SetSyncStatus does nothing outside Linux.
func (e *Engine) SetSyncStatus(func() SyncStatus) {}

// Start returns ErrUnsupported outside Linux.
func (e *Engine) Start(api.DeviceConfig) error { return ErrUnsupported }

// Apply returns ErrUnsupported outside Linux.
func (e *Engine) Apply(api.DeviceConfig) error { return ErrUnsupported }

// Revoke does nothing outside Linux.
func (e *Engine) Revoke(string) {}

// Close does nothing outside Linux.
func (e *Engine) Close() error { return nil }

// Status reports a stopped engine outside Linux.
func (e *Engine) Status() Status {
	return Status{Role: api.RoleStandby, State: StateStopped, Reason: ErrUnsupported.Error()}
}

// Hub is the hub dataplane; it runs on Linux only.
type Hub struct{}

// NewHub returns ErrUnsupported outside Linux.
func NewHub(HubOptions) (*Hub, error) { return nil, ErrUnsupported }

// Start returns ErrUnsupported outside Linux.
func (h *Hub) Start(api.HubConfig) error { return ErrUnsupported }

// Apply returns ErrUnsupported outside Linux.
func (h *Hub) Apply(api.HubConfig) error { return ErrUnsupported }

// Close does nothing outside Linux.
func (h *Hub) Close() error { return nil }

// Status reports a stopped hub outside Linux.
func (h *Hub) Status() Status {
	return Status{Role: "hub", State: StateStopped, Reason: ErrUnsupported.Error()}
}

// HostNetworks is empty outside Linux.
func HostNetworks() ([]HostNetwork, error) { return nil, ErrUnsupported }
