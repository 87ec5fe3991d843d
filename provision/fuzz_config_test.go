package provision

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/openvcpe/vcpe/api"
)

// FuzzLoadInstallConfig feeds arbitrary --config YAML: it loads or is
// refused with an error naming --config, never anything else.
func FuzzLoadInstallConfig(f *testing.F) {
	f.Add([]byte("controller: https://198.18.0.1:8443\nsn: VC1\nadvertise: [198.19.1.0/24]\n"))
	f.Add([]byte("advertise: &a [*a]\n"))
	f.Add([]byte("sn: !!binary AAAA\nforce: yes\nunknown: 1\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadInstallConfig(path)
		var ie *api.InputError
		if err != nil && (!errors.As(err, &ie) || ie.Field != "--config") {
			t.Fatalf("error %v does not name --config", err)
		}
	})
}
