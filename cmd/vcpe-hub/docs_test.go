package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
)

// TestManPagesForEveryCommand builds the man pages the packages ship and
// checks there is one per command, documenting each of its flags.
func TestManPagesForEveryCommand(t *testing.T) {
	dir := t.TempDir()
	root := newRootCmd()
	if code := cli.Execute(context.Background(), root, []string{"gen-docs", "--man", dir, "--completions", dir}, io.Discard); code != 0 {
		t.Fatalf("vcpe-hub gen-docs: exit %d", code)
	}
	if err := cli.CheckMan(root, dir); err != nil {
		t.Error(err)
	}
	for _, f := range []string{"vcpe-hub.8.gz", "vcpe-hub-serve.8.gz", "vcpe-hub-instance-create.8.gz", "vcpe-hub.bash", "_vcpe-hub", "vcpe-hub.fish"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}
