package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/openvcpe/vcpe/provision"
)

type nopSysctl struct{}

func (nopSysctl) Get(string) (string, error) { return "0", nil }
func (nopSysctl) Set(string, string) error   { return nil }

func TestUninstallUndoesTheJournal(t *testing.T) {
	root := t.TempDir()
	state := filepath.Join(root, "state")
	j, err := provision.OpenJournal(state, nopSysctl{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	made := filepath.Join(root, "made-by-install")
	if _, err := j.WriteFile(made, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// No terminal and no --yes: refuse, change nothing.
	if code := run([]string{"uninstall", "--state-dir", state}); code != 2 {
		t.Errorf("uninstall without --yes and without a terminal: exit %d; want 2", code)
	}
	if _, err := os.Stat(made); err != nil {
		t.Fatalf("refused uninstall still removed a file: %v", err)
	}
	if code := run([]string{"uninstall", "--yes", "--json", "--state-dir", state}); code != 0 {
		t.Fatalf("uninstall --yes: exit %d", code)
	}
	for _, p := range []string{made, state} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists after uninstall: %v", p, err)
		}
	}
	// A second uninstall has nothing to do and says so with exit 0.
	if code := run([]string{"uninstall", "--yes", "--state-dir", state}); code != 0 {
		t.Errorf("second uninstall: exit %d; want 0", code)
	}
}
