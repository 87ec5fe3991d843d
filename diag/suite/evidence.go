package suite

import (
	"net/netip"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
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
// back from a support bundle (package diag/bundle, which owns that format:
// the fields tagged "-" go in their own files, the rest in evidence.json).
// A nil pointer or an empty error string means "not gathered".
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
	// StatusAfter is vcped's answer again once the probes have run: the
	// WireGuard counters of the hub peer between the two tell whether
	// anything came back through the tunnel.
	StatusAfter *dataplane.Status `json:"status_after,omitempty"`

	// Config is the controller's answer to GET /v1/device/config with the
	// device credential; ConfigError the API's refusal (bundle: config.json
	// either way); ControllerError a failure below the API (unreachable,
	// TLS).
	Config          *api.DeviceConfig `json:"-"`
	ConfigError     *api.Error        `json:"config_error,omitempty"`
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

	// WANMTU is the path-MTU search over the WAN to the hub's reflector.
	WANMTU      *diag.MTUResult `json:"wan_mtu,omitempty"`
	WANMTUError string          `json:"wan_mtu_error,omitempty"`
}

// Dial is the outcome of a TCP connect.
type Dial struct {
	Addr    netip.AddrPort `json:"addr"`
	OK      bool           `json:"ok"`
	Refused bool           `json:"refused,omitempty"` // the host answered with a reset: nothing listens
	Error   string         `json:"error,omitempty"`
}
