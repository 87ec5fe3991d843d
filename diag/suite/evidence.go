package suite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/internal/atomicfile"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
)

// Probe names in Evidence.Probes.
const (
	ProbeWANICMP      = "wan.icmp"      // ICMP echo to the hub's WAN address
	ProbeWANReflector = "wan.reflector" // UDP 12345 to the hub's WAN address
	ProbeTunnelHub    = "tunnel.hub"    // UDP 12345 to the hub's overlay address, through the tunnel
	// ProbeTargetPrefix + address: a target through the tunnel, UDP to the
	// reflector for a default target (Evidence.Targets), ICMP echo for one
	// the operator named (--target).
	ProbeTargetPrefix = "target."
)

// Evidence is everything Diagnose judges, gathered once by Collect or read
// back from a support bundle by LoadEvidence. A nil pointer or an empty
// error string means "not gathered".
type Evidence struct {
	Time     time.Time `json:"time"`
	StateDir string    `json:"state_dir,omitempty"`

	// Snapshot is the precheck host snapshot (bundle: snapshot/); Precheck
	// is the report on it.
	Snapshot *precheck.Snapshot `json:"-"`
	Precheck *precheck.Report   `json:"precheck,omitempty"`

	// State is the device state (bundle: state.json, secrets redacted);
	// StateError why it could not be read.
	State      *device.State `json:"-"`
	StateError string        `json:"state_error,omitempty"`
	// StateFiles are the problems of the state dir's files (device state,
	// journal, pid file, left-over temporary files).
	StateFiles []device.StateProblem `json:"state_files,omitempty"`

	// Status is vcped's answer on its control socket (bundle: status.json);
	// StatusError why the socket did not answer.
	Status      *dataplane.Status `json:"-"`
	StatusError string            `json:"status_error,omitempty"`

	// Config is the controller's answer to GET /v1/device/config with the
	// device credential; ConfigError the API's refusal (bundle: config.json
	// either way); ControllerError a failure below the API (unreachable,
	// TLS).
	Config          *api.DeviceConfig `json:"-"`
	ConfigError     *api.Error        `json:"-"`
	ControllerError string            `json:"controller_error,omitempty"`

	// Controller is a TCP connect to the controller's address.
	Controller *Dial `json:"controller,omitempty"`

	// Host is what the kernel has: the TUN, vcpe's routes, addresses.
	Host *Host `json:"host,omitempty"`

	// Probes are the probe series by name (Probe* constants; bundle:
	// probes.json). ProbeErrors say why a series could not run.
	Probes      map[string]diag.Result `json:"-"`
	ProbeErrors map[string]string      `json:"probe_errors,omitempty"`

	// Targets are the controller's probe targets (the device's stored
	// config) that were probed with the reflector, one per learned
	// prefix; a prefix holding an operator's --target is left out.
	Targets []api.ProbeTarget `json:"targets,omitempty"`

	// Reach is the outside-in check: which required ports arrive from the
	// controller at this host's public address; ReachError why it did not
	// run (rate-limited, controller unreachable).
	Reach      *diag.ReachReport `json:"reach,omitempty"`
	ReachError string            `json:"reach_error,omitempty"`

	// MTU is the path-MTU search through the tunnel to the hub's overlay
	// address.
	MTU      *diag.MTUResult `json:"mtu,omitempty"`
	MTUError string          `json:"mtu_error,omitempty"`
}

// Dial is the outcome of a TCP connect.
type Dial struct {
	Addr    netip.AddrPort `json:"addr"`
	OK      bool           `json:"ok"`
	Refused bool           `json:"refused,omitempty"` // the host answered with a reset: nothing listens
	Error   string         `json:"error,omitempty"`
}

// Host is the kernel's view: the TUN link, the routes vcpe installed
// (protocol 118) and the addresses of every interface.
type Host struct {
	TUN         string         `json:"tun"`
	TUNPresent  bool           `json:"tun_present"`
	TUNUp       bool           `json:"tun_up"`
	TUNMTU      int            `json:"tun_mtu,omitempty"`
	Routes      []netip.Prefix `json:"routes"` // proto 118, main table
	Addresses   []IfAddr       `json:"addresses"`
	RoutesError string         `json:"routes_error,omitempty"`
}

// IfAddr is an address on a local interface.
type IfAddr struct {
	Interface string       `json:"interface"`
	Prefix    netip.Prefix `json:"prefix"`
}

// Bundle file names (the layout `vcpe diag bundle` writes).
const (
	fileStatus   = "status.json"
	fileState    = "state.json"
	fileConfig   = "config.json"
	fileProbes   = "probes.json"
	fileEvidence = "evidence.json" // the rest of Evidence
	dirSnapshot  = "snapshot"
)

// configDoc is config.json: the controller's answer or its refusal.
type configDoc struct {
	*api.DeviceConfig
	Error *api.Error `json:"error,omitempty"`
}

// Redacted returns a copy of s without the private key and the credential.
func Redacted(s *device.State) *device.State {
	if s == nil {
		return nil
	}
	c := *s
	c.PrivateKey = api.Key{}
	if c.Credential != "" {
		c.Credential = "REDACTED"
	}
	return &c
}

// Save writes e into dir in the support bundle's layout: snapshot/,
// status.json, state.json (redacted), config.json, probes.json and
// evidence.json. It writes no manifest and no logs (the bundle does).
func (e *Evidence) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save evidence: %w", err)
	}
	if e.Snapshot != nil {
		if err := e.Snapshot.Save(filepath.Join(dir, dirSnapshot)); err != nil {
			return fmt.Errorf("save evidence: %w", err)
		}
	}
	files := map[string]any{fileEvidence: e, fileProbes: e.Probes}
	if e.Status != nil {
		files[fileStatus] = e.Status
	}
	if e.State != nil {
		files[fileState] = Redacted(e.State)
	}
	if e.Config != nil || e.ConfigError != nil {
		files[fileConfig] = configDoc{DeviceConfig: e.Config, Error: e.ConfigError}
	}
	for name, v := range files {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("save evidence %s: %w", name, err)
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o600); err != nil {
			return fmt.Errorf("save evidence: %w", err)
		}
	}
	return nil
}

// LoadEvidence reads what Save (or a support bundle) wrote into dir. Files
// that are absent leave their part of Evidence not gathered.
func LoadEvidence(dir string) (*Evidence, error) {
	e := &Evidence{}
	read := func(name string, v any) (bool, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("load evidence: %w", err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			return false, fmt.Errorf("load evidence %s: %w", name, err)
		}
		return true, nil
	}
	if _, err := read(fileEvidence, e); err != nil {
		return nil, err
	}
	var st dataplane.Status
	if ok, err := read(fileStatus, &st); err != nil {
		return nil, err
	} else if ok {
		e.Status = &st
	}
	var s device.State
	if ok, err := read(fileState, &s); err != nil {
		return nil, err
	} else if ok {
		e.State = &s
	}
	var cd configDoc
	if ok, err := read(fileConfig, &cd); err != nil {
		return nil, err
	} else if ok {
		e.Config, e.ConfigError = cd.DeviceConfig, cd.Error
	}
	if _, err := read(fileProbes, &e.Probes); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(filepath.Join(dir, dirSnapshot)); err == nil && fi.IsDir() {
		snap, err := precheck.Load(filepath.Join(dir, dirSnapshot))
		if err != nil {
			return nil, fmt.Errorf("load evidence: %w", err)
		}
		e.Snapshot = snap
		if e.Precheck == nil {
			// Offline: the checks are pure functions of the snapshot.
			r := precheck.Run(context.Background(), snap, precheck.Options{})
			e.Precheck = &r
		}
	}
	return e, nil
}
