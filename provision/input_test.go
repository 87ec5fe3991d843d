package provision

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/api"
)

func TestLoadInstallConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "controller: https://198.18.0.1:8443\nsn: VCPE-A1\nadvertise: [198.19.1.0/24]\nforce: true\n")
	in, err := LoadInstallConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	if in.Controller != "https://198.18.0.1:8443" || in.SN != "VCPE-A1" || len(in.Advertise) != 1 || !in.Force {
		t.Errorf("decoded %+v", in)
	}
	if in, err := LoadInstallConfig(write("empty.yaml", "")); err != nil || in.SN != "" {
		t.Errorf("empty file: %+v, %v; want zero input and no error", in, err)
	}
	_, err = LoadInstallConfig(write("typo.yaml", "controller: https://198.18.0.1:8443\nadvertize: [198.19.1.0/24]\n"))
	var ie *api.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), `unknown key "advertize" on line 2`) {
		t.Errorf("unknown key: %v; want it named with its line", err)
	}
	// The key itself is not a config field: a secret in a config file is refused.
	if _, err := LoadInstallConfig(write("secret.yaml", "key: hunter2\n")); err == nil || !strings.Contains(err.Error(), `unknown key "key"`) {
		t.Errorf("key in config file: %v; want refused", err)
	}
	if _, err := LoadInstallConfig(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("missing file: %v; want a --config error", err)
	}
}

func TestParseAdvertise(t *testing.T) {
	if got, err := ParseAdvertise([]string{"", " , "}); err != nil || len(got) != 0 {
		t.Errorf("ParseAdvertise of nothing = %v, %v; want no prefixes and no error", got, err)
	}
	got, err := ParseAdvertise([]string{"198.19.1.0/24,198.19.3.0/24", " 198.19.4.1/32 "})
	if err != nil || len(got) != 3 {
		t.Fatalf("ParseAdvertise = %v, %v", got, err)
	}
	for in, want := range map[string]string{
		"198.19.1.0/33":               "not a prefix",
		"198.19.1.5/24":               "did you mean 198.19.1.0/24",
		"10.0.0.0/7":                  "between /8 and /32",
		"2001:db8::/32":               "only IPv4",
		"198.19.0.0/16,198.19.1.0/24": "overlaps",
	} {
		_, err := ParseAdvertise([]string{in})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "--advertise") {
			t.Errorf("ParseAdvertise(%q) = %v; want a --advertise error containing %q", in, err, want)
		}
	}
}

func FuzzParseAdvertise(f *testing.F) {
	f.Add("198.19.1.0/24,198.19.2.0/24")
	f.Add("0.0.0.0/0")
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseAdvertise([]string{s})
		if err != nil {
			return
		}
		for i, p := range ps {
			if !p.Addr().Is4() || p.Bits() < 8 || p.Masked() != p {
				t.Fatalf("accepted %v", p)
			}
			for _, q := range ps[:i] {
				if q.Overlaps(p) {
					t.Fatalf("accepted overlapping %v and %v", p, q)
				}
			}
		}
	})
}

func TestInstallInputPrecedence(t *testing.T) {
	file := InstallInput{Controller: "https://198.18.0.1:8443", SN: "FROM-FILE", Advertise: []string{"198.19.1.0/24"}, StateDir: "/var/lib/a"}
	env, err := InstallInputFromEnv(func(k string) string {
		return map[string]string{"VCPE_SN": "FROM-ENV", "VCPE_ADVERTISE": "198.19.2.0/24,198.19.3.0/24", "VCPE_FORCE": "true"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	flags := InstallInput{SN: "FROM-FLAG"}
	got := file.Merge(env).Merge(flags)
	if got.SN != "FROM-FLAG" || got.Controller != "https://198.18.0.1:8443" || got.StateDir != "/var/lib/a" || !got.Force {
		t.Errorf("merged %+v", got)
	}
	if len(got.Advertise) != 1 || got.Advertise[0] != "198.19.2.0/24,198.19.3.0/24" {
		t.Errorf("advertise %v; want the environment's", got.Advertise)
	}
	if _, err := InstallInputFromEnv(func(k string) string {
		if k == "VCPE_FORCE" {
			return "maybe"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "VCPE_FORCE") {
		t.Errorf("VCPE_FORCE=maybe: %v; want an error naming it", err)
	}
}

func TestParseLANGateway(t *testing.T) {
	lan := []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")}
	if gw, err := ParseLANGateway(" 198.19.1.254/24 ", lan); err != nil || gw != netip.MustParsePrefix("198.19.1.254/24") {
		t.Fatalf("got %v, %v; want 198.19.1.254/24", gw, err)
	}
	if gw, err := ParseLANGateway("", lan); err != nil || gw.IsValid() {
		t.Fatalf("empty: %v, %v; want no gateway, no error", gw, err)
	}
	for _, c := range []struct{ in, want string }{
		{"198.19.1.254", "want the gateway address with the LAN's prefix length"},
		{"198.19.1.254/32", "want the gateway address"},
		{"2001:db8::1/64", "want the gateway address"},
		{"198.19.9.254/24", "198.19.9.254 is outside the LAN prefixes 198.19.1.0/24"},
		{"198.19.1.0/24", "network or broadcast address"},
		{"198.19.1.255/24", "network or broadcast address"},
	} {
		_, err := ParseLANGateway(c.in, lan)
		var ie *api.InputError
		if !errors.As(err, &ie) || ie.Field != "--lan-gateway" || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v; want a --lan-gateway error with %q", c.in, err, c.want)
		}
	}
}

func TestParseLANTargets(t *testing.T) {
	ts, err := ParseLANTargets([]string{"198.19.1.10, 198.19.1.11", " 198.19.1.12"})
	if err != nil || len(ts) != 3 {
		t.Fatalf("got %v, %v; want three targets", ts, err)
	}
	for _, in := range []string{"lan-a", "198.19.1.10,198.19.1.10", "2001:db8::1"} {
		if _, err := ParseLANTargets([]string{in}); err == nil || !strings.Contains(err.Error(), "--lan-target") {
			t.Errorf("%q: %v; want a --lan-target error", in, err)
		}
	}
}

func TestValidateInterface(t *testing.T) {
	ifs := []Interface{{Name: "eth0"}, {Name: "lan0"}}
	for _, ok := range []string{"", "eth0", " lan0 "} {
		if err := ValidateInterface("--lan-if", ok, ifs); err != nil {
			t.Errorf("%q: %v; want ok", ok, err)
		}
	}
	err := ValidateInterface("--lan-if", "eth7", ifs)
	if err == nil || err.Error() != `--lan-if: no interface "eth7" on this host; pick one of eth0, lan0` {
		t.Errorf("eth7: %v", err)
	}
	if err := ValidateInterface("--wan-if", "eth7", nil); err != nil {
		t.Errorf("unknown list: %v; want any name accepted", err)
	}
}

// TestConfigFileRoundTrip: the saved answers load back as the same input,
// never hold a key or force, and say where the key comes from.
func TestConfigFileRoundTrip(t *testing.T) {
	in := InstallInput{Controller: "https://198.18.0.1:8443", ControllerFingerprint: "sha256:ab", SN: "SN-1",
		Advertise: []string{"198.19.1.0/24"}, WANInterface: "wan0", LANInterface: "lan0", StateDir: "/var/lib/vcpe",
		LANGateway: "198.19.1.254/24", LANTargets: []string{"198.19.1.10"}, Force: true}
	b, err := in.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"VCPE_KEY", "key_file", "never saved"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("config file does not mention %s:\n%s", w, b)
		}
	}
	if strings.Contains(string(b), "force:") {
		t.Errorf("config file carries force:\n%s", b)
	}
	p := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadInstallConfig(p)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	want := in
	want.Force = false
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loaded %+v; want %+v\n%s", got, want, b)
	}
}
