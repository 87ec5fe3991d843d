package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Spec is a variant as named on the command line: a base variant and the
// tuning applied to both of its tunnel ends, joined by '+':
//
//	upstream                  as built
//	vcpe+pin                  end A on CPU 0, end B on CPU 1 (taskset)
//	upstream+GOMAXPROCS=1     an environment variable for both daemons
//	vcpe+txqlen=5000          the TUN's transmit queue length, both ends
//	vcpe+hub:GOMAXPROCS=2     an environment variable for the hub case's hub only
//	vcpe+vcped=bin/vcped-old  another vcped binary, e.g. one built with -pgo=off
//
// Tuned variants run in the same run as the plain ones, so their ratios
// are comparable. vcpe+X is compared with upstream+X when both are there.
type Spec struct {
	Name   string   // as given, e.g. "vcpe+pin"
	Base   string   // raw, upstream or vcpe
	Tuning string   // what follows the base, e.g. "pin"; empty when none
	Env    []string // VAR=value for both daemons
	// HubEnv is VAR=value for the hub case's hub only (hub:VAR=value).
	HubEnv []string
	Pin    bool
	TxQLen int // 0: leave the TUN's queue length alone
	// Vcped is a vcped binary to run instead of the one the bench built
	// (vcpe only); it cannot hold '+' or ','.
	Vcped string
}

var variantTitles = map[string]string{
	VariantRaw:      "raw veth, no tunnel",
	VariantUpstream: "upstream wireguard-go",
	VariantVcpe:     "two vcped daemons, each the other's hub",
}

// ParseSpec parses a variant name. Errors name the part that is wrong and
// what is allowed.
func ParseSpec(name string) (Spec, error) {
	parts := strings.Split(name, "+")
	s := Spec{Name: name, Base: parts[0]}
	if _, ok := variantTitles[s.Base]; !ok {
		return s, fmt.Errorf("variant %q: unknown base %q; want %s, %s or %s", name, s.Base, VariantRaw, VariantUpstream, VariantVcpe)
	}
	if len(parts) > 1 {
		s.Tuning = strings.Join(parts[1:], "+")
		if s.Base == VariantRaw {
			return s, fmt.Errorf("variant %q: raw has no tunnel to tune; drop %q", name, "+"+s.Tuning)
		}
	}
	for _, p := range parts[1:] {
		k, v, hasValue := strings.Cut(p, "=")
		switch {
		case p == "pin":
			s.Pin = true
		case k == "txqlen" && hasValue:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1<<20 {
				return s, fmt.Errorf("variant %q: txqlen=%s is not a queue length (1..1048576)", name, v)
			}
			s.TxQLen = n
		case k == "vcped" && hasValue:
			if s.Base != VariantVcpe || v == "" {
				return s, fmt.Errorf("variant %q: vcped=PATH names a vcped binary, for the vcpe variant only", name)
			}
			s.Vcped = v
		case hasValue && strings.HasPrefix(k, "hub:") && k[4:] != "" && k[4:] == strings.ToUpper(k[4:]):
			s.HubEnv = append(s.HubEnv, strings.TrimPrefix(p, "hub:"))
		case hasValue && k != "" && k == strings.ToUpper(k) && !strings.Contains(k, ":"):
			s.Env = append(s.Env, p)
		default:
			return s, fmt.Errorf("variant %q: unknown tuning %q; want pin, txqlen=N, vcped=PATH, VAR=value or hub:VAR=value (upper-case VAR)", name, p)
		}
	}
	return s, nil
}

// Title describes the variant for the report.
func (s Spec) Title() string {
	t := variantTitles[s.Base]
	if s.Tuning != "" {
		t += ", tuned: " + s.Tuning
	}
	return t
}

// counterpart is the variant a vcpe variant is compared with: upstream
// with the same tuning, less the choice of vcped binary.
func (s Spec) counterpart() string {
	var parts []string
	for _, p := range strings.Split(s.Tuning, "+") {
		if p != "" && !strings.HasPrefix(p, "vcped=") {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return VariantUpstream
	}
	return VariantUpstream + "+" + strings.Join(parts, "+")
}
