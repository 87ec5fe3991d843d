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
}

// Suggestions are what the Engine offers the operator before asking for
// the registration: values already given (flags, environment, config
// file) and LAN prefixes found on the host's non-WAN interfaces.
type Suggestions struct {
	Given        Registration
	LANPrefixes  []netip.Prefix
	WANInterface string
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
