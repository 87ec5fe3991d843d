package provision

import (
	"slices"
	"testing"
)

// TestDaemonEnvHoldsNoKey: the detached daemon never inherits the device
// key from the installer's environment.
func TestDaemonEnvHoldsNoKey(t *testing.T) {
	got := daemonEnv([]string{"PATH=/usr/bin", "VCPE_KEY=secret", "VCPE_KEY_FILE=/root/key", "VCPE_SN=VC1", "VCPE_KEYX=kept"})
	if want := []string{"PATH=/usr/bin", "VCPE_SN=VC1", "VCPE_KEYX=kept"}; !slices.Equal(got, want) {
		t.Errorf("daemon env %v; want %v", got, want)
	}
}
