package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
)

// TestManPage builds vcped's man page the package ships and checks it
// documents every flag.
func TestManPage(t *testing.T) {
	dir := t.TempDir()
	var o options
	root := newRootCmd(&o)
	root.SetArgs([]string{"gen-docs", "--man", dir, "--completions", dir})
	if err := root.Execute(); err != nil {
		t.Fatalf("vcped gen-docs: %v", err)
	}
	if err := cli.CheckMan(root, dir); err != nil {
		t.Error(err)
	}
	for _, f := range []string{"vcped.8.gz", "vcped.bash"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}
