package provision

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/openvcpe/vcpe/precheck"
)

// Secret holds a secret (the device key) so that it never prints: its
// String and GoString are "[redacted]", and it has no JSON form.
type Secret struct{ b []byte }

// NewSecret wraps a secret value.
func NewSecret(s string) Secret { return Secret{b: []byte(s)} }

// Reveal returns the secret, for the one place that needs it.
func (s Secret) Reveal() string { return string(s.b) }

// IsZero reports whether no secret is set.
func (s Secret) IsZero() bool { return len(s.b) == 0 }

func (Secret) String() string               { return "[redacted]" }
func (Secret) GoString() string             { return "[redacted]" }
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }
func (Secret) MarshalYAML() (any, error)    { return "[redacted]", nil }

// Registration is what the device registers with.
type Registration struct {
	Controller  string // https://HOST:PORT
	Fingerprint string // sha256:<hex>
	SN          string
	Key         Secret
	Advertise   []netip.Prefix
	// Force overrides the operator-lockout guard.
	Force bool
	// WANInterface and LANInterface name the host's interfaces; empty
	// keeps the guess (the default route's, the one with an address in an
	// advertised prefix).
	WANInterface, LANInterface string
	// LANGateway and LANTargets are the multi-attach settings (see
	// InstallOptions).
	LANGateway netip.Prefix
	LANTargets []netip.Addr
}

// Interface is one of the host's network interfaces, as the wizard lists
// them.
type Interface struct {
	Name  string
	Addrs []netip.Prefix
	// DefaultRoute is set on the interface of the IPv4 default route.
	DefaultRoute bool
}

// Suggestions are what the Engine offers the operator before asking for
// the registration: values already given (flags, environment, config
// file) and LAN prefixes found on the host's non-WAN interfaces.
type Suggestions struct {
	Given        Registration
	LANPrefixes  []netip.Prefix
	WANInterface string
	// Interfaces are the host's interfaces (not lo or vcpe's own), sorted
	// by name.
	Interfaces []Interface
}

// AttachQuestion is what the controller said at registration about this
// device's instance, for the multi-attach question.
type AttachQuestion struct {
	Instance string
	// Role is this device's role now (api.RoleActive or api.RoleStandby).
	Role string
	// Slots is how many devices the instance may have; 0 when the
	// controller does not say.
	Slots int
	// ActiveSN is the instance's active device when it is another one.
	ActiveSN string
	// PeerGateway is the shared LAN gateway another device of the
	// instance registered with (invalid when none did).
	PeerGateway netip.Prefix
	// LAN are the instance's advertised prefixes: the gateway lies in one.
	LAN []netip.Prefix
	// Given are the settings given so far (flags, environment, config).
	Given Registration
}

// MultiDevice reports whether the instance can have a second device.
func (q AttachQuestion) MultiDevice() bool { return q.Slots != 1 }

// Attach are the multi-attach answers; a zero Attach is a single device.
type Attach struct {
	LANGateway netip.Prefix
	LANTargets []netip.Addr
}

// AttachPrompter is a Prompter that also asks for the multi-attach
// settings once the controller has told about the instance (the wizard
// does; --yes takes them from its flags).
type AttachPrompter interface {
	Attach(ctx context.Context, q AttachQuestion) (Attach, error)
}

// LockoutPrompter is a Prompter that may override the lockout guard: it is
// shown the route that would capture a protected address and returns true
// to install anyway (--force).
type LockoutPrompter interface {
	OverrideLockout(ctx context.Context, e *LockoutError) (bool, error)
}

// Plan is what apply will do, shown to the operator before anything on
// the host changes.
type Plan struct {
	StateDir    string         `json:"state_dir"`
	SN          string         `json:"sn"`
	OverlayAddr netip.Prefix   `json:"overlay_addr"`
	HubEndpoint netip.AddrPort `json:"hub_endpoint"`
	Role        string         `json:"role"`
	Advertised  []netip.Prefix `json:"advertised"`
	// Routes are the learned prefixes the daemon will route into the
	// tunnel.
	Routes []netip.Prefix `json:"routes"`
	// Changes are the host changes, one line each, in the order apply
	// makes them.
	Changes []string `json:"changes"`
	// LANCommands tell the LAN's router or hosts how to reach Routes
	// through this device.
	LANCommands []string `json:"lan_commands"`
	Warnings    []string `json:"warnings,omitempty"`
}

// PrecheckDecision is what the operator decides after reading the
// precheck report.
type PrecheckDecision int

// Decisions after precheck.
const (
	PrecheckContinue PrecheckDecision = iota // go on (warnings accepted)
	PrecheckRerun                            // run the checks again
	PrecheckAbort                            // stop; nothing was changed
)

// Prompter is how the Engine asks the operator during a run. --yes
// answers from its flags without asking; the TUI answers from its pages.
// Every method may block until the operator answers, and must return when
// ctx ends.
type Prompter interface {
	// AfterPrecheck is shown the precheck report.
	AfterPrecheck(ctx context.Context, rep precheck.Report) (PrecheckDecision, error)
	// Registration returns what to register with.
	Registration(ctx context.Context, s Suggestions) (Registration, error)
	// Confirm is shown the plan before anything changes; returning
	// ErrDeclined stops the run with nothing changed.
	Confirm(ctx context.Context, p Plan) error
}

// AutoPrompter answers for --yes: the registration given by flags,
// environment or config file, the plan accepted, and a precheck with any
// failure refused (warnings accepted), naming the failed checks.
type AutoPrompter struct{ Reg Registration }

// AfterPrecheck implements Prompter.
func (a AutoPrompter) AfterPrecheck(_ context.Context, rep precheck.Report) (PrecheckDecision, error) {
	if rep.OK {
		return PrecheckContinue, nil
	}
	var failed []string
	for _, r := range rep.Checks {
		if r.Status == precheck.Fail {
			failed = append(failed, string(r.ID))
		}
	}
	return PrecheckAbort, fmt.Errorf("precheck failed: %s; run 'vcpe precheck' for the fixes; nothing was changed", strings.Join(failed, ", "))
}

// Registration implements Prompter.
func (a AutoPrompter) Registration(context.Context, Suggestions) (Registration, error) {
	return a.Reg, nil
}

// Confirm implements Prompter.
func (a AutoPrompter) Confirm(context.Context, Plan) error { return nil }
