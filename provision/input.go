package provision

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/openvcpe/vcpe/api"
)

// InstallInput is everything `vcpe install` needs from the operator, from
// flags, VCPE_* environment variables or a YAML config file, in that order
// of precedence. The device key is deliberately not a field: it comes from
// --key-file, VCPE_KEY or standard input only.
type InstallInput struct {
	Controller            string   `yaml:"controller"`
	ControllerFingerprint string   `yaml:"controller_fingerprint"`
	SN                    string   `yaml:"sn"`
	Advertise             []string `yaml:"advertise"`
	LANInterface          string   `yaml:"lan_if"`
	WANInterface          string   `yaml:"wan_if"`
	StateDir              string   `yaml:"state_dir"`
	KeyFile               string   `yaml:"key_file"`
	Force                 bool     `yaml:"force"`
	// Multi-attach: the LAN hosts' gateway ADDR/LEN the active device
	// holds, and LAN hosts to probe for the device's LAN health.
	LANGateway string   `yaml:"lan_gateway"`
	LANTargets []string `yaml:"lan_targets"`
}

// EnvVars maps each InstallInput field to its environment variable.
var EnvVars = map[string]string{
	"--controller":             "VCPE_CONTROLLER",
	"--controller-fingerprint": "VCPE_CONTROLLER_FINGERPRINT",
	"--sn":                     "VCPE_SN",
	"--advertise":              "VCPE_ADVERTISE",
	"--lan-if":                 "VCPE_LAN_IF",
	"--wan-if":                 "VCPE_WAN_IF",
	"--state-dir":              "VCPE_STATE_DIR",
	"--key-file":               "VCPE_KEY_FILE",
	"--lan-gateway":            "VCPE_LAN_GATEWAY",
	"--lan-target":             "VCPE_LAN_TARGETS",
}

// LoadInstallConfig reads a YAML config file. Unknown keys are refused
// with their name, so a typo never silently falls back to a default.
func LoadInstallConfig(path string) (InstallInput, error) {
	var in InstallInput
	b, err := os.ReadFile(path)
	if err != nil {
		return in, &api.InputError{Field: "--config", Msg: fmt.Sprintf("read %s: %v", path, errors.Unwrap(err))}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&in); err != nil && !errors.Is(err, io.EOF) {
		msg := err.Error()
		if m := unknownKey.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("unknown key %q on line %s; the keys are controller, controller_fingerprint, sn, advertise, lan_if, wan_if, state_dir, key_file, force, lan_gateway, lan_targets", m[2], m[1])
		}
		return in, &api.InputError{Field: "--config", Source: "config file " + path, Msg: msg}
	}
	return in, nil
}

var unknownKey = regexp.MustCompile(`line (\d+): field (\S+) not found`)

// MaxAdvertise is the most prefixes a device may advertise (the
// controller's quota is 5 by default, configurable up to this).
const MaxAdvertise = 50

// ParseAdvertise parses LAN prefixes given as a list, each item possibly
// comma separated: IPv4, masks /8 to /32, written as the network address,
// not overlapping each other. No prefixes at all is not an error here;
// callers that need one say so.
func ParseAdvertise(items []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range items {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, &api.InputError{Field: "--advertise", Msg: fmt.Sprintf("%q is not a prefix; write it as ADDRESS/LENGTH, e.g. 198.19.1.0/24", s)}
			}
			if !p.Addr().Is4() {
				return nil, &api.InputError{Field: "--advertise", Msg: fmt.Sprintf("%s: only IPv4 prefixes are supported", s)}
			}
			if p.Bits() < 8 || p.Bits() > 32 {
				return nil, &api.InputError{Field: "--advertise", Msg: fmt.Sprintf("%s: the mask must be between /8 and /32", s)}
			}
			if p.Masked() != p {
				return nil, &api.InputError{Field: "--advertise", Msg: fmt.Sprintf("%s has host bits set; did you mean %s?", s, p.Masked())}
			}
			for _, q := range out {
				if q.Overlaps(p) {
					return nil, &api.InputError{Field: "--advertise", Msg: fmt.Sprintf("%s overlaps %s; advertise each LAN once", p, q)}
				}
			}
			out = append(out, p)
		}
	}
	if len(out) > MaxAdvertise {
		return nil, &api.InputError{Field: "--advertise", Msg: fmt.Sprintf("%d prefixes; at most %d may be advertised", len(out), MaxAdvertise)}
	}
	return out, nil
}

// InstallInputFromEnv reads the VCPE_* variables (getenv is os.Getenv in
// production). VCPE_ADVERTISE is comma separated; VCPE_FORCE is a boolean.
func InstallInputFromEnv(getenv func(string) string) (InstallInput, error) {
	in := InstallInput{
		Controller:            getenv("VCPE_CONTROLLER"),
		ControllerFingerprint: getenv("VCPE_CONTROLLER_FINGERPRINT"),
		SN:                    getenv("VCPE_SN"),
		LANInterface:          getenv("VCPE_LAN_IF"),
		WANInterface:          getenv("VCPE_WAN_IF"),
		StateDir:              getenv("VCPE_STATE_DIR"),
		KeyFile:               getenv("VCPE_KEY_FILE"),
		LANGateway:            getenv("VCPE_LAN_GATEWAY"),
	}
	if v := getenv("VCPE_LAN_TARGETS"); v != "" {
		in.LANTargets = strings.Split(v, ",")
	}
	if v := getenv("VCPE_ADVERTISE"); v != "" {
		in.Advertise = []string{v}
	}
	switch strings.ToLower(getenv("VCPE_FORCE")) {
	case "", "0", "false", "no":
	case "1", "true", "yes":
		in.Force = true
	default:
		return in, &api.InputError{Field: "--force", Source: "VCPE_FORCE", Msg: fmt.Sprintf("%q is not a boolean; use true or false", getenv("VCPE_FORCE"))}
	}
	return in, nil
}

// Merge returns in with every field that over sets replacing it (over
// wins: flags over environment over config file).
func (in InstallInput) Merge(over InstallInput) InstallInput {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&in.Controller, over.Controller)
	set(&in.ControllerFingerprint, over.ControllerFingerprint)
	set(&in.SN, over.SN)
	set(&in.LANInterface, over.LANInterface)
	set(&in.WANInterface, over.WANInterface)
	set(&in.StateDir, over.StateDir)
	set(&in.KeyFile, over.KeyFile)
	set(&in.LANGateway, over.LANGateway)
	if len(over.LANTargets) > 0 {
		in.LANTargets = over.LANTargets
	}
	if len(over.Advertise) > 0 {
		in.Advertise = over.Advertise
	}
	in.Force = in.Force || over.Force
	return in
}

// ParseLANGateway parses the multi-attach gateway (--lan-gateway): an IPv4
// ADDR/LEN, a host address (not the network or broadcast address of its
// prefix) inside one of the LAN prefixes when any are given, so LAN hosts
// can reach it. An empty s is no gateway.
func ParseLANGateway(s string, lan []netip.Prefix) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() >= 32 || p.Bits() < 8 {
		return netip.Prefix{}, &api.InputError{Field: "--lan-gateway", Msg: fmt.Sprintf("%q: want the gateway address with the LAN's prefix length, e.g. 198.19.1.254/24", s)}
	}
	if p.Bits() < 31 {
		if p.Addr() == p.Masked().Addr() || p.Addr() == broadcast(p) {
			return netip.Prefix{}, &api.InputError{Field: "--lan-gateway", Msg: fmt.Sprintf("%s is the network or broadcast address of %s; pick a host address, e.g. %s", p.Addr(), p.Masked(), netip.PrefixFrom(broadcast(p).Prev(), p.Bits()))}
		}
	}
	if len(lan) == 0 {
		return p, nil
	}
	for _, q := range lan {
		if q.Contains(p.Addr()) {
			return p, nil
		}
	}
	return netip.Prefix{}, &api.InputError{Field: "--lan-gateway", Msg: fmt.Sprintf("%s is outside the LAN prefixes %s; the LAN hosts' gateway must be an address of their LAN, e.g. %s",
		p.Addr(), api.JoinPrefixes(lan, ", "), netip.PrefixFrom(broadcast(lan[0]).Prev(), lan[0].Bits()))}
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n |= ^uint32(0) >> p.Bits()
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// ParseLANTargets parses the LAN hosts to probe (--lan-target): IPv4
// addresses, each item possibly comma separated, no duplicates.
func ParseLANTargets(items []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, item := range items {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil || !a.Is4() {
				return nil, &api.InputError{Field: "--lan-target", Msg: fmt.Sprintf("%q: want an IPv4 address of a LAN host, e.g. 198.19.1.10", s)}
			}
			if slices.Contains(out, a) {
				return nil, &api.InputError{Field: "--lan-target", Msg: fmt.Sprintf("%s is given twice", a)}
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// ValidateInterface checks that name (for field, "--wan-if" or "--lan-if")
// is one of the host's interfaces. An empty name is the default (guessed)
// interface; an empty list (unknown) accepts any name.
func ValidateInterface(field, name string, ifs []Interface) error {
	name = strings.TrimSpace(name)
	if name == "" || len(ifs) == 0 {
		return nil
	}
	names := make([]string, 0, len(ifs))
	for _, i := range ifs {
		if i.Name == name {
			return nil
		}
		names = append(names, i.Name)
	}
	return &api.InputError{Field: field, Msg: fmt.Sprintf("no interface %q on this host; pick one of %s", name, strings.Join(names, ", "))}
}

// ConfigFile renders in as a YAML file for `vcpe install --yes --config
// FILE`, the set fields only. The device key is never written (the header
// says where it must come from), and neither is force: a lockout override
// is decided per host, never copied to a fleet.
func (in InstallInput) ConfigFile() ([]byte, error) {
	out := struct {
		Controller            string   `yaml:"controller,omitempty"`
		ControllerFingerprint string   `yaml:"controller_fingerprint,omitempty"`
		SN                    string   `yaml:"sn,omitempty"`
		Advertise             []string `yaml:"advertise,omitempty"`
		WANInterface          string   `yaml:"wan_if,omitempty"`
		LANInterface          string   `yaml:"lan_if,omitempty"`
		StateDir              string   `yaml:"state_dir,omitempty"`
		KeyFile               string   `yaml:"key_file,omitempty"`
		LANGateway            string   `yaml:"lan_gateway,omitempty"`
		LANTargets            []string `yaml:"lan_targets,omitempty"`
	}{in.Controller, in.ControllerFingerprint, in.SN, in.Advertise, in.WANInterface, in.LANInterface,
		in.StateDir, in.KeyFile, in.LANGateway, in.LANTargets}
	var doc yaml.Node
	if err := doc.Encode(out); err != nil {
		return nil, fmt.Errorf("encode install config: %w", err)
	}
	doc.HeadComment = "vcpe install values: vcpe install --yes --config THIS_FILE\n" +
		"Each site changes sn (and advertise, lan_gateway, lan_targets for its LAN).\n" +
		"The device key is not in this file and must never be: give it with\n" +
		"key_file: FILE (mode 0600), the VCPE_KEY variable, or on standard input.\n" +
		"force (the lockout override) is never saved; pass --force on the host that needs it."
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("encode install config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode install config: %w", err)
	}
	return b.Bytes(), nil
}
