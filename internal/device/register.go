package device

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/atomicfile"
)

// RegisterParams are the inputs of Register.
type RegisterParams struct {
	StateDir    string
	Controller  string
	Fingerprint string
	SN          string
	Key         string // the device key; never logged or stored
	Advertise   []netip.Prefix
	// ExcludeProbe is an address of this host not to offer as a probe
	// address (the multi-attach LAN gateway, which moves).
	ExcludeProbe netip.Addr
	// LANGateway is the multi-attach gateway, told to the controller so
	// the instance's other device can take the same one.
	LANGateway netip.Prefix
	// InterfaceAddrs lists the host's addresses, from which the probe
	// addresses inside Advertise are taken; InterfaceAddrs (live) when nil.
	InterfaceAddrs func() ([]netip.Prefix, error)
	Client         ClientOptions
	// PrivateKey is the WireGuard key to register when the state holds
	// none; a pending key (PendingKeyFile) is made when it is zero. The
	// install journals it before calling Register, so that the
	// registration can be undone whether or not the answer arrives.
	PrivateKey api.Key
	// Answered, when set, is called once the controller's answer arrived,
	// before the state is saved (a fault-injection point for tests).
	Answered func()
}

// ErrStateMismatch means the state dir already holds another device.
var ErrStateMismatch = errors.New("state dir holds another device")

// Register registers this device and writes its state (0600, atomically).
// The WireGuard private key is made here and never leaves the device; a
// device already registered with the same SN and controller keeps its key,
// so registering again is idempotent.
func Register(ctx context.Context, p RegisterParams) (*State, error) {
	if err := api.ValidateSN(p.SN); err != nil {
		return nil, err
	}
	if strings.TrimSpace(p.Key) == "" {
		return nil, errors.New("the device key is empty: pass it with --key-file, VCPE_KEY or at the prompt")
	}
	c, err := NewClient(p.Controller, p.Fingerprint, p.Client)
	if err != nil {
		return nil, err
	}
	st, err := LoadState(p.StateDir)
	switch {
	case errors.Is(err, ErrNoState):
		st = &State{}
	case err != nil:
		return nil, err
	case st.SN != p.SN || st.ControllerFingerprint != c.fingerprint:
		// The same device of the same controller (by its CA, whatever URL
		// reaches it) may register again; anything else is another device.
		return nil, fmt.Errorf("%w: %s holds device %s of the controller %s (%s); use another --state-dir, or vcpe uninstall first", ErrStateMismatch, p.StateDir, st.SN, st.Controller, st.ControllerFingerprint)
	}
	pending := filepath.Join(p.StateDir, PendingKeyFile)
	if st.PrivateKey.IsZero() && !p.PrivateKey.IsZero() {
		st.PrivateKey = p.PrivateKey
	}
	if st.PrivateKey.IsZero() {
		if st.PrivateKey, err = pendingKey(pending); err != nil {
			return nil, err
		}
	}
	if p.InterfaceAddrs == nil {
		p.InterfaceAddrs = InterfaceAddrs
	}
	ifaddrs, err := p.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	probe := ProbeAddrsIn(ifaddrs, p.Advertise, p.ExcludeProbe)
	res, err := c.Register(ctx, RegisterRequest{SN: p.SN, Key: p.Key, PublicKey: st.PrivateKey.PublicKey(), Advertise: p.Advertise, ProbeAddrs: probe, LANGateway: p.LANGateway})
	if err != nil {
		return nil, err
	}
	if p.Answered != nil {
		p.Answered()
	}
	st.Controller = c.base.String()
	st.ControllerFingerprint = c.fingerprint
	st.SN = p.SN
	st.Credential = res.Credential
	st.Advertise = p.Advertise
	st.Config = res.Config
	if err := SaveState(p.StateDir, st); err != nil {
		return nil, err
	}
	_ = os.Remove(pending)
	return st, nil
}

// PendingKeyFile (in the state dir) holds the WireGuard private key of a first registration
// until the state file is written, so that a registration whose answer
// was lost can be repeated with the same key (the controller has bound
// the SN to it).
const PendingKeyFile = ".pending-wireguard.key"

func pendingKey(path string) (api.Key, error) {
	if b, err := os.ReadFile(path); err == nil {
		if k, err := api.ParseKey(strings.TrimSpace(string(b))); err == nil {
			return k, nil
		}
	}
	k, err := api.GeneratePrivateKey()
	if err != nil {
		return api.Key{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return api.Key{}, fmt.Errorf("create state dir: %w", err)
	}
	if err := atomicfile.WriteFile(path, []byte(k.String()+"\n"), 0o600); err != nil {
		return api.Key{}, err
	}
	return k, nil
}
