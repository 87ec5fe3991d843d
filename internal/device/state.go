package device

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/atomicfile"
)

// DefaultStateDir is where device state lives unless --state-dir says
// otherwise.
const DefaultStateDir = "/var/lib/vcpe"

// StateFile is the name of the device state file inside the state dir.
const StateFile = "device.json"

// stateVersion is the layout version of the state file.
const stateVersion = 1

// State is a device's identity and last known configuration: written by
// registration, read by vcped and vcpe status. It holds secrets (the
// WireGuard private key and the device credential), so it is written 0600
// inside a 0700 directory, atomically.
type State struct {
	Version int `json:"version"`

	Controller            string `json:"controller"`             // https://host:8443
	ControllerFingerprint string `json:"controller_fingerprint"` // sha256:<hex> of the controller CA

	SN         string         `json:"sn"`
	PrivateKey api.Key        `json:"private_key"` // WireGuard; never leaves the device
	Credential string         `json:"credential"`  // bearer token for /v1/device/*
	Advertise  []netip.Prefix `json:"advertise"`

	// Config is the last configuration the controller sent.
	Config api.DeviceConfig `json:"config"`
}

// ErrNoState means the state dir holds no device state: the device is not
// registered.
var ErrNoState = errors.New("no device state")

// LoadState reads DIR/device.json. A missing file is ErrNoState; a corrupt
// one is reported with the path and never replaced.
func LoadState(dir string) (*State, error) {
	path := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w (register the device first: vcpe register)", path, ErrNoState)
	}
	if err != nil {
		return nil, fmt.Errorf("read device state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, &CorruptStateError{Path: path, Err: err}
	}
	if s.Version > stateVersion {
		return nil, fmt.Errorf("%w: %s has layout version %d and this vcpe reads up to %d; it was left unchanged: upgrade vcpe (the package) again", ErrNewerState, path, s.Version, stateVersion)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("device state %s has layout version %d; this vcpe reads version %d", path, s.Version, stateVersion)
	}
	return &s, nil
}

// ErrNewerState means the device state was written by a newer vcpe; it is
// never read or overwritten by an older one.
var ErrNewerState = errors.New("device state is newer than this vcpe")

// CorruptStateError means device.json is not a device state. `vcpe install
// --yes` with the same inputs repairs it: it keeps the damaged file in its
// journal and registers again with the WireGuard key the journal holds.
type CorruptStateError struct {
	Path string
	Err  error
}

func (e *CorruptStateError) Error() string {
	return fmt.Sprintf("device state %s is corrupt (%v); repair it with 'vcpe install --yes' and the same inputs (it registers again with the WireGuard key its journal holds)", e.Path, e.Err)
}

func (e *CorruptStateError) Unwrap() error { return e.Err }

// SaveState writes DIR/device.json atomically with mode 0600, creating DIR
// with mode 0700 when needed. It refuses to replace a state file a newer
// vcpe wrote.
func SaveState(dir string, s *State) error {
	if b, err := os.ReadFile(filepath.Join(dir, StateFile)); err == nil {
		var old struct {
			Version int `json:"version"`
		}
		if json.Unmarshal(b, &old) == nil && old.Version > stateVersion {
			return fmt.Errorf("%w: %s has layout version %d and this vcpe writes %d; it was left unchanged: upgrade vcpe (the package) again", ErrNewerState, filepath.Join(dir, StateFile), old.Version, stateVersion)
		}
	}
	s.Version = stateVersion
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode device state: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, StateFile), append(b, '\n'), 0o600)
}
