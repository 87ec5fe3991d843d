package device

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/api"
)

func TestStateRoundTripAndMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	priv, _ := api.GeneratePrivateKey()
	in := &State{
		Controller: "https://198.18.0.1:8443", ControllerFingerprint: "sha256:ab",
		SN: "VCPE-1", PrivateKey: priv, Credential: "cred",
		Advertise: []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")},
	}
	if err := SaveState(dir, in); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, StateFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o; want %o", path, got, want)
		}
	}
	out, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if out.PrivateKey != priv || out.SN != "VCPE-1" || out.Advertise[0] != in.Advertise[0] {
		t.Errorf("round trip: got %+v", out)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds %d entries; want only %s (no temp files left)", len(entries), StateFile)
	}
}

func TestLoadStateMissingAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadState(dir); !errors.Is(err, ErrNoState) {
		t.Errorf("missing state: err %v; want ErrNoState", err)
	}
	path := filepath.Join(dir, StateFile)
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadState(dir)
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt state: err %v; want a 'corrupt' error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{not json" {
		t.Errorf("corrupt state file was modified: %q", b)
	}
}

// TestNewerStateIsRefusedAndLeftAlone: a state file from a newer vcpe is
// neither read nor overwritten.
func TestNewerStateIsRefusedAndLeftAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, StateFile)
	newer := []byte(`{"version": 7, "sn": "SN1", "something_new": true}` + "\n")
	if err := os.WriteFile(path, newer, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(dir); !errors.Is(err, ErrNewerState) || !strings.Contains(err.Error(), "version 7") {
		t.Errorf("LoadState = %v; want ErrNewerState naming version 7", err)
	}
	if err := SaveState(dir, &State{SN: "SN1"}); !errors.Is(err, ErrNewerState) {
		t.Errorf("SaveState over a newer file = %v; want ErrNewerState", err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(newer) {
		t.Errorf("the newer state file was changed:\n%s", b)
	}
}
