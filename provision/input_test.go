package provision

import (
	"errors"
	"os"
	"path/filepath"
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
